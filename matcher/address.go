package matcher

import (
	_ "embed"
	"slices"
	"strings"
	"unsafe"
)

//go:embed data/street_types.txt
var streetTypesTxt string

// streetTypes maps a street-type word or abbreviation to its full form
// ("rd" → "road"), from libpostal's English street types.
var streetTypes = buildStreetTypes(streetTypesTxt)

func buildStreetTypes(txt string) map[string]string {
	m := make(map[string]string)
	for _, line := range strings.Split(txt, "\n") {
		forms := strings.Split(strings.TrimSpace(line), "|")
		if len(forms) == 0 || forms[0] == "" {
			continue
		}
		for _, f := range forms {
			if _, taken := m[f]; !taken {
				m[f] = forms[0]
			}
		}
	}
	return m
}

// addr is one address reduced to what is compared: the postcode, the house
// number (number*32 + letter, "14a" → 14*32+1; 0 when none) and a hash of the
// street name with its type spelled out ("Elm Rd" = "Elm Road").
type addr struct {
	postcode Postcode
	house    uint32
	street   uint32
}

// A communal home is named by a kind word followed by a place word ("care
// home", "Nursing Homes", "Residential Care", "Sheltered Housing",
// "Supported Living", "Children's Home"), or one of a few words on their
// own; not when a street type follows ("4 Hospice Lane", "Rest House
// Lane"). Its residents are unrelated but for it: a resident's namesake
// there shares the postcode, the address and often the phone.
var (
	communalKinds = []string{"care", "nursing", "residential", "res", "rest", "retirement", "supported", "assisted",
		"sheltered", "extra", "respite", "convalescent", "elderly", "people", "persons", "children", "dementia", "emi"}
	communalPlaces = []string{"home", "homes", "hm", "hme", "centre", "center", "ctr", "village", "care", "house",
		"living", "housing", "unit", "suites", "flats", "court"}
	communalAlone = []string{"carehome", "carehomes", "nursinghome", "nursinghomes", "hospice", "almshouses",
		"almshouse", "abbeyfield", "hostel"}
)

// communalAddress reports whether address text names a care or nursing
// home (case aside; a kind and its place word with only spaces, hyphens or
// an apostrophe's s between them).
func communalAddress(text string) bool {
	var kind, found bool
	joined := true // only spaces (or - and ') since the last word
	for i := 0; i < len(text); {
		c := text[i]
		if !('a' <= c|0x20 && c|0x20 <= 'z') {
			if c != ' ' && c != '-' && c != '\'' {
				joined = false
			}
			i++
			continue
		}
		j := i
		for j < len(text) && 'a' <= text[j]|0x20 && text[j]|0x20 <= 'z' {
			j++
		}
		w := text[i:j]
		i = j
		if len(w) > 14 {
			if found {
				return true // no street type is this long ("Care Home Northamptonshire")
			}
			kind, joined = false, true
			continue
		}
		var buf [14]byte
		b := buf[:0]
		for k := range len(w) {
			b = append(b, w[k]|0x20)
		}
		lw := unsafe.String(unsafe.SliceData(b), len(b)) // used within this iteration only
		if found {
			if _, street := streetTypes[lw]; !street || !joined {
				return true
			}
			found = false
		}
		if lw == "s" && kind && joined {
			continue // "Children's Home": the possessive's s
		}
		found = slices.Contains(communalAlone, lw) || kind && joined && slices.Contains(communalPlaces, lw)
		kind, joined = slices.Contains(communalKinds, lw), true
	}
	return found
}

// subBuildingWords introduce a flat or unit number, which is not the house number.
func isSubBuilding(tok []byte) bool {
	switch string(tok) {
	case "flat", "apartment", "apt", "unit", "room", "suite", "floor", "no":
		return true
	}
	return false
}

// parseStreet finds the house number and street in free address text
// ("Flat 2, 14 Elm Rd, London"): the first number not introduced by flat,
// apartment or unit, and the words after it up to a comma or the end. The
// street's last word is read as a street type (Rd = Road). flat is the
// flat's own number or letter (as houseNumber reads it; a letter alone is
// 1–26; 0 when none), wherever it is written: "Flat 2, 14 Elm Rd",
// "2/14 Elm Rd", "14 Elm Rd, Flat 2", "Flat B". buf is scratch space; the
// result holds no reference to it.
func parseStreet(buf []byte, text string) (house, street, flat uint32, _ []byte) {
	buf = buf[:0]
	// Lowercase, commas kept as separators between lines.
	for i := 0; i < len(text); i++ {
		c := text[i]
		switch {
		case c >= 'A' && c <= 'Z':
			buf = append(buf, c+'a'-'A')
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == ',', c == '/':
			buf = append(buf, c)
		case c == '\'':
		default:
			buf = append(buf, ' ')
		}
	}
	var prev, prev2 []byte
	for i := 0; i < len(buf); {
		for i < len(buf) && (buf[i] == ' ' || buf[i] == ',') {
			if buf[i] == ',' {
				prev, prev2 = nil, nil // a word introduces what follows it on its own line only
			}
			i++
		}
		j := i
		for j < len(buf) && buf[j] != ' ' && buf[j] != ',' {
			j++
		}
		tok := buf[i:j]
		h := houseNumber(tok)
		// "No 14" is the house; "Flat No 2" and "Flat 2" the flat.
		flatWord := isFlatWord(prev) || string(prev) == "no" && isFlatWord(prev2)
		slash := false
		if k := indexByte(tok, '/'); k > 0 && house == 0 {
			// "2/14": flat 2 of number 14 (after "Apartment" too).
			if f, n := houseNumber(tok[:k]), houseNumber(tok[k+1:]); f != 0 && n != 0 {
				if flat == 0 {
					flat = f
				}
				h, flatWord, slash = n, false, true
			}
		}
		if flat == 0 && (string(tok) == "flat" || string(tok) == "floor") {
			// "Ground Floor Flat", "1st Floor", "Garden Flat", "Top Flat".
			if c := floorFlat(prev); c != 0 {
				flat = c
			} else if string(prev) == "floor" {
				flat = floorFlat(prev2)
			}
		}
		switch {
		case slash:
			house, street = h, streetHash(skipComma(buf[j:]))
		case flatWord && flat == 0 && h != 0:
			flat = h
		case flatWord && flat == 0 && len(tok) == 1 && tok[0] >= 'a' && tok[0] <= 'z':
			flat = uint32(tok[0]-'a') + 1 // Flat B
		case house == 0 && h != 0 && !flatWord && (!isSubBuilding(prev) || string(prev) == "no"):
			rest := skipComma(buf[j:])
			if len(rest) < len(buf[j:]) {
				// "Block 3, 14 Elm Rd": a number after the comma is the
				// house; the first one names the building.
				if a, b := nextWord(rest, 0); houseNumber(rest[a:b]) != 0 {
					break
				}
			}
			house, street = h, streetHash(rest)
		}
		if house != 0 && flat != 0 {
			break
		}
		prev2, prev = prev, tok
		i = j
	}
	return house, street, flat, buf
}

// skipComma drops a comma (and the spaces before it) at the start of rest:
// "5, Lumb Lane" has its street after the comma.
func skipComma(rest []byte) []byte {
	i := 0
	for i < len(rest) && rest[i] == ' ' {
		i++
	}
	if i < len(rest) && rest[i] == ',' {
		return rest[i+1:]
	}
	return rest
}

// floorFlat is the flat code of a floor word ("Ground Floor Flat"): flat
// "numbers" 2001–2009 as houseNumber codes them, far above real ones.
func floorFlat(tok []byte) uint32 {
	k := 0
	switch string(tok) {
	case "basement":
		k = 1
	case "lower":
		k = 2
	case "ground":
		k = 3
	case "garden":
		k = 4
	case "first", "1st":
		k = 5
	case "second", "2nd":
		k = 6
	case "third", "3rd":
		k = 7
	case "top":
		k = 8
	case "upper":
		k = 9
	default:
		return 0
	}
	return uint32(2000+k) * 32
}

// isFlatWord reports a word that introduces a flat's own number (not "no",
// which introduces the house's, nor "floor").
func isFlatWord(tok []byte) bool {
	switch string(tok) {
	case "flat", "apartment", "apt", "unit", "room", "suite":
		return true
	}
	return false
}

// houseNumber reads "14" or "14a" as 14*32 + letter; 0 if tok is not one.
func houseNumber(tok []byte) uint32 {
	var n uint32
	i := 0
	for i < len(tok) && tok[i] >= '0' && tok[i] <= '9' && n < 1<<20 {
		n = n*10 + uint32(tok[i]-'0')
		i++
	}
	if i == 0 || n == 0 {
		return 0
	}
	var letter uint32
	if i == len(tok)-1 && tok[i] >= 'a' && tok[i] <= 'z' {
		letter = uint32(tok[i]-'a') + 1
	} else if i != len(tok) {
		return 0
	}
	return n*32 + letter
}

// nextWord returns the bounds of the space-separated word of b at or after i
// (i == j at the end).
func nextWord(b []byte, i int) (int, int) {
	for i < len(b) && b[i] == ' ' {
		i++
	}
	j := i
	for j < len(b) && b[j] != ' ' {
		j++
	}
	return i, j
}

// streetHash hashes the words of rest up to the first comma, spelling out a
// final street-type abbreviation; 0 when there are no words. The street
// ends before a flat word ("14 Elm Road Flat 9") and after its last
// street-type word but the first ("Elm Road London", "9 Elm Road SW1A
// 1AA": a town or a postcode typed on the same line).
func streetHash(rest []byte) uint32 {
	if k := indexByte(rest, ','); k >= 0 {
		rest = rest[:k]
	}
	end, typed, n := len(rest), -1, 0
	for i := 0; i < len(rest); {
		var j int
		i, j = nextWord(rest, i)
		if j == i {
			break
		}
		w := rest[i:j]
		if isFlatWord(w) && n > 0 {
			end = i
			break
		}
		if _, ok := streetTypes[string(w)]; ok && n > 0 {
			typed = j
		}
		n++
		i = j
	}
	if typed >= 0 && typed < end {
		end = typed
	}
	rest = rest[:end]
	// Find the words.
	var last []byte
	h := uint64(fnvOffset)
	words := 0
	for i := 0; i < len(rest); {
		var j int
		i, j = nextWord(rest, i)
		if j > i {
			if last != nil {
				h = fnvBytes(h, last)
				h = fnvByte(h, ' ')
			}
			last = rest[i:j]
			words++
		}
		i = j
	}
	if words == 0 {
		return 0
	}
	if full, ok := streetTypes[string(last)]; ok && words > 1 {
		h = fnvString(h, full)
	} else {
		h = fnvBytes(h, last)
	}
	return uint32(mix64(h)) | 1
}

func indexByte(b []byte, c byte) int {
	for i, x := range b {
		if x == c {
			return i
		}
	}
	return -1
}
