package alert

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// AuditEvent is the record of one lookup: who asked, when, which fields
// they gave (names, never values), and what was returned.
type AuditEvent struct {
	RequestID string    `json:"request_id"`
	ClientID  string    `json:"client_id"`
	Time      time.Time `json:"time"`
	Fields    []string  `json:"fields_supplied"`
	Tier      string    `json:"tier"`
	PlanIDs   []string  `json:"plan_ids"`
	LinkIDs   []string  `json:"link_ids,omitempty"`
}

// Auditor writes audit events in the background through a bounded queue:
// a lookup never waits on the audit sink. When the queue is full or the
// sink fails, the event is counted as lost (planflag_audit_lost_total) and
// logged (by request ID only).
type Auditor struct {
	q    chan *AuditEvent
	w    *bufio.Writer
	c    io.Closer
	log  *slog.Logger
	lost *prometheus.CounterVec
	done chan struct{}
	once sync.Once
}

// NewAuditor writes JSON lines to w (closed by Close, if an io.Closer)
// with a queue of size events; reg receives its metrics.
func NewAuditor(w io.Writer, size int, log *slog.Logger, reg prometheus.Registerer) *Auditor {
	a := &Auditor{q: make(chan *AuditEvent, size), w: bufio.NewWriterSize(w, 64<<10), log: log, done: make(chan struct{}),
		lost: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "planflag_audit_lost_total",
			Help: "Audit events not written, by reason (queue_full, write_error)."}, []string{"reason"})}
	if c, ok := w.(io.Closer); ok {
		a.c = c
	}
	reg.MustRegister(a.lost)
	go a.run()
	return a
}

// Record queues e; it never blocks.
func (a *Auditor) Record(e *AuditEvent) {
	select {
	case a.q <- e:
	default:
		a.lost.WithLabelValues("queue_full").Inc()
		a.log.Error("audit event lost: queue full", "request_id", e.RequestID)
	}
}

func (a *Auditor) run() {
	defer close(a.done)
	enc := json.NewEncoder(a.w)
	for e := range a.q {
		if err := enc.Encode(e); err != nil {
			a.lost.WithLabelValues("write_error").Inc()
			a.log.Error("audit event lost: write failed", "request_id", e.RequestID, "err", err.Error())
			continue
		}
		if len(a.q) == 0 {
			if err := a.w.Flush(); err != nil {
				a.lost.WithLabelValues("write_error").Inc()
				a.log.Error("audit events lost: flush failed", "err", err.Error())
			}
		}
	}
	_ = a.w.Flush()
}

// Close writes what is queued and closes the sink.
func (a *Auditor) Close() error {
	a.once.Do(func() { close(a.q) })
	<-a.done
	if a.c != nil {
		return a.c.Close()
	}
	return nil
}

// Lost returns the number of events lost so far (for tests and reports).
func (a *Auditor) Lost() float64 {
	var n float64
	for _, r := range []string{"queue_full", "write_error"} {
		n += counterValue(a.lost.WithLabelValues(r))
	}
	return n
}

// Search reads an audit file and returns the events that returned planID.
func Search(r io.Reader, planID string) ([]AuditEvent, error) {
	var out []AuditEvent
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for line := 1; sc.Scan(); line++ {
		var e AuditEvent
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			return out, fmt.Errorf("audit line %d: %w", line, err)
		}
		for _, p := range e.PlanIDs {
			if p == planID {
				out = append(out, e)
				break
			}
		}
	}
	return out, sc.Err()
}

func counterValue(c prometheus.Counter) float64 {
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		return 0
	}
	return m.GetCounter().GetValue()
}
