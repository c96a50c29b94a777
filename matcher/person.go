package matcher

import (
	"math"
	"strings"
	"unsafe"
)

// person is one plan holder as the index holds it: normalised, interned,
// compact. Immutable once published; a change publishes a new person.
type person struct {
	planID string
	nhs    NHSNumber // valid numbers only; 0 when missing or invalid
	dob    Date
	family nameID    // current family name
	given  [3]nameID // first given name, then middle names
	gender uint8
	has    uint8    // which parts of more are there (hasOther…, hasMore…): read without following more
	flat   uint16   // the current address's flat number (parseStreet; 0: none, or too large), in what was padding
	addrs  [2]addr  // current, then the most recent previous address
	phones [2]Phone // the first two
	more   *personMore
}

// personMore holds what few plan holders have: other names (maiden, alias,
// previous), and addresses and phones beyond the first two.
type personMore struct {
	otherFamily []nameID
	otherGiven  []nameID
	addrs       []addr
	phones      []Phone
}

// Bits of person.has. Comparisons read them in the record itself, so a
// record without the part costs no read of more (a likely cache miss).
const (
	hasOtherFamily uint8 = 1 << iota
	hasOtherGiven
	hasMoreAddrs
	hasMorePhones
	hasCommunal // the current address is a care or nursing home (communalAddress)
)

// Genders, as far as matching goes.
const (
	genderUnknown uint8 = iota
	genderFemale
	genderMale
	genderOther
)

func parseGender(s string) uint8 {
	switch strings.ToLower(trimSpace(s)) {
	case "f", "female", "woman", "2": // 1, 2: the NHS Data Dictionary's codes
		return genderFemale
	case "m", "male", "man", "1":
		return genderMale
	case "other", "x", "non-binary", "nonbinary":
		return genderOther
	}
	return genderUnknown
}

// addrSlots is the number of address slots; empty slots read as addr{}.
func (p *person) addrSlots() int {
	if p.has&hasMoreAddrs != 0 {
		return len(p.addrs) + len(p.more.addrs)
	}
	return len(p.addrs)
}

// addr returns address slot i (0 is current, possibly empty).
func (p *person) addr(i int) addr {
	if i < len(p.addrs) {
		return p.addrs[i]
	}
	return p.more.addrs[i-len(p.addrs)]
}

// phoneSlots is the number of phone slots; empty slots read as 0.
func (p *person) phoneSlots() int {
	if p.has&hasMorePhones != 0 {
		return len(p.phones) + len(p.more.phones)
	}
	return len(p.phones)
}

func (p *person) phone(i int) Phone {
	if i < len(p.phones) {
		return p.phones[i]
	}
	return p.more.phones[i-len(p.phones)]
}

// sparse reports a record with too little to match on: no NHS number, no
// phone, and fewer than two of given name, family name, birth date and
// postcode. It is kept (a caller may still give what it has) and counted.
func (p *person) sparse() bool {
	if p.nhs != 0 || p.phones[0] != 0 {
		return false
	}
	n := 0
	if p.given[0] != 0 {
		n++
	}
	if p.family != 0 {
		n++
	}
	if p.dob != 0 {
		n++
	}
	if p.addrs[0].postcode != 0 {
		n++
	}
	return n < 2
}

// newPerson returns an empty person for planID, the ID's bytes held in the
// same allocation when they fit: a 104-byte record is given 112 bytes and an
// ID a block of its own, so holding up to 24 bytes after the record (a
// 128-byte block) or 40 (144, a UUID) costs about what the two blocks did
// (a few bytes more for an ID under 16 bytes, up to 16 less for most
// others), and an answer reads the ID from the record's own cache lines
// instead of taking one more miss to reach it. Longer IDs are referred to
// as they are.
func newPerson(planID string) *person {
	switch {
	case len(planID) <= 24:
		h := new(struct {
			person
			id [24]byte
		})
		return holdPlanID(&h.person, h.id[:], planID)
	case len(planID) <= 40:
		h := new(struct {
			person
			id [40]byte
		})
		return holdPlanID(&h.person, h.id[:], planID)
	}
	return &person{planID: planID}
}

// holdPlanID copies planID into buf, part of p's allocation, and points p's
// plan ID there.
func holdPlanID(p *person, buf []byte, planID string) *person {
	n := copy(buf, planID)
	p.planID = unsafe.String(unsafe.SliceData(buf), n)
	return p
}

// buildPerson normalises and interns a patient. Unreadable fields are left
// out of the record and reported as problems (field names only), so one bad
// field never loses the rest of a plan. Writer only.
func buildPerson(names *nameTable, planID string, pt *Patient) (*person, []string) {
	p := newPerson(planID)
	var problems []string
	var buf []byte

	if nhs, st, err := ParseNHSNumber(pt.NHSNumber); err != nil || st == nhsBadCheck {
		problems = append(problems, "nhs_number")
	} else if st == nhsValid {
		p.nhs = nhs
	}
	if dob, err := ParseDate(pt.BirthDate); err != nil {
		problems = append(problems, "birth_date")
	} else {
		p.dob = dob
	}
	p.gender = parseGender(pt.Gender)

	buf = NormaliseFamily(buf[:0], pt.FamilyName)
	if len(buf) > 0 {
		p.family = names.intern(string(buf))
	}
	givens := givenTokens(names, nil, pt.GivenNames, &buf)
	copy(p.given[:], givens)

	var more personMore
	for _, on := range pt.OtherNames {
		buf = NormaliseFamily(buf[:0], on.FamilyName)
		if len(buf) > 0 {
			if id := names.intern(string(buf)); id != p.family {
				more.otherFamily = append(more.otherFamily, id)
			}
		}
		more.otherGiven = givenTokens(names, more.otherGiven, on.GivenNames, &buf)
	}
	for i, a := range pt.Addresses {
		pc, err := ParsePostcode(a.Postcode)
		if err != nil {
			problems = append(problems, "postcode")
		}
		var ad addr
		ad.postcode = pc
		lines := strings.Join(a.Lines, ", ")
		if i == 0 && (communalAddress(lines) || communalAddress(a.City)) {
			p.has |= hasCommunal
		}
		var flat uint32
		ad.house, ad.street, flat, buf = parseStreet(buf, lines)
		if i == 0 && flat <= math.MaxUint16 {
			p.flat = uint16(flat)
		}
		if ad == (addr{}) {
			continue
		}
		if i < len(p.addrs) && p.addrs[i] == (addr{}) {
			p.addrs[i] = ad
		} else {
			more.addrs = append(more.addrs, ad)
		}
	}
	n := 0
	for _, s := range pt.Phones {
		ph, err := ParsePhone(s)
		if err != nil {
			problems = append(problems, "phone")
			continue
		}
		if ph == 0 {
			continue
		}
		if n < len(p.phones) {
			p.phones[n] = ph
		} else {
			more.phones = append(more.phones, ph)
		}
		n++
	}
	for _, part := range [...]struct {
		there bool
		bit   uint8
	}{{more.otherFamily != nil, hasOtherFamily}, {more.otherGiven != nil, hasOtherGiven},
		{more.addrs != nil, hasMoreAddrs}, {more.phones != nil, hasMorePhones}} {
		if part.there {
			p.has |= part.bit
		}
	}
	if p.has != 0 {
		p.more = &more
	}
	return p, problems
}

// givenTokens interns each token of the given names ("Mary Jane" is two) and
// appends the IDs to dst, skipping ones already there.
func givenTokens(names *nameTable, dst []nameID, given []string, buf *[]byte) []nameID {
	for _, g := range given {
		*buf = NormaliseGiven((*buf)[:0], g)
		for i := 0; i < len(*buf); {
			tok, next := nextToken(*buf, i)
			if len(tok) > 0 {
				id := names.intern(string(tok))
				dup := false
				for _, x := range dst {
					dup = dup || x == id
				}
				if !dup {
					dst = append(dst, id)
				}
			}
			i = next
		}
	}
	return dst
}
