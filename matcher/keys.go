package matcher

import "slices"

// Blocking keys. A lookup probes a handful of keys and scores only the plans
// filed under them, never the whole index. Each kind pairs a selective fact
// with a tolerant one, so a caller's error in one field still leaves another
// key that finds the plan:
//
//	kNHS             NHS number (valid ones only)
//	kPhone           phone number
//	kDOBFamily       birth date + Soundex of the family name (or a part, or a maiden name)
//	kFamilyGiven     Soundex of the family name + formal given name (Bob files as Robert)
//	kDOBGiven        birth date + formal given name (catches family-name typos)
//	kPostcodeInitial full postcode + given initial
//	kPostcodeFamily  full postcode + Soundex of the family name
//	kPostcodeDOB     full postcode + birth date (catches both names mistyped or missing)
//	kDOBHouse        birth date + house number (catches both names and the postcode
//	                 mistyped or missing at once; probed only when nothing narrower matched)
//	kHouseFamily     house number and street + Soundex of the family name (catches a
//	                 slipped birth date with the postcode missing or only its outward
//	                 code: a common name's broad keys hold thousands)
//
// A birth date files under dateKey, which is the same for a date and its
// day/month-swapped twin, so one probe finds a caller who swapped them. When
// the narrow keys find no confident match, a lookup also probes the broad
// ones: kFamilyGiven, kDOBHouse, and the given and family names swapped.
type keyKind uint8

const (
	kNHS keyKind = iota + 1
	kPhone
	kDOBFamily
	kFamilyGiven
	kDOBGiven
	kPostcodeInitial
	kPostcodeFamily
	kPostcodeDOB
	kDOBHouse
	kHouseFamily
)

// houseKey is an address's house number and street as one key part.
func houseKey(house, street uint32) uint64 { return uint64(house)<<32 | uint64(street) }

// blockKey hashes a key kind with two numbers and a string, to the bits
// the postings keep (keyMask).
func blockKey(kind keyKind, a, b uint64, s string) uint64 {
	h := fnvByte(fnvOffset, byte(kind))
	h = fnvUint64(h, a)
	h = fnvUint64(h, b)
	h = fnvString(h, s)
	return mix64(h) & keyMask
}

// dateKey is a birth date's part of a blocking key: the date with its day
// and month in order, so that 3 July and 7 March file under one key and a
// lookup finds either with a single probe (a date whose day is over 12 has
// no swapped twin and is its own key). 0 for no date.
func dateKey(d Date) uint64 {
	if s := swappedDate(d); s != 0 && s < d {
		return uint64(s)
	}
	return uint64(d)
}

func (s Soundex) key() uint64 {
	return uint64(s[0])<<24 | uint64(s[1])<<16 | uint64(s[2])<<8 | uint64(s[3])
}

// maxFamilyParts is how many parts of a family name have keys of their
// own: more than any real name has, and a bound on a lookup's keys.
const maxFamilyParts = 5

// familyCodes appends the Soundex keys of a normalised family name: of the
// whole name, and of each part (the first maxFamilyParts) of a
// double-barrelled one.
func familyCodes(dst []uint64, full string, whole Soundex) []uint64 {
	dst = appendUnique(dst, whole.key())
	if !containsSpace(full) {
		return dst
	}
	for i, parts := 0, 0; i < len(full) && parts < maxFamilyParts; {
		j := i
		for j < len(full) && full[j] != ' ' {
			j++
		}
		if j > i {
			dst = appendUnique(dst, SoundexOf(full[i:j]).key())
			parts++
		}
		i = j + 1
	}
	return dst
}

func containsSpace(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] == ' ' {
			return true
		}
	}
	return false
}

func appendUnique(dst []uint64, v uint64) []uint64 {
	for _, x := range dst {
		if x == v {
			return dst
		}
	}
	return append(dst, v)
}

// personKeys appends the blocking keys under which p is filed, deduplicated.
func personKeys(names *nameTable, p *person, dst []uint64) []uint64 {
	start := len(dst)
	if p.nhs != 0 {
		dst = append(dst, blockKey(kNHS, uint64(p.nhs), 0, ""))
	}
	for i := 0; i < p.phoneSlots(); i++ {
		if ph := p.phone(i); ph != 0 {
			dst = append(dst, blockKey(kPhone, uint64(ph), 0, ""))
		}
	}
	var codesBuf [8]uint64
	codes := codesBuf[:0]
	if p.family != 0 {
		ni := names.info(p.family)
		codes = familyCodes(codes, ni.s, ni.sdx)
	}
	if p.more != nil {
		for _, id := range p.more.otherFamily {
			ni := names.info(id)
			codes = familyCodes(codes, ni.s, ni.sdx)
		}
	}
	for _, c := range codes {
		if p.dob != 0 {
			dst = append(dst, blockKey(kDOBFamily, dateKey(p.dob), c, ""))
		}
		for i := 0; i < p.addrSlots(); i++ {
			a := p.addr(i)
			if a.postcode.IsFull() {
				dst = append(dst, blockKey(kPostcodeFamily, uint64(a.postcode), c, ""))
			}
			if a.house != 0 && a.street != 0 {
				dst = append(dst, blockKey(kHouseFamily, houseKey(a.house, a.street), c, ""))
			}
		}
	}
	if p.dob != 0 {
		for i := 0; i < p.addrSlots(); i++ {
			a := p.addr(i)
			if a.postcode.IsFull() {
				dst = append(dst, blockKey(kPostcodeDOB, uint64(a.postcode), dateKey(p.dob), ""))
			}
			if a.house != 0 {
				dst = append(dst, blockKey(kDOBHouse, dateKey(p.dob), uint64(a.house), ""))
			}
		}
	}
	if p.given[0] != 0 {
		gi := names.info(p.given[0])
		formals := gi.formals
		if formals == nil {
			formals = []string{gi.s}
		}
		for _, f := range formals {
			for _, c := range codes {
				dst = append(dst, blockKey(kFamilyGiven, c, 0, f))
			}
			if p.dob != 0 {
				dst = append(dst, blockKey(kDOBGiven, dateKey(p.dob), 0, f))
			}
		}
		initial := uint64(gi.s[0])
		for i := 0; i < p.addrSlots(); i++ {
			if pc := p.addr(i).postcode; pc.IsFull() {
				dst = append(dst, blockKey(kPostcodeInitial, uint64(pc), initial, ""))
			}
		}
	}
	keys := dst[start:]
	slices.Sort(keys)
	return dst[:start+len(slices.Compact(keys))]
}
