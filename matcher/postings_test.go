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
	rng := rand.New(rand.NewPCG(1, 2))
	var ps postings
	model := map[posting]bool{}
	// Few distinct keys, all in a handful of shards, so shards fill past
	// the delta and get merged often.
	keyOf := func() uint64 { return fullKey(rng.IntN(4), uint32(rng.IntN(50))) }
	for round := range 400 {
		var adds, removes []posting
		for range rng.IntN(1 + round%70) {
			p := posting{keyOf(), uint32(rng.IntN(30))}
			if model[p] && rng.IntN(2) == 0 {
				removes = append(removes, p)
			} else if !model[p] {
				adds = append(adds, p)
			}
		}
		adds, removes = uniq(adds), uniq(removes)
		ps.update(adds, removes)
		for _, p := range adds {
			model[p] = true
		}
		for _, p := range removes {
			delete(model, p)
		}
		for sh := range 4 {
			for k := range 50 {
				key := fullKey(sh, uint32(k))
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

// TestLowerBound checks the interpolating search against a binary search
// on sorted entries of every size, evenly spread and clumped, with runs of
// equal keys, for present and absent keys.
func TestLowerBound(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for trial := range 2000 {
		n := rng.IntN(300)
		keys := make([]uint64, n)
		for i := range keys {
			var f uint32
			switch trial % 3 {
			case 0:
				f = rng.Uint32()
			case 1:
				f = uint32(rng.IntN(40)) // many equal fragments
			default:
				f = rng.Uint32() >> uint(rng.IntN(32)) // clumped near zero
			}
			keys[i] = entry(f, uint32(rng.IntN(5)))
		}
		slices.Sort(keys)
		probes := []uint32{0, ^uint32(0), rng.Uint32()}
		for i := range keys {
			f := uint32(keys[i] >> 32)
			probes = append(probes, f, f-1, f+1)
		}
		for _, f := range probes {
			want, _ := slices.BinarySearch(keys, entry(f, 0))
			if got := lowerBound(keys, f); got != want {
				t.Fatalf("n=%d fragment %d: lowerBound %d, binary search %d", n, f, got, want)
			}
			g := rng.IntN(n+3) - 1 // any guess, even out of range
			if got := lowerBoundFrom(keys, entry(f, 0), g); got != want {
				t.Fatalf("n=%d fragment %d guess %d: lowerBoundFrom %d, binary search %d", n, f, g, got, want)
			}
		}
	}
}
