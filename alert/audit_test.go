package alert

import (
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// stuckWriter blocks every write until released: an audit sink that hangs.
type stuckWriter struct{ release chan struct{} }

func (w stuckWriter) Write(p []byte) (int, error) { <-w.release; return len(p), nil }

type brokenWriter struct{}

func (brokenWriter) Write([]byte) (int, error) { return 0, errors.New("disk gone") }

// TestAuditorNeverBlocks: with the sink hung, Record returns at once and
// events past the queue are counted lost.
func TestAuditorNeverBlocks(t *testing.T) {
	w := stuckWriter{make(chan struct{})}
	a := NewAuditor(NewFileSink(w), 4, slog.New(slog.DiscardHandler), prometheus.NewRegistry())
	start := time.Now()
	for i := range 100 {
		a.Record(&AuditEvent{RequestID: strings.Repeat("x", i%3)})
	}
	if took := time.Since(start); took > time.Second {
		t.Fatalf("100 Records took %v with the sink hung", took)
	}
	if lost := a.Lost(); lost < 90 {
		t.Errorf("lost %v events, want at least 90 (queue of 4, one in the writer)", lost)
	}
	close(w.release)
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestAuditorWriteErrors: a failing sink loses events, counted, and
// Record goes on working.
func TestAuditorWriteErrors(t *testing.T) {
	a := NewAuditor(NewFileSink(brokenWriter{}), 1024, slog.New(slog.DiscardHandler), prometheus.NewRegistry())
	for range 10 {
		a.Record(&AuditEvent{RequestID: "r"})
	}
	a.Close()
	if a.Lost() == 0 {
		t.Error("events written to a broken sink were not counted lost")
	}
}
