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
