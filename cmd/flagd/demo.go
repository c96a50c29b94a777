package main

import (
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/planflag/planflag/alert"
	"github.com/planflag/planflag/bench"
	"github.com/planflag/planflag/matcher"
)

// demoPlans is the size of the embedded demo plan store.
const demoPlans = 20_000

// demoIndex builds an index from a synthetic plan store generated in
// process (no files, no services), and returns three example queries: a
// confident match, a possible and a none.
func demoIndex() (*matcher.Index, []demoQuery, error) {
	cfg := bench.DefaultConfig()
	cfg.Plans, cfg.Queries = demoPlans, 2000
	ds, err := bench.Generate(cfg)
	if err != nil {
		return nil, nil, err
	}
	ix := matcher.NewIndex(nil)
	changes := make([]matcher.Change, len(ds.Events))
	for i := range ds.Events {
		changes[i] = ds.Events[i].Change()
	}
	ix.Apply(changes)
	want := map[matcher.Tier]string{
		matcher.TierMatch:    "a plan holder who gives a nickname",
		matcher.TierPossible: "the twin of a plan holder",
		matcher.TierNone:     "someone without a plan",
	}
	kinds := map[matcher.Tier]string{matcher.TierMatch: "nickname", matcher.TierPossible: "twin", matcher.TierNone: "stranger"}
	var out []demoQuery
	for _, t := range []matcher.Tier{matcher.TierMatch, matcher.TierPossible, matcher.TierNone} {
		for _, q := range ds.Queries {
			if q.Kind != kinds[t] {
				continue
			}
			if r, err := ix.Match(q.Query); err == nil && r.Tier == t {
				out = append(out, demoQuery{what: want[t], q: q.Query})
				break
			}
		}
	}
	return ix, out, nil
}

type demoQuery struct {
	what string
	q    matcher.Query
}

// runDemo answers the example lookups on the embedded demo data.
func runDemo(stdout io.Writer) error {
	start := time.Now()
	ix, examples, err := demoIndex()
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "planflag demo: %d synthetic plans indexed in %.1fs (no personal data: every record is generated)\n\n",
		ix.Live(), time.Since(start).Seconds())
	for i, ex := range examples {
		r, err := ix.Match(ex.q)
		if err != nil {
			return err
		}
		req, _ := json.Marshal(ex.q)
		resp, _ := json.MarshalIndent(alert.Response(fmt.Sprintf("demo-%d", i+1), r), "", "  ")
		fmt.Fprintf(stdout, "Lookup %d, %s:\n  %s\n%s\n\n", i+1, ex.what, req, resp)
	}
	fmt.Fprintln(stdout, "Batch lookups: go run ./cmd/flagd lookup -events FILE.jsonl < requests.jsonl (README).")
	return nil
}
