package matcher_test

import (
	"os"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/planflag/planflag/bench"
	"github.com/planflag/planflag/matcher"
)

// benchPlans is the index size of the benchmarks: 1,000,000 by default (the
// target size), PLANFLAG_BENCH_PLANS to change it (make test uses fewer so
// that one run of every benchmark stays quick).
func benchPlans() int {
	if n, err := strconv.Atoi(os.Getenv("PLANFLAG_BENCH_PLANS")); err == nil && n > 0 {
		return n
	}
	return 1_000_000
}

type built struct {
	ds         *bench.Dataset
	ix         *matcher.Index
	changes    []matcher.Change
	buildTime  time.Duration
	heapPerPln float64
}

var (
	builtOnce sync.Once
	shared    built
)

// buildShared generates the synthetic population and indexes it once for
// all benchmarks, measuring the build's time and heap.
func buildShared(b *testing.B) *built {
	builtOnce.Do(func() {
		cfg := bench.DefaultConfig()
		cfg.Plans = benchPlans()
		cfg.Queries = 20_000
		ds, err := bench.Generate(cfg)
		if err != nil {
			b.Fatal(err)
		}
		changes := make([]matcher.Change, len(ds.Events))
		for i := range ds.Events {
			changes[i] = ds.Events[i].Change()
		}
		var m0, m1 runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&m0)
		start := time.Now()
		ix := matcher.NewIndex(nil)
		ix.Apply(changes)
		took := time.Since(start)
		runtime.GC()
		runtime.ReadMemStats(&m1)
		shared = built{ds: ds, ix: ix, changes: changes, buildTime: took,
			heapPerPln: float64(int64(m1.HeapAlloc)-int64(m0.HeapAlloc)) / float64(ix.Live())}
	})
	return &shared
}

// BenchmarkMatch measures lookups against the full index on one goroutine:
// the latency distribution over the synthetic caller set, allocations, and
// the index's build time and heap per plan.
func BenchmarkMatch(b *testing.B) {
	s := buildShared(b)
	qs := s.ds.Queries
	lat := make([]time.Duration, 0, 1<<16)
	considered := 0
	b.ReportAllocs()
	b.ResetTimer()
	i := 0
	for b.Loop() {
		q := qs[i%len(qs)].Query
		t := time.Now()
		r, err := s.ix.Match(q)
		d := time.Since(t)
		if err != nil {
			b.Fatal(err)
		}
		considered += r.Considered
		if len(lat) < cap(lat) {
			lat = append(lat, d)
		}
		i++
	}
	b.StopTimer()
	slices.Sort(lat)
	pct := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))].Nanoseconds()) }
	b.ReportMetric(pct(0.50), "p50-ns")
	b.ReportMetric(pct(0.99), "p99-ns")
	b.ReportMetric(pct(0.999), "p99.9-ns")
	b.ReportMetric(float64(considered)/float64(i), "scored/op")
	b.ReportMetric(float64(s.ix.Live()), "plans")
	b.ReportMetric(s.heapPerPln, "heap-B/plan")
	b.ReportMetric(s.buildTime.Seconds(), "build-s")
	st := s.ix.Stats()
	b.ReportMetric(float64(st.Postings)/float64(st.Live), "keys/plan")
}

// BenchmarkMatchParallel is the same lookups from every core at once.
func BenchmarkMatchParallel(b *testing.B) {
	s := buildShared(b)
	qs := s.ds.Queries
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			if _, err := s.ix.Match(qs[i%len(qs)].Query); err != nil {
				b.Error(err)
				return
			}
			i += 7
		}
	})
}

// BenchmarkApplyLive measures single-event upserts into the full index, as a
// live feed applies them, while it holds every plan.
func BenchmarkApplyLive(b *testing.B) {
	s := buildShared(b)
	b.ReportAllocs()
	b.ResetTimer()
	i := 0
	for b.Loop() {
		c := s.changes[i%len(s.changes)]
		if c.Patient == nil {
			i++
			continue
		}
		c.Version = uint64(1000 + i)
		s.ix.Apply([]matcher.Change{c})
		i++
	}
}
