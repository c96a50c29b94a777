package alert

import (
	"testing"
	"time"
)

// A wall clock stepped back (NTP, an operator) must not refuse a client:
// before the fix the negative interval drained the bucket by rate × step
// and the client was answered 429 for as long as the step.
func TestLimiterClockStepBack(t *testing.T) {
	now := time.Date(2026, 11, 30, 3, 0, 0, 0, time.UTC).UnixNano()
	l := newLimiter(200, func() int64 { return now })
	if ok, _ := l.allow(); !ok {
		t.Fatal("first lookup refused")
	}
	now -= int64(time.Hour)
	if ok, retry := l.allow(); !ok {
		t.Errorf("lookup just after the clock stepped back an hour refused (Retry-After %d s)", retry)
	}
	now += int64(time.Minute)
	if ok, retry := l.allow(); !ok {
		t.Errorf("lookup a minute after the step refused (Retry-After %d s)", retry)
	}
	// Nor does the step hand out tokens: the burst (less the lookup just
	// taken) is still the limit.
	n := 0
	for ok, _ := l.allow(); ok; ok, _ = l.allow() {
		n++
	}
	if n != 199 {
		t.Errorf("%d more lookups allowed at once, want 199 (a burst of 200, one taken)", n)
	}
}

// Retry-After is the wait until the next token rounded up: a client that
// waits that long is served. Rounding by adding 0.999 gave 1 s for a wait
// of 1.0004 s at half a lookup a second, and the client was refused again.
func TestLimiterRetryAfterRoundsUp(t *testing.T) {
	var now int64
	l := newLimiter(0.5, func() int64 { return now }) // burst 10
	for range 10 {
		if ok, _ := l.allow(); !ok {
			t.Fatal("burst refused")
		}
	}
	now += 999_600_000 // 0.4998 tokens: the next in 1.0004 s
	ok, retry := l.allow()
	if ok || retry != 2 {
		t.Fatalf("allowed %v, Retry-After %d s; want refused, 2 s", ok, retry)
	}
	now += int64(retry) * int64(time.Second)
	if ok, retry := l.allow(); !ok {
		t.Errorf("refused again after waiting the Retry-After (now %d s)", retry)
	}
}

// A replica's share of a client's rate (RateShare) changes the refill and
// the burst; lookups served are counted, less those refunded.
func TestLimiterShare(t *testing.T) {
	var now int64
	l := newLimiter(100, func() int64 { return now })
	for range 30 {
		l.allow()
	}
	l.refund()
	if n := l.takeCount(); n != 29 {
		t.Errorf("counted %d lookups, want 29 (30 served, one refunded)", n)
	}
	if n := l.takeCount(); n != 0 {
		t.Errorf("counted %d lookups again, want 0", n)
	}
	l.setRate(20) // 71 tokens left: cut to the new burst, 20
	n := 0
	for ok, _ := l.allow(); ok; ok, _ = l.allow() {
		n++
	}
	if n != 20 {
		t.Errorf("%d lookups allowed at once at a share of 20/s, want 20", n)
	}
	now += int64(time.Second / 2)
	if _, retry := l.allow(); retry != 0 {
		t.Errorf("refused half a second later at 20/s (10 tokens earned)")
	}
}
