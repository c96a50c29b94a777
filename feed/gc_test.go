package feed

import (
	"os"
	"runtime/debug"
	"testing"
)

// The collector's targets while catching up and while serving, and the
// operator's GOGC left alone.
func TestGCTargets(t *testing.T) {
	prev := debug.SetGCPercent(100)
	t.Cleanup(func() { debug.SetGCPercent(prev) })
	current := func() int { p := debug.SetGCPercent(100); debug.SetGCPercent(p); return p }

	t.Setenv("GOGC", "100") // the operator's; restored after the test
	CatchUpGC(400)
	ServingGC()
	if got := current(); got != 100 {
		t.Errorf("with GOGC set, the target became %d", got)
	}

	os.Unsetenv("GOGC")
	restore := CatchUpGC(400)
	if got := current(); got != 400 {
		t.Errorf("catching up: target %d, want 400", got)
	}
	restore()
	if got := current(); got != 100 {
		t.Errorf("after catching up: target %d, want the previous 100", got)
	}
	ServingGC()
	if got := current(); got != ServingGCPercent {
		t.Errorf("serving: target %d, want %d", got, ServingGCPercent)
	}
}
