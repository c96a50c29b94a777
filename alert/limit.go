package alert

import (
	"math"
	"sync"
)

// limiter is a token bucket: rate tokens a second, up to a burst of one
// second's worth (at least 10), so a client can absorb a short surge of
// calls. Time is injected as nanoseconds so tests are deterministic; flagd
// gives it a monotonic reading (time since start), and a clock that goes
// backwards all the same adds no tokens and takes none away.
type limiter struct {
	mu     sync.Mutex // guards the fields below
	tokens float64
	last   int64
	rate   float64 // tokens a second: the client's rate, or this replica's share of it
	base   float64 // the client's rate (its clients file entry), which shares are of
	burst  float64
	now    func() int64
	taken  int64 // lookups served since the last takeCount (RateShare)
}

func newLimiter(rate float64, now func() int64) *limiter {
	burst := max(rate, 10)
	return &limiter{tokens: burst, last: now(), rate: rate, base: rate, burst: burst, now: now}
}

// setBase changes the client's rate (a clients file read again), and this
// replica's rate to all of it until RateShare next sets its share.
func (l *limiter) setBase(rate float64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.base = rate
	l.setRateLocked(rate)
}

// share sets this replica's rate to what the other replicas leave of the
// client's (others lookups a second), and never less than the fraction
// floor of it; the whole rate is share(0, 1).
func (l *limiter) share(others, floor float64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.setRateLocked(max(l.base*floor, l.base-others)) // one locked step: a setBase cannot fall between
}

// setRate changes the refill rate and the burst with it (a second's worth,
// at least 10), keeping the tokens already earned at the old rate.
func (l *limiter) setRate(rate float64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.setRateLocked(rate)
}

// setRateLocked is setRate with l.mu held.
func (l *limiter) setRateLocked(rate float64) {
	l.refill()
	l.rate, l.burst = rate, max(rate, 10)
	l.tokens = min(l.tokens, l.burst)
}

// takeCount returns the lookups served since it was last called.
func (l *limiter) takeCount() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := l.taken
	l.taken = 0
	return n
}

// refill adds the tokens earned since last; l.mu is held.
func (l *limiter) refill() {
	now := l.now()
	elapsed := max(0, now-l.last) // a clock stepped back must not drain the bucket
	l.tokens = min(l.burst, l.tokens+float64(elapsed)/1e9*l.rate)
	l.last = now
}

// allow takes a token if there is one; otherwise it returns how many
// whole seconds until there will be (for Retry-After: rounded up, so a
// client that waits that long is served; at least 1).
func (l *limiter) allow() (bool, int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.refill()
	if l.tokens >= 1 {
		l.tokens--
		l.taken++
		return true, 0
	}
	wait := (1 - l.tokens) / l.rate
	return false, max(1, int(math.Ceil(wait)))
}

// refund gives back a token allow took, for a request that was not served.
func (l *limiter) refund() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.tokens = min(l.burst, l.tokens+1)
	l.taken--
}
