package feed

import (
	"bufio"
	"bytes"
	"os"
	"path/filepath"
	"runtime/debug"
	"runtime/metrics"
	"strconv"
	"strings"
)

// CatchUpGC raises the garbage collector's target while a replica catches
// up (replaying the topic or loading a snapshot allocates much more than
// the index keeps, and collecting after every doubling of a large heap
// cost a fifth of the replay), and returns the function that restores the
// previous setting and hands the garbage back to the OS. It does nothing
// when the operator set GOGC.
//
// A raised target lets the heap grow to (1 + percent/100) times the live
// index between collections: at 10,000,000 plans, five times 3.2 GB. So
// while it is raised a soft memory limit (debug.SetMemoryLimit) holds the
// heap to three quarters of the memory the process may use — its cgroup's
// limit, or the memory the machine has available when the catch-up starts,
// whichever is less — and the collector runs early rather than let the
// replica be killed for want of memory. A GOMEMLIMIT set by the operator
// is left alone.
func CatchUpGC(percent int) (restore func()) {
	if operatorSetGOGC() {
		return func() {}
	}
	old := debug.SetGCPercent(percent)
	oldLimit := int64(-1)
	if _, set := os.LookupEnv("GOMEMLIMIT"); !set {
		if budget := memoryBudget("/"); budget > 0 {
			oldLimit = debug.SetMemoryLimit(budget / 4 * 3)
		}
	}
	return func() {
		debug.SetGCPercent(old)
		if oldLimit >= 0 {
			debug.SetMemoryLimit(oldLimit)
		}
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

// memoryBudget is the memory this process may use, in bytes: the memory the
// machine has available (MemAvailable) plus what the Go runtime holds now,
// or the process's cgroup limit if that is less (v2 memory.max, v1
// memory.limit_in_bytes); 0 if none can be read. root is the file system's
// root ("/"; tests give a directory of their own).
func memoryBudget(root string) int64 {
	budget := int64(0)
	if avail := meminfoAvailable(filepath.Join(root, "proc/meminfo")); avail > 0 {
		s := []metrics.Sample{{Name: "/memory/classes/total:bytes"}}
		metrics.Read(s)
		budget = avail
		if s[0].Value.Kind() == metrics.KindUint64 {
			budget += int64(s[0].Value.Uint64())
		}
	}
	if limit := cgroupLimit(root); limit > 0 && (budget == 0 || limit < budget) {
		budget = limit
	}
	return budget
}

// meminfoAvailable reads MemAvailable from a /proc/meminfo file, in bytes.
func meminfoAvailable(file string) int64 {
	f, err := os.Open(file)
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "MemAvailable:"); ok {
			fields := strings.Fields(rest)
			if len(fields) == 2 && fields[1] == "kB" {
				if kb, err := strconv.ParseInt(fields[0], 10, 64); err == nil {
					return kb << 10
				}
			}
		}
	}
	return 0
}

// cgroupLimit is the memory limit of the process's cgroup, in bytes; 0 when
// it has none (or none can be read).
func cgroupLimit(root string) int64 {
	b, err := os.ReadFile(filepath.Join(root, "proc/self/cgroup"))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		// v2: "0::/path"; v1: "N:memory:/path" (or "N:...,memory,...:/path").
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		var file string
		switch {
		case parts[0] == "0" && parts[1] == "":
			file = filepath.Join(root, "sys/fs/cgroup", parts[2], "memory.max")
		case hasController(parts[1], "memory"):
			file = filepath.Join(root, "sys/fs/cgroup/memory", parts[2], "memory.limit_in_bytes")
		default:
			continue
		}
		v, err := os.ReadFile(file)
		if err != nil {
			continue
		}
		n, err := strconv.ParseInt(string(bytes.TrimSpace(v)), 10, 64)
		// "max" (v2), or v1's "no limit" (a page-rounded 2^63-1).
		if err == nil && n > 0 && n < 1<<62 {
			return n
		}
	}
	return 0
}

func hasController(list, name string) bool {
	for _, c := range strings.Split(list, ",") {
		if c == name {
			return true
		}
	}
	return false
}
