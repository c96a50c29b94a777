package matcher

import (
	"errors"
	"strconv"
	"testing"
	"time"
)

func TestParseDate(t *testing.T) {
	check := func(in string, want Date, wantErr bool) {
		t.Helper()
		got, err := ParseDate(in)
		if (err != nil) != wantErr || got != want {
			t.Errorf("ParseDate(%q) = %v, %v; want %v, err %v", in, got, err, want, wantErr)
		}
	}
	check("1941-03-07", 19410307, false)
	check("07/03/1941", 19410307, false)
	check("7/3/1941", 19410307, false)
	check("07-03-1941", 19410307, false)
	check(" 1941-03-07 ", 19410307, false)
	check("", 0, false)
	check("2000-02-29", 20000229, false)
	check("1900-02-29", 0, true) // not a leap year
	check("1941-02-30", 0, true)
	check("1941-13-01", 0, true)
	check("31/04/1941", 0, true)
	check("1941/03/07", 19410307, false) // year first is always year, month, day
	check("1941.03.07", 19410307, false)
	check("07.03.1941", 19410307, false)
	check("1941/3/7", 19410307, false)
	check("1941/07/03", 19410703, false)
	check("1941/13/07", 0, true) // not year, day, month either
	// The month in words, as NHS screens show dates.
	check("07-Mar-1941", 19410307, false)
	check("7 March 1941", 19410307, false)
	check("7th March 1941", 19410307, false)
	check("1ST JAN 1950", 19500101, false)
	check("22nd Sept 1930", 19300922, false)
	check("March 7, 1941", 19410307, false)
	check("mar 7 1941", 19410307, false)
	check(" 07 mar 1941 ", 19410307, false)
	check("31 Apr 1941", 0, true) // no such day
	check("29 Feb 1941", 0, true)
	check("7 Mar 41", 0, true)  // two-digit year
	check("7 Ma 1941", 0, true) // too short to name a month
	check("7 Marchy 1941", 0, true)
	check("7 Mar 1941 12", 0, true)
	check("Mar 1941", 0, true)
	check("7 1941 Mar", 0, true)
	check("7x Mar 1941", 0, true)
	check("2st Mar 1941", 0, true) // a lost digit (21st), not a guess
	check("1th Mar 1941", 0, true)
	check("11st May 1941", 0, true)
	check("11th May 1941", 19410511, false)
	check("23RD May 1941", 19410523, false)
	check("12th May 1941", 19410512, false)
	check("22nd May 1941", 19410522, false)
	check("32 Mar 1941", 0, true)
	check("7 Mar 1850", 0, true)
	check("03/07/41", 0, true) // two-digit year is ambiguous
	check("yesterday", 0, true)
	check("1941-03", 0, true)
	check("1941-03-07-01", 0, true)
	check("1850-01-01", 0, true)
	check("19410307", 0, true)
	check("1941-3/07", 0, true)
	check("1941-03-07T00:00:00Z", 19410307, false) // FHIR's date-time at midnight
	check("1941-03-07 00:00:00", 19410307, false)
	check("1941-03-07T14:30:00Z", 0, true) // a time of day is not a birth date
	check("07/03/1941T00:00:00Z", 0, true)
}

func TestParsePostcode(t *testing.T) {
	check := func(in, want string, outward string, wantErr bool) {
		t.Helper()
		got, err := ParsePostcode(in)
		if (err != nil) != wantErr {
			t.Fatalf("ParsePostcode(%q) error %v, want error %v", in, err, wantErr)
		}
		if wantErr {
			return
		}
		if got.String() != want || got.Outward().String() != outward {
			t.Errorf("ParsePostcode(%q) = %q outward %q; want %q outward %q", in, got, got.Outward(), want, outward)
		}
	}
	check("SW1A 1AA", "SW1A 1AA", "SW1A", false)
	check("sw1a1aa", "SW1A 1AA", "SW1A", false)
	check("  M1 1AE ", "M1 1AE", "M1", false)
	check("B33 8TH", "B33 8TH", "B33", false)
	check("CR2 6XH", "CR2 6XH", "CR2", false)
	check("DN55 1PT", "DN55 1PT", "DN55", false)
	check("W1A 0AX", "W1A 0AX", "W1A", false)
	check("EC1A 1BB", "EC1A 1BB", "EC1A", false)
	check("GIR 0AA", "GIR 0AA", "GIR", false) // the one non-geographic postcode of the format
	check("gir0aa", "GIR 0AA", "GIR", false)
	check("SW1A", "SW1A", "SW1A", false) // outward only
	check("m1", "M1", "M1", false)
	check("", "", "", false)
	check("SW1A 1AI", "", "", true) // I is not an inward letter
	check("12345", "", "", true)
	check("SW1A-1AA", "", "", true)
	check("SW1A 1AAA", "", "", true)
	check("QQQ", "", "", true)
	check("SW1Ä1AA", "", "", true)
	// Letter O or I for digit 0 or 1 (or the other way round), mended
	// where only one reading has a postcode's shape.
	check("SW1A OAA", "SW1A 0AA", "SW1A", false)
	check("W1 OAX", "W1 0AX", "W1", false)
	check("SWIA 1AA", "SW1A 1AA", "SW1A", false)
	check("ec1a ibb", "EC1A 1BB", "EC1A", false)
	check("0L9 6AB", "OL9 6AB", "OL9", false)
	check("OOOOAA", "", "", true) // no reading in a real area: refused, not guessed
	check("S0508FF", "SO50 8FF", "SO50", false)
	check("GIR OAA", "GIR 0AA", "GIR", false)
	check("WIO", "W10", "W10", false)
	// Digits in the postcode field with no real reading stay errors.
	for _, garbage := range []string{"11", "OO", "1O", "1111111", "OIOIOIO", "10 1AA"} {
		check(garbage, "", "", true)
	}
	check("E1O 1AA", "E1O 1AA", "E1O", false) // already of a postcode's shape: kept as typed

	oneOff := func(x, y string, want bool) {
		t.Helper()
		if got := postcodeOneOff(rawPostcode(x), rawPostcode(y)); got != want {
			t.Errorf("postcodeOneOff(%s, %s) = %v, want %v", x, y, got, want)
		}
	}
	oneOff("SW1A 1AA", "SW1A 1AB", true)  // one substitution
	oneOff("SW1A 1AB", "SW1A 1BA", true)  // adjacent transposition
	oneOff("SW1A 1AA", "SWA1 1AA", true)  // transposition in the outward code
	oneOff("SW1A 1AA", "SW1A 2BB", false) // three differ
	oneOff("SW1A 1AB", "SW1A 2BA", false) // two differ, not a transposition
	oneOff("M1 1AE", "M11 1AE", false)    // lengths differ
	oneOff("M1 1AE", "M1 1AE", false)     // equal is not one off
}

// rawPostcode packs s without validation.
func rawPostcode(s string) Postcode {
	var p Postcode
	n := 0
	for i := 0; i < len(s); i++ {
		if s[i] != ' ' {
			p |= Postcode(s[i]) << (56 - 8*n)
			n++
		}
	}
	return p
}

func TestParsePhone(t *testing.T) {
	check := func(in string, want uint64, landline, wantErr bool) {
		t.Helper()
		got, err := ParsePhone(in)
		if (err != nil) != wantErr || uint64(got) != want {
			t.Errorf("ParsePhone(%q) = %d, %v; want %d, err %v", in, got, err, want, wantErr)
		}
		if err == nil && got != 0 && got.IsUKLandline() != landline {
			t.Errorf("ParsePhone(%q).IsUKLandline() = %v", in, got.IsUKLandline())
		}
	}
	check("+447700900123", 447700900123, false, false)
	check("07700 900123", 447700900123, false, false)
	check("07700-900-123", 447700900123, false, false)
	check("+44 (0)7700 900123", 447700900123, false, false)
	check("0044 7700 900123", 447700900123, false, false)
	check("447700900123", 447700900123, false, false)
	check("020 7946 0000", 442079460000, true, false)
	check("(0113) 496 0000", 441134960000, true, false)
	check("+353 1 234 5678", 35312345678, false, false)
	check("", 0, false, false)
	check("0770090012", 0, false, true)            // a mobile has eleven digits
	check("016977 4567", 44169774567, true, false) // some 01 areas have ten
	check("phone me", 0, false, true)
	check("+", 0, false, true)
	check("07700 900123 ext 4", 0, false, true)
	check("123", 0, false, true)
	check("+44 7700 9001234567", 0, false, true)
}

func TestParseNHSNumber(t *testing.T) {
	check := func(in string, want uint64, state int, wantErr bool) {
		t.Helper()
		got, st, err := ParseNHSNumber(in)
		if (err != nil) != wantErr || uint64(got) != want || st != state {
			t.Errorf("ParseNHSNumber(%q) = %d, %d, %v; want %d, %d, err %v", in, got, st, err, want, state, wantErr)
		}
	}
	check("9434765919", 9434765919, nhsValid, false) // the NHS Digital example number
	check("943 476 5919", 9434765919, nhsValid, false)
	check("943-476-5919", 9434765919, nhsValid, false)
	check("9434765918", 9434765918, nhsBadCheck, false)
	check("9434765910", 9434765910, nhsBadCheck, false)
	check("", 0, nhsMissing, false)
	check("943476591", 0, nhsMissing, true)
	check("94347659190", 0, nhsMissing, true)
	check("NHS9434765919", 0, nhsMissing, true)
	// Every single-digit error in a valid number is caught by the check digit.
	base := "9434765919"
	for i := 0; i < 10; i++ {
		for d := byte('0'); d <= '9'; d++ {
			if d == base[i] {
				continue
			}
			b := []byte(base)
			b[i] = d
			if ValidNHSNumber(string(b)) {
				t.Errorf("%s (digit %d changed) passes the check", b, i)
			}
		}
	}
	// A number whose check digit would be 10 is never valid.
	for n := 100000000; n < 100000100; n++ {
		s := strconv.Itoa(n)
		sum := 0
		for i := 0; i < 9; i++ {
			sum += int(s[i]-'0') * (10 - i)
		}
		if 11-sum%11 == 10 {
			for d := 0; d <= 9; d++ {
				if ValidNHSNumber(s + strconv.Itoa(d)) {
					t.Errorf("%s%d valid though its check digit would be 10", s, d)
				}
			}
		}
	}
}

// NHSCheckDigit gives the published example's check digit, and for every
// nine digits the one digit ParseNHSNumber accepts, or none when it accepts none.
func TestNHSCheckDigit(t *testing.T) {
	if c, ok := NHSCheckDigit("943476591"); !ok || c != '9' {
		t.Errorf("NHSCheckDigit(943476591) = %c, %v; want 9", c, ok)
	}
	for n := 400000000; n < 400000200; n++ {
		nine := strconv.Itoa(n)
		c, ok := NHSCheckDigit(nine)
		for d := byte('0'); d <= '9'; d++ {
			if valid := ValidNHSNumber(nine + string(d)); valid != (ok && d == c) {
				t.Errorf("%s%c: valid %v, NHSCheckDigit %c, %v", nine, d, valid, c, ok)
			}
		}
	}
}

func FuzzParsers(f *testing.F) {
	for _, s := range []string{"1941-03-07", "07/03/1941", "SW1A 1AA", "+447700900123", "943 476 5919", "", "\x00", "99/99/9999",
		"07-Mar-1941", "March 7, 1941", "1941/03/07", "SW1A OAA", "0L9 6AB"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if d, err := ParseDate(s); err == nil && d != 0 && MakeDate(d.Year(), d.Month(), d.Day()) != d {
			t.Fatalf("ParseDate(%q) = %v, not a real date", s, d)
		}
		if p, err := ParsePostcode(s); err == nil && p != 0 {
			again, err := ParsePostcode(p.String())
			if err != nil || again != p {
				t.Fatalf("postcode %q does not round-trip: %q %v", s, p, err)
			}
		}
		if ph, err := ParsePhone(s); err == nil && ph != 0 {
			again, err := ParsePhone("+" + strconv.FormatUint(uint64(ph), 10))
			if err != nil || again != ph {
				t.Fatalf("phone %q does not round-trip: %d %v", s, ph, err)
			}
		}
		if n, st, err := ParseNHSNumber(s); err == nil && st == nhsValid && !ValidNHSNumber(strconv.FormatUint(uint64(n), 10)) && n >= 1e9 {
			t.Fatalf("NHS number %q valid but its digits are not", s)
		}
	})
}

// A birth date after today is refused unless day and month the other way
// round make it a past one — and not then when the month is in words,
// which cannot have been swapped.
func TestFutureBirthDateSwapRescue(t *testing.T) {
	latest := latestBirthDate(time.Now())
	var future time.Time
	for d := time.Now().UTC().AddDate(0, 0, 3); d.Before(time.Now().AddDate(1, 0, 0)); d = d.AddDate(0, 0, 1) {
		dt := MakeDate(d.Year(), int(d.Month()), d.Day())
		if sw := swappedDate(dt); dt > latest && sw != 0 && sw <= latest {
			future = d
			break
		}
	}
	if future.IsZero() {
		// On the year's last days every later date swaps into the future.
		t.Skip("no future date today whose day and month swapped are past")
	}
	numeric := future.Format("02/01/2006")
	words := future.Format("2 Jan 2006")
	if err := Check(Query{GivenName: "Ann", FamilyName: "Lee", BirthDate: numeric}); err != nil {
		t.Errorf("%s (a past date swapped) refused: %v", numeric, err)
	}
	var ie *InputError
	if err := Check(Query{GivenName: "Ann", FamilyName: "Lee", BirthDate: words}); !errors.As(err, &ie) || ie.Field != "birth_date" {
		t.Errorf("%s (the month in words) = %v, want refused as in the future", words, err)
	}
}
