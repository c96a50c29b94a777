package feed

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/protocol"
	fetchAPI "github.com/segmentio/kafka-go/protocol/fetch"
)

// partitionReader reads one partition of the plan-store topic with Fetch
// requests at the read_committed isolation level, and does what a Kafka
// client owes its application when a producer writes in transactions: it
// passes on only committed events, and never the transaction markers.
// kafka-go's Reader does neither (segmentio/kafka-go#1332): it hands over a
// marker as a message of its own (a malformed event here) and applies
// events of aborted transactions, so a plan the store rolled back would be
// flagged and a withdrawal it rolled back applied.
//
// A batch of an aborted transaction is recognised as the Java client does:
// a fetch response lists the aborted transactions it overlaps (producer and
// first offset); reading in offset order, a producer is aborted from its
// transaction's first offset until its abort marker, and its transactional
// batches in between are dropped.
type partitionReader struct {
	c      *Consumer
	p      int
	offset int64 // the next offset to read
}

// Fetch limits: what one response may carry, and the retry backoff.
const (
	fetchMaxBytes   = 1 << 20
	fetchBackoffMin = 50 * time.Millisecond
	fetchBackoffMax = 250 * time.Millisecond // see NewConsumer
	readCommitted   = 1                      // the Fetch and ListOffsets isolation level
	// fetchSlack is how much longer than MaxWait a fetch may take before it
	// is abandoned and tried again. A broker answers a fetch by MaxWait,
	// and a response of at most fetchMaxBytes is quick to carry: a fetch
	// outlasting this waits on a broker that hangs, and while it waits the
	// partition is held up, even after its leadership has moved on.
	fetchSlack = 500 * time.Millisecond
)

// read starts partition p's reader at offset from, sending what it reads,
// decoded, to msgs until ctx ends. One goroutine fetches and the other
// decodes, so the next response is on its way while one is decoded.
func (c *Consumer) read(ctx context.Context, wg *sync.WaitGroup, p int, from int64, msgs chan<- item) {
	r := &partitionReader{c: c, p: p, offset: from}
	fetched := make(chan []item, 1)
	wg.Add(2)
	go func() {
		defer wg.Done()
		defer close(fetched)
		r.run(ctx, fetched)
	}()
	go func() {
		defer wg.Done()
		for items := range fetched {
			for i := range items {
				it := &items[i]
				if !it.hidden {
					it.ch, it.at, it.ignored, it.err = decodeMessage(&it.m)
				}
				select {
				case msgs <- *it:
				case <-ctx.Done():
					return
				}
			}
		}
	}()
}

// run fetches until ctx ends, sending each response's items, not yet
// decoded, to out.
func (r *partitionReader) run(ctx context.Context, out chan<- []item) {
	log := r.c.cfg.Log
	backoff := fetchBackoffMin
	failing := false
	for {
		if !r.c.waitThrottle(ctx) {
			return
		}
		res, ends, err := r.fetch(ctx)
		if ctx.Err() != nil {
			return
		}
		if errors.Is(err, errThrottled) {
			continue // nothing read; the next fetch waits as the broker asked
		}
		if err == nil && res.ErrorCode != 0 {
			err = kafka.Error(res.ErrorCode)
		}
		if errors.Is(err, kafka.OffsetOutOfRange) {
			if err = r.outOfRange(ctx); err == nil {
				// The offsets the index records move with the reader, back
				// to the log's start if need be: a snapshot must not claim
				// events the index has not read.
				reset := []item{{hidden: true, m: kafka.Message{Topic: r.c.cfg.Topic, Partition: r.p, Offset: r.offset - 1}}}
				select {
				case out <- reset:
				case <-ctx.Done():
					return
				}
				continue
			}
		}
		before := r.offset
		var items []item
		if err == nil {
			items = r.walk(res, ends)
			if r.offset == before && len(batches(res.RecordSet.Records)) > 0 {
				// Records came back and none moved the reader on: fetching
				// again at once would only spin. Never seen; kept from
				// becoming a busy loop if a broker or client change makes it.
				err = fmt.Errorf("fetch at offset %d returned only records before it", before)
			}
		}
		if err != nil {
			// A broker restart or a leader moving makes a run of these:
			// one warning when reads start failing, the rest at debug.
			if !failing {
				log.Warn("kafka read failing; retrying", "partition", r.p, "offset", r.offset, "err", err.Error())
				failing = true
			} else {
				log.Debug("kafka read failed", "partition", r.p, "offset", r.offset, "err", err.Error())
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, fetchBackoffMax)
			continue
		}
		if failing {
			log.Info("kafka reads resumed", "partition", r.p, "offset", r.offset)
			failing = false
		}
		if mt := r.c.cfg.Metrics; mt != nil {
			mt.FetchOK.WithLabelValues(strconv.Itoa(r.p)).SetToCurrentTime()
		}
		backoff = fetchBackoffMin
		if len(items) > 0 {
			select {
			case out <- items:
			case <-ctx.Done():
				return
			}
		}
	}
}

// fetch asks the partition's leader for what follows r.offset, waiting up to
// MaxWait for something to arrive.
func (r *partitionReader) fetch(ctx context.Context) (*fetchAPI.ResponsePartition, map[int64]int64, error) {
	cfg := &r.c.cfg
	ctx, cancel := context.WithTimeout(ctx, cfg.MaxWait+fetchSlack)
	defer cancel()
	req := &fetchRequest{clientID: r.c.transport.ClientID, Request: &fetchAPI.Request{
		ReplicaID:      -1,
		MaxWaitTime:    int32(cfg.MaxWait.Milliseconds()),
		MinBytes:       1,
		MaxBytes:       fetchMaxBytes,
		IsolationLevel: readCommitted,
		SessionID:      -1,
		SessionEpoch:   -1,
		Topics: []fetchAPI.RequestTopic{{Topic: cfg.Topic, Partitions: []fetchAPI.RequestPartition{{
			Partition: int32(r.p), CurrentLeaderEpoch: -1, FetchOffset: r.offset,
			LogStartOffset: -1, PartitionMaxBytes: fetchMaxBytes}}}},
	}}
	m, err := r.c.transport.RoundTrip(ctx, r.c.client.Addr, req)
	if err != nil {
		return nil, nil, err
	}
	res, ok := m.(*fetchAPI.Response)
	if !ok {
		return nil, nil, fmt.Errorf("fetch: unexpected response %T", m)
	}
	r.c.throttled(time.Duration(res.ThrottleTimeMs) * time.Millisecond)
	if res.ErrorCode != 0 {
		return nil, nil, kafka.Error(res.ErrorCode)
	}
	for i := range res.Topics {
		for j := range res.Topics[i].Partitions {
			if pt := &res.Topics[i].Partitions[j]; res.Topics[i].Topic == cfg.Topic && int(pt.Partition) == r.p {
				return pt, req.ends, nil
			}
		}
	}
	if res.ThrottleTimeMs > 0 {
		return nil, nil, errThrottled
	}
	return nil, nil, errors.New("fetch: the response does not hold the partition")
}

// errThrottled is a fetch the broker answered with nothing but a time to
// wait: what it does when the client is over its quota.
var errThrottled = errors.New("fetch throttled by the broker")

// throttled notes a broker's request (in a response) that the client send
// nothing more for d. Over a quota a broker answers a fetch with no records
// and that time, then stops reading the connection for as long: a fetch
// sent before the time is up, on that connection or another of the
// transport's, would wait in the broker's queue, outlast its timeout and be
// sent again on a new connection, over and over. So every partition's
// reader waits (the broker counts the quota for the client ID, across all
// its partitions; a consumer of several brokers waits for the one that asked,
// which only happens while it reads fast enough to exceed a quota).
func (c *Consumer) throttled(d time.Duration) {
	if d <= 0 {
		return
	}
	until := time.Now().Add(d).UnixNano()
	for {
		cur := c.throttledUntil.Load()
		if cur >= until || c.throttledUntil.CompareAndSwap(cur, until) {
			break
		}
	}
	if mt := c.cfg.Metrics; mt != nil {
		mt.FetchThrottled.Add(d.Seconds())
	}
}

// waitThrottle waits until the broker's last requested wait is over; false
// if ctx ended first.
func (c *Consumer) waitThrottle(ctx context.Context) bool {
	d := time.Until(time.Unix(0, c.throttledUntil.Load()))
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// outOfRange moves a reader whose offset the log no longer holds (lost to
// retention or deleted, or a topic recreated shorter) to the log's start.
// Events between are skipped: that is an error, logged and counted; a full
// replay restores the store.
func (r *partitionReader) outOfRange(ctx context.Context) error {
	first, _, err := r.c.offsets(ctx, []int{r.p})
	if err != nil {
		return err
	}
	from := r.offset
	r.offset = first[r.p]
	r.c.cfg.Log.Error("kafka reader skipped events the log no longer holds (retention or deleted records); a full replay restores the store",
		"partition", r.p, "from", from, "to", r.offset)
	if mt := r.c.cfg.Metrics; mt != nil {
		mt.Events.WithLabelValues("skipped_by_reader").Inc()
	}
	return nil
}

// walk turns a fetch response into items in offset order: each committed
// event (to be decoded), and at the end, if what was read ends in markers,
// aborted events or offsets compaction emptied, an item that carries the
// reader past them. It moves r.offset past everything read: past the end of
// each batch (ends: a batch's base offset → its last offset), as the Java
// client does, since the cleaner keeps a batch's offsets when it removes its
// last records, and a reader that stopped after the last record left would
// fetch the same batch for ever.
func (r *partitionReader) walk(res *fetchAPI.ResponsePartition, ends map[int64]int64) []item {
	head := res.HighWatermark
	if res.LastStableOffset >= 0 {
		head = res.LastStableOffset
	}
	aborted := slices.SortedFunc(slices.Values(res.AbortedTransactions), func(a, b fetchAPI.ResponseTransaction) int {
		return cmp.Compare(a.FirstOffset, b.FirstOffset)
	})
	abortedBy := map[int64]bool{} // producers inside an aborted transaction
	var items []item
	start := r.offset
	dropped := 0
	for _, b := range batches(res.RecordSet.Records) {
		base, pid, kind := batchInfo(b)
		for len(aborted) > 0 && aborted[0].FirstOffset <= base {
			abortedBy[aborted[0].ProducerID] = true
			aborted = aborted[1:]
		}
		drop := kind == controlBatch || kind == transactionalBatch && abortedBy[pid]
		for {
			rec, err := b.ReadRecord()
			if err != nil {
				break // io.EOF
			}
			if rec.Offset < r.offset { // a batch may begin before the offset asked for
				closeRecord(rec)
				continue
			}
			r.offset = rec.Offset + 1
			switch {
			case kind == controlBatch:
				if isAbortMarker(rec) {
					delete(abortedBy, pid)
				}
			case drop:
				dropped++
				closeRecord(rec)
			default:
				items = append(items, item{m: r.message(rec, head)})
			}
		}
		if last, ok := ends[base]; ok && last >= r.offset {
			r.offset = last + 1 // records compacted away at the batch's end
		}
	}
	read := start // the offset after the last event passed on
	if len(items) > 0 {
		read = items[len(items)-1].m.Offset + 1
	}
	if r.offset > read { // markers, aborted or compacted records after it
		items = append(items, item{hidden: true,
			m: kafka.Message{Topic: r.c.cfg.Topic, Partition: r.p, Offset: r.offset - 1, HighWaterMark: head}})
	}
	if mt := r.c.cfg.Metrics; mt != nil && dropped > 0 {
		mt.Events.WithLabelValues("aborted_transaction").Add(float64(dropped))
	}
	return items
}

// fetchRequest is a Fetch request whose response is also read for the last
// offset of each record batch, which kafka-go's decoder reads but does not
// keep: the request is written and its response read through kafka-go's
// RawExchanger hook, on the connection the transport chose.
type fetchRequest struct {
	*fetchAPI.Request
	clientID string
	version  int16
	ends     map[int64]int64 // a v2 batch's base offset → its last offset
}

// Required implements protocol.RawExchanger: always, noting the version.
func (r *fetchRequest) Required(versions map[protocol.ApiKey]int16) bool {
	r.version = versions[protocol.Fetch]
	return true
}

// RawExchange implements protocol.RawExchanger.
func (r *fetchRequest) RawExchange(rw io.ReadWriter) (protocol.Message, error) {
	const correlationID = 1 // one request at a time on the connection
	if err := protocol.WriteRequest(rw, r.version, correlationID, r.clientID, r.Request); err != nil {
		return nil, err
	}
	var size [4]byte
	if _, err := io.ReadFull(rw, size[:]); err != nil {
		return nil, err
	}
	body := make([]byte, binary.BigEndian.Uint32(size[:]))
	if _, err := io.ReadFull(rw, body); err != nil {
		return nil, err
	}
	id, m, err := protocol.ReadResponse(bufio.NewReader(io.MultiReader(bytes.NewReader(size[:]), bytes.NewReader(body))),
		protocol.Fetch, r.version)
	if err != nil {
		return nil, err
	}
	if id != correlationID {
		return nil, fmt.Errorf("fetch: correlation id %d, want %d", id, correlationID)
	}
	r.ends = batchEnds(body, r.version)
	return m, nil
}

// batchEnds reads, from a Fetch response (v4 to v11, after its size), the
// base and last offsets of the complete v2 record batches it holds.
func batchEnds(b []byte, version int16) map[int64]int64 {
	if version > 11 {
		// Flexible versions (v12 on) lay the response out otherwise; kafka-go
		// v0.4 does not send them. Without ends a reader moves past the
		// records it sees, as before: nothing is skipped that way.
		return nil
	}
	d := rawDecoder{b: b}
	d.skip(4) // correlation ID
	if version >= 1 {
		d.skip(4) // throttle time
	}
	if version >= 7 {
		d.skip(2 + 4) // error code, session ID
	}
	ends := map[int64]int64{}
	for range max(0, d.int32()) { // topics
		name := int(d.int16())
		d.skip(name)
		for range max(0, d.int32()) { // partitions
			d.skip(4 + 2 + 8) // partition, error code, high-water mark
			if version >= 4 {
				d.skip(8) // last stable offset
			}
			if version >= 5 {
				d.skip(8) // log start offset
			}
			if version >= 4 {
				d.skip(16 * int(max(0, d.int32()))) // aborted transactions
			}
			if version >= 11 {
				d.skip(4) // preferred read replica
			}
			recs := d.bytes(int(d.int32()))
			// A batch: base offset (8), length (4), leader epoch (4),
			// magic (1), CRC (4), attributes (2), last offset delta (4)...
			for len(recs) >= 27 {
				n := 12 + int(int32(binary.BigEndian.Uint32(recs[8:12])))
				if n < 27 || n > len(recs) {
					break // the last batch, cut short
				}
				if recs[16] >= 2 {
					base := int64(binary.BigEndian.Uint64(recs[0:8]))
					ends[base] = base + int64(int32(binary.BigEndian.Uint32(recs[23:27])))
				}
				recs = recs[n:]
			}
		}
	}
	if d.bad {
		return nil
	}
	return ends
}

// rawDecoder reads big-endian fields; reading past the end marks it bad.
type rawDecoder struct {
	b   []byte
	bad bool
}

func (d *rawDecoder) bytes(n int) []byte {
	if n < 0 {
		return nil
	}
	if n > len(d.b) {
		d.bad, d.b = true, nil
		return nil
	}
	v := d.b[:n]
	d.b = d.b[n:]
	return v
}

func (d *rawDecoder) skip(n int) { d.bytes(n) }

func (d *rawDecoder) int16() int16 {
	if v := d.bytes(2); v != nil {
		return int16(binary.BigEndian.Uint16(v))
	}
	return 0
}

func (d *rawDecoder) int32() int32 {
	if v := d.bytes(4); v != nil {
		return int32(binary.BigEndian.Uint32(v))
	}
	return 0
}

// The kinds of record batch.
const (
	plainBatch = iota
	transactionalBatch
	controlBatch
)

// batches splits a response's records into their batches.
func batches(rr protocol.RecordReader) []protocol.RecordReader {
	switch rr := rr.(type) {
	case nil:
		return nil
	case *protocol.RecordStream:
		return rr.Records
	default:
		return []protocol.RecordReader{rr}
	}
}

// batchInfo gives a batch's base offset, producer and kind.
func batchInfo(b protocol.RecordReader) (base, producer int64, kind int) {
	switch b := b.(type) {
	case *protocol.ControlBatch:
		return b.BaseOffset, b.ProducerID, controlBatch
	case *protocol.RecordBatch:
		if b.Attributes.Transactional() {
			return b.BaseOffset, b.ProducerID, transactionalBatch
		}
		return b.BaseOffset, b.ProducerID, plainBatch
	}
	return -1, -1, plainBatch // an old-format message set: never transactional
}

// isAbortMarker reports whether a control record is an abort marker (its
// key: a version and a type, 0 for abort, 1 for commit). It closes rec.
func isAbortMarker(rec *protocol.Record) bool {
	cr, err := protocol.ReadControlRecord(rec)
	return err == nil && cr.Type == 0
}

// message copies a record out of the response's buffers.
func (r *partitionReader) message(rec *protocol.Record, head int64) kafka.Message {
	defer closeRecord(rec)
	key, _ := protocol.ReadAll(rec.Key)
	value, err := protocol.ReadAll(rec.Value)
	if err != nil && value == nil {
		value = []byte{} // unreadable: refused as an event, never taken for a tombstone
	}
	return kafka.Message{Topic: r.c.cfg.Topic, Partition: r.p, Offset: rec.Offset, HighWaterMark: head,
		Key: key, Value: value, Headers: rec.Headers, Time: rec.Time}
}

func closeRecord(rec *protocol.Record) {
	for _, b := range []protocol.Bytes{rec.Key, rec.Value} {
		if b != nil {
			b.Close()
		}
	}
}
