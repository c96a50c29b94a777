package main

import (
	"encoding/json"
	"errors"
	"flag"
	"io"
	"os"

	"github.com/planflag/planflag/alert"
)

// runAudit answers "who looked up plan X, and when" from an audit file:
// flagd audit -file audit.jsonl -plan UCP-123 prints the matching events.
func runAudit(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("audit", flag.ContinueOnError)
	fs.SetOutput(stderr)
	file := fs.String("file", "", "audit file written by flagd -audit.file")
	plan := fs.String("plan", "", "plan ID to find")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *file == "" || *plan == "" {
		return errors.New("give -file AUDIT.jsonl and -plan PLAN_ID")
	}
	f, err := os.Open(*file)
	if err != nil {
		return err
	}
	defer f.Close()
	events, err := alert.Search(f, *plan)
	enc := json.NewEncoder(stdout)
	for i := range events {
		if err := enc.Encode(&events[i]); err != nil {
			return err
		}
	}
	return err
}
