package matcher

// NHSNumber is a ten-digit NHS number; 0 means missing.
type NHSNumber uint64

// NHS number states after parsing.
const (
	nhsMissing = iota
	nhsValid
	nhsBadCheck // ten digits whose modulus-11 check digit is wrong
)

// ParseNHSNumber reads ten digits, allowing spaces and dashes ("943 476
// 5919", "943-476-5919"). It returns the number and whether its check digit
// is right; a string that is not ten digits is an error. The empty string is
// (0, nhsMissing, nil).
func ParseNHSNumber(s string) (NHSNumber, int, error) {
	var v uint64
	n := 0
	sum := 0
	check := -1
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= '0' && c <= '9':
			if n == 10 {
				return 0, nhsMissing, errNHS
			}
			d := int(c - '0')
			if n < 9 {
				sum += d * (10 - n)
			} else {
				check = d
			}
			v = v*10 + uint64(d)
			n++
		case c == ' ' || c == '-' || c == '\t':
		default:
			return 0, nhsMissing, errNHS
		}
	}
	if n == 0 {
		return 0, nhsMissing, nil
	}
	if n != 10 {
		return 0, nhsMissing, errNHS
	}
	if want, ok := checkDigit(sum); !ok || want != check {
		return NHSNumber(v), nhsBadCheck, nil
	}
	return NHSNumber(v), nhsValid, nil
}

// checkDigit is the modulus-11 check digit for the weighted sum of an NHS
// number's first nine digits (the first times 10, down to the ninth times
// 2); false when the remainder gives 10, for which no number is issued.
func checkDigit(sum int) (int, bool) {
	switch c := 11 - sum%11; c {
	case 11:
		return 0, true
	case 10:
		return 0, false
	default:
		return c, true
	}
}

// NHSCheckDigit returns the check digit (an ASCII digit) of the NHS number
// whose first nine digits are nine, and false when those nine digits have
// none. nine must be nine ASCII digits. Test and benchmark data use it to
// make valid numbers.
func NHSCheckDigit(nine string) (byte, bool) {
	sum := 0
	for i := range 9 {
		sum += int(nine[i]-'0') * (10 - i)
	}
	c, ok := checkDigit(sum)
	return byte('0' + c), ok
}

type nhsError string

func (e nhsError) Error() string { return string(e) }

const errNHS = nhsError("not an NHS number (want ten digits, spaces or dashes allowed)")

// ValidNHSNumber reports whether s is a ten-digit NHS number with a correct
// modulus-11 check digit.
func ValidNHSNumber(s string) bool {
	_, st, err := ParseNHSNumber(s)
	return err == nil && st == nhsValid
}
