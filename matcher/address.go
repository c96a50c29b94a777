package matcher

import (
	_ "embed"
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

// communalWords name a home many people live in, unrelated but for it: a
// resident's namesake there shares the postcode, the address and often the
// phone.
var communalWords = []string{" care home ", " nursing home ", " residential home ", " rest home ", " retirement home ",
	" care centre ", " care center ", " nursing centre ", " hospice "} // whole words

// communalAddress reports whether address text names a care or nursing
// home (case and spacing aside).
func communalAddress(text string) bool {
	if len(text) < len("hospice") {
		return false
	}
	var buf [302]byte
	b := append(buf[:0], ' ')
	space := true
	for i := 0; i < len(text) && len(b) < len(buf)-1; i++ {
		c := text[i]
		switch {
		case c >= 'A' && c <= 'Z':
			b, space = append(b, c+'a'-'A'), false
		case c >= 'a' && c <= 'z':
			b, space = append(b, c), false
		case !space:
			b, space = append(b, ' '), true
		}
	}
	if !space {
		b = append(b, ' ')
	}
	lower := unsafe.String(unsafe.SliceData(b), len(b)) // b does not outlive the call
	for _, w := range communalWords {
		if strings.Contains(lower, w) {
			return true
		}
	}
	return false
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
// number a flat, apartment, unit, room or suite word introduces before it
// (as houseNumber reads it; 0 when none). buf is scratch space; the result
// holds no reference to it.
func parseStreet(buf []byte, text string) (house, street, flat uint32, _ []byte) {
	buf = buf[:0]
	// Lowercase, commas kept as separators between lines.
	for i := 0; i < len(text); i++ {
		c := text[i]
		switch {
		case c >= 'A' && c <= 'Z':
			buf = append(buf, c+'a'-'A')
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == ',':
			buf = append(buf, c)
		case c == '\'':
		default:
			buf = append(buf, ' ')
		}
	}
	var prev []byte
	for i := 0; i < len(buf); {
		for i < len(buf) && (buf[i] == ' ' || buf[i] == ',') {
			i++
		}
		j := i
		for j < len(buf) && buf[j] != ' ' && buf[j] != ',' {
			j++
		}
		tok := buf[i:j]
		if h := houseNumber(tok); h != 0 {
			if !isSubBuilding(prev) {
				return h, streetHash(buf[j:]), flat, buf
			}
			if flat == 0 && isFlatWord(prev) {
				flat = h
			}
		}
		prev = tok
		i = j
	}
	return 0, 0, flat, buf
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

// streetHash hashes the words of rest up to the first comma, spelling out a
// final street-type abbreviation; 0 when there are no words.
func streetHash(rest []byte) uint32 {
	if k := indexByte(rest, ','); k >= 0 {
		rest = rest[:k]
	}
	// Find the words.
	var last []byte
	h := uint64(fnvOffset)
	words := 0
	for i := 0; i < len(rest); {
		for i < len(rest) && rest[i] == ' ' {
			i++
		}
		j := i
		for j < len(rest) && rest[j] != ' ' {
			j++
		}
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
