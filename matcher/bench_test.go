package matcher_test

import (
	"math"
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

// benchBatch is how many changes the build applies at once: all of a chunk
// by default, PLANFLAG_BENCH_BATCH to apply them as the Kafka feed does
// while catching up (feed.KafkaConfig.MaxBatch: 32768).
func benchBatch() int {
	if n, err := strconv.Atoi(os.Getenv("PLANFLAG_BENCH_BATCH")); err == nil && n > 0 {
		return n
	}
	return math.MaxInt
}

// buildShared generates the synthetic population and indexes it once for
// all benchmarks, measuring the build's time and heap.
func buildShared(b *testing.B) *built {
	builtOnce.Do(func() {
		ix := matcher.NewIndex(nil)
		var took time.Duration
		var m0 runtime.MemStats // before the first chunk is indexed
		batch := benchBatch()
		// Beyond 1,000,000 plans the index is built from 1,000,000-plan
		// populations (bench.GenerateChunks); the callers are the first's.
		cfg := bench.DefaultConfig()
		cfg.Seed, cfg.Plans, cfg.Queries = 1, benchPlans(), 20_000
		err := bench.GenerateChunks(cfg, func(chunk int, ds *bench.Dataset, changes []matcher.Change) error {
			if chunk == 0 {
				shared.ds, shared.changes = ds, changes
				runtime.GC()
				runtime.ReadMemStats(&m0)
			}
			start := time.Now()
			for len(changes) > 0 {
				n := min(len(changes), batch)
				ix.Apply(changes[:n])
				changes = changes[n:]
			}
			last := (chunk+1)*bench.ChunkPlans >= benchPlans()
			if last {
				ix.Compact() // as a replica does once caught up
			}
			took += time.Since(start)
			if !last && chunk > 0 {
				b.Logf("indexed %d plans of %d", ix.Live(), benchPlans())
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
		// The first chunk's data set and changes are held throughout (for
		// the benchmarks), the later chunks' are garbage: the growth is the
		// index's.
		var m1 runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&m1)
		shared.ix, shared.buildTime = ix, took
		shared.heapPerPln = float64(int64(m1.HeapAlloc)-int64(m0.HeapAlloc)) / float64(ix.Live())
	})
	return &shared
}

// lookups is the synthetic callers the API accepts (bench.Lookups): a
// caller refused with 400 is not a lookup.
func (s *built) lookups() []bench.LabeledQuery {
	qs, _ := bench.Lookups(s.ds.Queries)
	return qs
}

// BenchmarkMatch measures lookups against the full index on one goroutine:
// the latency distribution over the synthetic caller set, allocations, and
// the index's build time and heap per plan.
func BenchmarkMatch(b *testing.B) {
	s := buildShared(b)
	qs := s.lookups()
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
	qs := s.lookups()
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

// BenchmarkApplyBurst measures a burst of new plans applied while serving:
// each op is one batch of the Kafka feed's size (feed.KafkaConfig.MaxBatch,
// 32,768) of plans the index has not seen, as a plan store republishing
// would send; a withdrawal behind them waits for the batch.
func BenchmarkApplyBurst(b *testing.B) {
	s := buildShared(b)
	const burst = 32_768
	batch := make([]matcher.Change, 0, burst)
	b.ReportAllocs()
	b.ResetTimer()
	n := 0
	for b.Loop() {
		b.StopTimer()
		batch = batch[:0]
		for len(batch) < burst {
			c := s.changes[n%len(s.changes)]
			n++
			if c.Patient == nil {
				continue
			}
			c.PlanID = "burst-" + strconv.Itoa(n) + "-" + c.PlanID
			batch = append(batch, c)
		}
		b.StartTimer()
		s.ix.Apply(batch)
	}
}
