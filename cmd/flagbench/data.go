package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/planflag/planflag/bench"
)

// dataFlags selects a data set: synthetic (seed, sizes) or FEBRL 4.
type dataFlags struct {
	cfg     bench.Config
	febrl   string
	idAsNHS bool
}

func (d *dataFlags) register(fs *flag.FlagSet) {
	d.cfg = bench.DefaultConfig()
	fs.Uint64Var(&d.cfg.Seed, "seed", d.cfg.Seed, "random seed of the synthetic set")
	fs.IntVar(&d.cfg.Plans, "plans", d.cfg.Plans, "plan holders in the synthetic plan store")
	fs.IntVar(&d.cfg.Queries, "queries", d.cfg.Queries, "caller queries")
	fs.Float64Var(&d.cfg.WithdrawFraction, "withdraw", d.cfg.WithdrawFraction, "share of plans withdrawn")
	fs.StringVar(&d.febrl, "febrl", "", "use FEBRL 4 from this folder (dataset4a.csv, dataset4b.csv) instead of synthetic data")
	fs.BoolVar(&d.idAsNHS, "id-as-nhs", false, "FEBRL: map soc_sec_id to an NHS-number-shaped identifier")
}

func (d *dataFlags) load(stderr io.Writer) (*bench.Dataset, string, error) {
	start := time.Now()
	if d.febrl != "" {
		ds, err := bench.FEBRL4(filepath.Join(d.febrl, "dataset4a.csv"), filepath.Join(d.febrl, "dataset4b.csv"),
			bench.FEBRLOptions{IDAsNHS: d.idAsNHS})
		name := "FEBRL 4"
		if d.idAsNHS {
			name += " (soc_sec_id as NHS number)"
		}
		if err == nil {
			fmt.Fprintf(stderr, "%s: %d events, %d queries (%.1fs)\n", name, len(ds.Events), len(ds.Queries), time.Since(start).Seconds())
		}
		return ds, name, err
	}
	if !(d.cfg.WithdrawFraction >= 0 && d.cfg.WithdrawFraction <= 1) {
		return nil, "", fmt.Errorf("-withdraw must be between 0 and 1 (the share of plans withdrawn), not %g", d.cfg.WithdrawFraction)
	}
	ds, err := bench.Generate(d.cfg)
	if err != nil {
		return nil, "", err
	}
	fmt.Fprintf(stderr, "synthetic (seed %d): %d people, %d plans, %d events, %d queries (%.1fs)\n",
		d.cfg.Seed, len(ds.People), len(ds.Holders), len(ds.Events), len(ds.Queries), time.Since(start).Seconds())
	return ds, fmt.Sprintf("synthetic, seed %d", d.cfg.Seed), nil
}

func runGen(args []string, _, stderr io.Writer) error {
	fs := flag.NewFlagSet("gen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var d dataFlags
	d.register(fs)
	out := fs.String("out", ".", "folder to write events.jsonl and queries.jsonl into")
	if err := fs.Parse(args); err != nil {
		return err
	}
	ds, _, err := d.load(stderr)
	if err != nil {
		return err
	}
	if err := writeDataset(ds, *out); err != nil {
		return err
	}
	kinds := map[string]int{}
	for _, q := range ds.Queries {
		kinds[q.Kind]++
	}
	keys := make([]string, 0, len(kinds))
	for k := range kinds {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var sb strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&sb, " %s=%d", k, kinds[k])
	}
	fmt.Fprintf(stderr, "queries by kind:%s\nwithdrawn plans: %d\n", sb.String(), len(ds.Withdrawn()))
	return nil
}

func runFEBRL(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("febrl", flag.ContinueOnError)
	fs.SetOutput(stderr)
	data := fs.String("data", "testdata/febrl", "folder holding dataset4a.csv and dataset4b.csv")
	idAsNHS := fs.Bool("id-as-nhs", false, "map soc_sec_id to an NHS-number-shaped identifier")
	out := fs.String("out", ".", "folder to write events.jsonl and queries.jsonl into")
	if err := fs.Parse(args); err != nil {
		return err
	}
	d := dataFlags{febrl: *data, idAsNHS: *idAsNHS}
	ds, _, err := d.load(stderr)
	if err != nil {
		return err
	}
	return writeDataset(ds, *out)
}

func writeDataset(ds *bench.Dataset, dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for _, f := range []struct {
		name  string
		write func(io.Writer) error
	}{{"events.jsonl", ds.WriteEvents}, {"queries.jsonl", ds.WriteQueries}} {
		w, err := os.Create(filepath.Join(dir, f.name))
		if err != nil {
			return err
		}
		if err := f.write(w); err != nil {
			w.Close()
			return err
		}
		if err := w.Close(); err != nil {
			return err
		}
	}
	return nil
}
