package matcher

import (
	"math/bits"
	"strings"
)

// Postcode is a UK postcode packed as its uppercase characters without the
// space, one byte each from the high end ("SW1A1AA" → 0x5357314131414100).
// An outward code alone ("SW1A") is a Postcode too; 0 means missing.
type Postcode uint64

// ParsePostcode reads a UK postcode in any case and spacing ("sw1a1aa",
// " SW1A 1AA "), or an outward code alone ("SW1A"). Input of no postcode's
// shape with letter O or I typed for digit 0 or 1 (or the other way round)
// is mended where only one reading is a real postcode's form ("SW1A OAA" is
// SW1A 0AA; see readConfusables); input of a postcode's shape is kept as
// typed. The empty
// string is (0, nil); anything else that is not of a UK postcode's shape
// is an error.
func ParsePostcode(s string) (Postcode, error) {
	var buf [8]byte
	n := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == ' ' || c == '\t':
			continue
		case c >= 'a' && c <= 'z':
			c -= 'a' - 'A'
		case c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		default:
			return 0, errPostcode
		}
		if n == 7 {
			return 0, errPostcode
		}
		buf[n] = c
		n++
	}
	if n == 0 {
		return 0, nil
	}
	if !postcodeShape(buf[:n]) && !readConfusables(buf[:n]) {
		return 0, errPostcode
	}
	var p Postcode
	for i := 0; i < 8; i++ {
		p = p<<8 | Postcode(buf[i])
	}
	return p, nil
}

// postcodeShape reports whether b (uppercase, no spaces) has a UK
// postcode's shape, or an outward code's.
func postcodeShape(b []byte) bool {
	n := len(b)
	return validOutward(b) || n >= 5 && validOutward(b[:n-3]) && validInward(b[n-3:]) || string(b) == "GIR0AA"
}

// readConfusables mends b, of no postcode's shape, where letter O or I was
// typed for digit 0 or 1 or the other way round ("SW1A OAA", "0L9 6AB",
// "SWIA 1AA"), when exactly one choice of those characters gives a real
// postcode's form (realPostcode); it reports whether it did. Two readings,
// or none, leave b as it is: the caller gets the error rather than a guess.
func readConfusables(b []byte) bool {
	var at [7]int
	k := 0
	for i, c := range b {
		if swapConfusable(c) != c {
			at[k] = i
			k++
		}
	}
	if k == 0 || k > maxConfusables {
		return false
	}
	var try, found [7]byte
	readings := 0
	for mask := 1; mask < 1<<k && readings < 2; mask++ {
		copy(try[:], b)
		for j := range k {
			if mask&(1<<j) != 0 {
				try[at[j]] = swapConfusable(try[at[j]])
			}
		}
		if realPostcode(try[:len(b)]) {
			readings++
			found = try
		}
	}
	if readings != 1 {
		return false
	}
	copy(b, found[:len(b)])
	return true
}

// maxConfusables bounds the O, 0, I and 1 characters readConfusables tries
// both ways (2^4 readings at most: a few hundred nanoseconds): a real
// postcode has no more than four (CO10 0HU: no area has two of them, and
// the inward code one), and input with more is refused as typed.
const maxConfusables = 4

// realPostcode is postcodeShape held to the rules real postcodes follow,
// for choosing between readings: the area (the outward code's letters) is
// one of the UK's, and a letter ending the outward code is one the Royal
// Mail uses there.
func realPostcode(b []byte) bool {
	n := len(b)
	switch {
	case string(b) == "GIR0AA":
		return true
	case validOutward(b):
		return realOutward(b)
	}
	return n >= 5 && validOutward(b[:n-3]) && validInward(b[n-3:]) && realOutward(b[:n-3])
}

// realOutward reports an outward code (of validOutward's shape) in a real
// area whose letter after the district, if any, is one used there (A9A:
// ABCDEFGHJKPSTUW; AA9A: ABEHMNPRVWXY).
func realOutward(o []byte) bool {
	area := 1
	if isLetter(o[1]) {
		area = 2
	}
	if !postcodeAreas[string(o[:area])] {
		return false
	}
	last := o[len(o)-1]
	if !isLetter(last) {
		return true
	}
	if area == 1 {
		return strings.IndexByte("ABCDEFGHJKPSTUW", last) >= 0
	}
	return strings.IndexByte("ABEHMNPRVWXY", last) >= 0
}

// postcodeAreas are the UK's postcode areas, with the Crown dependencies'
// (GY, IM, JE): a fact of the Royal Mail's, as every postcode in
// bench/data/postcodes.csv (ONS, OGL v3) shows.
var postcodeAreas = func() map[string]bool {
	m := make(map[string]bool)
	for _, a := range strings.Fields(`AB AL B BA BB BD BH BL BN BR BS BT CA CB CF CH CM CO CR CT CV CW
		DA DD DE DG DH DL DN DT DY E EC EH EN EX FK FY G GL GU GY HA HD HG HP HR HS HU HX IG IM IP
		IV JE KA KT KW KY L LA LD LE LL LN LS LU M ME MK ML N NE NG NN NP NR NW OL OX PA PE PH PL
		PO PR RG RH RM S SA SE SG SK SL SM SN SO SP SR SS ST SW SY TA TD TF TN TQ TR TS TW UB W WA
		WC WD WF WN WR WS WV YO ZE`) {
		m[a] = true
	}
	return m
}()

// swapConfusable turns O into 0, I into 1 and back; other characters are
// returned as they are.
func swapConfusable(c byte) byte {
	switch c {
	case 'O':
		return '0'
	case '0':
		return 'O'
	case 'I':
		return '1'
	case '1':
		return 'I'
	}
	return c
}

type postcodeError string

func (e postcodeError) Error() string { return string(e) }

const errPostcode = postcodeError("not a UK postcode (want e.g. SW1A 1AA, or an outward code such as SW1A)")

func isLetter(c byte) bool { return c >= 'A' && c <= 'Z' }
func isDigit(c byte) bool  { return c >= '0' && c <= '9' }

// validOutward accepts the outward shapes A9, A99, AA9, AA99, A9A, AA9A.
func validOutward(b []byte) bool {
	if len(b) < 2 || len(b) > 4 || !isLetter(b[0]) {
		return false
	}
	i := 1
	if isLetter(b[i]) {
		i++
	}
	if i >= len(b) || !isDigit(b[i]) {
		return false
	}
	i++
	if i == len(b) {
		return true
	}
	if (isDigit(b[i]) || isLetter(b[i])) && i+1 == len(b) {
		return true
	}
	return false
}

// validInward accepts 9AA, where the letters exclude C, I, K, M, O and V.
func validInward(b []byte) bool {
	ok := func(c byte) bool {
		return isLetter(c) && c != 'C' && c != 'I' && c != 'K' && c != 'M' && c != 'O' && c != 'V'
	}
	return len(b) == 3 && isDigit(b[0]) && ok(b[1]) && ok(b[2])
}

// Len is the number of characters, 0 for missing. Characters fill p from
// its top byte down and none is zero, so the zero bytes are the trailing
// ones.
func (p Postcode) Len() int {
	if p == 0 {
		return 0
	}
	return 8 - bits.TrailingZeros64(uint64(p))/8
}

// IsFull reports whether p has an inward code (is more than an outward code).
func (p Postcode) IsFull() bool {
	n := p.Len()
	return n >= 5 && isDigit(byte(p>>(56-8*(n-3))))
}

// Outward returns the outward code of a full postcode, or p itself if it is
// an outward code only.
func (p Postcode) Outward() Postcode {
	if !p.IsFull() {
		return p
	}
	n := p.Len() - 3
	return p &^ (^Postcode(0) >> (8 * n))
}

// String renders the postcode with its space ("SW1A 1AA"); for tests and demos.
func (p Postcode) String() string {
	var b [9]byte
	n := p.Len()
	j := 0
	for i := 0; i < n; i++ {
		if p.IsFull() && i == n-3 {
			b[j] = ' '
			j++
		}
		b[j] = byte(p >> (56 - 8*i))
		j++
	}
	return string(b[:j])
}

// postcodeOneOff reports whether two full postcodes differ by one substituted
// character or one adjacent transposition.
func postcodeOneOff(a, b Postcode) bool {
	if a.Len() != b.Len() {
		return false
	}
	x := uint64(a ^ b)
	diff := 0
	first, last := -1, -1
	for i := 0; i < 8; i++ {
		if byte(x>>(56-8*i)) != 0 {
			diff++
			if first < 0 {
				first = i
			}
			last = i
		}
	}
	switch diff {
	case 1:
		return true
	case 2:
		if last != first+1 {
			return false
		}
		ca, cb := byte(a>>(56-8*first)), byte(a>>(56-8*last))
		return ca == byte(b>>(56-8*last)) && cb == byte(b>>(56-8*first))
	}
	return false
}
