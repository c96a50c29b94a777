package feed

import (
	"os"
	"runtime/debug"
)

// CatchUpGC raises the garbage collector's target while a replica catches
// up (replaying the topic or loading a snapshot allocates much more than
// the index keeps, and collecting after every doubling of a large heap
// cost a fifth of the replay), and returns the function that restores the
// previous setting and hands the garbage back to the OS. It does nothing
// when the operator set GOGC, and a GOMEMLIMIT still bounds the heap.
func CatchUpGC(percent int) (restore func()) {
	if _, set := os.LookupEnv("GOGC"); set {
		return func() {}
	}
	old := debug.SetGCPercent(percent)
	return func() {
		debug.SetGCPercent(old)
		debug.FreeOSMemory()
	}
}
