package alert

import (
	"errors"
	"log/slog"
	"strings"
	"sync"
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

// countingSink counts the batches and events written to it.
type countingSink struct {
	mu             sync.Mutex
	batches, count int
}

func (c *countingSink) Write(batch []*AuditEvent) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.batches++
	c.count += len(batch)
	return nil
}

func (c *countingSink) Close() error { return nil }

// TestAuditorGathers: events recorded one at a time, as lookups come, reach
// the sink in batches gathered over a few milliseconds, not one write (and
// one wake of the writer) each; Close writes every one.
func TestAuditorGathers(t *testing.T) {
	sink := &countingSink{}
	a := NewAuditor(sink, 4096, slog.New(slog.DiscardHandler), prometheus.NewRegistry())
	const n = 200
	start := time.Now()
	for range n {
		a.Record(&AuditEvent{RequestID: "r"})
		time.Sleep(20 * time.Microsecond) // the writer, were it eager, would take each alone
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if sink.count != n || a.Lost() != 0 {
		t.Fatalf("wrote %d of %d events, %v lost", sink.count, n, a.Lost())
	}
	// A batch's first event starts a gathering period, so batches cannot
	// outnumber the periods that fit in the time the events took.
	took := time.Since(start)
	if most := int(took/auditGather) + 2; sink.batches > most {
		t.Errorf("%d events recorded one at a time over %v took %d writes, want at most %d", n, took, sink.batches, most)
	}
	t.Logf("%d events over %v, %d writes", n, took, sink.batches)
}

// TestAuditorRecordAfterClose: a lookup that finishes after shutdown has
// closed the auditor (its drain timed out) is counted lost instead of
// panicking on the closed queue, as is one racing Close; every event is
// either written or counted.
func TestAuditorRecordAfterClose(t *testing.T) {
	sink := &countingSink{}
	a := NewAuditor(sink, 1<<16, slog.New(slog.DiscardHandler), prometheus.NewRegistry())
	const writers, each = 8, 500
	var wg sync.WaitGroup
	for range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range each {
				a.Record(&AuditEvent{RequestID: "r"})
			}
		}()
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	a.Record(&AuditEvent{RequestID: "late"})
	if got := float64(sink.count) + a.Lost(); got != writers*each+1 {
		t.Errorf("%d events written and %v lost of %d recorded", sink.count, a.Lost(), writers*each+1)
	}
	if closed := counterValue(a.lost.WithLabelValues("closed")); closed < 1 {
		t.Errorf("%v events counted lost as recorded after Close, want at least the late one", closed)
	}
}
