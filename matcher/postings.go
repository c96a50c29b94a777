package matcher

import (
	"cmp"
	"slices"
	"sync/atomic"
)

// postings files plan slots under blocking keys. It is split into shards by
// the key's top bits; each shard is an immutable sorted array plus a small
// append-only delta, published through an atomic pointer. Readers load the
// pointer and the delta length and never wait; the single writer appends to
// the delta, or, when it is full or an entry must go, builds a merged array
// and publishes it.
type postings struct {
	shards [numShards]atomic.Pointer[shardState]
}

const (
	shardBits = 12
	numShards = 1 << shardBits
	deltaCap  = 32
)

type shardState struct {
	keys []uint64 // sorted
	ids  []uint32 // ids[i] is filed under keys[i]

	// The delta: entries [0, dn) are published; the writer fills dkeys[dn]
	// and dids[dn] before storing dn+1, so readers see whole entries.
	dkeys [deltaCap]uint64
	dids  [deltaCap]uint32
	dn    atomic.Int32
}

type posting struct {
	key uint64
	id  uint32
}

func comparePostings(a, b posting) int {
	if c := cmp.Compare(a.key, b.key); c != 0 {
		return c
	}
	return cmp.Compare(a.id, b.id)
}

func shardOf(key uint64) int { return int(key >> (64 - shardBits)) }

// lookup appends to dst the slot IDs filed under key, and returns the number
// found (which may exceed what was appended when limit cuts it).
func (ps *postings) lookup(key uint64, dst []uint32, limit int) ([]uint32, int) {
	st := ps.shards[shardOf(key)].Load()
	if st == nil {
		return dst, 0
	}
	found := 0
	keys := st.keys
	i, _ := slices.BinarySearch(keys, key)
	for ; i < len(keys) && keys[i] == key; i++ {
		if found < limit {
			dst = append(dst, st.ids[i])
		}
		found++
	}
	n := int(st.dn.Load())
	for j := 0; j < n; j++ {
		if st.dkeys[j] == key {
			if found < limit {
				dst = append(dst, st.dids[j])
			}
			found++
		}
	}
	return dst, found
}

// update files adds and unfiles removes (each sorted by comparePostings).
// Writer only.
func (ps *postings) update(adds, removes []posting) {
	for len(adds) > 0 || len(removes) > 0 {
		// The lowest shard with work.
		sh := numShards
		if len(adds) > 0 {
			sh = shardOf(adds[0].key)
		}
		if len(removes) > 0 {
			sh = min(sh, shardOf(removes[0].key))
		}
		na := 0
		for na < len(adds) && shardOf(adds[na].key) == sh {
			na++
		}
		nr := 0
		for nr < len(removes) && shardOf(removes[nr].key) == sh {
			nr++
		}
		ps.updateShard(sh, adds[:na], removes[:nr])
		adds, removes = adds[na:], removes[nr:]
	}
}

func (ps *postings) updateShard(sh int, adds, removes []posting) {
	st := ps.shards[sh].Load()
	if st != nil && len(removes) == 0 {
		n := int(st.dn.Load())
		if n+len(adds) <= deltaCap {
			for _, p := range adds {
				st.dkeys[n] = p.key
				st.dids[n] = p.id
				n++
				st.dn.Store(int32(n))
			}
			return
		}
	}
	// Merge the base, the delta and the adds, less the removes.
	var all []posting
	if st != nil {
		n := int(st.dn.Load())
		all = make([]posting, 0, len(st.keys)+n+len(adds))
		for i, k := range st.keys {
			all = append(all, posting{k, st.ids[i]})
		}
		for j := 0; j < n; j++ {
			all = append(all, posting{st.dkeys[j], st.dids[j]})
		}
	}
	all = append(all, adds...)
	slices.SortFunc(all, comparePostings)
	all = slices.Compact(all)
	if len(removes) > 0 {
		w, r := 0, 0
		for _, p := range all {
			for r < len(removes) && comparePostings(removes[r], p) < 0 {
				r++
			}
			if r < len(removes) && removes[r] == p {
				continue
			}
			all[w] = p
			w++
		}
		all = all[:w]
	}
	next := &shardState{keys: make([]uint64, len(all)), ids: make([]uint32, len(all))}
	for i, p := range all {
		next.keys[i] = p.key
		next.ids[i] = p.id
	}
	ps.shards[sh].Store(next)
}

// size returns the number of filed entries; writer only (or quiescent).
func (ps *postings) size() int {
	n := 0
	for i := range ps.shards {
		if st := ps.shards[i].Load(); st != nil {
			n += len(st.keys) + int(st.dn.Load())
		}
	}
	return n
}
