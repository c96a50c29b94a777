package matcher

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
)

// A weights file that leaves out a parameter or a level, misspells a key or
// gives a negative number of bits is refused, naming what is wrong: read
// as zero, it would change every score without a word.
func TestParseWeightsRefusesIncompleteOrNegative(t *testing.T) {
	edit := func(f func(map[string]any)) []byte {
		var w map[string]any
		if err := json.Unmarshal(defaultWeightsJSON, &w); err != nil {
			t.Fatal(err)
		}
		f(w)
		b, _ := json.Marshal(w)
		return b
	}
	mu := func(w map[string]any) map[string]any { return w["m_u"].(map[string]any) }
	for _, c := range []struct {
		name string
		b    []byte
		want string
	}{
		{"no max_name_bits", edit(func(w map[string]any) { delete(w, "max_name_bits") }), "max_name_bits"},
		{"negative margin", edit(func(w map[string]any) { w["margin_bits"] = -5 }), "margin_bits"},
		{"negative household bonus", edit(func(w map[string]any) { w["household_bonus_bits"] = -1 }), "household_bonus_bits"},
		{"misspelt key", edit(func(w map[string]any) { w["margin_bit"] = 5 }), `unknown field "margin_bit"`},
		{"unknown field", edit(func(w map[string]any) { mu(w)["given_nmae"] = mu(w)["given_name"] }), `unknown field "given_nmae"`},
		{"level left out", edit(func(w map[string]any) { delete(mu(w)["given_name"].(map[string]any), "nickname") }), "given_name: no m/u for level nickname"},
		{"no levels", edit(func(w map[string]any) { mu(w)["gender"] = map[string]any{} }), "gender: no m/u for level"},
		{"trailing text", append(slices.Clip(defaultWeightsJSON), " x"...), "more after the weights object"},
		{"stray brace", append(slices.Clip(defaultWeightsJSON), '}'), "more after the weights object"},
		{"two objects", append(slices.Clip(defaultWeightsJSON), defaultWeightsJSON...), "more after the weights object"},
	} {
		if _, err := ParseWeights(c.b); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want one saying %q", c.name, err, c.want)
		}
	}
	if _, err := ParseWeights(defaultWeightsJSON); err != nil {
		t.Errorf("embedded weights: %v", err)
	}
}
