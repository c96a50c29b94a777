package bench

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"

	"github.com/planflag/planflag/matcher"
)

// WriteEvents writes the plan store's events, one JSON object per line.
func (d *Dataset) WriteEvents(w io.Writer) error {
	bw := bufio.NewWriterSize(w, 1<<16)
	enc := json.NewEncoder(bw)
	for i := range d.Events {
		if err := enc.Encode(&d.Events[i]); err != nil {
			return fmt.Errorf("write event %d: %w", i+1, err)
		}
	}
	return bw.Flush()
}

// queryLine is one line of a queries file.
type queryLine struct {
	Query  matcher.Query `json:"query"`
	Expect *string       `json:"expect"`
	Kind   string        `json:"kind,omitempty"`
	Extras []string      `json:"extras,omitempty"`
	AtHome bool          `json:"at_home,omitempty"`
}

// WriteQueries writes {"query": {…}, "expect": "<plan_id>" | null, "kind": …, "extras": […]} lines.
func (d *Dataset) WriteQueries(w io.Writer) error {
	bw := bufio.NewWriterSize(w, 1<<16)
	enc := json.NewEncoder(bw)
	for i, q := range d.Queries {
		l := queryLine{Query: q.Query, Kind: q.Kind, Extras: q.Extras, AtHome: q.AtHome}
		if q.Expect != "" {
			l.Expect = &q.Expect
		}
		if err := enc.Encode(&l); err != nil {
			return fmt.Errorf("write query %d: %w", i+1, err)
		}
	}
	return bw.Flush()
}

// ReadQueries reads a queries file; an unreadable line is an error naming it.
func ReadQueries(r io.Reader) ([]LabeledQuery, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 1<<16), 1<<20)
	var out []LabeledQuery
	for line := 1; sc.Scan(); line++ {
		if len(sc.Bytes()) == 0 {
			continue
		}
		var l queryLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			return nil, fmt.Errorf("queries line %d: %w", line, err)
		}
		q := LabeledQuery{Query: l.Query, Kind: l.Kind, Extras: l.Extras, AtHome: l.AtHome}
		if l.Expect != nil {
			q.Expect = *l.Expect
		}
		out = append(out, q)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read queries: %w", err)
	}
	return out, nil
}
