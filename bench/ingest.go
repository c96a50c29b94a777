package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/planflag/planflag/feed"
)

// Message is one plan-store event as published: Kafka key and value.
type Message struct {
	Key   string
	Value []byte // nil: a tombstone
}

// EventMessages encodes events as the plan store publishes them.
func EventMessages(events []feed.Event) ([]Message, error) {
	out := make([]Message, len(events))
	for i := range events {
		b, err := json.Marshal(&events[i])
		if err != nil {
			return nil, fmt.Errorf("event %d: %w", i+1, err)
		}
		out[i] = Message{Key: events[i].PlanID, Value: b}
	}
	return out, nil
}

// PublishStats is what Publish did.
type PublishStats struct {
	Published int
	Seconds   float64
	// Acked holds, per batch, the time from its first message's scheduled
	// send to the broker's acknowledgement (acks=all), sorted: the
	// producer's share of publish-to-visible latency.
	Acked []time.Duration
}

// Publish sends messages in order through w, paced to rate per second if
// rate > 0 (in steps of at most 10 ms), and reports progress to progress
// (if not nil) every two seconds. onSend, if not nil, is called with each
// message's index and scheduled send time just before it is written, and
// onAck with the indexes [from, to) the broker has just acknowledged.
func Publish(ctx context.Context, w *kafka.Writer, next func() (Message, bool), rate float64,
	progress io.Writer, onSend func(i int, at time.Time), onAck func(from, to int, at time.Time)) (PublishStats, error) {
	var st PublishStats
	start := time.Now()
	last := start
	step := 1000
	if rate > 0 {
		step = max(1, min(1000, int(rate/100)))
	}
	batch := make([]kafka.Message, 0, step)
	n := 0
	var first time.Time // scheduled send of the batch's first message
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		if err := w.WriteMessages(ctx, batch...); err != nil {
			return fmt.Errorf("publish: %w", err)
		}
		now := time.Now()
		st.Acked = append(st.Acked, now.Sub(first))
		if onAck != nil {
			onAck(n-len(batch), n, now)
		}
		st.Published += len(batch)
		batch = batch[:0]
		if progress != nil && time.Since(last) > 2*time.Second {
			last = time.Now()
			fmt.Fprintf(progress, "published %d events (%.0f/s)\n", st.Published, float64(st.Published)/time.Since(start).Seconds())
		}
		return nil
	}
	for {
		m, ok := next()
		if !ok {
			break
		}
		at := time.Now()
		if rate > 0 {
			at = start.Add(time.Duration(float64(n) / rate * float64(time.Second)))
			if len(batch) == 0 {
				if d := time.Until(at); d > 0 {
					select {
					case <-ctx.Done():
						return st, ctx.Err()
					case <-time.After(d):
					}
				}
			}
		}
		if onSend != nil {
			onSend(n, at)
		}
		if len(batch) == 0 {
			first = at
		}
		batch = append(batch, kafka.Message{Key: []byte(m.Key), Value: m.Value})
		n++
		if len(batch) == step {
			if err := flush(); err != nil {
				st.Seconds = time.Since(start).Seconds()
				return st, err
			}
		}
	}
	err := flush()
	st.Seconds = time.Since(start).Seconds()
	slices.Sort(st.Acked)
	return st, err
}

// VisibleRecorder times events from their send to the moment the index
// applied them (a feed.Recorder, called after Apply returns, so the change
// is visible to lookups). Latency is measured from the scheduled send time.
type VisibleRecorder struct {
	mu      sync.Mutex
	sent    map[string]time.Time // plan ID + version → scheduled send
	acked   map[string]time.Time // plan ID + version → broker acknowledgement
	latency []time.Duration
	fromAck []time.Duration
	next    feed.Recorder // passed on, if not nil
}

// NewVisibleRecorder returns a recorder that also passes changes to next.
func NewVisibleRecorder(next feed.Recorder) *VisibleRecorder {
	return &VisibleRecorder{sent: make(map[string]time.Time), acked: make(map[string]time.Time), next: next}
}

func visibleKey(plan string, version uint64) string { return fmt.Sprintf("%s/%d", plan, version) }

// Sent notes that plan's version was scheduled to be sent at t.
func (r *VisibleRecorder) Sent(plan string, version uint64, t time.Time) {
	r.mu.Lock()
	r.sent[visibleKey(plan, version)] = t
	r.mu.Unlock()
}

// Acked notes that the broker acknowledged plan's version at t.
func (r *VisibleRecorder) Acked(plan string, version uint64, t time.Time) {
	r.mu.Lock()
	if _, ok := r.sent[visibleKey(plan, version)]; ok {
		r.acked[visibleKey(plan, version)] = t
	}
	r.mu.Unlock()
}

// Record implements feed.Recorder.
func (r *VisibleRecorder) Record(changes []feed.Applied, offsets feed.Offsets) {
	now := time.Now()
	r.mu.Lock()
	if len(r.sent) > 0 {
		for _, c := range changes {
			k := visibleKey(c.PlanID, c.Version)
			if t, ok := r.sent[k]; ok {
				r.latency = append(r.latency, now.Sub(t))
				delete(r.sent, k)
				// Seen before the producer heard its ack: the consumer's
				// share is then nothing.
				a, ok := r.acked[k]
				if !ok || a.After(now) {
					a = now
				}
				r.fromAck = append(r.fromAck, now.Sub(a))
				delete(r.acked, k)
			}
		}
	}
	r.mu.Unlock()
	if r.next != nil {
		r.next.Record(changes, offsets)
	}
}

// RecordHead implements feed.HeadRecorder, passing it on to next.
func (r *VisibleRecorder) RecordHead(at time.Time, offsets feed.Offsets) {
	if h, ok := r.next.(feed.HeadRecorder); ok {
		h.RecordHead(at, offsets)
	}
}

// Latencies returns the measured latencies from scheduled send and from
// the broker's acknowledgement, sorted, and how many sent events were never
// seen applied.
func (r *VisibleRecorder) Latencies() (fromSend, fromAck []time.Duration, unseen int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	fromSend, fromAck = slices.Clone(r.latency), slices.Clone(r.fromAck)
	slices.Sort(fromSend)
	slices.Sort(fromAck)
	return fromSend, fromAck, len(r.sent)
}

// Percentile returns the p-quantile (0..1) of sorted durations.
func Percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[min(len(sorted)-1, int(p*float64(len(sorted))))]
}
