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
	if operatorSetGOGC() {
		return func() {}
	}
	old := debug.SetGCPercent(percent)
	return func() {
		debug.SetGCPercent(old)
		debug.FreeOSMemory()
	}
}

// ServingGCPercent is the garbage collector's target while a replica serves.
const ServingGCPercent = 50

// ServingGC sets the garbage collector's target for serving, once the index
// is loaded: a serving replica's heap is nearly all index, which lives as
// long as the process, and Go's default target lets the heap grow by as
// much again in garbage before collecting (at 1,000,000 plans, close to
// 1 GB resident after a few minutes of lookups). At ServingGCPercent the
// heap grows by half the index between collections; each collection marks
// the same index, so a replica collects twice as often, a small cost at
// the lookup rates it serves. It does nothing when the operator set GOGC,
// and a GOMEMLIMIT still bounds the heap.
func ServingGC() {
	if operatorSetGOGC() {
		return
	}
	debug.SetGCPercent(ServingGCPercent)
}

// operatorSetGOGC reports a GOGC in the environment, which the collector
// settings here leave alone.
func operatorSetGOGC() bool {
	_, set := os.LookupEnv("GOGC")
	return set
}
