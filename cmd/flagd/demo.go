package main

import (
	"github.com/planflag/planflag/bench"
	"github.com/planflag/planflag/matcher"
)

// demoPlans is the size of the embedded demo plan store.
const demoPlans = 20_000

type demoQuery struct {
	what string
	q    matcher.Query
}

// demoLoad fills ix from a synthetic plan store generated in process (no
// files, no services) and returns three example queries that get a
// confident match, a possible and a none.
func demoLoad(ix *matcher.Index) ([]demoQuery, error) {
	cfg := bench.DefaultConfig()
	cfg.Plans, cfg.Queries = demoPlans, 2000
	ds, err := bench.Generate(cfg)
	if err != nil {
		return nil, err
	}
	changes := make([]matcher.Change, len(ds.Events))
	for i := range ds.Events {
		changes[i] = ds.Events[i].Change()
	}
	ix.Apply(changes)
	examples := []struct {
		tier matcher.Tier
		kind string
		what string
	}{
		{matcher.TierMatch, "nickname", "a plan holder who gives a nickname: match"},
		{matcher.TierPossible, "twin", "the twin of a plan holder: possible, to confirm with the caller"},
		{matcher.TierNone, "stranger", "someone without a plan: none"},
	}
	var out []demoQuery
	for _, ex := range examples {
		for _, q := range ds.Queries {
			if q.Kind != ex.kind {
				continue
			}
			if r, err := ix.Match(q.Query); err == nil && r.Tier == ex.tier {
				out = append(out, demoQuery{what: ex.what, q: q.Query})
				break
			}
		}
	}
	return out, nil
}
