package matcher

import (
	"slices"
	"sync"
)

// Tier is the answer's confidence.
type Tier uint8

const (
	TierNone     Tier = iota // no plan found
	TierPossible             // candidates the call handler must confirm with the caller
	TierMatch                // one confident plan holder
)

var tierNames = [...]string{"none", "possible", "match"}

func (t Tier) String() string { return tierNames[t] }

// MarshalText renders the tier's name, for JSON.
func (t Tier) MarshalText() ([]byte, error) { return []byte(t.String()), nil }

// UnmarshalText reads a tier's name.
func (t *Tier) UnmarshalText(b []byte) error {
	for i, n := range tierNames {
		if n == string(b) {
			*t = Tier(i)
			return nil
		}
	}
	return &InputError{Field: "tier", Problem: "unknown tier"}
}

// MaxCandidates is the most candidates an answer carries.
const MaxCandidates = 5

// Candidate is one plan holder an answer names, with the agreement of each
// field — never the stored values.
type Candidate struct {
	// PlanID shares its bytes with the plan's record in the index, so
	// while it is held the record is too: a caller that keeps it past the
	// lookup's handling (a cache, a long queue) should keep a copy
	// (strings.Clone), or a withdrawn plan's record outlives its withdrawal.
	PlanID    string
	Tier      Tier
	Score     float64 // match weight in bits: higher is stronger evidence
	Agreement Agreement
}

// Result is a lookup's answer.
type Result struct {
	Tier       Tier
	Candidates []Candidate // best first; empty when Tier is TierNone
	// Considered is how many distinct live plans the blocking keys brought up
	// and were scored.
	Considered int
}

// Flag reports whether the answer flags a plan.
func (r *Result) Flag() bool { return r.Tier != TierNone }

// scored is a candidate being ranked.
type scored struct {
	p     *person
	score float64
	agree Agreement
}

// Limits on the work one lookup does.
const (
	// maxPerKey bounds the plans read from one narrow blocking key, and
	// maxBroad those read from all the broad keys together (family name with
	// each formal given name: a common name with many nickname forms, Emily
	// or Millie, reaches hundreds in a large index). The lookup's work stays
	// bounded; the broad keys are read only when the narrow ones found no
	// confident match, and the name itself is read before its other forms.
	maxPerKey = 512
	maxBroad  = 128
	// maxConsidered bounds the plans scored by one lookup.
	maxConsidered = 2048
)

var preparedPool = sync.Pool{New: func() any { return new(prepared) }}

// Match looks up a caller's details. It returns an *InputError when a field
// cannot be read or the query has too little to search on. Safe for
// concurrent use with other Match calls and with Apply.
func (ix *Index) Match(q Query) (Result, error) {
	pq := preparedPool.Get().(*prepared)
	defer preparedPool.Put(pq)
	if err := pq.prepare(&q); err != nil {
		return Result{}, err
	}
	return ix.match(pq), nil
}

// Check reports whether q can be looked up: the *InputError Match would
// return for it, or nil. It reads no index.
func Check(q Query) error {
	pq := preparedPool.Get().(*prepared)
	defer preparedPool.Put(pq)
	return pq.prepare(&q)
}

func (ix *Index) match(pq *prepared) Result {
	n := int(ix.live.Load())
	matchT, possibleT := ix.w.thresholds(n)
	res := Result{}
	// Narrow keys first; the broad ones only when they found no confident match.
	pq.keys = pq.probeKeys(pq.keys[:0], false)
	pq.touched += ix.post.warm(pq.keys)
	pq.cands = ix.collect(pq.keys, pq.cands[:0], 0, maxPerKey, maxConsidered)
	pq.top = ix.rank(pq, pq.cands, pq.top[:0], n, possibleT, &res.Considered)
	if !ix.confident(pq.top, matchT) {
		scored := len(pq.cands)
		pq.keys = pq.probeKeys(pq.keys[:0], true)
		pq.touched += ix.post.warm(pq.keys)
		pq.cands = ix.collect(pq.keys, pq.cands, scored, maxBroad, scored+maxBroad)
		pq.top = ix.rank(pq, pq.cands[scored:], pq.top, n, possibleT, &res.Considered)
	}
	top := pq.top
	if len(top) == 0 || top[0].score < possibleT {
		return res
	}
	best := &top[0]
	if ix.confident(top, matchT) {
		res.Tier = TierMatch
		res.Candidates = []Candidate{{PlanID: best.p.planID, Tier: TierMatch, Score: round1(best.score), Agreement: best.agree}}
		return res
	}
	res.Tier = TierPossible
	k := 0
	for k < len(top) && k < MaxCandidates && top[k].score >= possibleT {
		k++
	}
	res.Candidates = make([]Candidate, k)
	for i := range k {
		res.Candidates[i] = Candidate{PlanID: top[i].p.planID, Tier: TierPossible, Score: round1(top[i].score), Agreement: top[i].agree}
	}
	return res
}

// collect appends to cands[:from] the distinct slots filed under keys that
// are not already in cands[:from] (which is sorted), reading at most perKey
// from a key and stopping at total, and sorts what it adds.
func (ix *Index) collect(keys []uint64, cands []uint32, from, perKey, total int) []uint32 {
	seen := cands[:from]
	for _, k := range keys {
		cands, _ = ix.post.lookup(k, cands, min(perKey, total-len(cands)))
		if len(cands) >= total {
			break
		}
	}
	added := cands[from:]
	slices.Sort(added)
	added = slices.Compact(added)
	w := 0
	for _, id := range added {
		if _, dup := slices.BinarySearch(seen, id); !dup {
			added[w] = id
			w++
		}
	}
	return cands[:from+w]
}

// rank scores cands against the query and keeps the best in top.
func (ix *Index) rank(pq *prepared, cands []uint32, top []scored, n int, possibleT float64, considered *int) []scored {
	// Gather first, score after. A candidate's record is two dependent
	// reads away (slot, then person), and the names a comparison reads two
	// more (name details, then the name's bytes), each a likely cache miss
	// in a large index. Taking each step for every candidate before the
	// next issues loads that do not depend on each other, so the CPU
	// overlaps their misses instead of taking them one candidate at a time.
	ps := pq.persons[:0]
	for _, id := range cands {
		ps = append(ps, ix.slots.get(id).Load())
	}
	var touch uint64
	for _, p := range ps {
		if p != nil {
			// A record spans two cache lines; unrelated reads both.
			touch += uint64(p.dob) + uint64(p.phones[1])
		}
	}
	// Namesakes (unrelated) and plans withdrawn since their postings were
	// read go now: their names are never read.
	keep := ps[:0]
	for _, p := range ps {
		if p == nil {
			continue
		}
		*considered++
		if !unrelated(pq, p) {
			keep = append(keep, p)
		}
	}
	// Names: a name's details and its bytes (held inline, see nameInfo)
	// load together. The middle name and the rarer parts (other names,
	// more addresses) are read only when the first given name or the
	// postcode does not settle the comparison, but each is a miss of its
	// own when it is: loading them here too overlaps them with the rest.
	for _, p := range keep {
		touch += ix.names.touch(p.given[0]) + ix.names.touch(p.family) + ix.names.touch(p.given[1])
		if m := p.more; m != nil {
			touch += uint64(len(m.otherGiven) + len(m.otherFamily) + len(m.addrs))
		}
	}
	for _, p := range keep {
		if m := p.more; m != nil {
			touch += ix.names.touch(firstName(m.otherGiven)) + ix.names.touch(firstName(m.otherFamily))
			if len(m.addrs) > 0 {
				touch += uint64(m.addrs[0].postcode)
			}
		}
	}
	pq.touched += touch
	var a Agreement
	for _, p := range keep {
		ix.compare(pq, p, &a)
		s := ix.score(&a, pq, p, n)
		if s < possibleT && len(top) > 0 && s < top[len(top)-1].score-ix.w.MarginBits {
			continue
		}
		top = insertTop(top, scored{p: p, score: s, agree: a}, MaxCandidates+1)
	}
	clear(ps) // the pooled buffer must not keep withdrawn records alive
	pq.persons = ps
	return top
}

// firstName is the first of ids, or 0 (no name, whose details are "").
func firstName(ids []nameID) nameID {
	if len(ids) == 0 {
		return 0
	}
	return ids[0]
}

// unrelated reports a plan that shares only a name with the caller: it
// disagrees on the birth date (beyond any slip) and on the postcode (even
// the outward code), and the caller's phone and NHS number, if given, are
// not its own. Such a plan is never a candidate — only a namesake — and the
// check reads nothing but the plan's own record, so a lookup that reaches
// hundreds of holders of a common name stays quick.
func unrelated(pq *prepared, p *person) bool {
	if pq.dob == 0 || pq.postcode == 0 || p.dob == 0 || p.addrs[0].postcode == 0 {
		return false
	}
	if compareDates(pq.dob, p.dob) != Different || comparePostcode(pq.postcode, p) != Different {
		return false
	}
	if pq.phone != 0 && comparePhone(pq.phone, pq.minorAfter, p) != Different {
		return false
	}
	return pq.nhsState != nhsValid || p.nhs == 0 || pq.nhs != p.nhs
}

// confident reports whether the best of top is a confident match: above the
// match threshold, anchored, corroborated, and clear of the runner-up.
func (ix *Index) confident(top []scored, matchT float64) bool {
	if len(top) == 0 {
		return false
	}
	best := &top[0]
	return best.score >= matchT && anchored(&best.agree) && corroborated(&best.agree) &&
		(len(top) == 1 || top[1].score <= best.score-ix.w.MarginBits)
}

func round1(x float64) float64 {
	if x < 0 {
		return -round1(-x)
	}
	return float64(int64(x*10+0.5)) / 10
}

// insertTop keeps the k best by score, best first.
func insertTop(top []scored, c scored, k int) []scored {
	i := len(top)
	for i > 0 && top[i-1].score < c.score {
		i--
	}
	if i >= k {
		return top
	}
	if len(top) < k {
		top = append(top, scored{})
	}
	copy(top[i+1:], top[i:len(top)-1])
	top[i] = c
	return top
}

// anchored is the identity rule for a confident match: the birth date agrees
// (exactly, or with one recognisable slip), and so does the given name, or a
// valid NHS number with a given name that does not plainly differ. Surname,
// address and landline are household facts: however many agree, they never
// make a match on their own. A twin, a sibling or a spouse shares them and
// differs only in the given name (and in the personal identifiers: NHS
// number, mobile), so a given name that agrees only in a way two people's
// names can — a nickname (the table links names that are names of their own
// too: Peter and Patrick, Ian and John, Susan and Hannah), the plan holder's
// middle name, names given the other way round, a second given name that
// differs — anchors a match only with a mobile that agrees (names given the
// other way round: or the home, since the risk there is a namesake
// elsewhere); without one such a caller is at most possible. A valid NHS
// number anchors with the given name exact, a typo of it, or none given;
// with any weaker agreement it too needs the mobile. Only a UK mobile is
// personal: other numbers (a landline, 0800, 0845, 03, VoIP, a number
// abroad) may be a household's (comparePhone).
// A near spelling (Fuzzy) is only ever a typo: two real names one letter
// apart (Jean, Joan) do not agree at that level (compareGiven).
func anchored(a *Agreement) bool { return a.Anchored() }

// Anchored reports whether the agreement meets the identity rule a
// confident match needs (see anchored); evaluation uses it to separate what
// the rule forbids from what the matcher misses.
func (a *Agreement) Anchored() bool {
	switch a.BirthDate {
	case Exact, DayMonthSwapped, OneDigit, YearOff:
	default:
		return false
	}
	mobile := a.Phone == Exact // a UK mobile: personal, unlike a shared number
	if a.NHSNumber == Exact {
		// A relative's number read out by mistake (a twin's: the birth
		// date agrees too) is told apart by the given name, so the name
		// must agree as only the holder's own does: exactly, or with a
		// typo (no name given cannot contradict). A nickname, a middle
		// name, an initial or a name that sounds alike can be the twin's
		// own name (Robert and William share a nickname; twins are named
		// James Edward and Edward James): with the mobile too.
		switch a.GivenName {
		case Exact, Fuzzy:
			// Twins Mary-Kate and Mary-Jane share the first name: the
			// second tells them apart.
			return !a.givenConflict || mobile
		case Missing:
			// The caller gave none; or the plan has none to check the
			// caller's against: then with the mobile only.
			return !a.givenUnrecorded || mobile
		case Swapped:
			// The holder's own names the other way round (a twin's are not
			// his): as without the number.
			return mobile || a.BirthDate == Exact && (a.Postcode == Exact || a.Address == Exact)
		case Nickname, MiddleName, Phonetic, Initial:
			return mobile
		}
		return false
	}
	if a.givenConflict && !mobile {
		return false
	}
	switch a.GivenName {
	case Exact, Fuzzy:
		return true
	case Nickname, MiddleName:
		// A twin may be called by the plan holder's middle name
		// (James Edward and Edward James): with the mobile only. And
		// many couples share one mobile (Pat and Patricia, Chris and
		// Christine): then the birth date must agree exactly, or the
		// gender be given and agree.
		return mobile && (a.BirthDate == Exact || a.Gender == Exact)
	case Swapped:
		// The risk is a namesake elsewhere (Thomas Henry, Henry Thomas),
		// not a relative: the home tells them apart, with the birth date
		// exact (a slip as well is two doubts).
		return mobile || a.BirthDate == Exact && (a.Postcode == Exact || a.Address == Exact)
	}
	return false
}

// corroborated is the rest of the evidence a confident match needs. A valid
// NHS number or a gender that differs rules it out. Without a personal
// identifier (the NHS number, the holder's own mobile), so do the signs of
// another person near the holder: a postcode elsewhere, another street,
// another family name, another house or flat, a slipped birth date or
// another surname in a care home, a slipped 1 January. And when the birth
// date agrees only with a slip, the postcode or address must agree.
func corroborated(a *Agreement) bool {
	if a.NHSNumber == Different || a.Gender == Different {
		return false
	}
	personal := a.NHSNumber == Exact || a.Phone == Exact
	if a.Postcode == Different && !personal {
		// A namesake elsewhere, or a move the plan store has not heard of.
		// (A mistyped postcode is one character off; the same house
		// number and street name are found in a thousand towns.)
		return false
	}
	if (a.postcodeElsewhere || a.otherStreet && a.Postcode != Exact) && !personal && a.Address != Exact {
		// A full postcode in the holder's district but not theirs, or
		// another street (and house number) without the holder's
		// postcode: a namesake a few streets away (a common name, a
		// birth date recorded as 1 January). The same house and street
		// in the same district is the holder with the postcode
		// misremembered.
		return false
	}
	if a.FamilyName == Different && !personal {
		// Another family's member with the same first name and birth
		// date in the same building: a care home, a block of flats.
		return false
	}
	if (a.otherHouse || a.otherFlat) && !personal {
		// A namesake at another house in the same postcode or street, or
		// in another flat of the same building.
		return false
	}
	if a.communal && !personal && (a.BirthDate != Exact || !(a.FamilyName == Exact || a.FamilyName == OtherName || a.FamilyName == Part)) {
		// In a care home the postcode, address and phone are every
		// resident's: they cannot make up for a slipped birth date or a
		// family name not given as the holder's (Mary Smith and Mary
		// Smith born a day apart, Mary Brown and Mary Browne); her maiden
		// name or one part of a double-barrelled one is hers.
		return false
	}
	if personal {
		return true
	}
	if a.placeholderDate {
		// A birth date of 1 January: a slip of it is a brother's, and
		// the district alone a namesake's.
		return a.BirthDate == Exact && (a.Postcode == Exact || a.Postcode == PreviousAddress || a.Postcode == OneCharOff ||
			a.Address == Exact || a.Address == PreviousAddress)
	}
	if a.BirthDate == Exact {
		return true
	}
	switch a.Postcode {
	case Exact, PreviousAddress, OneCharOff:
		return true
	}
	switch a.Address {
	case Exact, PreviousAddress:
		return true
	}
	return false
}

// score sums the match weights of an agreement, adjusting exact name
// agreement for the name's frequency and counting the household facts
// (postcode, address, landline) as one piece of evidence.
func (ix *Index) score(a *Agreement, pq *prepared, p *person, n int) float64 {
	w := ix.w
	s := w.w[FieldNHSNumber][a.NHSNumber] + w.w[FieldBirthDate][a.BirthDate] + w.w[FieldGender][a.Gender]
	switch {
	case a.givenConflict:
		// The first names agree, the second do not: no more than a near
		// spelling, so the plan holder whose second name agrees ranks first.
		s += min(w.w[FieldGivenName][Fuzzy], w.w[FieldGivenName][a.GivenName])
	case a.GivenName == Exact:
		s += w.tfWeight(FieldGivenName, ix.names.info(p.given[0]).givenCount.Load(), n)
	default:
		s += w.w[FieldGivenName][a.GivenName]
	}
	if a.FamilyName == Exact {
		s += w.tfWeight(FieldFamilyName, ix.names.info(p.family).familyCount.Load(), n)
	} else {
		s += w.w[FieldFamilyName][a.FamilyName]
	}
	// Household facts: the strongest, plus at most HouseholdBonusBits of the rest.
	pc, ad, ph := w.w[FieldPostcode][a.Postcode], w.w[FieldAddress][a.Address], w.w[FieldPhone][a.Phone]
	if a.Phone == Exact {
		s += ph // a mobile is the person's own, not a household fact
		ph = 0
	}
	pos := [3]float64{max(pc, 0), max(ad, 0), max(ph, 0)}
	neg := min(pc, 0) + min(ad, 0) + min(ph, 0)
	strongest := max(pos[0], pos[1], pos[2])
	s += strongest + min(pos[0]+pos[1]+pos[2]-strongest, w.HouseholdBonusBits) + neg
	return s
}

// Explain compares a query with one plan, whether or not the blocking keys
// would bring it up: its agreement and score. It serves evaluation and
// weight estimation; found reports whether the plan is live.
func (ix *Index) Explain(q Query, planID string) (a Agreement, score float64, found bool, err error) {
	ix.mu.Lock()
	id, ok := ix.planSlots[planID]
	ix.mu.Unlock()
	if !ok {
		return a, 0, false, nil
	}
	p := ix.slots.get(id).Load()
	if p == nil {
		return a, 0, false, nil
	}
	pq := preparedPool.Get().(*prepared)
	defer preparedPool.Put(pq)
	if err := pq.prepare(&q); err != nil {
		return a, 0, true, err
	}
	ix.compare(pq, p, &a)
	return a, ix.score(&a, pq, p, ix.Live()), true, nil
}

// Blocked reports whether a lookup for q would consider the plan at all: a
// recall ceiling for the blocking keys.
func (ix *Index) Blocked(q Query, planID string) (bool, error) {
	ix.mu.Lock()
	id, ok := ix.planSlots[planID]
	ix.mu.Unlock()
	if !ok {
		return false, nil
	}
	pq := preparedPool.Get().(*prepared)
	defer preparedPool.Put(pq)
	if err := pq.prepare(&q); err != nil {
		return false, err
	}
	for _, broad := range []bool{false, true} {
		limit := maxPerKey
		if broad {
			limit = maxBroad
		}
		for _, k := range pq.probeKeys(pq.keys[:0], broad) {
			ids, _ := ix.post.lookup(k, pq.cands[:0], limit)
			pq.cands = ids
			if slices.Contains(ids, id) {
				return true, nil
			}
		}
	}
	return false, nil
}
