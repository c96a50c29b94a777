package matcher

import "testing"

func TestCommunalAddress(t *testing.T) {
	for _, c := range []struct {
		text string
		want bool
	}{
		{"Rosewood Care Home, 40 Park Road", true},
		{"ST ANNES REST-HOME", true},
		{"Flat 3, Elm Court Nursing  Home", true},
		{"Gracewood aged care centre", true},
		{"St Luke's Hospice", true},
		{"Rosewood Care Homes", true},
		{"Oak Care Home Northamptonshire", true},
		{"Rosewood Carehome", true},
		{"Elm Nursing Hm", true},
		{"Oak Residential Care", true},
		{"Birch Care Village", true},
		{"Holly Care Ctr", true},
		{"Rosewood Supported Living", true},
		{"Rosewood Sheltered Housing", true},
		{"Rosewood EMI Unit", true},
		{"Rosewood Res Home", true},
		{"St Mary's Children's Home", true},
		{"Old People's Home", true},
		{"4 Hospice Lane", false},
		{"6 Rest House Lane", false},
		{"2 Forest Homestead", false}, // "rest home" inside other words
		{"The Rest, Home Farm", false},
		{"Careful Homes Ltd", false},
		{"14 Elm Road", false},
		{"Care Road, Homeville", false},
		{"", false},
	} {
		if got := communalAddress(c.text); got != c.want {
			t.Errorf("communalAddress(%q) = %v, want %v", c.text, got, c.want)
		}
	}
}

func TestParseStreetFlats(t *testing.T) {
	elm := streetHash([]byte("elm road"))
	for _, c := range []struct {
		text                string
		house, street, flat uint32
	}{
		{"Flat 2, 14 Elm Road", 14 * 32, elm, 2 * 32},
		{"2/14 Elm Road", 14 * 32, elm, 2 * 32},
		{"14 Elm Road, Flat 9", 14 * 32, elm, 9 * 32},
		{"Flat B, 14 Elm Rd", 14 * 32, elm, 2},
		{"Flat No 9, 14 Elm Road", 14 * 32, elm, 9 * 32},
		{"No 14 Elm Road", 14 * 32, elm, 0},
		{"Apartment 3/14 Elm Road", 14 * 32, elm, 3 * 32},
		{"14, Elm Road", 14 * 32, elm, 0},
		{"14a Elm Road", 14*32 + 1, elm, 0},
		{"2nd Floor, 14 Elm Road", 14 * 32, elm, 2006 * 32},
		{"Rose Cottage", 0, 0, 0},
		{"Block 3, 14 Elm Road", 14 * 32, elm, 0},
		{"Ground Floor Flat, 14 Elm Road", 14 * 32, elm, 2003 * 32},
		{"Top Flat, 14 Elm Road", 14 * 32, elm, 2008 * 32},
		{"1st Floor, 14 Elm Road", 14 * 32, elm, 2005 * 32},
		{"Garden Flat, 14 Elm Road", 14 * 32, elm, 2004 * 32},
	} {
		h, st, f, _ := parseStreet(nil, c.text)
		if h != c.house || st != c.street || f != c.flat {
			t.Errorf("parseStreet(%q) = house %d street %d flat %d; want %d %d %d", c.text, h, st, f, c.house, c.street, c.flat)
		}
	}
}

func TestGenderCodes(t *testing.T) {
	for in, want := range map[string]uint8{"1": genderMale, "2": genderFemale, "F": genderFemale, "male": genderMale, "9": genderUnknown} {
		if got := parseGender(in); got != want {
			t.Errorf("parseGender(%q) = %d, want %d", in, got, want)
		}
	}
}
