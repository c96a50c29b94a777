package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"time"

	"github.com/planflag/planflag/bench"
	"github.com/planflag/planflag/matcher"
)

// buildIndex applies a data set's events to a new index.
func buildIndex(ds *bench.Dataset, w *matcher.Weights) (*matcher.Index, matcher.ApplyStats) {
	ix := matcher.NewIndex(w)
	changes := make([]matcher.Change, len(ds.Events))
	for i := range ds.Events {
		changes[i] = ds.Events[i].Change()
	}
	return ix, ix.Apply(changes)
}

func runAccuracy(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("accuracy", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var d dataFlags
	d.register(fs)
	weights := fs.String("weights", "", "weights JSON to score with (default: the embedded ones)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if d.febrl == "" && d.cfg.Queries < 1 {
		return fmt.Errorf("-queries must be at least 1: there is nothing to measure without callers")
	}
	var w *matcher.Weights
	if *weights != "" {
		b, err := os.ReadFile(*weights)
		if err != nil {
			return err
		}
		if w, err = matcher.ParseWeights(b); err != nil {
			return err
		}
	}
	ds, name, err := d.load(stderr)
	if err != nil {
		return err
	}
	start := time.Now()
	ix, st := buildIndex(ds, w)
	fmt.Fprintf(stderr, "index: %d live plans (%d withdrawn, %d stale events ignored) in %.1fs\n",
		ix.Live(), st.Withdrawn, st.Stale, time.Since(start).Seconds())
	withdrawn := ds.Withdrawn()
	start = time.Now()
	rep := bench.Evaluate("planflag", ix, ds.Queries, withdrawn, ix)
	fmt.Fprintf(stderr, "%s (%.1fs)\n", rep.Summary(), time.Since(start).Seconds())
	base := bench.Evaluate("exact-match baseline", bench.NewBaseline(ds.Events), ds.Queries, withdrawn, nil)
	fmt.Fprintln(stderr, base.Summary())
	fmt.Fprintf(stdout, "### %s: %d plans, %d queries\n\n", name, ix.Live(), len(ds.Queries))
	bench.WriteMarkdown(stdout, rep, base)
	fmt.Fprintln(stdout)
	return nil
}

func runEstimate(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("estimate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var d dataFlags
	d.register(fs)
	random := fs.Int("random", 200, "random non-matching plans compared per query, for u")
	out := fs.String("out", "", "write the weights JSON here (default: standard output)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	switch {
	case *random < 1:
		return fmt.Errorf("-random must be at least 1: u is estimated from random non-matching plans")
	case d.febrl == "" && d.cfg.Queries < 1:
		return fmt.Errorf("-queries must be at least 1: m and u are estimated from callers' queries")
	}
	ds, name, err := d.load(stderr)
	if err != nil {
		return err
	}
	w := matcher.DefaultWeights()
	ix, _ := buildIndex(ds, w)
	// The index's live plans, whatever the data set (FEBRL has no
	// synthetic plan holders), in a fixed order for the seeded draws.
	var live []string
	ix.EachLive(func(planID string, _ uint64) { live = append(live, planID) })
	slices.Sort(live)
	mu, err := bench.EstimateMU(ix, ds.Queries, live, *random, d.cfg.Seed+1, w.MU)
	if err != nil {
		return err
	}
	w.MU = mu
	w.Comment = fmt.Sprintf("m and u estimated by `flagbench estimate -seed %d -plans %d -queries %d -random %d` (%s): "+
		"m from member queries against their own plan, u from queries against random plans; "+
		"the posteriors, prior, margin and caps are design choices (see docs/accuracy.md)",
		d.cfg.Seed, d.cfg.Plans, d.cfg.Queries, *random, name)
	b, err := json.MarshalIndent(w, "", "  ")
	if err != nil {
		return err
	}
	b = append(b, '\n')
	if *out == "" {
		_, err = stdout.Write(b)
		return err
	}
	if _, err := matcher.ParseWeights(b); err != nil {
		return fmt.Errorf("estimated weights do not parse: %w", err)
	}
	return os.WriteFile(*out, b, 0o644)
}
