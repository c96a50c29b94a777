package matcher

import (
	"sync"
	"sync/atomic"
)

// Index holds every live plan holder and answers Match. One writer at a time
// applies changes (Apply serialises them); any number of readers run Match
// concurrently without locks.
type Index struct {
	names *nameTable
	post  postings
	slots slotTable
	w     *Weights

	live   atomic.Int64 // plans with a person
	sparse atomic.Int64 // live plans with too little to match on

	mu        sync.Mutex        // serialises writers; guards the fields below
	planSlots map[string]uint32 // plan ID → slot, for every plan ever seen (withdrawn ones keep their version)
	oldKeys   []uint64          // scratch for refile
	newKeys   []uint64          // scratch for refile
	before    []touched         // scratch for Apply
	// touchedBits marks the slots the current batch has touched (a bit per
	// slot); Apply clears the bits it set before it returns.
	touchedBits []uint64
}

// NewIndex returns an empty index scoring with w (DefaultWeights if nil).
func NewIndex(w *Weights) *Index {
	if w == nil {
		w = DefaultWeights()
	}
	ix := &Index{names: newNameTable(), w: w, planSlots: make(map[string]uint32)}
	ix.slots.init()
	return ix
}

// Change is one plan-store event as the index applies it: an upsert carries
// the patient, a withdrawal does not.
type Change struct {
	PlanID  string
	Version uint64
	Patient *Patient // nil withdraws the plan

	// Stale is set by Apply when the change was ignored because its version
	// was not newer than the plan's applied one.
	Stale bool
	// NotLive is set by Apply when the plan was not live before the change
	// (never seen, or withdrawn already): a withdrawal then changes nothing
	// a lookup could have returned (a tombstone after plan.withdrawn).
	NotLive bool
}

// ApplyStats counts what a batch of changes did.
type ApplyStats struct {
	Upserted  int // new or changed plans now live
	Withdrawn int // plans withdrawn (or withdrawals recorded for unseen plans)
	Stale     int // changes ignored: version not newer than the one applied
	Sparse    int // upserted plans with too little to match on (kept, counted)
	// Problems counts plans with a field that could not be read (the field was
	// left out, the rest of the plan kept), by field name.
	Problems map[string]int
}

// Apply applies changes in order. A change whose version is not newer than
// the plan's applied version (including a withdrawn plan's) changes nothing.
// A withdrawal takes effect for readers at once; an upsert's blocking keys
// are published before Apply returns. Batches amortise index maintenance:
// pass many changes at once when replaying.
func (ix *Index) Apply(changes []Change) ApplyStats {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	var st ApplyStats
	if len(ix.planSlots) == 0 && len(changes) > 1024 {
		// The first load: size the map once rather than rehash it at every doubling.
		ix.planSlots = make(map[string]uint32, len(changes))
	}
	before := ix.before[:0] // each touched slot, with its person when the batch began
	for i := range changes {
		c := &changes[i]
		id, seen := ix.planSlots[c.PlanID]
		if !seen {
			id = ix.slots.add()
			if int(id/64) >= len(ix.touchedBits) {
				ix.touchedBits = append(ix.touchedBits, 0)
			}
		}
		if seen && c.Version <= ix.slots.versions[id] {
			st.Stale++
			c.Stale = true
			continue
		}
		c.Stale = false
		ix.slots.versions[id] = c.Version
		var next *person
		if c.Patient != nil {
			var problems []string
			next, problems = buildPerson(ix.names, c.PlanID, c.Patient)
			for _, f := range problems {
				if st.Problems == nil {
					st.Problems = make(map[string]int)
				}
				st.Problems[f]++
			}
		}
		// Key the plan by its record's copy of the ID (see newPerson), or
		// by the change's own when withdrawn: assigning to a present key
		// replaces its string, so the map neither holds the ID's bytes
		// twice nor keeps an earlier record alive.
		if next != nil {
			ix.planSlots[next.planID] = id
		} else {
			ix.planSlots[c.PlanID] = id
		}
		prev := ix.slots.get(id).Swap(next)
		c.NotLive = prev == nil
		if w, bit := id/64, uint64(1)<<(id%64); ix.touchedBits[w]&bit == 0 {
			ix.touchedBits[w] |= bit
			before = append(before, touched{id, prev})
		}
		ix.count(prev, -1)
		ix.count(next, +1)
		if next != nil {
			st.Upserted++
			if next.sparse() {
				st.Sparse++
			}
		} else {
			st.Withdrawn++
		}
	}
	ix.refile(before)
	for _, t := range before {
		ix.touchedBits[t.id/64] = 0
	}
	clear(before) // drop the old persons for the collector
	ix.before = before[:0]
	return st
}

// touched is a slot changed in the current batch and its person before it.
type touched struct {
	id   uint32
	prev *person
}

// count adds delta to the live, sparse and name counts of p.
func (ix *Index) count(p *person, delta int32) {
	if p == nil {
		return
	}
	ix.live.Add(int64(delta))
	if p.sparse() {
		ix.sparse.Add(int64(delta))
	}
	if p.family != 0 {
		ix.names.info(p.family).familyCount.Add(delta)
	}
	if p.given[0] != 0 {
		ix.names.info(p.given[0]).givenCount.Add(delta)
	}
}

// refile brings the postings of every touched slot from the keys of its
// person at the start of the batch to those of its person now. Writer only.
func (ix *Index) refile(before []touched) {
	adds := make([]posting, 0, len(before)*12)
	var removes []posting
	for _, t := range before {
		id, old := t.id, t.prev
		oldKeys, newKeys := ix.oldKeys[:0], ix.newKeys[:0]
		if old != nil {
			oldKeys = personKeys(ix.names, old, oldKeys)
		}
		if p := ix.slots.get(id).Load(); p != nil {
			newKeys = personKeys(ix.names, p, newKeys)
		}
		ix.oldKeys, ix.newKeys = oldKeys, newKeys
		// Both are sorted and unique: walk them together.
		i, j := 0, 0
		for i < len(oldKeys) || j < len(newKeys) {
			switch {
			case j == len(newKeys) || i < len(oldKeys) && oldKeys[i] < newKeys[j]:
				removes = append(removes, posting{oldKeys[i], id})
				i++
			case i == len(oldKeys) || newKeys[j] < oldKeys[i]:
				adds = append(adds, posting{newKeys[j], id})
				j++
			default:
				i++
				j++
			}
		}
	}
	sortPostings(adds)
	sortPostings(removes)
	ix.post.update(adds, removes)
}

// Compact folds the second sorted level that large shards keep while
// changes are applied (above about 2,700,000 plans) into their main arrays,
// so that lookups search one level. A replica calls it once caught up,
// before it serves; live changes build the level up again slowly. It costs
// nothing when there is nothing to fold.
func (ix *Index) Compact() {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	ix.post.compact()
}

// Upsert applies one upsert; see Apply.
func (ix *Index) Upsert(planID string, version uint64, p *Patient) ApplyStats {
	return ix.Apply([]Change{{PlanID: planID, Version: version, Patient: p}})
}

// Withdraw applies one withdrawal; see Apply.
func (ix *Index) Withdraw(planID string, version uint64) ApplyStats {
	return ix.Apply([]Change{{PlanID: planID, Version: version}})
}

// Version returns the applied version of a plan (also of a withdrawn one),
// and whether the plan is live.
func (ix *Index) Version(planID string) (version uint64, live bool) {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	id, ok := ix.planSlots[planID]
	if !ok {
		return 0, false
	}
	return ix.slots.versions[id], ix.slots.get(id).Load() != nil
}

// EachLive calls f with every live plan and its version. It holds the
// writer lock throughout: changes wait until it returns; lookups do not.
func (ix *Index) EachLive(f func(planID string, version uint64)) {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	for plan, id := range ix.planSlots {
		if ix.slots.get(id).Load() != nil {
			f(plan, ix.slots.versions[id])
		}
	}
}

// Stats describes the index's size.
type Stats struct {
	Live     int // plans that can be found
	Sparse   int // live plans with too little to match on
	Plans    int // plans ever seen, withdrawn ones included (their versions are kept)
	Postings int // blocking-key entries
	Names    int // distinct normalised names
}

// Stats returns the index's size. It takes the writer lock briefly.
func (ix *Index) Stats() Stats {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	return Stats{
		Live:     int(ix.live.Load()),
		Sparse:   int(ix.sparse.Load()),
		Plans:    len(ix.planSlots),
		Postings: ix.post.size(),
		Names:    int(ix.names.n) - 1,
	}
}

// Live returns the number of plans that can be found; safe for readers.
func (ix *Index) Live() int { return int(ix.live.Load()) }

// Sparse returns the number of live plans with too little to match on; safe
// for readers.
func (ix *Index) Sparse() int { return int(ix.sparse.Load()) }

const (
	slotChunkBits = 12
	slotChunkSize = 1 << slotChunkBits
)

// slotTable holds each plan's place in the index: its current record, which
// readers load (nil once withdrawn), and its applied version, which only the
// writer reads. The records are an append-only array in chunks, so it grows
// without moving what readers hold; the versions sit apart so that the
// array a lookup reads is 8 bytes a plan and more of it stays in cache.
type slotTable struct {
	chunks   atomic.Pointer[[]*[slotChunkSize]atomic.Pointer[person]]
	versions []uint64 // guarded by Index.mu
}

func (t *slotTable) init() {
	dir := []*[slotChunkSize]atomic.Pointer[person]{}
	t.chunks.Store(&dir)
}

// add appends a slot and returns its ID. Writer only.
func (t *slotTable) add() uint32 {
	id := uint32(len(t.versions))
	dir := *t.chunks.Load()
	if int(id>>slotChunkBits) == len(dir) {
		grown := append(dir[:len(dir):len(dir)], new([slotChunkSize]atomic.Pointer[person]))
		t.chunks.Store(&grown)
	}
	t.versions = append(t.versions, 0)
	return id
}

// get returns slot id's record pointer; safe for readers.
func (t *slotTable) get(id uint32) *atomic.Pointer[person] {
	dir := *t.chunks.Load()
	return &dir[id>>slotChunkBits][id&(slotChunkSize-1)]
}
