package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"time"

	"github.com/planflag/planflag/alert"
	"github.com/planflag/planflag/feed"
	"github.com/planflag/planflag/matcher"
)

// runLookup is `flagd lookup -events FILE.jsonl < requests.jsonl > responses.jsonl`:
// the batch form of POST /v1/lookup, one answer line per request line, in order.
func runLookup(args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("lookup", flag.ContinueOnError)
	fs.SetOutput(stderr)
	e := &envFlags{fs: fs}
	events := e.String("events", "", "plan events to load, one JSON object per line")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: flagd lookup -events FILE.jsonl < requests.jsonl > responses.jsonl")
		fmt.Fprintln(stderr, "Each input line is a lookup request, or {\"query\": {…}} with other keys ignored;")
		fmt.Fprintln(stderr, "each output line is the answer (same shape as POST /v1/lookup) or {\"error\": {…}}.")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := e.err(); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("lookup: unexpected argument %q: requests are read from standard input (flagd lookup -events F < requests.jsonl)", fs.Arg(0))
	}
	if *events == "" {
		fs.Usage()
		return errors.New("lookup: -events is required")
	}
	log := slog.New(slog.NewJSONHandler(stderr, nil))
	ix := matcher.NewIndex(nil)
	start := time.Now()
	st, err := feed.LoadFile(*events, ix, nil)
	if err != nil {
		return err
	}
	ix.Compact() // lookups search one level of postings, as flagd's do
	log.Info("events loaded", "events", st.Events, "live", ix.Live(), "withdrawn", st.Withdrawn, "stale", st.Stale,
		"sparse", st.Sparse, "dead_letters", st.DeadLetters, "seconds", time.Since(start).Seconds())
	for _, d := range st.FirstDeadLetters {
		log.Warn("dead letter", "where", d)
	}
	return answerLines(ix, stdin, stdout)
}

// answerLines answers each request line with one output line.
func answerLines(ix *matcher.Index, in io.Reader, out io.Writer) error {
	br := bufio.NewReaderSize(in, 64<<10)
	w := bufio.NewWriterSize(out, 64<<10)
	enc := json.NewEncoder(w)
	for line := 1; ; line++ {
		b, rerr := feed.ReadLine(br, maxRequestLine)
		if rerr == io.EOF && len(b) == 0 {
			break
		}
		if rerr != nil && rerr != io.EOF {
			return fmt.Errorf("read requests at line %d: %w", line, rerr)
		}
		id := "line-" + strconv.Itoa(line)
		var q matcher.Query
		var aerr *alert.Error
		if len(b) > maxRequestLine {
			aerr = alert.Errorf(413, "body_too_large", "request line longer than %d bytes", maxRequestLine)
		} else {
			q, aerr = alert.DecodeRequest(b, true)
		}
		var v any
		if aerr == nil {
			r, err := ix.Match(q)
			if err != nil {
				aerr = alert.FromMatchError(err)
			} else {
				v = alert.Response(id, r, nil)
			}
		}
		if aerr != nil {
			v = alert.ErrorBody{Error: aerr}
		}
		if err := enc.Encode(v); err != nil {
			return fmt.Errorf("write answer %d: %w", line, err)
		}
		if rerr == io.EOF {
			break
		}
	}
	return w.Flush()
}

// maxRequestLine bounds one batch request line, as the HTTP API bounds a body.
const maxRequestLine = 64 << 10
