package matcher

import (
	"slices"
	"strconv"
)

// Name similarity thresholds (Jaro-Winkler) for the Fuzzy level: high enough
// that different common names (Jane, Joan) stay apart, low enough for one
// typo in a name of five letters or more.
const (
	givenFuzzy  = 0.9
	familyFuzzy = 0.9
)

// compare fills the agreement of query pq with plan holder p.
func (ix *Index) compare(pq *prepared, p *person, a *Agreement) {
	a.NHSNumber = compareNHS(pq, p)
	var near bool
	a.GivenName, near = ix.compareGiven(pq, p)
	a.givenConflict = (a.GivenName == Exact || a.GivenName == Nickname || a.GivenName == Fuzzy && near) &&
		ix.secondGivenDiffers(pq, p)
	if (a.GivenName == Exact || a.GivenName == Fuzzy) && (pq.given2 == "") != (p.given[1] == 0) &&
		slices.Contains(prefixNames, ix.names.info(p.given[0]).s) {
		// Mohammed alone against Mohammed Ali (or Mohammed Imran against
		// Mohammed): the second name, which tells brothers apart, is on
		// one side only. Like a second name that differs: with the mobile.
		a.givenConflict = true
	}
	a.FamilyName = ix.compareFamily(pq, p)
	if (a.GivenName == Different || a.GivenName == Phonetic) && a.FamilyName == Different {
		if ix.swappedNames(pq, p) {
			a.GivenName, a.FamilyName = Swapped, Swapped
		}
	}
	a.BirthDate = compareDates(pq.dob, p.dob)
	// 1 January is recorded for many born where births were not
	// registered: two such dates tell brothers and namesakes apart far
	// less than other dates would (one is a plain date typed wrong).
	a.placeholderDate = pq.dob%10000 == 101 && p.dob%10000 == 101
	a.Gender = compareGender(pq.gender, p.gender)
	a.Postcode = comparePostcode(pq.postcode, p)
	a.Address = compareAddress(pq.house, pq.street, p)
	a.Phone = comparePhone(pq.phone, pq.minorAfter, p)
	a.givenUnrecorded = a.GivenName == Missing && pq.given != ""
	// Another house on the plan holder's street is a neighbour; another
	// street is as likely a street name mistyped (the street is compared
	// by a hash of its name), so it does not count here.
	a.otherHouse = a.Address == Street && otherHouseNumber(pq.house, pq.street, p) ||
		a.Address == Different && (a.Postcode == Exact || a.Postcode == OneCharOff || a.Postcode == PreviousAddress) &&
			otherHouseAnywhere(pq.house, pq.postcode, p)
	a.postcodeElsewhere = a.Postcode == OutwardOnly && fullElsewhere(pq.postcode, p)
	// A street name that differs with the house number agreeing is as
	// likely the street mistyped (it is compared by a hash of its name).
	a.otherStreet = a.Address == Different && !houseOnAnyStreet(pq.house, pq.postcode, p)
	a.communal = pq.communal || p.has&hasCommunal != 0
	if a.communal && a.Phone == Exact {
		// A care home's mobile is the home's, every resident's.
		a.Phone = ExactLandline
	}
	// Flat 2 and Flat 9 at 14 Elm Road: one building, two homes (and at
	// Rose Court, with no number, in the holder's postcode).
	// (The plan keeps the current address's flat only: the other arms
	// hold for that address.)
	if pq.flat != 0 && p.flat != 0 && pq.flat != p.flat {
		cur := p.addr(0)
		a.otherFlat = a.Address == Exact || a.Address == Street && !a.otherHouse && cur.street == pq.street ||
			a.Address == Missing && (a.Postcode == Exact || a.Postcode == OneCharOff && cur.postcode.IsFull() && pq.postcode.IsFull() &&
				postcodeOneOff(pq.postcode, cur.postcode))
	}
}

// fullElsewhere reports whether a full postcode q, in the district of one
// of the plan holder's postcodes, is in it only because the district
// agrees: every postcode of the holder's in that district is full and is
// not q (nor one character off it). The inward code then places the
// caller in another few streets.
func fullElsewhere(q Postcode, p *person) bool {
	if !q.IsFull() {
		return false
	}
	for i := 0; i < p.addrSlots(); i++ {
		if pc := p.addr(i).postcode; pc != 0 && pc.Outward() == q.Outward() && !pc.IsFull() {
			return false
		}
	}
	return true
}

// otherHouseNumber reports a caller's house number on the plan holder's
// street that differs from the one the plan has there (both known) by more
// than a slip: a neighbour.
func otherHouseNumber(house, street uint32, p *person) bool {
	if house == 0 {
		return false
	}
	for i := 0; i < p.addrSlots(); i++ {
		if a := p.addr(i); a.street == street && a.house != 0 && !houseSlip(a.house, house) {
			return true
		}
	}
	return false
}

// nearSlot reports whether address slot i of the plan holder is where the
// caller's postcode q puts them (the same postcode, one character off, or
// the same district), or, with no postcode given, the current address: a
// house number at another of the holder's addresses says nothing of this
// one (the house the holder left is a relative's now, or a stranger's).
func nearSlot(q Postcode, a addr, i int) bool {
	if q == 0 {
		return i == 0
	}
	return a.postcode != 0 && (a.postcode == q || a.postcode.IsFull() && q.IsFull() && postcodeOneOff(q, a.postcode) ||
		a.postcode.Outward() == q.Outward())
}

// otherHouseAnywhere reports a caller's house number that is not the plan
// holder's nor a slip of it, whatever the streets read as: in the holder's
// postcode, another house (the street may read differently for how it was
// written, not for where it is).
func otherHouseAnywhere(house uint32, q Postcode, p *person) bool {
	if house == 0 {
		return false
	}
	any := false
	for i := 0; i < p.addrSlots(); i++ {
		if a := p.addr(i); a.house != 0 && nearSlot(q, a, i) {
			if houseSlip(a.house, house) {
				return false
			}
			any = true
		}
	}
	return any
}

// houseOnAnyStreet reports whether one of the plan holder's addresses has
// the caller's house number (letters aside), whatever its street: a street
// name mistyped. (A slip of the number too would be two mistakes.)
func houseOnAnyStreet(house uint32, q Postcode, p *person) bool {
	if house == 0 {
		return false
	}
	for i := 0; i < p.addrSlots(); i++ {
		if a := p.addr(i); a.house != 0 && a.house/32 == house/32 && nearSlot(q, a, i) {
			return true
		}
	}
	return false
}

// houseSlip reports house numbers (number*32 + letter, houseNumber) that
// one person may give for one house: the same number with or without a
// letter (14, 14a), or numbers one typing slip apart with the same letter:
// two digits swapped (14 and 41), a digit doubled (14 and 144), or one
// digit one off (14 and 15, 14 and 24). 14 and 16 (next door), 14a and
// 14b, 2 and 9 are different homes.
func houseSlip(a, b uint32) bool {
	na, nb, la, lb := a/32, b/32, a%32, b%32
	if na == nb {
		return la == lb || la == 0 || lb == 0
	}
	var ba, bb [10]byte // on the stack: compare runs for every candidate
	return la == lb && digitSlip(strconv.AppendUint(ba[:0], uint64(na), 10), strconv.AppendUint(bb[:0], uint64(nb), 10))
}

// digitSlip reports two different decimal numbers one typing slip apart:
// one digit one off, two adjacent digits swapped, or one digit doubled.
func digitSlip(a, b []byte) bool {
	if len(a) > len(b) {
		a, b = b, a
	}
	if len(b) == len(a)+1 {
		// b is a with one digit typed twice.
		for i := 1; i < len(b); i++ {
			if b[i] == b[i-1] && string(b[:i]) == string(a[:i]) && string(b[i+1:]) == string(a[i:]) {
				return true
			}
		}
		return false
	}
	if len(a) != len(b) {
		return false
	}
	var diff []int
	for i := range len(a) {
		if a[i] != b[i] {
			diff = append(diff, i)
		}
	}
	switch len(diff) {
	case 1:
		d := int(a[diff[0]]) - int(b[diff[0]])
		return d == 1 || d == -1
	case 2:
		i, j := diff[0], diff[1]
		return j == i+1 && a[i] == b[j] && a[j] == b[i]
	}
	return false
}

func compareNHS(pq *prepared, p *person) Level {
	switch {
	case pq.nhsState == nhsBadCheck:
		return InvalidCheck
	case pq.nhsState == nhsMissing || p.nhs == 0:
		return Missing
	case pq.nhs == p.nhs:
		return Exact
	}
	return Different
}

// compareGiven compares the given names; near reports a Fuzzy that comes
// from the first name itself (a typo or another spelling of it), not from
// the caller's name read without a stray space.
func (ix *Index) compareGiven(pq *prepared, p *person) (l Level, near bool) {
	if pq.given == "" || p.given[0] == 0 {
		return Missing, false
	}
	g := ix.names.info(p.given[0])
	if len(pq.given) == 1 || len(g.s) == 1 {
		if pq.given[0] == g.s[0] {
			return Initial, false
		}
		return Different, false
	}
	if pq.given == g.s {
		return Exact, false
	}
	// Two spellings of one name (Lynn and Lynne, Graham and Graeme) are
	// one person's, written either way: as a typo is.
	if pq.spellingOf(g.s) {
		return Fuzzy, true
	}
	if givenAgree(pq.givenFormals, g) {
		return Nickname, false
	}
	// A near spelling is a typo only if one of the two is not a name
	// people are given: Jean and Joan, Paul and Paula are two people.
	if similar(pq.given, g.s, givenFuzzy) && !(knownGiven(pq.given) && knownGiven(g.s)) {
		return Fuzzy, true
	}
	// A stray space typed into the name ("Ja Xson", "Har Risn"), but not
	// a name and a second name or initial ("Paul A" is not a typo of
	// Paula: the first part is a name of its own, as the plan's is).
	if pq.givenJoined != "" && similar(pq.givenJoined, g.s, givenFuzzy) && !(knownGiven(pq.given) && knownGiven(g.s)) {
		return Fuzzy, false // the first name alone is no near spelling: it would have returned above
	}
	// A middle name, a second given name, or an alias given name.
	for _, id := range p.given[1:] {
		if id != 0 && ix.givenNamesAgree(pq.given, pq.givenFormals, ix.names.info(id)) {
			return MiddleName, false
		}
	}
	if p.has&hasOtherGiven != 0 {
		for _, id := range p.more.otherGiven {
			if ix.givenNamesAgree(pq.given, pq.givenFormals, ix.names.info(id)) {
				return MiddleName, false
			}
		}
	}
	if pq.given2 != "" && pq.given2 == g.s {
		return MiddleName, false
	}
	if pq.givenSdx == g.sdx || pq.givenNYSIIS() == g.nys {
		return Phonetic, false
	}
	return Different, false
}

// secondGivenDiffers reports a caller's second given name that plainly
// differs from the plan holder's (Mary-Jane for Mary-Kate, John Michael for
// John Paul): the first names agree, but siblings may share a first name
// and differ in the second, so the agreement needs a personal identifier to
// anchor a match (Agreement.givenConflict). An initial differs when its
// letter does; a record or a caller without a second name says nothing.
func (ix *Index) secondGivenDiffers(pq *prepared, p *person) bool {
	if pq.given2 == "" || p.given[1] == 0 {
		return false
	}
	m := ix.names.info(p.given[1])
	if len(pq.given2) == 1 || len(m.s) == 1 {
		// An initial: it differs if its letter does ("Mary J", Mary Kate).
		return pq.given2[0] != m.s[0]
	}
	if pq.given2 == m.s {
		return false
	}
	return !givenAgree(formalsOf(pq.given2), m) && !similar(pq.given2, m.s, givenFuzzy)
}

// givenAgree reports a nickname relation between a query given name (with
// its formal names) and a stored one.
func givenAgree(qFormals []string, g *nameInfo) bool {
	if qFormals == nil || g.formals == nil {
		return false
	}
	for _, x := range qFormals {
		for _, y := range g.formals {
			if x == y {
				return true
			}
		}
	}
	return false
}

// givenNamesAgree is agreement with a middle or alias name: exact or a
// nickname, not a near spelling (a sibling's name often is one).
func (ix *Index) givenNamesAgree(q string, qFormals []string, g *nameInfo) bool {
	return q == g.s || givenAgree(qFormals, g)
}

// similar reports names one typo apart: Jaro-Winkler at least min, or, for
// names of four letters or more, one substitution, insertion, deletion or
// swap of neighbours (most typing slips are one of these).
func similar(a, b string, min float64) bool {
	if JaroWinkler(a, b) >= min {
		return true
	}
	return len(a) >= 4 && len(b) >= 4 && oneEdit(a, b)
}

// oneEdit reports whether a and b differ by one Damerau edit.
func oneEdit(a, b string) bool {
	if len(a) > len(b) {
		a, b = b, a
	}
	if len(b)-len(a) > 1 {
		return false
	}
	i := 0
	for i < len(a) && a[i] == b[i] {
		i++
	}
	if i == len(a) {
		return len(b) == len(a)+1 // one letter added at the end (equal strings are not one edit)
	}
	if len(a) == len(b) {
		if a[i+1:] == b[i+1:] {
			return true // substitution
		}
		return i+1 < len(a) && a[i] == b[i+1] && a[i+1] == b[i] && a[i+2:] == b[i+2:] // swap
	}
	return a[i:] == b[i+1:] // insertion
}

func (ix *Index) compareFamily(pq *prepared, p *person) Level {
	if pq.family == "" || (p.family == 0 && p.has&hasOtherFamily == 0) {
		return Missing
	}
	var f *nameInfo
	if p.family != 0 {
		f = ix.names.info(p.family)
		if pq.family == f.s {
			return Exact
		}
	}
	if p.has&hasOtherFamily != 0 {
		for _, id := range p.more.otherFamily {
			o := ix.names.info(id)
			if pq.family == o.s || JaroWinkler(pq.familyCmp, o.s) >= familyFuzzy {
				return OtherName
			}
		}
	}
	if f == nil {
		return Different
	}
	if containsSpace(f.s) || containsSpace(pq.family) {
		if sharePart(pq.family, f.s) {
			return Part
		}
	}
	if similar(pq.familyCmp, f.s, familyFuzzy) {
		return Fuzzy
	}
	if pq.familySdx == f.sdx || pq.familyNYSIIS() == f.nys {
		return Phonetic
	}
	return Different
}

// sharePart reports whether two space-separated names share a part of at
// least two letters.
func sharePart(a, b string) bool {
	for i := 0; i < len(a); {
		j := i
		for j < len(a) && a[j] != ' ' {
			j++
		}
		pa := a[i:j]
		for k := 0; k < len(b) && len(pa) > 1; {
			l := k
			for l < len(b) && b[l] != ' ' {
				l++
			}
			if b[k:l] == pa {
				return true
			}
			k = l + 1
		}
		i = j + 1
	}
	return false
}

// swappedNames reports the caller's given name agreeing with the stored
// family name and the caller's family name with the stored given name.
func (ix *Index) swappedNames(pq *prepared, p *person) bool {
	if pq.given == "" || pq.family == "" || p.family == 0 || p.given[0] == 0 {
		return false
	}
	f := ix.names.info(p.family)
	if pq.given != f.s && JaroWinkler(pq.given, f.s) < familyFuzzy {
		return false
	}
	g := ix.names.info(p.given[0])
	return pq.familyCmp == g.s || nicknameAgree(pq.familyCmp, g.s) || JaroWinkler(pq.familyCmp, g.s) >= givenFuzzy
}

func compareDates(q, s Date) Level {
	switch {
	case q == 0 || s == 0:
		return Missing
	case q == s:
		return Exact
	case q.Year() == s.Year() && q.Day() == s.Month() && q.Month() == s.Day():
		return DayMonthSwapped
	case q.Month() == s.Month() && q.Day() == s.Day() && (q.Year() == s.Year()+1 || q.Year()+1 == s.Year()):
		return YearOff
	case dateSlip(q, s):
		return OneDigit
	case q.Year() == s.Year():
		return SameYear
	}
	return Different
}

func compareGender(q, s uint8) Level {
	switch {
	case q == s && q != genderUnknown:
		return Exact
	case q == genderUnknown || s == genderUnknown || q == genderOther || s == genderOther:
		// "Other" against a recorded female or male is not a contradiction:
		// records lag how people describe themselves.
		return Missing
	case q == s:
		return Exact
	}
	return Different
}

func comparePostcode(q Postcode, p *person) Level {
	if q == 0 {
		return Missing
	}
	best := Missing
	better := func(l Level) {
		if best == Missing || postcodeRank(l) < postcodeRank(best) {
			best = l
		}
	}
	full := q.IsFull()
	for i := 0; i < p.addrSlots(); i++ {
		pc := p.addr(i).postcode
		if pc == 0 {
			continue
		}
		switch {
		case full && q == pc && i == 0:
			return Exact
		case full && q == pc:
			better(PreviousAddress)
		case full && pc.IsFull() && postcodeOneOff(q, pc):
			better(OneCharOff)
		case q.Outward() == pc.Outward():
			better(OutwardOnly)
		default:
			better(Different)
		}
	}
	return best
}

func postcodeRank(l Level) int {
	switch l {
	case Exact:
		return 0
	case PreviousAddress:
		return 1
	case OneCharOff:
		return 2
	case OutwardOnly:
		return 3
	}
	return 4
}

func compareAddress(house, street uint32, p *person) Level {
	if street == 0 {
		return Missing
	}
	best := Missing
	for i := 0; i < p.addrSlots(); i++ {
		a := p.addr(i)
		if a.street == 0 {
			continue
		}
		switch {
		case a.street == street && a.house == house && i == 0:
			return Exact
		case a.street == street && a.house == house:
			best = PreviousAddress
		case a.street == street && best != PreviousAddress:
			best = Street
		case best == Missing:
			best = Different
		}
	}
	return best
}

// comparePhone compares the caller's number with the plan's. A UK mobile
// agreeing is Exact, the person's own, unless the plan holder was born
// after minorAfter: a child's plan holds a parent's mobile, a household
// fact like a landline.
func comparePhone(q Phone, minorAfter Date, p *person) Level {
	if q == 0 {
		return Missing
	}
	any := false
	for i := 0; i < p.phoneSlots(); i++ {
		ph := p.phone(i)
		if ph == 0 {
			continue
		}
		any = true
		if ph == q {
			// Only a UK mobile is the person's own: a landline, an 0800,
			// 0845 or 03 number, VoIP and numbers abroad may be shared
			// by a household (or a care home).
			if !q.IsUKMobile() || p.dob != 0 && p.dob > minorAfter {
				return ExactLandline
			}
			return Exact
		}
	}
	if !any {
		return Missing
	}
	return Different
}
