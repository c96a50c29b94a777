package feed

import (
	"math"
	"os"
	"path/filepath"
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
	limit := func() int64 { return debug.SetMemoryLimit(-1) }
	if limit() != math.MaxInt64 {
		t.Skip("a memory limit is set (GOMEMLIMIT in the test's environment)")
	}
	restore := CatchUpGC(400)
	if got := current(); got != 400 {
		t.Errorf("catching up: target %d, want 400", got)
	}
	// A memory limit bounds the raised target: three quarters of what the
	// process may use.
	if got, budget := limit(), memoryBudget("/"); got == math.MaxInt64 || got > budget || got < budget/2 {
		t.Errorf("catching up: memory limit %d, want three quarters of %d", got, budget)
	}
	restore()
	if got := current(); got != 100 {
		t.Errorf("after catching up: target %d, want the previous 100", got)
	}
	if got := limit(); got != math.MaxInt64 {
		t.Errorf("after catching up: memory limit %d, want none", got)
	}
	// The operator's GOMEMLIMIT is left alone.
	t.Setenv("GOMEMLIMIT", "64GiB")
	restore = CatchUpGC(400)
	if got := limit(); got != math.MaxInt64 {
		t.Errorf("with GOMEMLIMIT set, the limit became %d", got)
	}
	restore()
	os.Unsetenv("GOMEMLIMIT")
	ServingGC()
	if got := current(); got != ServingGCPercent {
		t.Errorf("serving: target %d, want %d", got, ServingGCPercent)
	}
}

// The memory budget: what the machine has available, or the cgroup's limit
// if that is less (v2 and v1; "max" and v1's huge value mean none).
func TestMemoryBudget(t *testing.T) {
	write := func(root, name, content string) {
		t.Helper()
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	const meminfo = "MemTotal:       24684084 kB\nMemFree:        1000 kB\nMemAvailable:   8388608 kB\n"
	for _, c := range []struct {
		name        string
		files       map[string]string
		least, most int64 // the runtime's own memory is added to MemAvailable
	}{
		{"no files", nil, 0, 0},
		{"meminfo alone", map[string]string{"proc/meminfo": meminfo}, 8 << 30, 9 << 30},
		{"v2 limit below", map[string]string{"proc/meminfo": meminfo, "proc/self/cgroup": "0::/svc/flagd\n",
			"sys/fs/cgroup/svc/flagd/memory.max": "2147483648\n"}, 2 << 30, 2 << 30},
		{"v2 max", map[string]string{"proc/meminfo": meminfo, "proc/self/cgroup": "0::/\n",
			"sys/fs/cgroup/memory.max": "max\n"}, 8 << 30, 9 << 30},
		{"v2 limit above", map[string]string{"proc/meminfo": meminfo, "proc/self/cgroup": "0::/\n",
			"sys/fs/cgroup/memory.max": "68719476736\n"}, 8 << 30, 9 << 30},
		{"v1 limit", map[string]string{"proc/meminfo": meminfo, "proc/self/cgroup": "12:cpu,cpuacct:/x\n4:memory:/docker/abc\n",
			"sys/fs/cgroup/memory/docker/abc/memory.limit_in_bytes": "1073741824\n"}, 1 << 30, 1 << 30},
		{"v1 none", map[string]string{"proc/meminfo": meminfo, "proc/self/cgroup": "4:memory:/\n",
			"sys/fs/cgroup/memory/memory.limit_in_bytes": "9223372036854771712\n"}, 8 << 30, 9 << 30},
		{"cgroup alone", map[string]string{"proc/self/cgroup": "0::/\n", "sys/fs/cgroup/memory.max": "4294967296"}, 4 << 30, 4 << 30},
	} {
		root := t.TempDir()
		for name, content := range c.files {
			write(root, name, content)
		}
		if got := memoryBudget(root); got < c.least || got > c.most {
			t.Errorf("%s: budget %d, want %d to %d", c.name, got, c.least, c.most)
		}
	}
}
