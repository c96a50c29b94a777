package feed

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/planflag/planflag/matcher"
)

// Applier is what a source feeds: the matcher's index, or anything that
// applies batches of changes the same way.
type Applier interface {
	Apply([]matcher.Change) matcher.ApplyStats
}

// LoadStats counts what loading a source did.
type LoadStats struct {
	Events      int // lines or messages read (blank lines excluded)
	Upserted    int
	Withdrawn   int
	Stale       int // ignored: version not newer than the one applied
	Sparse      int // kept, but too little to match on
	DeadLetters int
	// FirstDeadLetters holds the first few dead letters by position and
	// reason (never content).
	FirstDeadLetters []string
	// FieldProblems counts plans kept with an unreadable field left out,
	// and withdrawals applied despite a malformed field they do not need.
	FieldProblems map[string]int
}

func (s *LoadStats) add(a matcher.ApplyStats) {
	s.Upserted += a.Upserted
	s.Withdrawn += a.Withdrawn
	s.Stale += a.Stale
	s.Sparse += a.Sparse
	for f, n := range a.Problems {
		s.fieldProblems(f, n)
	}
}

func (s *LoadStats) fieldProblem(f string) { s.fieldProblems(f, 1) }

func (s *LoadStats) fieldProblems(f string, n int) {
	if s.FieldProblems == nil {
		s.FieldProblems = make(map[string]int)
	}
	s.FieldProblems[f] += n
}

const maxReportedDeadLetters = 20

func (s *LoadStats) dead(where string, err error) {
	s.DeadLetters++
	if len(s.FirstDeadLetters) < maxReportedDeadLetters {
		s.FirstDeadLetters = append(s.FirstDeadLetters, where+": "+err.Error())
	}
}

// fileBatch is how many events are applied at once when loading a file.
const fileBatch = 65536

// maxLine bounds one event line.
const maxLine = 1 << 20

// LoadJSONL reads plan events, one per line, and applies them in batches.
// Malformed lines are dead letters (counted, reported by line number and
// reason) and loading goes on; only a read error stops it. progress, if not
// nil, is called after each batch.
func LoadJSONL(r io.Reader, ix Applier, progress func(LoadStats)) (LoadStats, error) {
	var st LoadStats
	br := bufio.NewReaderSize(r, 1<<16)
	batch := make([]matcher.Change, 0, fileBatch)
	flush := func() {
		if len(batch) > 0 {
			st.add(ix.Apply(batch))
			clear(batch)
			batch = batch[:0]
			if progress != nil {
				progress(st)
			}
		}
	}
	for line := 1; ; line++ {
		b, err := ReadLine(br, maxLine)
		if err != nil && err != io.EOF {
			// b is what was read of the line before the read failed: not
			// an event, nor a dead letter.
			flush()
			return st, fmt.Errorf("read events at line %d: %w", line, err)
		}
		if len(b) > 0 && !isBlank(b) {
			st.Events++
			if len(b) > maxLine {
				st.dead(fmt.Sprintf("line %d", line), deadLetter("line longer than %d bytes", maxLine))
			} else if ev, derr := Decode(b); derr != nil {
				st.dead(fmt.Sprintf("line %d", line), derr)
			} else {
				if ev.Ignored != "" {
					st.fieldProblem("withdrawal applied without " + ev.Ignored)
				}
				batch = append(batch, ev.Change())
				if len(batch) == fileBatch {
					flush()
				}
			}
		}
		if err == io.EOF {
			break
		}
	}
	flush()
	return st, nil
}

// LoadFile loads a .jsonl events file; see LoadJSONL. A file with nothing
// readable in it is an error (see Unusable).
func LoadFile(path string, ix Applier, progress func(LoadStats)) (LoadStats, error) {
	f, err := os.Open(path)
	if err != nil {
		return LoadStats{}, fmt.Errorf("open events: %w", err)
	}
	defer f.Close()
	st, err := LoadJSONL(f, ix, progress)
	if err == nil {
		err = st.Unusable(path)
	}
	return st, err
}

// Unusable says why a whole events file (name) that loaded gave the index
// nothing: no events at all, or none that could be read, which is a wrong
// or broken file rather than an empty plan store, and would have every
// lookup answered "none". Nil when at least one event was applied.
func (s LoadStats) Unusable(name string) error {
	switch {
	case s.Events == 0:
		return fmt.Errorf("events file %s holds no plan events", name)
	case s.Upserted+s.Withdrawn+s.Stale == 0:
		first := ""
		if len(s.FirstDeadLetters) > 0 {
			first = " (" + s.FirstDeadLetters[0] + ")"
		}
		return fmt.Errorf("events file %s: none of its %d events could be read%s", name, s.Events, first)
	}
	return nil
}

// ReadLine returns the next line of a JSON-lines stream without its newline,
// however long: a line past limit comes back cut to just over limit bytes, so
// the caller can reject it and go on with the next. The slice is valid until
// the next call.
func ReadLine(br *bufio.Reader, limit int) ([]byte, error) {
	maxLine := limit
	var long []byte
	for {
		chunk, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			if len(long) <= maxLine {
				long = append(long, chunk...)
			}
			continue
		}
		if long != nil {
			if len(long) <= maxLine {
				long = append(long, chunk...)
			}
			chunk = long
		}
		n := len(chunk)
		if n > 0 && chunk[n-1] == '\n' {
			n--
			if n > 0 && chunk[n-1] == '\r' {
				n--
			}
		}
		return chunk[:n], err
	}
}

func isBlank(b []byte) bool {
	for _, c := range b {
		if c != ' ' && c != '\t' && c != '\r' {
			return false
		}
	}
	return true
}
