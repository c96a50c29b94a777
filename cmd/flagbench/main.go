// Command flagbench measures planflag: it generates synthetic data sets,
// converts FEBRL 4, evaluates accuracy against an exact-match baseline, and
// re-estimates the matcher's m and u probabilities.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
)

// commands are flagbench's subcommands; adding one is adding an entry.
var commands = map[string]struct {
	run  func(args []string, stdout, stderr io.Writer) error
	help string
}{
	"gen":      {runGen, "write a synthetic plan store (events.jsonl) and caller queries (queries.jsonl)"},
	"febrl":    {runFEBRL, "convert FEBRL 4 into events.jsonl and queries.jsonl"},
	"accuracy": {runAccuracy, "measure match and flag recall, false matches and leaks against an exact-match baseline"},
	"estimate": {runEstimate, "re-estimate the matcher's m and u probabilities from the synthetic error model"},
	"ingest":   {runIngest, "measure the Kafka feed and Redis snapshot: ingest rate, publish-to-visible latency, warm start"},
	"load":     {runLoad, "measure the lookup API under load (closed and open loop) beside a bare fasthttp server"},
	"soak":     {runSoak, "run flagd for long under steady churn and lookups; sample memory, goroutines, files, Redis and withdrawal latency for trends"},
}

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "flagbench:", err)
		}
		os.Exit(2)
	}
}

func run(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "-help" || args[0] == "help" {
		usage(stderr)
		if len(args) == 0 {
			return errors.New("no subcommand")
		}
		return nil
	}
	if args[0] == "loadserver" { // the child of `flagbench load`
		return runLoadServer(args[1:], stdout, stderr)
	}
	c, ok := commands[args[0]]
	if !ok {
		usage(stderr)
		return fmt.Errorf("unknown subcommand %q", args[0])
	}
	return c.run(args[1:], stdout, stderr)
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: flagbench SUBCOMMAND [flags]; flagbench SUBCOMMAND -h for its flags")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-9s %s\n", n, commands[n].help)
	}
}
