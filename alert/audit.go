package alert

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// AuditEvent is the record of one lookup: who asked, when, which fields
// they gave (names, never values), and what was returned. A lookup refused
// after its client was known (400, 403, 405, 413, 500) is recorded too,
// with the tier TierRefused, the error code of the answer in Code, and no
// plan IDs; refusals that control load (429, 503) are only counted.
type AuditEvent struct {
	RequestID string    `json:"request_id"`
	ClientID  string    `json:"client_id"`
	Time      time.Time `json:"time"`
	Fields    []string  `json:"fields_supplied"`
	Tier      string    `json:"tier"`
	PlanIDs   []string  `json:"plan_ids"`
	LinkIDs   []string  `json:"link_ids,omitempty"`
	Code      string    `json:"code,omitempty"` // a refusal's error code, as in its answer
}

// TierRefused is the tier of the audit event of a lookup that was refused
// (its answer an error): nothing was returned.
const TierRefused = "refused"

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
	if e.Code != "" {
		dst = append(dst, `,"code":`...)
		dst = appendString(dst, e.Code)
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
//
// A write that fails part way (a full disk: write(2) stores what fits)
// leaves part of a line with no newline; the batch is counted lost. So that
// the next batch is not appended to that fragment, making one unreadable
// line of it and the first event after it, the write after a failed or
// short one begins with a newline: the fragment stays a line of its own,
// which Search skips and reports. An empty line may result; Search passes
// over it.
type FileSink struct {
	w   io.Writer
	buf []byte
	// broken: the last write failed or was short, so the file may end
	// part way through a line.
	broken bool
}

// NewFileSink writes to w (closed by Close, if an io.Closer). When w is a
// file whose last byte is not a newline (a line cut short by a full disk,
// or a crash, before flagd last stopped), the first write begins with one.
func NewFileSink(w io.Writer) *FileSink { return &FileSink{w: w, broken: endsMidLine(w)} }

// endsMidLine reports whether w is a regular file, not empty, whose last
// byte is not a newline. The file is read through its name, as flagd opens
// the audit file for appending only; one that cannot be read is taken to
// end well.
func endsMidLine(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	r, err := os.Open(f.Name())
	if err != nil {
		return false
	}
	defer r.Close()
	st, err := r.Stat()
	if err != nil || !st.Mode().IsRegular() || st.Size() == 0 {
		return false
	}
	var last [1]byte
	if _, err := r.ReadAt(last[:], st.Size()-1); err != nil {
		return false
	}
	return last[0] != '\n'
}

func (f *FileSink) Write(batch []*AuditEvent) error {
	f.buf = f.buf[:0]
	if f.broken {
		f.buf = append(f.buf, '\n')
	}
	for _, e := range batch {
		f.buf = append(e.AppendJSON(f.buf), '\n')
	}
	n, err := f.w.Write(f.buf)
	f.broken = err != nil || n < len(f.buf)
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

// maxListed is how many unreadable records an UnreadableError lists by
// position; it counts them all.
const maxListed = 100

// UnreadableError is Search's report of the lines it skipped because they
// are not audit events (a line a full disk cut short, a damaged file): how
// many, and the numbers of the first of them. It never quotes them.
type UnreadableError struct {
	Count int   // lines skipped
	Lines []int // their numbers, from 1: the first maxListed
}

func (e *UnreadableError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d unreadable audit line", e.Count)
	if e.Count != 1 {
		b.WriteString("s")
	}
	b.WriteString(" skipped (line")
	if len(e.Lines) != 1 {
		b.WriteString("s")
	}
	for i, l := range e.Lines {
		if i > 0 {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, " %d", l)
	}
	if e.Count > len(e.Lines) {
		fmt.Fprintf(&b, " and %d more", e.Count-len(e.Lines))
	}
	b.WriteString(")")
	return b.String()
}

func (e *UnreadableError) add(line int) {
	e.Count++
	if len(e.Lines) < maxListed {
		e.Lines = append(e.Lines, line)
	}
}

// errNotAuditEvent is DecodeAuditEvent's error for a record that is not an
// audit event. It never quotes the record.
var errNotAuditEvent = errors.New("not an audit event")

// DecodeAuditEvent reads one audit record: a line of an audit file, or a
// message of the audit topic. Anything but a JSON object of an audit
// event's shape is an error (which never quotes it).
func DecodeAuditEvent(b []byte) (AuditEvent, error) {
	var e AuditEvent
	b = bytes.TrimSpace(b)
	if len(b) == 0 || b[0] != '{' || json.Unmarshal(b, &e) != nil {
		return AuditEvent{}, errNotAuditEvent
	}
	return e, nil
}

// Returned reports whether planID was among the plans the lookup returned.
func (e *AuditEvent) Returned(planID string) bool {
	return slices.Contains(e.PlanIDs, planID)
}

// maxLine is the longest audit line Search reads; a longer one is
// unreadable (an event is a few hundred bytes).
const maxLine = 1 << 20

// Search reads an audit file and returns the events that returned planID.
// A line that is not an audit event (a fragment a full disk left, a damaged
// line) does not stop it: it is skipped, and once the whole file is read
// the skipped lines are reported as an *UnreadableError (with the events
// found), so that an event written after them is still found, and the
// caller still learns the search may have missed some. Empty lines are
// passed over. An error reading r stops the search (joined with the
// report of the lines skipped before it).
func Search(r io.Reader, planID string) ([]AuditEvent, error) {
	var out []AuditEvent
	var bad UnreadableError
	br := bufio.NewReaderSize(r, 64<<10)
	var readErr error
	for line := 1; ; line++ {
		b, err := br.ReadSlice('\n')
		tooLong := false
		if err == bufio.ErrBufferFull { // a line longer than br's buffer
			long := append([]byte(nil), b...)
			for err == bufio.ErrBufferFull {
				b, err = br.ReadSlice('\n')
				if len(long) <= maxLine {
					long = append(long, b...)
				}
			}
			b, tooLong = long, len(long) > maxLine
		}
		if err != nil && err != io.EOF {
			readErr = fmt.Errorf("audit line %d: %w", line, err)
			break
		}
		if tooLong {
			bad.add(line)
		} else if len(bytes.TrimSpace(b)) > 0 {
			e, derr := DecodeAuditEvent(b)
			if derr != nil {
				bad.add(line)
			} else if e.Returned(planID) {
				out = append(out, e)
			}
		}
		if err == io.EOF {
			break
		}
	}
	switch {
	case bad.Count > 0 && readErr != nil:
		return out, errors.Join(readErr, &bad)
	case bad.Count > 0:
		return out, &bad
	}
	return out, readErr
}

func counterValue(c prometheus.Counter) float64 {
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		return 0
	}
	return m.GetCounter().GetValue()
}
