package matcher

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"sort"
)

//go:embed data/weights.json
var defaultWeightsJSON []byte

// Weights holds the Fellegi–Sunter parameters: for each field and level, m
// (how often a true match shows that level) and u (how often a non-match
// does). A level's match weight is log2(m/u) bits; a candidate's score is the
// sum over fields. Exact agreement on a given or family name is
// term-frequency adjusted: its u is that name's share of the live plans, so
// agreeing on a rare surname counts for more than agreeing on Smith.
//
// The tiers turn scores into posterior odds: with N live plans and a prior
// probability MemberPrior that a caller holds a plan at all, the prior odds
// that a caller is one given plan holder are MemberPrior/N, so a score of s
// bits gives posterior odds MemberPrior/N · 2^s. MatchPosterior and
// PossiblePosterior are the posterior probabilities the tiers require, which
// makes the thresholds grow with the index (log2 N) instead of being tuned to
// one data set.
type Weights struct {
	// MU maps field name → level name → [m, u].
	MU map[string]map[string][2]float64 `json:"m_u"`

	MatchPosterior    float64 `json:"match_posterior"`
	PossiblePosterior float64 `json:"possible_posterior"`
	MemberPrior       float64 `json:"member_prior"`
	// MarginBits: a match needs the runner-up at least this many bits lower.
	MarginBits float64 `json:"margin_bits"`
	// MaxNameBits caps a term-frequency-adjusted name weight: a name seen once
	// in a small index is not proof of identity.
	MaxNameBits float64 `json:"max_name_bits"`
	// HouseholdBonusBits: postcode, address and a landline are facts of one
	// household and far from independent; together they count as the
	// strongest of them plus at most this many bits.
	HouseholdBonusBits float64 `json:"household_bonus_bits"`
	// Comment says where the m and u came from and how to re-estimate them.
	Comment string `json:"comment,omitempty"`

	w [numFields][numLevels]float64 // log2(m/u), 0 for missing
	m [numFields][numLevels]float64
}

// DefaultWeights returns the embedded weights (data/weights.json).
func DefaultWeights() *Weights {
	w, err := ParseWeights(defaultWeightsJSON)
	if err != nil {
		panic("matcher: embedded weights: " + err.Error())
	}
	return w
}

// levelsNeeded are, for each field, the levels the embedded weights give:
// those the comparisons produce. A weights file leaving one out would score
// it 0 bits without a word.
var levelsNeeded = func() map[string][]string {
	var f struct {
		MU map[string]map[string]json.RawMessage `json:"m_u"`
	}
	if err := json.Unmarshal(defaultWeightsJSON, &f); err != nil {
		panic("matcher: embedded weights: " + err.Error())
	}
	out := map[string][]string{}
	for field, levels := range f.MU {
		for l := range levels {
			out[field] = append(out[field], l)
		}
		sort.Strings(out[field])
	}
	return out
}()

// ParseWeights reads weights JSON and checks every probability; a key it
// does not know, a field or level left out, or a negative number of bits is
// an error.
func ParseWeights(b []byte) (*Weights, error) {
	var w Weights
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&w); err != nil {
		return nil, fmt.Errorf("weights: %w", err)
	}
	// As json.Unmarshal did: anything after the object (a second object
	// pasted on, a stray brace) is an error, not silently left unread.
	if len(bytes.TrimSpace(b[dec.InputOffset():])) > 0 {
		return nil, fmt.Errorf("weights: more after the weights object: want a single JSON object")
	}
	if err := w.prepare(); err != nil {
		return nil, err
	}
	return &w, nil
}

func (w *Weights) prepare() error {
	for name := range w.MU {
		if !slices.Contains(fieldNames[:], name) {
			return fmt.Errorf("weights: m_u: unknown field %q", name)
		}
	}
	for f := Field(0); f < numFields; f++ {
		levels, ok := w.MU[f.String()]
		if !ok {
			return fmt.Errorf("weights: no m/u for field %s", f)
		}
		for _, l := range levelsNeeded[f.String()] {
			if _, ok := levels[l]; !ok {
				return fmt.Errorf("weights: field %s: no m/u for level %s", f, l)
			}
		}
		for name, mu := range levels {
			var l Level
			if err := l.UnmarshalText([]byte(name)); err != nil {
				return fmt.Errorf("weights: field %s: unknown level %q", f, name)
			}
			m, u := mu[0], mu[1]
			if !(m > 0 && m <= 1 && u > 0 && u <= 1) {
				return fmt.Errorf("weights: field %s level %s: m and u must be in (0, 1]", f, name)
			}
			w.m[f][l] = m
			w.w[f][l] = math.Log2(m / u)
		}
	}
	if !(w.MatchPosterior > 0 && w.MatchPosterior < 1 && w.PossiblePosterior > 0 && w.PossiblePosterior < w.MatchPosterior) {
		return fmt.Errorf("weights: need 0 < possible_posterior < match_posterior < 1")
	}
	if !(w.MemberPrior > 0 && w.MemberPrior <= 1) {
		return fmt.Errorf("weights: member_prior must be in (0, 1]")
	}
	if !(w.MaxNameBits > 0) {
		return fmt.Errorf("weights: max_name_bits must be more than 0 (missing, it would cap every name's weight at 0)")
	}
	if !(w.MarginBits >= 0) || !(w.HouseholdBonusBits >= 0) {
		return fmt.Errorf("weights: margin_bits and household_bonus_bits must not be negative")
	}
	return nil
}

// MarshalJSON writes the parameters (not the derived weights).
func (w *Weights) MarshalJSON() ([]byte, error) {
	type plain Weights
	return json.MarshalIndent((*plain)(w), "", "  ")
}

// Weight returns the match weight in bits of a level of a field, without
// term-frequency adjustment.
func (w *Weights) Weight(f Field, l Level) float64 { return w.w[f][l] }

// thresholds returns the match and possible score thresholds for n live plans.
func (w *Weights) thresholds(n int) (match, possible float64) {
	if n < 1 {
		n = 1
	}
	prior := math.Log2(float64(n) / w.MemberPrior)
	logit := func(p float64) float64 { return math.Log2(p / (1 - p)) }
	return prior + logit(w.MatchPosterior), prior + logit(w.PossiblePosterior)
}

// tfWeight is the weight of exact agreement on a name carried by count of n
// live plans.
func (w *Weights) tfWeight(f Field, count int32, n int) float64 {
	m := w.m[f][Exact]
	u := float64(max(count, 1)) / float64(max(n, 1))
	return min(math.Log2(m/u), w.MaxNameBits)
}
