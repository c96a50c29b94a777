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
		{"2 Forest Homestead", false}, // "rest home" inside other words
		{"14 Elm Road", false},
		{"Care Road, Homeville", false},
		{"", false},
	} {
		if got := communalAddress(c.text); got != c.want {
			t.Errorf("communalAddress(%q) = %v, want %v", c.text, got, c.want)
		}
	}
}
