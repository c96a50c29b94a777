package matcher

import "math/bits"

// Postcode is a UK postcode packed as its uppercase characters without the
// space, one byte each from the high end ("SW1A1AA" → 0x5357314131414100).
// An outward code alone ("SW1A") is a Postcode too; 0 means missing.
type Postcode uint64

// ParsePostcode reads a UK postcode in any case and spacing ("sw1a1aa",
// " SW1A 1AA "), or an outward code alone ("SW1A"). The empty string is
// (0, nil); anything that is not of a UK postcode's shape is an error.
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
	switch {
	case validOutward(buf[:n]):
	case n >= 5 && validOutward(buf[:n-3]) && validInward(buf[n-3:n]):
	case n == 6 && string(buf[:6]) == "GIR0AA":
	default:
		return 0, errPostcode
	}
	var p Postcode
	for i := 0; i < 8; i++ {
		p = p<<8 | Postcode(buf[i])
	}
	return p, nil
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
