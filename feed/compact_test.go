package feed_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	fetchAPI "github.com/segmentio/kafka-go/protocol/fetch"

	"github.com/planflag/planflag/feed"
	"github.com/planflag/planflag/feed/feedtest"
	"github.com/planflag/planflag/matcher"
)

// A compacted log holds batches whose last records were cleaned away (a
// record batch keeps its offset range, v2 format, when the cleaner removes
// records from it). A reader that only moves past the records it sees
// fetches such a batch again and again when the batch after it does not fit
// in the same response: the Java client moves to the batch's end instead.
func TestKafkaCompactedBatchEnd(t *testing.T) {
	brokers := feedtest.Brokers(t)
	topic := feedtest.Name("plans-compacted")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	compactingTopic(t, ctx, brokers, topic, kafka.ConfigEntry{ConfigName: "max.message.bytes", ConfigValue: "8388608"})
	write := segmentWriter(t, ctx, &kafka.Writer{Addr: kafka.TCP(brokers...), Topic: topic, RequiredAcks: kafka.RequireAll,
		BatchSize: 100000, BatchBytes: 6 << 20, BatchTimeout: 20 * time.Millisecond, WriteTimeout: 20 * time.Second})
	// Batch A: plans 0 and 1 (offsets 0, 1). Batch B: plan 1 again, then
	// enough plans to make B larger than a fetch response. Then one more
	// write, so that B's segment is rolled and can be cleaned.
	write(msg(0, feedtest.Upsert(0, 1)), msg(1, feedtest.Upsert(1, 1)))
	const n = 4000
	big := []kafka.Message{msg(1, feedtest.Upsert(1, 2))}
	for i := 2; i < n; i++ {
		big = append(big, msg(i, feedtest.Upsert(i, 1)))
	}
	write(big...)
	write(msg(n, feedtest.Upsert(n, 1)))

	// Wait for the cleaner (it looks every 15s by default) to remove plan
	// 1's first record, the last of batch A.
	tr := &kafka.Transport{}
	defer tr.CloseIdleConnections()
	feedtest.Eventually(t, 90*time.Second, "the cleaner removes offset 1", func() bool {
		pt := fetchFrom(ctx, tr, brokers, topic, 1)
		if pt == nil {
			return false
		}
		// A fetch at 1 begins with batch A: offset 0, then 1 until cleaned.
		rec, err := pt.RecordSet.Records.ReadRecord()
		if err != nil || rec.Offset != 0 {
			return false
		}
		rec, err = pt.RecordSet.Records.ReadRecord()
		return err != nil || rec.Offset != 1
	})

	ix := matcher.NewIndex(nil)
	c := feed.NewConsumer(feed.KafkaConfig{Brokers: brokers, Topic: topic, MaxWait: 50 * time.Millisecond}, ix, nil)
	if err := c.Prepare(ctx); err != nil {
		t.Fatal(err)
	}
	rctx, rcancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- c.Run(rctx, nil) }()
	defer func() { rcancel(); <-done }()
	select {
	case <-c.CaughtUp():
	case <-time.After(20 * time.Second):
		t.Fatalf("not caught up after 20s: applied %v, end %v; plan 1 v2 found %v, plan %d found %v",
			c.Applied(), c.End(), found(ix, 1), n-1, found(ix, n-1))
	}
	for _, i := range []int{0, 1, 2, n - 1, n} {
		if !found(ix, i) {
			t.Errorf("plan %d not found after catching up", i)
		}
	}
	if v, _ := ix.Version(feedtest.PlanID(1)); v != 2 {
		t.Errorf("plan 1 at version %d, want 2", v)
	}
}

// compactingTopic creates a one-partition compacted topic whose segments
// roll at every write a moment apart and whose cleaner takes any of them.
func compactingTopic(t *testing.T, ctx context.Context, brokers []string, topic string, more ...kafka.ConfigEntry) {
	t.Helper()
	cl := &kafka.Client{Addr: kafka.TCP(brokers...), Timeout: 20 * time.Second}
	res, err := cl.CreateTopics(ctx, &kafka.CreateTopicsRequest{Topics: []kafka.TopicConfig{{
		Topic: topic, NumPartitions: 1, ReplicationFactor: 1, ConfigEntries: append([]kafka.ConfigEntry{
			{ConfigName: "cleanup.policy", ConfigValue: "compact"},
			{ConfigName: "segment.ms", ConfigValue: "100"},
			{ConfigName: "min.cleanable.dirty.ratio", ConfigValue: "0.001"},
		}, more...)}}})
	if err == nil {
		err = res.Errors[topic]
	}
	if err != nil {
		t.Fatalf("create topic: %v", err)
	}
}

// segmentWriter returns a function that publishes through w (closed when
// the test ends) and then waits long enough that the next write rolls the
// segment (compactingTopic's segment.ms), so the one written can be cleaned.
func segmentWriter(t *testing.T, ctx context.Context, w *kafka.Writer) func(msgs ...kafka.Message) {
	t.Cleanup(func() { w.Close() })
	return func(msgs ...kafka.Message) {
		t.Helper()
		if err := w.WriteMessages(ctx, msgs...); err != nil {
			t.Fatalf("publish: %v", err)
		}
		time.Sleep(300 * time.Millisecond)
	}
}

// fetchFrom fetches partition 0 of topic from offset at, raw (records the
// cleaner removed are not there); nil if the fetch fails or has no records.
func fetchFrom(ctx context.Context, tr *kafka.Transport, brokers []string, topic string, at int64) *fetchAPI.ResponsePartition {
	m, err := tr.RoundTrip(ctx, kafka.TCP(brokers...), &fetchAPI.Request{ReplicaID: -1, MaxWaitTime: 10, MinBytes: 1,
		MaxBytes: 1 << 20, IsolationLevel: 1, SessionID: -1, SessionEpoch: -1,
		Topics: []fetchAPI.RequestTopic{{Topic: topic, Partitions: []fetchAPI.RequestPartition{{
			CurrentLeaderEpoch: -1, FetchOffset: at, LogStartOffset: -1, PartitionMaxBytes: 1 << 20}}}}})
	if err != nil {
		return nil
	}
	pt := &m.(*fetchAPI.Response).Topics[0].Partitions[0]
	if pt.RecordSet.Records == nil {
		return nil
	}
	return pt
}

// A late copy of a withdrawn plan's older upsert, published after the
// withdrawal, is the plan's last record, so the log cleaner removes the
// withdrawal (compaction keeps the last record of a key, not its highest
// version). Replicas that saw the withdrawal ignore the copy; a replica
// that replays the topic alone would flag the plan again. The snapshot's
// withdrawal entry survives it: a replica that finds the snapshot too old
// replays but keeps the snapshot's withdrawals, writes them into the
// generation that replaces it, and warm starts from that generation keep the
// plan withdrawn.
func TestSnapshotKeepsWithdrawalsPastCompaction(t *testing.T) {
	brokers := feedtest.Brokers(t)
	topic := feedtest.Name("plans-compacted-withdrawal")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	compactingTopic(t, ctx, brokers, topic)
	write := segmentWriter(t, ctx, &kafka.Writer{Addr: kafka.TCP(brokers...), Topic: topic, RequiredAcks: kafka.RequireAll,
		BatchTimeout: 5 * time.Millisecond, WriteTimeout: 20 * time.Second})
	write(msg(1, feedtest.Upsert(1, 1)), msg(2, feedtest.Upsert(2, 1)))
	write(msg(1, feedtest.Withdrawn(1, 2))) // offset 2

	// follow runs a replica with a snapshot keeper whose clock is now, from
	// its snapshot if usable, until caught up, and writes its snapshot.
	follow := func(now func() time.Time, during func()) (*matcher.Index, error) {
		t.Helper()
		s, _ := newSnapshots(t, topic, now)
		ix := matcher.NewIndex(nil)
		c := feed.NewConsumer(feed.KafkaConfig{Brokers: brokers, Topic: topic, MaxWait: 50 * time.Millisecond}, ix, s)
		if err := c.Prepare(ctx); err != nil {
			t.Fatal(err)
		}
		from, _, err := s.Load(ctx, ix, c.Usable)
		rctx, rcancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- c.Run(rctx, from) }()
		<-c.CaughtUp()
		if during != nil {
			during()
		}
		time.Sleep(300 * time.Millisecond)
		if ferr := s.Flush(ctx); ferr != nil {
			t.Fatal(ferr)
		}
		rcancel()
		<-done
		return ix, err
	}
	// A replica follows and writes the snapshot while the late copy of
	// plan 1's first upsert arrives.
	first, err := follow(time.Now, func() {
		write(msg(1, feedtest.Upsert(1, 1))) // late copy of version 1
		write(msg(3, feedtest.Upsert(3, 1)))
		write(msg(4, feedtest.Upsert(4, 1)))
	})
	if !errors.Is(err, feed.ErrNoSnapshot) {
		t.Fatalf("first replica: %v, want no snapshot", err)
	}
	if found(first, 1) {
		t.Fatal("the replica that saw the withdrawal flags plan 1")
	}

	tr := &kafka.Transport{}
	defer tr.CloseIdleConnections()
	feedtest.Eventually(t, 90*time.Second, "the cleaner removes the withdrawal", func() bool {
		pt := fetchFrom(ctx, tr, brokers, topic, 0)
		if pt == nil {
			return false
		}
		seen := map[int64]bool{}
		for {
			rec, err := pt.RecordSet.Records.ReadRecord()
			if err != nil {
				break
			}
			seen[rec.Offset] = true
		}
		return seen[3] && !seen[2]
	})

	// Two hours on, past the snapshot's MaxAge (1h): a replica replays.
	later := func() time.Time { return time.Now().Add(2 * time.Hour) }
	replayed, err := follow(later, nil)
	if !errors.Is(err, feed.ErrNoSnapshot) {
		t.Fatalf("replica two hours on: %v, want the snapshot too old", err)
	}
	if found(replayed, 1) || !found(replayed, 4) {
		t.Errorf("replaying past a too-old snapshot: plan 1 found %v (withdrawn), plan 4 found %v", found(replayed, 1), found(replayed, 4))
	}
	// Its generation replaced the old one, withdrawal included (read with
	// the real clock: its offsets were at the head a moment ago).
	warm, err := follow(time.Now, nil)
	if err != nil {
		t.Fatalf("warm start from the new generation: %v", err)
	}
	if found(warm, 1) || !found(warm, 4) {
		t.Errorf("warm start from the new generation: plan 1 found %v (withdrawn), plan 4 found %v", found(warm, 1), found(warm, 4))
	}
	if v, _ := warm.Version(feedtest.PlanID(1)); v != 2 {
		t.Errorf("plan 1 at version %d after the warm start, want the withdrawal's 2", v)
	}
}
