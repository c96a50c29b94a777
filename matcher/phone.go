package matcher

// Phone is a telephone number in E.164 form, held as the number its digits
// spell after the "+" (447700900123 for +447700900123); 0 means missing.
type Phone uint64

// ParsePhone reads UK national ("07700 900123", "020 7946 0000") and
// international ("+44 7700 900123", "0044…", "+353…") forms with spaces,
// dashes, dots and brackets ("+44 (0)20 …" too). The empty string is (0, nil).
func ParsePhone(s string) (Phone, error) {
	var d [20]byte
	n := 0
	plus := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= '0' && c <= '9':
			if n == len(d) {
				return 0, errPhone
			}
			d[n] = c - '0'
			n++
		case c == '+' && n == 0 && !plus:
			plus = true
		case c == ' ' || c == '-' || c == '.' || c == '(' || c == ')' || c == '\t':
		default:
			return 0, errPhone
		}
	}
	if n == 0 {
		if plus {
			return 0, errPhone
		}
		return 0, nil
	}
	digits := d[:n]
	switch {
	case plus:
	case n > 2 && digits[0] == 0 && digits[1] == 0: // 00 international prefix
		digits = digits[2:]
	case digits[0] == 0: // UK national: 0 + 10 digits, or 0 + 9 for some 01 areas and 08 numbers
		if n != 11 && !(n == 10 && (digits[1] == 1 || digits[1] == 8)) || digits[1] == 0 {
			return 0, errPhone
		}
		return packPhone(44, digits[1:]), nil
	case n == 12 && digits[0] == 4 && digits[1] == 4: // 44… without the +
	default:
		return 0, errPhone
	}
	// International form: for +44 drop a "(0)" trunk digit written after it.
	if len(digits) > 3 && digits[0] == 4 && digits[1] == 4 && digits[2] == 0 {
		copy(digits[2:], digits[3:])
		digits = digits[:len(digits)-1]
	}
	if len(digits) < 8 || len(digits) > 15 || digits[0] == 0 {
		return 0, errPhone
	}
	// A UK national significant number has 9 or 10 digits and never starts with 0.
	if digits[0] == 4 && digits[1] == 4 && (len(digits) != 11 && len(digits) != 12 || digits[2] == 0) {
		return 0, errPhone
	}
	return packPhone(0, digits), nil
}

func packPhone(prefix uint64, digits []byte) Phone {
	v := prefix
	for _, c := range digits {
		v = v*10 + uint64(c)
	}
	return Phone(v)
}

type phoneError string

func (e phoneError) Error() string { return string(e) }

const errPhone = phoneError("not a phone number (want UK national or international form, e.g. 07700 900123 or +447700900123)")

// IsUKMobile reports a UK mobile number (+447…, but not +4470, personal
// numbering that redirects anywhere, nor +4476, pagers): the one kind of
// number that is a person's own.
func (p Phone) IsUKMobile() bool {
	v := p.ukPrefix(4) // 447X
	return v/10 == 447 && v != 4470 && v != 4476
}

// IsUKLandline reports UK geographic and non-geographic lines (+441, +442,
// +443): numbers a household shares, so agreeing on one is a household fact.
func (p Phone) IsUKLandline() bool {
	v := p.ukPrefix(3) // 44X
	return v == 441 || v == 442 || v == 443
}

// ukPrefix is the first n digits of a UK number (+44 and at least nine
// digits more), 0 for any other.
func (p Phone) ukPrefix(n int) uint64 {
	if p < 44_000_000_000 || p >= 450_000_000_000 {
		return 0
	}
	v, limit := uint64(p), uint64(1)
	for range n {
		limit *= 10
	}
	for v >= limit {
		v /= 10
	}
	return v
}
