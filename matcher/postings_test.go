package matcher

import (
	"math/rand/v2"
	"slices"
	"testing"
)

// TestPostingsModel files and unfiles random postings in batches of every
// size, through the delta and the merge paths, and checks every key's
// entries against a plain map.
func TestPostingsModel(t *testing.T) {
	testPostingsModel(t, false)
}

// TestPostingsModelMid is TestPostingsModel with shards small enough to use
// their mid level, folded into the entries (compact) now and then.
func TestPostingsModelMid(t *testing.T) {
	prev := midMin
	midMin = 16
	t.Cleanup(func() { midMin = prev })
	testPostingsModel(t, true)
}

func testPostingsModel(t *testing.T, compact bool) {
	rng := rand.New(rand.NewPCG(1, 2))
	var ps postings
	model := map[posting]bool{}
	// Few distinct keys, all in a handful of shards, so shards fill past
	// the delta and get merged often.
	keyOf := func() uint64 { return fullKey(rng.IntN(4), uint32(rng.IntN(50))*85_899_345) } // spread over the buckets
	for round := range 400 {
		var adds, removes []posting
		for range rng.IntN(1 + round%70) {
			p := posting{keyOf(), uint32(rng.IntN(30))}
			// With mids, two rounds in three only add: a shard's mid
			// builds up over them, and the third round's removes fold it.
			if model[p] && rng.IntN(2) == 0 && (!compact || round%3 == 0) {
				removes = append(removes, p)
			} else if !model[p] {
				adds = append(adds, p)
			}
		}
		adds, removes = uniq(adds), uniq(removes)
		ps.update(adds, removes)
		if compact && round%7 == 6 {
			ps.compact()
		}
		for _, p := range adds {
			model[p] = true
		}
		for _, p := range removes {
			delete(model, p)
		}
		for sh := range 4 {
			for k := range 50 {
				key := fullKey(sh, uint32(k)*85_899_345)
				got, n := ps.lookup(key, nil, 1000)
				var want []uint32
				for p := range model {
					if p.key == key {
						want = append(want, p.id)
					}
				}
				slices.Sort(got)
				slices.Sort(want)
				if n != len(want) || !slices.Equal(got, want) {
					t.Fatalf("round %d key %x: got %v (%d), want %v", round, key, got, n, want)
				}
			}
		}
	}
}

func uniq(ps []posting) []posting {
	slices.SortFunc(ps, comparePostings)
	return slices.Compact(ps)
}

// TestPostingsDirectory files uniformly random keys, a few shards' worth,
// so every directory bucket is used, and finds each again; keys never filed
// find nothing.
func TestPostingsDirectory(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	var ps postings
	var adds []posting
	for i := range 50_000 {
		adds = append(adds, posting{fullKey(rng.IntN(3), rng.Uint32()), uint32(i)})
	}
	// Runs of one fragment, at the ends of the range and at bucket edges.
	for i, f := range []uint32{0, 0, 1, ^uint32(0), ^uint32(0), 1 << (fragBits - dirBits), 1<<(fragBits-dirBits) - 1} {
		adds = append(adds, posting{fullKey(1, f), uint32(100_000 + i)})
	}
	adds = uniq(adds)
	ps.update(adds, nil)
	want := map[uint64][]uint32{}
	for _, p := range adds {
		want[p.key] = append(want[p.key], p.id)
	}
	for key, ids := range want {
		got, n := ps.lookup(key, nil, 1000)
		slices.Sort(got)
		if n != len(ids) || !slices.Equal(got, ids) {
			t.Fatalf("key %x: got %v (%d), want %v", key, got, n, ids)
		}
	}
	for range 10_000 {
		key := fullKey(rng.IntN(3), rng.Uint32())
		if _, filed := want[key]; filed {
			continue
		}
		if got, n := ps.lookup(key, nil, 1000); n != 0 {
			t.Fatalf("key %x never filed: got %v", key, got)
		}
	}
}

// TestSortPostings checks the shard-by-shard sort against a comparison
// sort, for batches below and above the size where it takes over.
func TestSortPostings(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for _, n := range []int{0, 1, 100, 4*numShards - 1, 4 * numShards, 100_000} {
		ps := make([]posting, n)
		for i := range ps {
			// Few distinct keys and slots, so equal keys and equal slots
			// under different keys both occur.
			ps[i] = posting{fullKey(rng.IntN(numShards), uint32(rng.IntN(1<<12))<<20), uint32(rng.IntN(n/2 + 1))}
		}
		want := slices.Clone(ps)
		slices.SortFunc(want, comparePostings)
		sortPostings(ps)
		if !slices.Equal(ps, want) {
			t.Fatalf("n=%d: sortPostings differs from a comparison sort", n)
		}
	}
}
