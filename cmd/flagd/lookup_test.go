package main

import (
	"bytes"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const events = `{"type":"plan.upserted","plan_id":"UCP-123","version":7,"occurred_at":"2026-11-24T10:00:00Z","patient":{"nhs_number":"9434765919","given_names":["Margaret","Ann"],"family_name":"O'Brien","birth_date":"1941-03-07","gender":"female","addresses":[{"lines":["Flat 2","14 Elm Road"],"city":"London","postcode":"SW1A 1AA"}],"phones":["+447700900123"]}}
{"type":"plan.upserted","plan_id":"UCP-200","version":1,"occurred_at":"2026-11-24T10:00:00Z","patient":{"given_names":["John"],"family_name":"Smith","birth_date":"1950-01-01","addresses":[{"lines":["1 High Street"],"postcode":"M1 1AE"}]}}
not json
{"type":"plan.withdrawn","plan_id":"UCP-200","version":2,"occurred_at":"2026-11-25T08:00:00Z"}
`

// The batch lookup answers every line, in order, in the API's shape; a bad
// line gets an error object and the run goes on.
func TestLookupBatch(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "events.jsonl")
	if err := os.WriteFile(path, []byte(events), 0o644); err != nil {
		t.Fatal(err)
	}
	in := strings.Join([]string{
		`{"given_name":"Peggy","family_name":"OBrien","birth_date":"07/03/1941","postcode":"sw1a1aa","phone":"07700 900123"}`,
		`{"query":{"nhs_number":"943 476 5919","birth_date":"1941-03-07"},"expect":"UCP-123","kind":"x"}`,
		`{"given_name":"John","family_name":"Smith","birth_date":"1950-01-01","postcode":"M1 1AE"}`,
		`{"given_name":"Margaret","birth_date":"1941-02-30"}`,
		`{broken`,
		`{"given_name":42,"family_name":"Smith"}`,
		``,
		`{"family_name":"Smith"}`,
		`{"given_name":"` + strings.Repeat("x", 100<<10) + `"}`,
		`{"given_name":"John","family_name":"Smith","birth_date":"1950-01-01"}`,
	}, "\n") // no final newline: the last line still counts
	var out, errOut bytes.Buffer
	if err := runLookup([]string{"-events", path}, strings.NewReader(in), &out, &errOut); err != nil {
		t.Fatal(err, errOut.String())
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 10 {
		t.Fatalf("%d output lines for 10 input lines:\n%s", len(lines), out.String())
	}
	type answer struct {
		RequestID  string `json:"request_id"`
		Flag       bool   `json:"flag"`
		Tier       string `json:"tier"`
		Candidates []struct {
			PlanID    string            `json:"plan_id"`
			Agreement map[string]string `json:"agreement"`
		} `json:"candidates"`
		Error *struct {
			Code, Message, Field string
		} `json:"error"`
	}
	var got []answer
	for _, l := range lines {
		var a answer
		if err := json.Unmarshal([]byte(l), &a); err != nil {
			t.Fatalf("output line %q: %v", l, err)
		}
		got = append(got, a)
	}
	if got[0].Tier != "match" || !got[0].Flag || got[0].Candidates[0].PlanID != "UCP-123" || got[0].Candidates[0].Agreement["given_name"] != "nickname" {
		t.Errorf("line 1: %+v", got[0])
	}
	if got[1].Tier != "match" || got[1].Candidates[0].Agreement["nhs_number"] != "exact" {
		t.Errorf("line 2 (wrapped): %+v", got[1])
	}
	if got[2].Tier != "none" || got[2].Flag || len(got[2].Candidates) != 0 {
		t.Errorf("line 3 (withdrawn plan): %+v", got[2])
	}
	for i, field := range map[int]string{3: "birth_date", 5: "given_name"} {
		if got[i].Error == nil || got[i].Error.Field != field {
			t.Errorf("line %d: want an error naming %s, got %+v", i+1, field, got[i])
		}
	}
	for _, i := range []int{4, 6, 7, 8} {
		if got[i].Error == nil {
			t.Errorf("line %d: want an error, got %+v", i+1, got[i])
		}
	}
	// The HTTP API's code for a request too large: one code for both.
	if got[8].Error == nil || got[8].Error.Code != "body_too_large" {
		t.Errorf("line 9 (too long): want the error body_too_large, got %+v", got[8].Error)
	}
	if got[9].Error != nil || got[9].RequestID != "line-10" {
		t.Errorf("line 10 after a too-long line: %+v", got[9])
	}
	if strings.Contains(out.String(), "1941-02-30") || strings.Contains(errOut.String(), "O'Brien") {
		t.Errorf("personal data echoed")
	}
	if !strings.Contains(errOut.String(), `"dead_letters":1`) {
		t.Errorf("load summary missing the dead letter: %s", errOut.String())
	}
}

// A requests file named after the flags (flagd lookup -events E requests.jsonl)
// is not read: the batch reads standard input. Refused, rather than answer
// nothing while the file named goes unread; so is one after flagd audit's
// flags.
func TestSubcommandsRefuseArguments(t *testing.T) {
	path := filepath.Join(t.TempDir(), "events.jsonl")
	if err := os.WriteFile(path, []byte(events), 0o644); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	err := runLookup([]string{"-events", path, "requests.jsonl"}, strings.NewReader(""), &out, io.Discard)
	if err == nil || !strings.Contains(err.Error(), `unexpected argument "requests.jsonl"`) || !strings.Contains(err.Error(), "standard input") {
		t.Errorf("lookup with a requests file named: error %v; want it refused, naming standard input", err)
	}
	err = runAudit([]string{"-file", path, "-plan", "UCP-123", "UCP-200"}, &out, io.Discard)
	if err == nil || !strings.Contains(err.Error(), `unexpected argument "UCP-200"`) {
		t.Errorf("audit with a second plan ID: error %v; want it refused", err)
	}
}
