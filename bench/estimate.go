package bench

import (
	"fmt"
	"math/rand/v2"

	"github.com/planflag/planflag/matcher"
)

// EstimateMU estimates Fellegi–Sunter m and u probabilities from labelled
// queries: m from each member query against its own plan, u from each query
// against randomPerQuery plans drawn at random from the live ones. Levels are
// counted only where both sides have the field (Missing carries no weight).
// Probabilities are smoothed (add one half) so no level gets 0 or 1, and m
// of a disagreement is floored at minDifferentM.
//
// levels lists, per field, the levels to estimate: those of the current
// weights file. A level seen but not listed is an error, so a new level
// cannot slip in unweighted.
func EstimateMU(ix *matcher.Index, queries []LabeledQuery, live []string, randomPerQuery int, seed uint64,
	levels map[string]map[string][2]float64) (map[string]map[string][2]float64, error) {
	type counts map[matcher.Level]int
	var m, u [8]counts
	for f := range m {
		m[f], u[f] = counts{}, counts{}
	}
	if randomPerQuery > 0 && len(live) == 0 {
		return nil, fmt.Errorf("estimate: no live plans to draw non-matching pairs from")
	}
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	add := func(c *[8]counts, a *matcher.Agreement) {
		for f := matcher.Field(0); f < 8; f++ {
			if l := a.Level(f); l != matcher.Missing {
				c[f][l]++
			}
		}
	}
	for _, lq := range queries {
		if lq.Expect != "" {
			a, _, found, err := ix.Explain(lq.Query, lq.Expect)
			if err == nil && found {
				add(&m, &a)
			}
		}
		for range randomPerQuery {
			id := live[rng.IntN(len(live))]
			if id == lq.Expect {
				continue
			}
			a, _, found, err := ix.Explain(lq.Query, id)
			if err == nil && found {
				add(&u, &a)
			}
		}
	}
	out := make(map[string]map[string][2]float64)
	for f := matcher.Field(0); f < 8; f++ {
		want := levels[f.String()]
		if want == nil {
			return nil, fmt.Errorf("estimate: no levels listed for field %s", f)
		}
		for l := range m[f] {
			if _, ok := want[l.String()]; !ok {
				return nil, fmt.Errorf("estimate: field %s shows level %s, which the weights do not list", f, l)
			}
		}
		for l := range u[f] {
			if _, ok := want[l.String()]; !ok {
				return nil, fmt.Errorf("estimate: field %s shows level %s, which the weights do not list", f, l)
			}
		}
		mt, ut := total(m[f]), total(u[f])
		out[f.String()] = make(map[string][2]float64)
		for name := range want {
			var l matcher.Level
			if err := l.UnmarshalText([]byte(name)); err != nil {
				return nil, err
			}
			if l == matcher.InvalidCheck {
				out[f.String()][name] = [2]float64{1, 1} // never used to match
				continue
			}
			k := float64(len(want))
			mp := (float64(m[f][l]) + 0.5) / (float64(mt) + 0.5*k)
			if l == matcher.Different {
				// The error model is one model: real callers and records
				// disagree more often than any model of them, so a
				// disagreement never costs more than a 1-in-50 slip would.
				mp = max(mp, minDifferentM)
			}
			out[f.String()][name] = [2]float64{mp, (float64(u[f][l]) + 0.5) / (float64(ut) + 0.5*k)}
		}
	}
	return out, nil
}

// minDifferentM floors m for the Different level of every field.
const minDifferentM = 0.02

func total[M ~map[K]int, K comparable](c M) int {
	n := 0
	for _, v := range c {
		n += v
	}
	return n
}
