package matcher

import (
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
	"unsafe"
)

// prepared is a query normalised for matching. Its strings point into buf,
// which belongs to one Match call (prepared values are pooled), so nothing
// derived from them may outlive the call.
type prepared struct {
	nhs      NHSNumber
	nhsState int

	given        string // first given-name token; "" when missing
	given2       string // a second given-name token, if the caller gave one
	givenJoined  string // given and given2 run together ("ja xson" → "jaxson"); "" without given2
	givenSdx     Soundex
	givenNys     NYSIIS   // computed when first needed: givenNYSIIS
	givenFormals []string // from the nickname table; nil if none
	givenVariant int      // the given name's set in variantSpellings; -1 if none

	family    string // normalised family name, parts space-separated
	familyCmp string // family without spaces, for phonetic codes
	familySdx Soundex
	familyNys NYSIIS // computed when first needed: familyNYSIIS
	nysDone   uint8  // which of givenNys (1) and familyNys (2) are computed

	dob    Date
	gender uint8

	postcode Postcode
	house    uint32
	street   uint32
	phone    Phone
	// minorAfter: a plan holder born after this date is a child, whose
	// plan's mobile is a parent's or carer's (set with phone).
	minorAfter Date
	communal   bool   // the caller's address names a care or nursing home
	flat       uint16 // the caller's flat number (parseStreet), 0 when none

	buf   []byte
	abuf  []byte
	cands []uint32
	// persons and touched serve rank's gathering pass (see rank).
	persons []*person
	touched uint64
	keys    []uint64
	top     []scored
}

// bytesString views b as a string without copying; b must not change while
// the string is in use.
func bytesString(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}

// prepare reads and normalises q. It returns an *InputError naming the field
// when a field cannot be read.
func (pq *prepared) prepare(q *Query) error {
	*pq = prepared{buf: pq.buf[:0], abuf: pq.abuf[:0], cands: pq.cands[:0], keys: pq.keys[:0], top: pq.top[:0],
		persons: pq.persons[:0]}
	if err := checkFields(q); err != nil {
		return err
	}
	var err error
	if pq.nhs, pq.nhsState, err = ParseNHSNumber(q.NHSNumber); err != nil {
		return &InputError{Field: "nhs_number", Problem: err.Error()}
	}
	var inWords bool
	if pq.dob, inWords, err = parseDate(q.BirthDate); err != nil {
		return &InputError{Field: "birth_date", Problem: err.Error()}
	}
	if pq.dob.Year() >= startYear {
		// A date after today is refused, unless day and month the other
		// way round make it a past one: a baby born on 10 February,
		// given as 02/10 in a September, is searched (the swap is a slip
		// the matcher takes: day-month-swapped). A month given in words
		// ("2 Dec") was not swapped.
		if latest := latestBirthDate(time.Now()); pq.dob > latest {
			if sw := swappedDate(pq.dob); sw == 0 || sw > latest || inWords {
				return &InputError{Field: "birth_date", Problem: "is in the future"}
			}
		}
	}
	if pq.postcode, err = ParsePostcode(q.Postcode); err != nil {
		return &InputError{Field: "postcode", Problem: err.Error()}
	}
	if noNumber(q.Phone) {
		// CAD systems write these where the caller's number is not known.
	} else if pq.phone, err = ParsePhone(q.Phone); err != nil {
		return &InputError{Field: "phone", Problem: err.Error()}
	}
	if pq.phone != 0 {
		pq.minorAfter = minorAfter(time.Now())
	}
	if g := trimSpace(q.Gender); g != "" {
		pq.gender = parseGender(g)
		if pq.gender == genderUnknown && !isUnknownGender(g) {
			return &InputError{Field: "gender", Problem: "not a gender (want female, male, other or unknown)"}
		}
	}
	var flat uint32
	pq.house, pq.street, flat, pq.abuf = parseStreet(pq.abuf, q.Address)
	if flat <= math.MaxUint16 {
		pq.flat = uint16(flat)
	}
	pq.communal = communalAddress(q.Address)

	// Names: size buf once so the strings below never move.
	need := 3*len(q.GivenName) + 2*len(q.FamilyName) + 8
	if cap(pq.buf) < need {
		pq.buf = make([]byte, 0, need)
	}
	buf := NormaliseGiven(pq.buf[:0], q.GivenName)
	g1, next := nextToken(buf, 0)
	g2, _ := nextToken(buf, next)
	pq.given, pq.given2 = bytesString(g1), bytesString(g2)
	start := len(buf)
	if len(g2) > 0 {
		buf = append(append(buf, g1...), g2...)
		pq.givenJoined = bytesString(buf[start:])
		start = len(buf)
	}
	buf = NormaliseFamily(buf, q.FamilyName)
	pq.family = bytesString(buf[start:])
	start = len(buf)
	buf = appendNoSpaces(buf, pq.family)
	pq.familyCmp = bytesString(buf[start:])
	pq.buf = buf
	if len(g1) == 0 && len(q.GivenName) > 0 && !blank(q.GivenName) {
		return &InputError{Field: "given_name", Problem: "has no letters"}
	}
	if len(pq.family) == 0 && !blank(q.FamilyName) {
		return &InputError{Field: "family_name", Problem: "has no letters"}
	}
	pq.givenVariant = -1
	if pq.given != "" {
		pq.givenSdx = SoundexOf(pq.given)
		pq.givenFormals = formalsOf(pq.given)
		if i, ok := variantOf[pq.given]; ok {
			pq.givenVariant = i
		}
	}
	if pq.family != "" {
		pq.familySdx = SoundexOf(pq.familyCmp)
	}
	if !pq.searchable() {
		return &InputError{Field: "query", Problem: "too little to search on: give a valid NHS number, a phone, or two of given name, family name, birth date and postcode"}
	}
	return nil
}

func blank(s string) bool { return trimSpace(s) == "" }

// givenNYSIIS and familyNYSIIS return the query names' NYSIIS codes,
// computed on first use: only a comparison that gets as far as phonetic
// agreement, with Soundex disagreeing, needs one.
func (pq *prepared) givenNYSIIS() NYSIIS {
	if pq.nysDone&1 == 0 {
		pq.givenNys, pq.nysDone = NYSIISOf(pq.given), pq.nysDone|1
	}
	return pq.givenNys
}

func (pq *prepared) familyNYSIIS() NYSIIS {
	if pq.nysDone&2 == 0 {
		pq.familyNys, pq.nysDone = NYSIISOf(pq.familyCmp), pq.nysDone|2
	}
	return pq.familyNys
}

// noNumber reports a phone field that says there is no number ("Withheld",
// "Unknown"), in any case.
func noNumber(s string) bool {
	s = trimSpace(s)
	for _, w := range [...]string{"withheld", "unknown", "anonymous", "private", "unavailable", "none", "n/a"} {
		if strings.EqualFold(s, w) {
			return true
		}
	}
	return false
}

// isUnknownGender reports whether g says the gender is not known, in any
// case (as parseGender reads the others).
func isUnknownGender(g string) bool {
	for _, u := range [...]string{"unknown", "u", "not known", "not specified", "not stated", "n/a", "0", "9",
		"i", "indeterminate"} {
		if strings.EqualFold(g, u) {
			return true
		}
	}
	return false
}

// Field limits, far above any caller's real details (the NHS's patient
// records hold names of up to 35 characters and addresses of five lines of
// 35), so that only input that is not a caller's details meets them; they
// bound what one lookup can cost (a 16 KiB family name of thousands of
// parts once took a lookup 10 ms, slowing every other client's).
const (
	maxNameBytes    = 100
	maxAddressBytes = 300
	maxShortBytes   = 40 // NHS number, birth date, gender, postcode, phone
)

// checkFields refuses a field too long to be a caller's details, or holding
// invalid UTF-8 or a control character other than tab, CR and LF (binary
// or a broken client, never what a call handler typed).
func checkFields(q *Query) error {
	for _, f := range [...]struct {
		name, v string
		max     int
	}{
		{"nhs_number", q.NHSNumber, maxShortBytes}, {"given_name", q.GivenName, maxNameBytes},
		{"family_name", q.FamilyName, maxNameBytes}, {"birth_date", q.BirthDate, maxShortBytes},
		{"gender", q.Gender, maxShortBytes}, {"postcode", q.Postcode, maxShortBytes},
		{"address", q.Address, maxAddressBytes}, {"phone", q.Phone, maxShortBytes},
	} {
		if len(f.v) > f.max {
			return &InputError{Field: f.name, Problem: "too long: more than " + strconv.Itoa(f.max) + " bytes"}
		}
		for i := 0; i < len(f.v); i++ {
			if c := f.v[i]; c < 0x20 && c != '\t' && c != '\n' && c != '\r' || c == 0x7f {
				return &InputError{Field: f.name, Problem: "contains a control character"}
			}
		}
		if !utf8.ValidString(f.v) {
			return &InputError{Field: f.name, Problem: "not valid UTF-8"}
		}
	}
	return nil
}

// startYear is the year (UTC) the process started in: a birth date in an
// earlier year is in the past without reading the clock.
var startYear = time.Now().UTC().Year()

// latestBirthDate is the latest birth date a caller can give at now: the
// day after now's date in UTC, so that it is today for a caller anywhere in
// the UK, summer time included.
func latestBirthDate(now time.Time) Date {
	t := now.UTC().AddDate(0, 0, 1)
	return Date(t.Year()*10000 + int(t.Month())*100 + t.Day())
}

// adultAge is the age from which a mobile on a plan is taken to be the
// plan holder's own. A child's plan records a parent's or carer's number,
// which the child's twin, siblings and parents share (a plan is a child's
// in the NHS under 18).
const adultAge = 18

// minorAfter is the birth date after which a plan holder is under
// adultAge at now.
func minorAfter(now time.Time) Date {
	t := now.UTC()
	return Date((t.Year()-adultAge)*10000 + int(t.Month())*100 + t.Day())
}

// searchable reports whether the query has enough to look up: a valid NHS
// number, a phone, or two of given name, family name, birth date and postcode
// (or address).
func (pq *prepared) searchable() bool {
	if pq.nhsState == nhsValid || pq.phone != 0 {
		return true
	}
	n := 0
	if pq.given != "" {
		n++
	}
	if pq.family != "" {
		n++
	}
	if pq.dob != 0 {
		n++
	}
	if pq.postcode != 0 || pq.street != 0 {
		n++
	}
	return n >= 2
}

// swappedDate returns d with day and month swapped, or 0 if that is d itself
// or not a date.
func swappedDate(d Date) Date {
	if d == 0 || d.Day() == d.Month() || d.Day() > 12 {
		return 0
	}
	return MakeDate(d.Year(), d.Day(), d.Month())
}

// probeKeys appends the blocking keys a lookup probes. The narrow keys (NHS
// number, phone, and those with a birth date or a full postcode) come first;
// the broad ones (family name with given name, which a common name shares
// with hundreds) only when broad is set: a lookup reads them only if the
// narrow keys found no confident match.
func (pq *prepared) probeKeys(dst []uint64, broad bool) []uint64 {
	dob := dateKey(pq.dob) // the date either way round: one probe for both
	fullPC := pq.postcode.IsFull()
	var codesBuf [6]uint64
	codes := codesBuf[:0]
	if pq.family != "" {
		codes = familyCodes(codes, pq.family, pq.familySdx)
	}
	// Given and family names swapped: the given name as a family name, the
	// family name as a given name.
	swapped := pq.given != "" && pq.family != "" && len(pq.given) > 1
	var sw [1]uint64
	if swapped {
		sw[0] = pq.givenSdx.key()
	}
	if broad {
		if pq.given != "" {
			dst = pq.givenKeys(dst, pq.given, pq.givenFormals, codes, 0)
		}
		if swapped {
			// The given name as a family name, with the birth date and the
			// postcode; the family name as a given name. A caller who
			// swapped the names but gave the birth date and postcode is
			// found by the narrow postcode + birth date key already.
			if dob != 0 {
				dst = append(dst, blockKey(kDOBFamily, dob, sw[0], ""))
			}
			if fullPC {
				dst = append(dst, blockKey(kPostcodeFamily, uint64(pq.postcode), sw[0], ""))
			}
			dst = pq.givenKeys(dst, pq.familyCmp, formalsOf(pq.familyCmp), sw[:], dob)
		}
		if pq.house != 0 && dob != 0 {
			dst = append(dst, blockKey(kDOBHouse, dob, uint64(pq.house), ""))
		}
		return dst
	}
	if pq.nhsState == nhsValid {
		dst = append(dst, blockKey(kNHS, uint64(pq.nhs), 0, ""))
	}
	if pq.phone != 0 {
		dst = append(dst, blockKey(kPhone, uint64(pq.phone), 0, ""))
	}
	for _, c := range codes {
		if dob != 0 {
			dst = append(dst, blockKey(kDOBFamily, dob, c, ""))
		}
		if fullPC {
			dst = append(dst, blockKey(kPostcodeFamily, uint64(pq.postcode), c, ""))
		}
		if pq.house != 0 && pq.street != 0 {
			dst = append(dst, blockKey(kHouseFamily, houseKey(pq.house, pq.street), c, ""))
		}
	}
	if fullPC && dob != 0 {
		dst = append(dst, blockKey(kPostcodeDOB, uint64(pq.postcode), dob, ""))
	}
	if pq.given != "" {
		dst = pq.givenKeys(dst, pq.given, pq.givenFormals, nil, dob)
		if fullPC {
			dst = append(dst, blockKey(kPostcodeInitial, uint64(pq.postcode), uint64(pq.given[0]), ""))
		}
	}
	return dst
}

// givenKeys appends the keys of a given name (its formal names, or itself)
// with each family code, and with the birth date key dob unless it is 0.
func (pq *prepared) givenKeys(dst []uint64, given string, formals []string, codes []uint64, dob uint64) []uint64 {
	if formals == nil {
		var one [1]string
		one[0] = given
		return pq.givenKeysOf(dst, one[:], codes, dob)
	}
	return pq.givenKeysOf(dst, formals, codes, dob)
}

func (pq *prepared) givenKeysOf(dst []uint64, formals []string, codes []uint64, dob uint64) []uint64 {
	for _, f := range formals {
		for _, c := range codes {
			dst = append(dst, blockKey(kFamilyGiven, c, 0, f))
		}
		if dob != 0 {
			dst = append(dst, blockKey(kDOBGiven, dob, 0, f))
		}
	}
	return dst
}
