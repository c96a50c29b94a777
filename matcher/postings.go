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
//
// A key is 44 bits: the top shardBits choose the shard and the next 32 are
// all a shard stores of it (its fragment). A shard's entries are one sorted
// array of fragment<<32 | slot: 8 bytes an entry where the whole key and the
// slot would take 12, and the slot is in the cache line the search just
// read. A directory by the fragment's top bits takes a probe straight to
// the dozen entries that can hold its key: a probe reads the shard's
// header, one directory line and one or two lines of entries, each likely a
// cache miss in a large index, and nothing else.
// blockKey clears the low bits, so the keys the index files and the keys a
// lookup probes are the same 44-bit values everywhere, and two keys that
// differ only in what was cleared are one key. A probe that meets another
// key's fragment in its shard (about one probe in a million at 1,000,000
// plans: 3,000 entries a shard, 2^32 fragments) scores a few extra plans;
// it cannot miss one.
type postings struct {
	shards [numShards]atomic.Pointer[shardState]
}

const (
	shardBits = 12
	numShards = 1 << shardBits
	deltaCap  = 32
	fragBits  = 32
	fragShift = 64 - shardBits - fragBits
	// keyMask keeps the bits of a key the postings store.
	keyMask = ^uint64(1<<fragShift - 1)
	// dirBits is the resolution of a shard's directory: the top dirBits
	// of a fragment pick a bucket, and the directory gives where the
	// bucket's entries start. At 1,000,000 plans a shard holds about 3,000
	// entries, a bucket about 12: one or two cache lines.
	dirBits = 8
	dirSize = 1 << dirBits
)

type shardState struct {
	entries []uint64 // fragment<<32 | slot, sorted

	// The delta: entries [0, dn) are published; the writer fills dkeys[dn]
	// and dids[dn] before storing dn+1, so readers see whole entries. dn
	// sits beside the entries' header: one cache line for both.
	dn atomic.Int32

	// mid is a second sorted level between the delta and entries, used by
	// large shards only (midMin): a full delta is merged into mid, a copy
	// of a few thousand entries at most, and mid into entries only when it
	// reaches an eighth of them, so a batch's merges cost in proportion to
	// the batch, not to the index (at 10,000,000 plans, rewriting every
	// shard's entries at every batch made a replay's cost grow with the
	// square of the index). Index.Compact folds it into entries.
	mid []uint64

	// dir[b] is the index of the first entry whose fragment's top dirBits
	// are b or more; dir[dirSize] is len(entries).
	dir [dirSize + 1]uint32

	dkeys [deltaCap]uint64
	dids  [deltaCap]uint32
}

// bucket is a fragment's directory bucket.
func bucket(f uint32) int { return int(f >> (fragBits - dirBits)) }

// first returns the index of the first entry of fragment f or above: the
// directory narrows the search to f's bucket, a dozen entries, and a binary
// search finishes it.
func (st *shardState) first(f uint32) int {
	b := bucket(f)
	lo, hi := int(st.dir[b]), int(st.dir[b+1])
	i, _ := slices.BinarySearch(st.entries[lo:hi], entry(f, 0))
	return lo + i
}

// index fills the directory from the entries: a binary search for where
// each bucket starts.
func (st *shardState) index() {
	es := st.entries
	lo := 0
	for b := range dirSize {
		i, _ := slices.BinarySearch(es[lo:], uint64(b)<<(64-dirBits))
		lo += i
		st.dir[b] = uint32(lo)
	}
	st.dir[dirSize] = uint32(len(es))
}

// entry packs a posting of a shard.
func entry(f, id uint32) uint64 { return uint64(f)<<32 | uint64(id) }

// unpack is the posting entry e of shard sh stands for.
func unpack(sh int, e uint64) posting { return posting{fullKey(sh, uint32(e>>32)), uint32(e)} }

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

// frag is the part of key its shard stores.
func frag(key uint64) uint32 { return uint32(key >> fragShift) }

// fullKey rebuilds a key from its shard and fragment.
func fullKey(sh int, f uint32) uint64 {
	return uint64(sh)<<(64-shardBits) | uint64(f)<<fragShift
}

// warm reads, for up to maxWarm keys, the cache lines their lookups will
// read, one step for every key before the next step: the shard, then its
// header and the key's directory bucket, then the bucket's first and last
// entries (a bucket spans one or two cache lines). The steps
// of one key depend on each other, so lookups one after another take their
// cache misses one at a time; here the misses of different keys are in
// flight together. The sum it returns means nothing; the caller keeps it so
// the reads are not optimised away.
func (ps *postings) warm(keys []uint64) uint64 {
	var sts [maxWarm]*shardState
	var lo, hi [maxWarm]uint32
	keys = keys[:min(len(keys), maxWarm)]
	for i, k := range keys {
		sts[i] = ps.shards[shardOf(k)].Load()
	}
	var sum uint64
	for i, k := range keys {
		if st := sts[i]; st != nil {
			b := bucket(frag(k))
			lo[i], hi[i] = st.dir[b], st.dir[b+1]
			sum += uint64(len(st.entries))
		}
	}
	for i := range keys {
		if st := sts[i]; st != nil && lo[i] < hi[i] && int(hi[i]) <= len(st.entries) {
			sum += st.entries[lo[i]]
			sum += st.entries[hi[i]-1]
		}
	}
	return sum
}

const maxWarm = 32

// lookup appends to dst the slot IDs filed under key, and returns the number
// found (which may exceed what was appended when limit cuts it).
func (ps *postings) lookup(key uint64, dst []uint32, limit int) ([]uint32, int) {
	st := ps.shards[shardOf(key)].Load()
	if st == nil {
		return dst, 0
	}
	f := frag(key)
	dst, found := appendRun(dst, st.entries, st.first(f), f, 0, limit)
	if len(st.mid) > 0 {
		i, _ := slices.BinarySearch(st.mid, entry(f, 0))
		dst, found = appendRun(dst, st.mid, i, f, found, limit)
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

// appendRun appends to dst the slot IDs of the run of entries of fragment f
// that starts at es[i], while found (counting them all) is under limit.
func appendRun(dst []uint32, es []uint64, i int, f uint32, found, limit int) ([]uint32, int) {
	for ; i < len(es) && uint32(es[i]>>32) == f; i++ {
		if found < limit {
			dst = append(dst, uint32(es[i]))
		}
		found++
	}
	return dst, found
}

// sortPostings sorts postings by key, then slot (comparePostings). A large
// batch (building the index files a dozen postings a plan) is spread into
// its shards first, one counting pass, and each shard's entries sorted as
// plain integers, fragment<<32 | slot: several times quicker than sorting
// the whole batch with a comparison function.
func sortPostings(ps []posting) {
	if len(ps) < 4*numShards {
		slices.SortFunc(ps, comparePostings)
		return
	}
	var start [numShards + 1]int
	for _, p := range ps {
		start[shardOf(p.key)+1]++
	}
	for sh := range numShards {
		start[sh+1] += start[sh]
	}
	es := make([]uint64, len(ps))
	next := start
	for _, p := range ps {
		sh := shardOf(p.key)
		es[next[sh]] = entry(frag(p.key), p.id)
		next[sh]++
	}
	for sh := range numShards {
		part := es[start[sh]:start[sh+1]]
		slices.Sort(part)
		for i, e := range part {
			ps[start[sh]+i] = unpack(sh, e)
		}
	}
}

// update files adds and unfiles removes (each sorted by comparePostings,
// their keys with the bits keyMask clears clear). Writer only.
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
	// The delta and the adds are few beside the base: sort them as
	// entries, drop duplicates and the removes, and merge them in, copying
	// the base's runs between them whole (a shard at 10,000,000 plans holds
	// 30,000 entries; a merge copies them at memory speed rather than
	// comparing each).
	var extra, es, mid []uint64
	if st != nil {
		extra = st.appendDelta(make([]uint64, 0, int(st.dn.Load())+len(adds)))
		es, mid = st.entries, st.mid
	}
	for _, p := range adds {
		extra = append(extra, entry(frag(p.key), p.id))
	}
	slices.Sort(extra)
	extra = slices.Compact(extra)
	rm := make([]uint64, len(removes))
	for i, p := range removes {
		rm[i] = entry(frag(p.key), p.id)
	}
	slices.Sort(rm)
	extra = without(extra, rm)
	if len(rm) == 0 && len(es) >= midMin {
		// A large shard: into mid, and mid into the entries only once it
		// has grown to an eighth of them.
		if mid = mergeEntries(mid, extra, nil); len(mid)*8 < len(es) {
			next := &shardState{entries: es, mid: mid, dir: st.dir}
			ps.shards[sh].Store(next)
			return
		}
		extra = mid
	} else if len(mid) > 0 {
		// Removes (or a shard that has shrunk): fold mid in too.
		extra = without(mergeEntries(mid, extra, nil), rm)
	}
	next := &shardState{entries: mergeEntries(es, extra, rm)}
	next.index()
	ps.shards[sh].Store(next)
}

// appendDelta appends the delta's postings to dst as entries. Writer only.
func (st *shardState) appendDelta(dst []uint64) []uint64 {
	for j := range int(st.dn.Load()) {
		dst = append(dst, entry(frag(st.dkeys[j]), st.dids[j]))
	}
	return dst
}

// midMin is the fewest entries a shard holds before full deltas go to its
// mid level rather than straight into its entries: about 2,700,000 plans
// (12 keys a plan over 4,096 shards). Below it a merge copies under 64 KiB
// and a lookup never searches a mid. A variable so tests can lower it.
var midMin = 8192

// compact folds every shard's mid level into its entries, so that lookups
// search one sorted level (and the delta). Writer only.
func (ps *postings) compact() {
	for sh := range ps.shards {
		st := ps.shards[sh].Load()
		if st == nil || len(st.mid) == 0 {
			continue
		}
		// No adds, no removes: updateShard would take the delta path.
		extra := st.appendDelta(slices.Clone(st.mid))
		slices.Sort(extra)
		extra = slices.Compact(extra)
		next := &shardState{entries: mergeEntries(st.entries, extra, nil)}
		next.index()
		ps.shards[sh].Store(next)
	}
}

// without returns the sorted xs less the sorted drop, in place.
func without(xs, drop []uint64) []uint64 {
	out, d := xs[:0], 0
	for _, x := range xs {
		for d < len(drop) && drop[d] < x {
			d++
		}
		if d < len(drop) && drop[d] == x {
			continue
		}
		out = append(out, x)
	}
	return out
}

// mergeEntries returns base (sorted, unique) with extra (sorted, unique,
// none in rm) merged in and the entries of rm (sorted) left out, in a new
// array: readers may still be reading base.
func mergeEntries(base, extra, rm []uint64) []uint64 {
	out := make([]uint64, 0, len(base)+len(extra))
	i, a, r := 0, 0, 0
	for a < len(extra) || r < len(rm) {
		remove := r < len(rm) && (a == len(extra) || rm[r] < extra[a])
		var x uint64
		if remove {
			x = rm[r]
			r++
		} else {
			x = extra[a]
			a++
		}
		j, found := slices.BinarySearch(base[i:], x)
		out = append(out, base[i:i+j]...)
		i += j
		switch {
		case remove && found:
			i++ // leave it out
		case !remove && !found:
			out = append(out, x)
		}
	}
	return append(out, base[i:]...)
}

// size returns the number of filed entries; writer only (or quiescent).
func (ps *postings) size() int {
	n := 0
	for i := range ps.shards {
		if st := ps.shards[i].Load(); st != nil {
			n += len(st.entries) + len(st.mid) + int(st.dn.Load())
		}
	}
	return n
}
