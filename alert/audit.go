package alert

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/segmentio/kafka-go"

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

// AppendJSON appends e as a JSON object: the object encoding/json makes of
// it (the same names in the same order, link_ids left out when there are
// none, the time in RFC 3339 with nanoseconds), written by hand, as answers
// are, so that auditing a lookup costs no reflection and no garbage. Strings
// are written as in answers (see appendString).
func (e *AuditEvent) AppendJSON(dst []byte) []byte {
	dst = append(dst, `{"request_id":`...)
	dst = appendString(dst, e.RequestID)
	dst = append(dst, `,"client_id":`...)
	dst = appendString(dst, e.ClientID)
	dst = append(dst, `,"time":"`...)
	dst = e.Time.AppendFormat(dst, time.RFC3339Nano)
	dst = append(dst, `","fields_supplied":`...)
	dst = appendStrings(dst, e.Fields)
	dst = append(dst, `,"tier":`...)
	dst = appendString(dst, e.Tier)
	dst = append(dst, `,"plan_ids":`...)
	dst = appendStrings(dst, e.PlanIDs)
	if len(e.LinkIDs) > 0 {
		dst = append(dst, `,"link_ids":`...)
		dst = appendStrings(dst, e.LinkIDs)
	}
	return append(dst, '}')
}

// appendStrings appends ss as a JSON array (null when nil, as encoding/json
// writes it).
func appendStrings(dst []byte, ss []string) []byte {
	if ss == nil {
		return append(dst, "null"...)
	}
	dst = append(dst, '[')
	for i, s := range ss {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendString(dst, s)
	}
	return append(dst, ']')
}

// AuditSink stores batches of audit events: a JSON-lines file, or a Kafka
// topic.
type AuditSink interface {
	Write(batch []*AuditEvent) error
	Close() error
}

// FileSink appends audit events to a file as JSON lines.
type FileSink struct {
	w   io.Writer
	buf []byte
}

// NewFileSink writes to w (closed by Close, if an io.Closer).
func NewFileSink(w io.Writer) *FileSink { return &FileSink{w: w} }

func (f *FileSink) Write(batch []*AuditEvent) error {
	f.buf = f.buf[:0]
	for _, e := range batch {
		f.buf = append(e.AppendJSON(f.buf), '\n')
	}
	_, err := f.w.Write(f.buf)
	return err
}

func (f *FileSink) Close() error {
	if c, ok := f.w.(io.Closer); ok {
		return c.Close()
	}
	return nil
}

// KafkaSink publishes audit events to a topic (lookup-audit), keyed by
// client ID.
type KafkaSink struct{ W *kafka.Writer }

func (k KafkaSink) Write(batch []*AuditEvent) error {
	msgs := make([]kafka.Message, len(batch))
	for i, e := range batch {
		msgs[i] = kafka.Message{Key: []byte(e.ClientID), Value: e.AppendJSON(nil)}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return k.W.WriteMessages(ctx, msgs...)
}

func (k KafkaSink) Close() error { return k.W.Close() }

// Auditor writes audit events in the background through a bounded queue:
// a lookup never waits on the audit sink. When the queue is full, the sink
// fails or the auditor is closed, the events are counted as lost
// (planflag_audit_lost_total) and logged (at most once a second, by count
// and request ID only).
type Auditor struct {
	// mu guards closed and the closing of q: Record holds it shared while
	// it sends, Close exclusively while it closes, so no send meets a
	// closed channel (a lookup still in flight when shutdown's drain gave
	// up).
	mu      sync.RWMutex
	closed  bool
	q       chan *AuditEvent
	sink    AuditSink
	log     *slog.Logger
	lost    *prometheus.CounterVec
	lastLog atomic.Int64
	done    chan struct{}
}

// NewAuditor writes to sink with a queue of size events; reg receives its
// metrics.
func NewAuditor(sink AuditSink, size int, log *slog.Logger, reg prometheus.Registerer) *Auditor {
	a := &Auditor{q: make(chan *AuditEvent, size), sink: sink, log: log, done: make(chan struct{}),
		lost: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "planflag_audit_lost_total",
			Help: "Audit events not written, by reason (queue_full, write_error, closed)."}, []string{"reason"})}
	reg.MustRegister(a.lost)
	go a.run()
	return a
}

// Record queues e; it never blocks. After Close, e is counted lost.
func (a *Auditor) Record(e *AuditEvent) {
	a.mu.RLock()
	defer a.mu.RUnlock()
	if a.closed {
		a.lose("closed", 1, e.RequestID, nil)
		return
	}
	select {
	case a.q <- e:
	default:
		a.lose("queue_full", 1, e.RequestID, nil)
	}
}

func (a *Auditor) lose(reason string, n int, requestID string, err error) {
	a.lost.WithLabelValues(reason).Add(float64(n))
	now := time.Now().Unix()
	if last := a.lastLog.Load(); last != now && a.lastLog.CompareAndSwap(last, now) {
		args := []any{"reason", reason, "events", n, "request_id", requestID}
		if err != nil {
			args = append(args, "err", err.Error())
		}
		a.log.Error("audit events lost", args...)
	}
}

// auditGather is how long the writer lets events gather after the first of
// a batch before it takes them. Were it to take each event as it came, every
// lookup would wake the writer (a thread woken on another processor, dear in
// a virtual machine); gathering, it wakes a few hundred times a second at
// most, and an event reaches the sink a few milliseconds later.
const auditGather = 5 * time.Millisecond

func (a *Auditor) run() {
	defer close(a.done)
	batch := make([]*AuditEvent, 0, 1000)
	full := false // the last batch was full: more are waiting, take them now
	for e := range a.q {
		batch = append(batch[:0], e)
		if !full {
			time.Sleep(auditGather)
		}
	drain:
		for len(batch) < cap(batch) {
			select {
			case e, ok := <-a.q:
				if !ok {
					break drain
				}
				batch = append(batch, e)
			default:
				break drain
			}
		}
		full = len(batch) == cap(batch)
		if err := a.sink.Write(batch); err != nil {
			a.lose("write_error", len(batch), batch[0].RequestID, err)
		}
	}
}

// Close writes what is queued and closes the sink; events recorded after
// it are counted lost.
func (a *Auditor) Close() error {
	a.mu.Lock()
	if !a.closed {
		a.closed = true
		close(a.q)
	}
	a.mu.Unlock()
	<-a.done
	return a.sink.Close()
}

// Lost returns the number of events lost so far (for tests and reports).
func (a *Auditor) Lost() float64 {
	var n float64
	for _, r := range []string{"queue_full", "write_error", "closed"} {
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
