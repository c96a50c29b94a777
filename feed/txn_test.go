package feed_test

import (
	"bytes"
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/protocol"

	"github.com/planflag/planflag/feed"
	"github.com/planflag/planflag/feed/feedtest"
	"github.com/planflag/planflag/matcher"
)

// txProducer writes to one partition as a transactional producer does
// (a plan store using Kafka transactions, or exactly-once delivery): each
// batch carries the producer's ID, epoch and sequence and the transactional
// flag, and the broker writes a commit or abort marker when the transaction
// ends. kafka-go's Writer cannot do this (it writes no producer ID), so the
// batch is encoded here and sent with RawProduce.
type txProducer struct {
	t         *testing.T
	cl        *kafka.Client
	topic     string
	partition int
	id        string
	pid       int64
	epoch     int16
	seq       int32
}

func newTxProducer(t *testing.T, e *topicEnv, partition int) *txProducer {
	t.Helper()
	p := &txProducer{t: t, cl: &kafka.Client{Addr: kafka.TCP(e.brokers...), Timeout: 20 * time.Second},
		topic: e.topic, partition: partition, id: e.topic + "-tx"}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for {
		res, err := p.cl.InitProducerID(ctx, &kafka.InitProducerIDRequest{TransactionalID: p.id, TransactionTimeoutMs: 60000})
		if err == nil && res.Error == nil {
			p.pid, p.epoch = int64(res.Producer.ProducerID), int16(res.Producer.ProducerEpoch)
			return p
		}
		if ctx.Err() != nil {
			t.Fatalf("init producer id: %v %v", err, res)
		}
		time.Sleep(200 * time.Millisecond) // the transaction coordinator may still be loading
	}
}

// send writes msgs in the open transaction (opening it if need be).
func (p *txProducer) send(msgs ...kafka.Message) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// The coordinator refuses while it is still writing the last
	// transaction's markers, or before it knows a topic just created; a
	// Kafka producer retries, and so does this.
	for {
		add, err := p.cl.AddPartitionsToTxn(ctx, &kafka.AddPartitionsToTxnRequest{TransactionalID: p.id,
			ProducerID: int(p.pid), ProducerEpoch: int(p.epoch),
			Topics: map[string][]kafka.AddPartitionToTxn{p.topic: {{Partition: p.partition}}}})
		if err == nil {
			for _, r := range add.Topics[p.topic] {
				err = cmp.Or(err, r.Error)
			}
		}
		if err == nil {
			break
		}
		retriable := errors.Is(err, kafka.ConcurrentTransactions) || errors.Is(err, kafka.UnknownTopicOrPartition) ||
			errors.Is(err, kafka.GroupLoadInProgress) || errors.Is(err, kafka.GroupCoordinatorNotAvailable) // codes 14, 15: the coordinator loading
		if !retriable || ctx.Err() != nil {
			p.t.Fatalf("add partition to transaction: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// A topic just created may not have its leader known yet: retried, as
	// a Kafka producer does (nothing was written).
	for {
		res, err := p.cl.RawProduce(ctx, &kafka.RawProduceRequest{Topic: p.topic, Partition: p.partition,
			RequiredAcks: kafka.RequireAll, TransactionalID: p.id,
			RawRecords: protocol.RawRecordSet{Reader: bytes.NewReader(p.batch(msgs))}})
		if err == nil {
			err = res.Error
		}
		if err == nil {
			break
		}
		retriable := errors.Is(err, kafka.NotLeaderForPartition) || errors.Is(err, kafka.LeaderNotAvailable) ||
			errors.Is(err, kafka.UnknownTopicOrPartition)
		if !retriable || ctx.Err() != nil {
			p.t.Fatalf("produce in transaction: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	p.seq += int32(len(msgs))
}

// end commits or aborts the open transaction.
func (p *txProducer) end(commit bool) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := p.cl.EndTxn(ctx, &kafka.EndTxnRequest{TransactionalID: p.id, ProducerID: int(p.pid),
		ProducerEpoch: int(p.epoch), Committed: commit})
	if err == nil {
		err = res.Error
	}
	if err != nil {
		p.t.Fatalf("end transaction (commit %v): %v", commit, err)
	}
}

// batch encodes msgs as one v2 record batch of the transaction
// (https://kafka.apache.org/documentation/#recordbatch), as the records of
// a produce request.
func (p *txProducer) batch(msgs []kafka.Message) []byte {
	now := time.Now().UnixMilli()
	var recs []byte
	for i, m := range msgs {
		var r []byte
		r = append(r, 0)                     // attributes
		r = binary.AppendVarint(r, 0)        // timestamp delta
		r = binary.AppendVarint(r, int64(i)) // offset delta
		r = binary.AppendVarint(r, int64(len(m.Key)))
		r = append(r, m.Key...)
		if m.Value == nil {
			r = binary.AppendVarint(r, -1) // a tombstone
		} else {
			r = binary.AppendVarint(r, int64(len(m.Value)))
			r = append(r, m.Value...)
		}
		r = binary.AppendVarint(r, 0) // headers
		recs = binary.AppendVarint(recs, int64(len(r)))
		recs = append(recs, r...)
	}
	const transactional = 1 << 4
	var tail []byte // from the attributes on: what the CRC covers
	tail = binary.BigEndian.AppendUint16(tail, transactional)
	tail = binary.BigEndian.AppendUint32(tail, uint32(len(msgs)-1)) // last offset delta
	tail = binary.BigEndian.AppendUint64(tail, uint64(now))         // first timestamp
	tail = binary.BigEndian.AppendUint64(tail, uint64(now))         // max timestamp
	tail = binary.BigEndian.AppendUint64(tail, uint64(p.pid))
	tail = binary.BigEndian.AppendUint16(tail, uint16(p.epoch))
	tail = binary.BigEndian.AppendUint32(tail, uint32(p.seq))
	tail = binary.BigEndian.AppendUint32(tail, uint32(len(msgs)))
	tail = append(tail, recs...)
	var b []byte
	b = binary.BigEndian.AppendUint64(b, 0)                       // base offset (the broker assigns it)
	b = binary.BigEndian.AppendUint32(b, uint32(4+1+4+len(tail))) // batch length: from here on
	b = binary.BigEndian.AppendUint32(b, 0xffffffff)              // partition leader epoch
	b = append(b, 2)                                              // magic
	b = binary.BigEndian.AppendUint32(b, crc32.Checksum(tail, crc32.MakeTable(crc32.Castagnoli)))
	b = append(b, tail...)
	// A produce request's records are bytes: a 32-bit length, then the batch.
	return append(binary.BigEndian.AppendUint32(nil, uint32(len(b))), b...)
}

// deadLetters counts what the dead-letter topic of e's topic holds.
func (e *topicEnv) deadLetters() int64 {
	e.t.Helper()
	cl := &kafka.Client{Addr: kafka.TCP(e.brokers...), Timeout: 10 * time.Second}
	dlt := e.topic + ".dead-letters"
	res, err := cl.ListOffsets(context.Background(), &kafka.ListOffsetsRequest{
		Topics: map[string][]kafka.OffsetRequest{dlt: {kafka.LastOffsetOf(0)}}})
	if err != nil {
		e.t.Fatalf("dead-letter offsets: %v", err)
	}
	pos := res.Topics[dlt]
	if len(pos) != 1 {
		e.t.Fatalf("dead-letter topic: offsets of %d partitions, want 1", len(pos))
	}
	if pos[0].Error != nil {
		e.t.Fatalf("dead-letter offsets: %v", pos[0].Error)
	}
	return pos[0].LastOffset
}

// A plan store that writes in transactions: committed events are applied,
// aborted ones never (an aborted upsert is a plan the store rolled back; an
// aborted withdrawal is one it did not make), an open transaction's events
// only once it commits, and the transaction markers are neither events nor
// dead letters. A partition that ends in a marker still counts as caught up.
func TestKafkaTransactions(t *testing.T) {
	e := newTopic(t, 1)
	e.publish(msg(0, feedtest.Upsert(0, 1))) // written outside any transaction
	tx := newTxProducer(t, e, 0)
	tx.send(msg(1, feedtest.Upsert(1, 1)), msg(2, feedtest.Upsert(2, 1)))
	tx.end(true)
	tx.send(msg(3, feedtest.Upsert(3, 1)))    // rolled back: never a plan
	tx.send(msg(0, feedtest.Withdrawn(0, 2))) // rolled back: consent stands
	tx.end(false)
	tx.send(msg(4, feedtest.Upsert(4, 1)))
	tx.end(true) // the log now ends in a commit marker

	ix := matcher.NewIndex(nil)
	c := e.follow(ix, nil, nil) // fails unless caught up
	for _, i := range []int{0, 1, 2, 4} {
		if !found(ix, i) {
			t.Errorf("plan %d (committed) not found after catching up", i)
		}
	}
	if found(ix, 3) {
		t.Error("plan 3, upserted in an aborted transaction, is flagged")
	}
	if v, _ := ix.Version(feedtest.PlanID(0)); v != 1 {
		t.Errorf("plan 0 at version %d, want 1: the aborted withdrawal was applied", v)
	}
	e.waitApplied(c) // the offsets reach the end, markers included

	// While following: an aborted withdrawal, then an open transaction that
	// must stay invisible until it commits.
	tx.send(msg(1, feedtest.Withdrawn(1, 2)))
	tx.end(false)
	tx.send(msg(5, feedtest.Upsert(5, 1)))
	e.publish(msg(6, feedtest.Upsert(6, 1))) // outside the transaction, after its start
	time.Sleep(500 * time.Millisecond)
	if found(ix, 5) {
		t.Error("plan 5 visible before its transaction committed")
	}
	tx.end(true)
	feedtest.Eventually(t, 5*time.Second, "plans 5 and 6 visible once the transaction commits", func() bool {
		return found(ix, 5) && found(ix, 6)
	})
	e.waitApplied(c)
	if !found(ix, 1) {
		t.Error("plan 1 gone: a withdrawal in an aborted transaction was applied")
	}
	if n := e.deadLetters(); n != 0 {
		t.Errorf("%d dead letters: transaction markers were taken for events", n)
	}
}

// A transaction left open when the consumer starts does not hold readiness
// back: the consumer catches up with what is committed (the last stable
// offset), and what follows the open transaction arrives when it commits.
func TestKafkaOpenTransactionAtStart(t *testing.T) {
	e := newTopic(t, 1)
	e.publish(msg(0, feedtest.Upsert(0, 1)))
	tx := newTxProducer(t, e, 0)
	tx.send(msg(1, feedtest.Upsert(1, 1)))   // open
	e.publish(msg(2, feedtest.Upsert(2, 1))) // after it: not readable until it ends
	ix := matcher.NewIndex(nil)
	e.follow(ix, nil, nil) // fails unless caught up
	if !found(ix, 0) || found(ix, 1) || found(ix, 2) {
		t.Errorf("caught up: plans 0, 1, 2 found %v, %v, %v; want true, false, false", found(ix, 0), found(ix, 1), found(ix, 2))
	}
	tx.end(true)
	feedtest.Eventually(t, 5*time.Second, "plans 1 and 2 visible once the transaction commits", func() bool {
		return found(ix, 1) && found(ix, 2)
	})
}

// A reader whose offset the log does not hold moves to the log's start,
// and says so: an error in the log and skipped_by_reader counted.
func TestKafkaOffsetOutOfRange(t *testing.T) {
	e := newTopic(t, 1)
	e.publish(msg(0, feedtest.Upsert(0, 1)), msg(1, feedtest.Upsert(1, 1)))
	var logs feedtest.LogBuffer
	m := feed.NewMetrics(prometheus.NewRegistry())
	ix := matcher.NewIndex(nil)
	c := feed.NewConsumer(feed.KafkaConfig{Brokers: e.brokers, Topic: e.topic, MaxWait: 50 * time.Millisecond, Metrics: m,
		Log: slog.New(slog.NewJSONHandler(&logs, nil))}, ix, nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := c.Prepare(ctx); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx, feed.Offsets{0: 1000}) }()
	feedtest.Eventually(t, 10*time.Second, "plans read from the log's start", func() bool { return found(ix, 0) && found(ix, 1) })
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got := testutil.ToFloat64(m.Events.WithLabelValues("skipped_by_reader")); got != 1 {
		t.Errorf("skipped_by_reader = %v, want 1", got)
	}
	// The offsets recorded are where the reader is, not where it was sent:
	// a snapshot taking 1000 would skip whatever came between at a restart.
	if got := c.Applied()[0]; got != 2 {
		t.Errorf("applied offset %d, want 2 (the log's end)", got)
	}
	if !strings.Contains(logs.String(), `"level":"ERROR","msg":"kafka reader skipped events`) {
		t.Errorf("no error logged for the skip; log:\n%s", logs.String())
	}
}
