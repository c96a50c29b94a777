package feed_test

import (
	"context"
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
	cl := &kafka.Client{Addr: kafka.TCP(brokers...), Timeout: 20 * time.Second}
	res, err := cl.CreateTopics(ctx, &kafka.CreateTopicsRequest{Topics: []kafka.TopicConfig{{
		Topic: topic, NumPartitions: 1, ReplicationFactor: 1, ConfigEntries: []kafka.ConfigEntry{
			{ConfigName: "cleanup.policy", ConfigValue: "compact"},
			{ConfigName: "segment.ms", ConfigValue: "100"},
			{ConfigName: "min.cleanable.dirty.ratio", ConfigValue: "0.001"},
			{ConfigName: "max.message.bytes", ConfigValue: "8388608"},
		}}}})
	if err == nil {
		err = res.Errors[topic]
	}
	if err != nil {
		t.Fatalf("create topic: %v", err)
	}
	w := &kafka.Writer{Addr: kafka.TCP(brokers...), Topic: topic, RequiredAcks: kafka.RequireAll,
		BatchSize: 100000, BatchBytes: 6 << 20, BatchTimeout: 20 * time.Millisecond, WriteTimeout: 20 * time.Second}
	defer w.Close()
	write := func(msgs ...kafka.Message) {
		t.Helper()
		if err := w.WriteMessages(ctx, msgs...); err != nil {
			t.Fatalf("publish: %v", err)
		}
		time.Sleep(300 * time.Millisecond) // the next write rolls the segment
	}
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
		m, err := tr.RoundTrip(ctx, kafka.TCP(brokers...), &fetchAPI.Request{ReplicaID: -1, MaxWaitTime: 10, MinBytes: 1,
			MaxBytes: 1 << 20, IsolationLevel: 1, SessionID: -1, SessionEpoch: -1,
			Topics: []fetchAPI.RequestTopic{{Topic: topic, Partitions: []fetchAPI.RequestPartition{{
				CurrentLeaderEpoch: -1, FetchOffset: 1, LogStartOffset: -1, PartitionMaxBytes: 1 << 20}}}}})
		if err != nil {
			return false
		}
		pt := &m.(*fetchAPI.Response).Topics[0].Partitions[0]
		if pt.RecordSet.Records == nil {
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
