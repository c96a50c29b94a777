package feed_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/planflag/planflag/feed"
	"github.com/planflag/planflag/feed/feedtest"
	"github.com/planflag/planflag/matcher"
)

// found reports whether a lookup by NHS number (and birth date) flags plan i.
func found(ix *matcher.Index, i int) bool {
	r, err := ix.Match(feedtest.Query(i))
	if err != nil {
		panic(err)
	}
	for _, c := range r.Candidates {
		if c.PlanID == feedtest.PlanID(i) {
			return true
		}
	}
	return false
}

type topicEnv struct {
	t       *testing.T
	brokers []string
	topic   string
	w       *kafka.Writer
	refresh time.Duration // KafkaConfig.Refresh of consumers follow starts (0: the default)
}

func newTopic(t *testing.T, partitions int) *topicEnv {
	brokers := feedtest.Brokers(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	topic := feedtest.Name("plans")
	if err := feed.CreateTopic(ctx, brokers, feed.KafkaAuth{}, topic, partitions, true); err != nil {
		t.Fatalf("create topic: %v", err)
	}
	w := &kafka.Writer{Addr: kafka.TCP(brokers...), Topic: topic, Balancer: &kafka.Murmur2Balancer{},
		RequiredAcks: kafka.RequireAll, BatchTimeout: time.Millisecond, WriteTimeout: 10 * time.Second}
	t.Cleanup(func() { w.Close() })
	return &topicEnv{t: t, brokers: brokers, topic: topic, w: w}
}

func (e *topicEnv) publish(msgs ...kafka.Message) {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := e.w.WriteMessages(ctx, msgs...); err != nil {
		e.t.Fatalf("publish: %v", err)
	}
}

func msg(i int, value []byte) kafka.Message {
	return kafka.Message{Key: []byte(feedtest.PlanID(i)), Value: value}
}

// upserts is version 1 of plans 0 to n-1.
func upserts(n int) []kafka.Message {
	msgs := make([]kafka.Message, n)
	for i := range msgs {
		msgs[i] = msg(i, feedtest.Upsert(i, 1))
	}
	return msgs
}

// follow starts a consumer of the topic into ix and waits until it has
// caught up.
func (e *topicEnv) follow(ix feed.Applier, rec feed.Recorder, from feed.Offsets) *feed.Consumer {
	e.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	c := feed.NewConsumer(feed.KafkaConfig{Brokers: e.brokers, Topic: e.topic, MaxWait: 50 * time.Millisecond, Refresh: e.refresh}, ix, rec)
	pctx, pcancel := context.WithTimeout(ctx, 30*time.Second)
	defer pcancel()
	if err := c.Prepare(pctx); err != nil {
		cancel()
		e.t.Fatalf("prepare: %v", err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := c.Run(ctx, from); err != nil {
			e.t.Errorf("run: %v", err)
		}
	}()
	e.t.Cleanup(func() { cancel(); wg.Wait() })
	select {
	case <-c.CaughtUp():
	case <-time.After(60 * time.Second):
		e.t.Fatal("consumer did not catch up within 60s")
	}
	return c
}

// waitApplied waits until c has applied everything now in the topic.
func (e *topicEnv) waitApplied(c *feed.Consumer) {
	e.t.Helper()
	cl := &kafka.Client{Addr: kafka.TCP(e.brokers...)}
	var reqs []kafka.OffsetRequest
	for _, p := range c.Partitions() {
		reqs = append(reqs, kafka.LastOffsetOf(p))
	}
	res, err := cl.ListOffsets(context.Background(), &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{e.topic: reqs}})
	if err != nil {
		e.t.Fatalf("list offsets: %v", err)
	}
	feedtest.Eventually(e.t, 10*time.Second, "consumer reaches the high-water marks", func() bool {
		got := c.Applied()
		for _, po := range res.Topics[e.topic] {
			if got[po.Partition] < po.LastOffset {
				return false
			}
		}
		return true
	})
}

func TestKafkaFollow(t *testing.T) {
	e := newTopic(t, 3)
	const n = 300
	e.publish(upserts(n)...)

	ix := matcher.NewIndex(nil)
	c := e.follow(ix, nil, nil)
	if got := ix.Live(); got != n {
		t.Fatalf("after catching up: %d live plans, want %d", got, n)
	}
	if done, total := c.CatchUpProgress(); done != n || total != n {
		t.Errorf("progress once caught up: %d of %d, want %d of %d", done, total, n, n)
	}
	for _, i := range []int{0, 1, n / 2, n - 1} {
		if !found(ix, i) {
			t.Errorf("plan %d published before start not found", i)
		}
	}

	// Times run from just before the publish call, so they include the
	// producer's round trip to the broker.
	start := time.Now()
	e.publish(msg(n, feedtest.Upsert(n, 1)))
	feedtest.Eventually(t, 10*time.Second, "new plan visible", func() bool { return found(ix, n) })
	t.Logf("publish → visible: %v", time.Since(start))

	// Withdrawal and tombstone: gone. (Within a second is the product's
	// promise, measured by `flagbench soak` (withdrawal → not flagged) and
	// `flagbench ingest` (publish → visible), not here: one pause of the
	// broker's JVM on a loaded machine, under the race detector, would
	// fail a test timed to it. The times are logged.)
	start = time.Now()
	e.publish(msg(1, feedtest.Withdrawn(1, 2)))
	feedtest.Eventually(t, 10*time.Second, "withdrawn plan gone", func() bool { return !found(ix, 1) })
	t.Logf("withdrawal → gone: %v", time.Since(start))
	start = time.Now()
	e.publish(kafka.Message{Key: []byte(feedtest.PlanID(2))})
	feedtest.Eventually(t, 10*time.Second, "tombstoned plan gone", func() bool { return !found(ix, 2) })
	t.Logf("tombstone → gone: %v", time.Since(start))

	// Stale copies change nothing: an older upsert of the withdrawn plan, a
	// re-sent version 1 of the tombstoned one, and an older version of a
	// live plan after its newer one.
	e.publish(msg(3, feedtest.Upsert(3, 5)))
	e.publish(msg(1, feedtest.Upsert(1, 1)), msg(2, feedtest.Upsert(2, 99)), msg(3, feedtest.Upsert(3, 4)))
	e.waitApplied(c)
	if found(ix, 1) || found(ix, 2) {
		t.Error("a stale event brought a withdrawn plan back")
	}
	if v, live := ix.Version(feedtest.PlanID(3)); v != 5 || !live {
		t.Errorf("plan 3 at version %d (live %v), want 5: a stale event was applied", v, live)
	}
}

func TestKafkaDeadLetters(t *testing.T) {
	e := newTopic(t, 2)
	ix := matcher.NewIndex(nil)
	c := e.follow(ix, nil, nil)
	poison := []kafka.Message{
		{Key: []byte("UCP-POISON-1"), Value: []byte(`{"type": "plan.upserted", "plan_id": `)}, // cut short
		{Key: []byte("UCP-POISON-2"), Value: []byte(`{"type": "plan.upserted", "plan_id": "UCP-POISON-2", "version": 1}`)},
		{Key: []byte("UCP-OTHER"), Value: feedtest.Upsert(7, 1)}, // key does not match plan_id
		// (A keyless message cannot reach a compacted topic: the broker refuses it.)
	}
	e.publish(poison...)
	e.publish(msg(9, feedtest.Upsert(9, 1)))
	feedtest.Eventually(t, 5*time.Second, "event after the poison applied", func() bool { return found(ix, 9) })
	e.waitApplied(c)
	if found(ix, 7) {
		t.Error("a refused event was applied")
	}

	// Each refused message is on the dead-letter topic with its reason.
	r := kafka.NewReader(kafka.ReaderConfig{Brokers: e.brokers, Topic: e.topic + ".dead-letters", Partition: 0, MaxWait: 100 * time.Millisecond})
	defer r.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	reasons := map[string]string{}
	for range poison {
		m, err := r.ReadMessage(ctx)
		if err != nil {
			t.Fatalf("read dead letters: %v (have %d of %d)", err, len(reasons), len(poison))
		}
		for _, h := range m.Headers {
			if h.Key == feed.HeaderReason {
				reasons[string(m.Key)] = string(h.Value)
			}
		}
	}
	want := map[string]string{
		"UCP-POISON-1": "not an event object: invalid JSON",
		"UCP-POISON-2": "plan.upserted without patient",
		"UCP-OTHER":    "plan_id does not match the message key",
	}
	for k, w := range want {
		if got := reasons[k]; !strings.HasPrefix(got, w) {
			t.Errorf("dead letter %q: reason %q, want %q", k, got, w)
		}
	}
}

// TestKafkaAddedPartition: a partition added to the topic while the consumer
// runs is found at the next refresh and read from its start, so the events
// the producer's hashing now sends there (a withdrawal among them) apply.
func TestKafkaAddedPartition(t *testing.T) {
	e := newTopic(t, 1)
	e.refresh = 200 * time.Millisecond
	e.publish(msg(1, feedtest.Upsert(1, 1)))
	ix := matcher.NewIndex(nil)
	c := e.follow(ix, nil, nil)
	if !found(ix, 1) {
		t.Fatal("plan 1 not loaded")
	}
	ctx := context.Background()
	cl := &kafka.Client{Addr: kafka.TCP(e.brokers...), Timeout: 10 * time.Second}
	res, err := cl.CreatePartitions(ctx, &kafka.CreatePartitionsRequest{Topics: []kafka.TopicPartitionsConfig{{Name: e.topic, Count: 2}}})
	if err != nil {
		t.Fatal(err)
	}
	for _, err := range res.Errors {
		if err != nil {
			t.Fatal(err)
		}
	}
	// Written to the new partition as soon as it takes writes (its leader
	// may refuse them for a moment after the increase).
	feedtest.Eventually(t, 20*time.Second, "a write to the new partition", func() bool {
		conn, err := kafka.DialLeader(ctx, "tcp", e.brokers[0], e.topic, 1)
		if err != nil {
			return false
		}
		defer conn.Close()
		_, err = conn.WriteMessages(msg(1, feedtest.Withdrawn(1, 2)), msg(2, feedtest.Upsert(2, 1)))
		return err == nil
	})
	feedtest.Eventually(t, 10*time.Second, "the new partition's events are applied", func() bool {
		return !found(ix, 1) && found(ix, 2)
	})
	// The applied offsets are published just after the index has the
	// batch, so they may trail what a lookup already sees by a moment.
	feedtest.Eventually(t, 5*time.Second, "the new partition's offset published", func() bool {
		return c.Applied()[1] >= 2
	})
	if got := c.Applied()[1]; got != 2 {
		t.Errorf("applied offsets of the new partition: %d, want 2", got)
	}
}

type headRecorder struct {
	mu      sync.Mutex
	at      time.Time
	offsets feed.Offsets
}

func (h *headRecorder) Record([]feed.Applied, feed.Offsets) {}
func (h *headRecorder) RecordHead(at time.Time, o feed.Offsets) {
	h.mu.Lock()
	h.at, h.offsets = at, o
	h.mu.Unlock()
}

// TestKafkaHead: the consumer tells a HeadRecorder when it has reached the
// log's head, with a time at which the high-water marks were no further than
// the offsets it gives; an idle topic keeps that time moving.
func TestKafkaHead(t *testing.T) {
	e := newTopic(t, 2)
	e.refresh = 200 * time.Millisecond
	for i := range 10 {
		e.publish(msg(i, feedtest.Upsert(i, 1)))
	}
	h := &headRecorder{}
	c := e.follow(matcher.NewIndex(nil), h, nil)
	e.waitApplied(c)
	after := time.Now()
	feedtest.Eventually(t, 10*time.Second, "a head time after the last event", func() bool {
		h.mu.Lock()
		defer h.mu.Unlock()
		return h.at.After(after)
	})
	h.mu.Lock()
	got := h.offsets
	h.mu.Unlock()
	if want := c.Applied(); got[0] != want[0] || got[1] != want[1] || got[0]+got[1] != 10 {
		t.Errorf("head offsets %v, want the applied %v (10 events)", got, want)
	}
}

// A plan store may compress its batches: every codec Kafka has is read.
func TestKafkaCompressed(t *testing.T) {
	for _, codec := range []kafka.Compression{kafka.Gzip, kafka.Snappy, kafka.Lz4, kafka.Zstd} {
		t.Run(codec.String(), func(t *testing.T) {
			e := newTopic(t, 1)
			e.w.Compression = codec
			const n = 50
			e.publish(upserts(n)...)
			ix := matcher.NewIndex(nil)
			c := e.follow(ix, nil, nil)
			if got := ix.Live(); got != n {
				t.Fatalf("%d live plans, want %d", got, n)
			}
			e.publish(msg(0, feedtest.Withdrawn(0, 2)))
			e.waitApplied(c)
			if found(ix, 0) || !found(ix, n-1) {
				t.Errorf("after a compressed withdrawal: plan 0 found %v (want false), plan %d found %v (want true)", found(ix, 0), n-1, found(ix, n-1))
			}
		})
	}
}

// appliedLog records every Applied the consumer hands over.
type appliedLog struct {
	mu  sync.Mutex
	all []feed.Applied
}

func (l *appliedLog) Record(changes []feed.Applied, _ feed.Offsets) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.all = append(l.all, changes...)
}

// A tombstone after a plan's withdrawal is applied (the version rises to
// TombstoneVersion) and marked AlreadyWithdrawn, so push alerts do not tell
// clients of the same withdrawal twice; the first withdrawal is not marked.
func TestKafkaAlreadyWithdrawn(t *testing.T) {
	e := newTopic(t, 1)
	e.publish(upserts(1)...)
	e.publish(msg(0, feedtest.Withdrawn(0, 2)))
	e.publish(kafka.Message{Key: []byte(feedtest.PlanID(0))})
	rec := &appliedLog{}
	e.follow(matcher.NewIndex(nil), rec, nil)
	rec.mu.Lock()
	defer rec.mu.Unlock()
	var got []string
	for _, a := range rec.all {
		got = append(got, fmt.Sprintf("v%d:%v", a.Version, a.AlreadyWithdrawn))
	}
	want := []string{"v1:false", "v2:false", fmt.Sprintf("v%d:true", uint64(feed.TombstoneVersion))}
	if !slices.Equal(got, want) {
		t.Errorf("applied %v, want %v", got, want)
	}
}
