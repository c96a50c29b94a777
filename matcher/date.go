package matcher

// Date is a calendar date packed as YYYYMMDD; 0 means missing.
type Date uint32

// Year, Month and Day unpack d.
func (d Date) Year() int  { return int(d / 10000) }
func (d Date) Month() int { return int(d / 100 % 100) }
func (d Date) Day() int   { return int(d % 100) }

// earliest and latest bound plausible birth dates.
const (
	minBirthYear = 1880
	maxBirthYear = 2200
)

// MakeDate returns the packed date, or 0 if it is not a real calendar date in
// the plausible range.
func MakeDate(y, m, d int) Date {
	if y < minBirthYear || y > maxBirthYear || m < 1 || m > 12 || d < 1 || d > daysIn(y, m) {
		return 0
	}
	return Date(y*10000 + m*100 + d)
}

func daysIn(y, m int) int {
	switch m {
	case 2:
		if y%4 == 0 && (y%100 != 0 || y%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}

// ParseDate reads ISO YYYY-MM-DD (also YYYY/MM/DD, YYYY.MM.DD) or UK
// DD/MM/YYYY (also D/M/YYYY, DD-MM-YYYY, DD.MM.YYYY), or a date with the
// month in words, as NHS screens show them ("07-Mar-1941", "7 March 1941",
// "7th Mar 1941", "March 7, 1941"), with surrounding spaces. A two-digit
// year is refused: its century is a guess. The empty string is (0, nil);
// anything else unreadable, or a date that does not exist, is an error
// naming neither field nor value (the caller adds the field).
func ParseDate(s string) (Date, error) {
	d, _, err := parseDate(s)
	return d, err
}

// parseDate is ParseDate, also reporting a date whose month was given in
// words: its day and month cannot have been put the wrong way round.
func parseDate(s string) (Date, bool, error) {
	s = trimSpace(s)
	if s == "" {
		return 0, false, nil
	}
	if len(s) > 10 && (s[10] == 'T' || s[10] == ' ') && s[4] == '-' && s[7] == '-' {
		// A date-time at midnight, as FHIR and databases write a date
		// ("1941-03-07T00:00:00Z"); any other time is not a birth date.
		switch s[11:] {
		case "00:00:00", "00:00:00Z", "00:00:00.000Z", "00:00:00+00:00", "00:00":
			s = s[:10]
		default:
			return 0, false, errDateFormat
		}
	}
	if hasLetter(s) {
		wd, err := parseWordDate(s)
		return wd, true, err
	}
	var parts [3]int
	var widths [3]int
	n := 0
	sep := byte(0)
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= '0' && c <= '9':
			if widths[n] == 4 {
				return 0, false, errDateFormat
			}
			parts[n] = parts[n]*10 + int(c-'0')
			widths[n]++
		case c == '-' || c == '/' || c == '.':
			if sep != 0 && c != sep || widths[n] == 0 || n == 2 {
				return 0, false, errDateFormat
			}
			sep = c
			n++
		default:
			return 0, false, errDateFormat
		}
	}
	if n != 2 || widths[2] == 0 {
		return 0, false, errDateFormat
	}
	var y, m, d int
	switch {
	case widths[0] == 4 && widths[1] <= 2 && widths[2] <= 2:
		// Year first, with dashes, slashes or dots: always year, month,
		// day (no one writes year, day, month).
		y, m, d = parts[0], parts[1], parts[2]
	case widths[2] == 4 && widths[0] <= 2 && widths[1] <= 2:
		d, m, y = parts[0], parts[1], parts[2]
	default:
		return 0, false, errDateFormat
	}
	dt := MakeDate(y, m, d)
	if dt == 0 {
		return 0, false, errDateRange
	}
	return dt, false, nil
}

func hasLetter(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i] | 0x20; c >= 'a' && c <= 'z' {
			return true
		}
	}
	return false
}

// monthNames are the months in English; a word matching the start of one,
// three letters or more, names it ("Mar", "Sept", "September").
var monthNames = [12]string{"january", "february", "march", "april", "may", "june",
	"july", "august", "september", "october", "november", "december"}

// parseWordDate reads a date whose month is a word: day, month, year
// ("07-Mar-1941", "7 March 1941", "7th Mar 1941") or month, day, year
// ("March 7, 1941"), the parts separated by spaces, dashes, slashes, dots
// or a comma. The day may carry its ordinal suffix (1st, 2nd, 3rd, 4th, 11th).
func parseWordDate(s string) (Date, error) {
	var parts [3]string
	n := 0
	for i := 0; i < len(s); {
		for i < len(s) && isDateSep(s[i]) {
			i++
		}
		j := i
		for j < len(s) && !isDateSep(s[j]) {
			j++
		}
		if j > i {
			if n == 3 {
				return 0, errDateFormat
			}
			parts[n] = s[i:j]
			n++
		}
		i = j
	}
	if n != 3 {
		return 0, errDateFormat
	}
	dayAt, monthAt := 0, 1
	if m := monthOf(parts[0]); m != 0 {
		dayAt, monthAt = 1, 0
	}
	m := monthOf(parts[monthAt])
	d := dayOf(parts[dayAt])
	y, ok := yearOf(parts[2])
	if m == 0 || d == 0 || !ok {
		return 0, errDateFormat
	}
	dt := MakeDate(y, m, d)
	if dt == 0 {
		return 0, errDateRange
	}
	return dt, nil
}

func isDateSep(c byte) bool {
	return c == ' ' || c == '\t' || c == '-' || c == '/' || c == '.' || c == ','
}

// monthOf is the month a word names (1–12), or 0.
func monthOf(w string) int {
	if len(w) < 3 || len(w) > len("september") {
		return 0
	}
	var lower [9]byte
	for i := 0; i < len(w); i++ {
		c := w[i] | 0x20
		if c < 'a' || c > 'z' {
			return 0
		}
		lower[i] = c
	}
	for i, name := range monthNames {
		if len(w) <= len(name) && name[:len(w)] == string(lower[:len(w)]) {
			return i + 1
		}
	}
	return 0
}

// dayOf reads a day of the month, 1–31, with or without an ordinal suffix;
// 0 if it is not one.
func dayOf(w string) int {
	digits := 0
	d := 0
	for digits < len(w) && digits < 2 && w[digits] >= '0' && w[digits] <= '9' {
		d = d*10 + int(w[digits]-'0')
		digits++
	}
	if digits == 0 {
		return 0
	}
	if d < 1 || d > 31 {
		return 0
	}
	if suffix := w[digits:]; suffix != "" {
		// The suffix must be the day's own: "2st" or "1th" has lost a
		// digit (21st, 11th), and is refused rather than guessed.
		want := "th"
		switch {
		case d == 11 || d == 12 || d == 13:
		case d%10 == 1:
			want = "st"
		case d%10 == 2:
			want = "nd"
		case d%10 == 3:
			want = "rd"
		}
		if len(suffix) != 2 || suffix[0]|0x20 != want[0] || suffix[1]|0x20 != want[1] {
			return 0
		}
	}
	return d
}

// yearOf reads a four-digit year.
func yearOf(w string) (int, bool) {
	if len(w) != 4 {
		return 0, false
	}
	y := 0
	for i := 0; i < 4; i++ {
		if w[i] < '0' || w[i] > '9' {
			return 0, false
		}
		y = y*10 + int(w[i]-'0')
	}
	return y, true
}

type dateError string

func (e dateError) Error() string { return string(e) }

const (
	errDateFormat = dateError("not a date: want YYYY-MM-DD, DD/MM/YYYY or DD Mon YYYY")
	errDateRange  = dateError("not a real date of birth (impossible day or month, or year out of range)")
)

func trimSpace(s string) string {
	for len(s) > 0 && (s[0] == ' ' || s[0] == '\t') {
		s = s[1:]
	}
	for len(s) > 0 && (s[len(s)-1] == ' ' || s[len(s)-1] == '\t') {
		s = s[:len(s)-1]
	}
	return s
}

// dateDigitDistance counts differing decimal digits of two packed dates.
// dateSlip reports dates one slip apart: one digit differs, and if it is the
// year's tens digit, by one (1952 for 1962). Two or more decades apart on
// the same day and month is a parent or a child (John Hughes, 1952 and
// 1982), not a slip; so is another century.
func dateSlip(a, b Date) bool {
	da, db := int(a/100_000), int(b/100_000) // YYY of YYYYMMDD
	if da-db > 1 || db-da > 1 {
		return false
	}
	return dateDigitDistance(a, b) == 1
}

func dateDigitDistance(a, b Date) int {
	x, y := uint32(a), uint32(b)
	n := 0
	for i := 0; i < 8; i++ {
		if x%10 != y%10 {
			n++
		}
		x /= 10
		y /= 10
	}
	return n
}
