package feed

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/planflag/planflag/matcher"
)

// DefaultTopic is the plan-store topic of the event contract.
const DefaultTopic = "plan-identifiers"

// TombstoneVersion is the version a tombstone (a null Kafka value) withdraws
// a plan at. A tombstone carries no version, and the log may have lost the
// plan's earlier events to compaction, so to a replica that has applied it,
// it is final: no later event brings that plan ID back. A plan store that
// withdraws and later re-admits the same plan sends plan.withdrawn (with a
// version) instead.
//
// Compaction keeps a key's last record by offset, not its highest version:
// an older event of the plan published after its withdrawal (a producer's
// retry, an outbox sent again) becomes the plan's last record, and once the
// cleaner has let the withdrawal go, the log alone says the plan is live.
// Replicas that saw the withdrawal keep it, and so does the Redis snapshot,
// which a replaying replica applies the withdrawals of even when it cannot
// use the rest (Snapshots.Load); a replica that replays with no snapshot at
// all cannot know. Plan-store producers must therefore never publish a
// plan's event after a later one of it (idempotent producers, one writer a
// plan), as the contract's rising versions already ask.
const TombstoneVersion = math.MaxUint64

// Dead-letter headers: why an event was refused and where it came from.
const (
	HeaderReason    = "planflag-dead-letter-reason"
	HeaderPartition = "planflag-source-partition"
	HeaderOffset    = "planflag-source-offset"
)

// KafkaConfig configures a Consumer.
type KafkaConfig struct {
	Brokers []string
	Topic   string // DefaultTopic if empty
	// DeadLetterTopic receives refused events; Topic + ".dead-letters" if empty.
	DeadLetterTopic string
	// MaxWait bounds how long a fetch waits for new events; it sets how soon
	// a published event is seen (default 100ms).
	MaxWait time.Duration
	// MaxBatch bounds the events applied to the index at once (default
	// 32768). While catching up, batches are this large, which amortises
	// index maintenance; once caught up they hold what has just arrived.
	MaxBatch int
	// Refresh is how often the topic's partitions and high-water marks are
	// read again while running (default 10s): a partition added to the
	// topic is read from its start, and the time the index last reached
	// the head is passed to a HeadRecorder.
	Refresh time.Duration
	// ClientID names the consumer to the brokers (default "planflag"). A
	// broker's quotas are set per client ID, and are shared by every
	// connection that gives the same one.
	ClientID string
	// Auth is how the brokers are reached: TLS, SASL (the zero value:
	// plaintext, unauthenticated).
	Auth    KafkaAuth
	Log     *slog.Logger
	Metrics *Metrics // may be nil
}

func (c *KafkaConfig) defaults() {
	if c.Topic == "" {
		c.Topic = DefaultTopic
	}
	if c.DeadLetterTopic == "" {
		c.DeadLetterTopic = c.Topic + ".dead-letters"
	}
	if c.MaxWait <= 0 {
		c.MaxWait = 100 * time.Millisecond
	}
	if c.MaxBatch <= 0 {
		c.MaxBatch = 32768
	}
	if c.Refresh <= 0 {
		c.Refresh = 10 * time.Second
	}
	if c.ClientID == "" {
		c.ClientID = "planflag"
	}
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
}

// Offsets maps a partition to the offset of the next event to read.
type Offsets map[int]int64

func (o Offsets) clone() Offsets {
	c := make(Offsets, len(o))
	for p, v := range o {
		c[p] = v
	}
	return c
}

// Recorder is told what each applied batch changed, with the offsets the
// index reflects after it: the Redis snapshot writer. Record is called from
// the consumer's apply loop and must not block for long.
type Recorder interface {
	Record(changes []Applied, offsets Offsets)
}

// Applied is one change the index accepted (stale ones are not passed on).
type Applied struct {
	PlanID  string
	Version uint64
	Event   []byte    // the event as published; nil for a withdrawal
	At      time.Time // when the change happened (occurred_at; for a tombstone, when it was read)
	// AlreadyWithdrawn: a withdrawal of a plan that was not live (withdrawn
	// before, or never seen): it raises the version, and no lookup could
	// have been given the plan since (a tombstone after plan.withdrawn).
	AlreadyWithdrawn bool
}

// A HeadRecorder is also told when the index has reached the head of the
// log: at is a time at which every partition's high-water mark was at or
// below offsets, so every event after offsets was written after at (the
// snapshot keeps it, to know how far back a warm start may begin).
type HeadRecorder interface {
	RecordHead(at time.Time, offsets Offsets)
}

// Recorders passes every batch to each of its recorders in turn.
type Recorders []Recorder

// Record implements Recorder.
func (rs Recorders) Record(changes []Applied, offsets Offsets) {
	for _, r := range rs {
		r.Record(changes, offsets)
	}
}

// RecordHead implements HeadRecorder, for those of rs that are one.
func (rs Recorders) RecordHead(at time.Time, offsets Offsets) {
	for _, r := range rs {
		if h, ok := r.(HeadRecorder); ok {
			h.RecordHead(at, offsets)
		}
	}
}

// Consumer keeps an index in step with the plan-store topic. Every replica
// reads every partition itself (a reader per partition, no consumer group),
// so each holds the whole store.
type Consumer struct {
	cfg    KafkaConfig
	ix     Applier
	rec    Recorder
	client *kafka.Client
	// transport carries the client's requests and the partitions' fetches,
	// each fetch on a connection of its own.
	transport *kafka.Transport

	partitions []int
	first      Offsets   // log start offsets when Prepare ran
	end        Offsets   // last stable offsets when Prepare ran: caught up once reached
	endAt      time.Time // when those were asked for

	caughtUp     chan struct{}
	caughtUpOnce sync.Once
	applied      atomic.Pointer[Offsets] // next offsets, after the last applied batch
	started      atomic.Pointer[Offsets] // the offsets Run began from
	events       atomic.Int64            // events applied or refused since Run began
	// throttledUntil (Unix nanoseconds) is when the broker allows the next
	// fetch, after a response asked the client to wait (a quota).
	throttledUntil atomic.Int64
}

// NewConsumer returns a consumer feeding ix; rec may be nil.
func NewConsumer(cfg KafkaConfig, ix Applier, rec Recorder) *Consumer {
	cfg.defaults()
	// The transport finds a partition's new leader only when it refreshes
	// its metadata (every MetadataTTL at most), never when a fetch fails;
	// a reader retries at most fetchBackoffMax later. Both bound how long
	// events wait after a leader moves (a broker restart): 250ms each keeps
	// that well within the second a withdrawal has. Only the two topics are
	// asked for, not the whole cluster's, so refreshing this often is cheap.
	tr := cfg.Auth.Transport(cfg.ClientID)
	tr.MetadataTTL, tr.MetadataTopics = 250*time.Millisecond, []string{cfg.Topic, cfg.DeadLetterTopic}
	return &Consumer{cfg: cfg, ix: ix, rec: rec, caughtUp: make(chan struct{}), transport: tr,
		client: &kafka.Client{Addr: kafka.TCP(cfg.Brokers...), Timeout: 10 * time.Second, Transport: tr}}
}

// Prepare finds the topic's partitions and their offsets, and makes sure the
// dead-letter topic exists. It retries until the broker answers or ctx ends,
// logging each failure, except for a failure of authentication or
// authorisation (ErrKafkaAuth), which it returns at once.
func (c *Consumer) Prepare(ctx context.Context) error {
	backoff := 250 * time.Millisecond
	for {
		err := c.prepare(ctx)
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err := markAuth(err); errors.Is(err, ErrKafkaAuth) {
			return err
		}
		c.cfg.Log.Warn("kafka not ready; retrying", "topic", c.cfg.Topic, "err", err.Error(), "retry_in", backoff.String())
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

func (c *Consumer) prepare(ctx context.Context) error {
	md, err := c.client.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{c.cfg.Topic, c.cfg.DeadLetterTopic}})
	if err != nil {
		return fmt.Errorf("metadata: %w", err)
	}
	var parts []int
	dlq := false
	for _, t := range md.Topics {
		switch {
		case t.Name == c.cfg.Topic && t.Error != nil:
			return fmt.Errorf("topic %s: %w", t.Name, t.Error)
		case t.Name == c.cfg.Topic:
			for _, p := range t.Partitions {
				parts = append(parts, p.ID)
			}
		case t.Name == c.cfg.DeadLetterTopic && t.Error == nil:
			dlq = true
		}
	}
	if len(parts) == 0 {
		return fmt.Errorf("topic %s has no partitions (does it exist?)", c.cfg.Topic)
	}
	if !dlq {
		if err := CreateTopic(ctx, c.cfg.Brokers, c.cfg.Auth, c.cfg.DeadLetterTopic, 1, false); err != nil {
			return fmt.Errorf("create dead-letter topic: %w", err)
		}
	}
	at := time.Now()
	first, end, err := c.offsets(ctx, parts)
	if err != nil {
		return err
	}
	c.partitions, c.first, c.end, c.endAt = parts, first, end, at
	return nil
}

// offsets asks for the log start and end of each partition. The end is the
// last stable offset: the high-water mark, or the first offset of a
// transaction still open (whose events are not read until it commits).
func (c *Consumer) offsets(ctx context.Context, parts []int) (first, end Offsets, err error) {
	reqs := make([]kafka.OffsetRequest, 0, 2*len(parts))
	for _, p := range parts {
		reqs = append(reqs, kafka.FirstOffsetOf(p), kafka.LastOffsetOf(p))
	}
	res, err := c.client.ListOffsets(ctx, &kafka.ListOffsetsRequest{IsolationLevel: kafka.ReadCommitted,
		Topics: map[string][]kafka.OffsetRequest{c.cfg.Topic: reqs}})
	if err != nil {
		return nil, nil, fmt.Errorf("list offsets: %w", err)
	}
	first, end = Offsets{}, Offsets{}
	for _, po := range res.Topics[c.cfg.Topic] {
		if po.Error != nil {
			return nil, nil, fmt.Errorf("offsets of partition %d: %w", po.Partition, po.Error)
		}
		first[po.Partition], end[po.Partition] = po.FirstOffset, po.LastOffset
	}
	for _, p := range parts {
		if _, ok := end[p]; !ok {
			return nil, nil, fmt.Errorf("no offsets for partition %d", p)
		}
	}
	return first, end, nil
}

// topicState is what a refresh found: the topic's partitions, their log
// starts, and their high-water marks as of at.
type topicState struct {
	first, end Offsets
	at         time.Time
}

// refresh reads the topic's partitions and offsets every Refresh and sends
// what it finds to the apply loop. Failures are logged (throttled by the
// interval) and retried at the next tick.
func (c *Consumer) refresh(ctx context.Context, out chan<- topicState) {
	t := time.NewTicker(c.cfg.Refresh)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		at := time.Now()
		md, err := c.client.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{c.cfg.Topic}})
		var parts []int
		if err == nil {
			for _, tp := range md.Topics {
				if tp.Name == c.cfg.Topic && tp.Error == nil {
					for _, p := range tp.Partitions {
						parts = append(parts, p.ID)
					}
				}
			}
			if len(parts) == 0 {
				err = fmt.Errorf("topic %s has no partitions", c.cfg.Topic)
			}
		}
		var first, end Offsets
		if err == nil {
			first, end, err = c.offsets(ctx, parts)
		}
		if err != nil {
			if ctx.Err() == nil {
				c.cfg.Log.Warn("kafka topic refresh failed; retrying", "topic", c.cfg.Topic, "err", err.Error())
			}
			continue
		}
		select {
		case out <- topicState{first, end, at}:
		case <-ctx.Done():
			return
		}
	}
}

// Partitions returns the topic's partitions (after Prepare).
func (c *Consumer) Partitions() []int { return c.partitions }

// End returns the last stable offsets seen by Prepare (see offsets): the
// consumer is caught up once it has applied everything before them.
func (c *Consumer) End() Offsets { return c.end.clone() }

// Usable says whether reading on from saved offsets is sound: every
// partition is covered and no offset lies before the log's start (events
// lost to retention) or beyond its end (the topic was recreated).
func (c *Consumer) Usable(saved Offsets) error {
	if len(saved) != len(c.partitions) {
		return fmt.Errorf("saved offsets cover %d partitions, topic has %d", len(saved), len(c.partitions))
	}
	for _, p := range c.partitions {
		o, ok := saved[p]
		switch {
		case !ok:
			return fmt.Errorf("no saved offset for partition %d", p)
		case o < c.first[p]:
			return fmt.Errorf("partition %d: saved offset %d is before the log start %d", p, o, c.first[p])
		case o > c.end[p]:
			return fmt.Errorf("partition %d: saved offset %d is beyond the log end %d (topic recreated?)", p, o, c.end[p])
		}
	}
	return nil
}

// DeleteRetention is the topic's delete.retention.ms: how long the log
// cleaner keeps a tombstone once it could remove it. A snapshot older than
// that may predate a tombstone the log no longer holds (Snapshots.FitRetention).
func (c *Consumer) DeleteRetention(ctx context.Context) (time.Duration, error) {
	ms, err := topicMillis(ctx, c.client, c.cfg.Topic, "delete.retention.ms")
	if err != nil {
		return 0, markAuth(err)
	}
	if ms < 0 {
		return 0, fmt.Errorf("topic %s: delete.retention.ms %d is not a number of milliseconds", c.cfg.Topic, ms)
	}
	return time.Duration(ms) * time.Millisecond, nil
}

// CaughtUp is closed once the index reflects every event that was in the
// topic when Prepare ran.
func (c *Consumer) CaughtUp() <-chan struct{} { return c.caughtUp }

// CatchUpProgress reports how far Run has come towards the offsets it must
// reach to be caught up (End): the offsets applied and to apply since Run
// began, over every partition. Before Run it reports 0, 0.
func (c *Consumer) CatchUpProgress() (done, total int64) {
	from, now := c.started.Load(), c.applied.Load()
	if from == nil || now == nil {
		return 0, 0
	}
	for p, end := range c.end {
		start := (*from)[p]
		total += max(0, end-start)
		done += max(0, min((*now)[p], end)-start)
	}
	return done, total
}

// Applied returns the offsets the index reflects now.
func (c *Consumer) Applied() Offsets {
	if o := c.applied.Load(); o != nil {
		return o.clone()
	}
	return nil
}

// Run reads every partition from the given offsets (from the start where
// none is given) and applies events until ctx ends. Call Prepare first.
func (c *Consumer) Run(ctx context.Context, from Offsets) error {
	if c.partitions == nil {
		return errors.New("feed: Consumer.Run before Prepare")
	}
	next := Offsets{}
	for _, p := range c.partitions {
		o, ok := from[p]
		if !ok {
			o = c.first[p]
		}
		next[p] = o
	}
	c.started.Store(new(next.clone()))
	c.publish(next)
	// The head to reach: the high-water marks last asked for, and when.
	// Recorded before caught-up is signalled (see below).
	head := topicState{end: c.end, at: c.endAt}
	c.reachedHead(head, next)
	c.checkCaughtUp(next)

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer c.transport.CloseIdleConnections() // after the goroutines below have stopped
	// Each partition's goroutine reads and decodes (decoding is most of the
	// work, and this spreads it over the cores); one loop applies.
	msgs := make(chan item, c.cfg.MaxBatch)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	for _, p := range c.partitions {
		c.read(ctx, &wg, p, next[p], msgs)
	}
	refreshed := make(chan topicState)
	wg.Add(1)
	go func() { defer wg.Done(); c.refresh(ctx, refreshed) }()
	dlq := c.startDeadLetters()
	defer dlq.close()

	batch := make([]item, 0, c.cfg.MaxBatch)
	changes := make([]matcher.Change, 0, c.cfg.MaxBatch)
	for {
		select {
		case <-ctx.Done():
			return nil
		case ts := <-refreshed:
			for p, o := range ts.first {
				if _, known := next[p]; !known {
					// A partition added to the topic: read it all.
					c.cfg.Log.Info("kafka partition added; reading it from its start", "topic", c.cfg.Topic, "partition", p)
					next[p] = o
					c.read(ctx, &wg, p, o, msgs)
					c.publish(next)
				}
			}
			head = ts
			c.reachedHead(head, next)
			continue
		case m := <-msgs:
			batch = append(batch[:0], m)
		}
	drain:
		for len(batch) < c.cfg.MaxBatch {
			select {
			case m := <-msgs:
				batch = append(batch, m)
			default:
				break drain
			}
		}
		changes = c.apply(batch, changes[:0], next, dlq)
		c.publish(next)
		// Head before caught-up: whoever waits on CaughtUp (a snapshot
		// written then) finds the head recorded.
		c.reachedHead(head, next)
		c.checkCaughtUp(next)
	}
}

// reachedHead tells a HeadRecorder when the index has applied everything
// below the high-water marks of head (and so is at the log's head as of
// head.at).
func (c *Consumer) reachedHead(head topicState, next Offsets) {
	h, ok := c.rec.(HeadRecorder)
	if !ok || head.at.IsZero() {
		return
	}
	for p, end := range head.end {
		if next[p] < end {
			return
		}
	}
	h.RecordHead(head.at, next.clone())
}

// item is a message read and decoded: its change, or why it is refused.
type item struct {
	// hidden: no event, only offsets to move past, up to m.Offset:
	// transaction markers, aborted events, records compacted away.
	hidden  bool
	m       kafka.Message
	ch      matcher.Change
	at      time.Time
	ignored string // a withdrawal's malformed field, applied without (Event.Ignored)
	err     error
}

// apply sends refused events to the dead-letter topic, applies the rest of
// a batch and advances next past it.
func (c *Consumer) apply(batch []item, changes []matcher.Change, next Offsets, dlq *deadLetters) []matcher.Change {
	events := make([][]byte, 0, len(batch))
	ats := make([]time.Time, 0, len(batch))
	var dead, hidden int
	for i := range batch {
		m := &batch[i].m
		if batch[i].hidden {
			hidden++
		} else if err := batch[i].err; err != nil {
			dead++
			dlq.add(m, err)
		} else {
			if why := batch[i].ignored; why != "" {
				c.cfg.Log.Warn("withdrawal applied without a malformed field it does not need",
					"partition", m.Partition, "offset", m.Offset, "reason", why)
				if mt := c.cfg.Metrics; mt != nil {
					mt.Events.WithLabelValues("withdrawal_field_ignored").Inc()
				}
			}
			changes = append(changes, batch[i].ch)
			events = append(events, m.Value)
			ats = append(ats, batch[i].at)
		}
		// A partition's items come in offset order, so this moves forward,
		// except after its reader moved back to the log's start.
		next[m.Partition] = m.Offset + 1
		if mt := c.cfg.Metrics; mt != nil {
			mt.Lag.WithLabelValues(strconv.Itoa(m.Partition)).Set(float64(max(0, m.HighWaterMark-m.Offset-1)))
		}
	}
	st := c.ix.Apply(changes)
	c.events.Add(int64(len(batch) - hidden))
	if mt := c.cfg.Metrics; mt != nil {
		mt.Events.WithLabelValues("upserted").Add(float64(st.Upserted))
		mt.Events.WithLabelValues("withdrawn").Add(float64(st.Withdrawn))
		mt.Events.WithLabelValues("stale").Add(float64(st.Stale))
		mt.Events.WithLabelValues("dead_letter").Add(float64(dead))
	}
	if c.rec != nil {
		applied := make([]Applied, 0, len(changes)-st.Stale)
		for i := range changes {
			if !changes[i].Stale {
				ev := events[i]
				if changes[i].Patient == nil {
					ev = nil
				}
				applied = append(applied, Applied{PlanID: changes[i].PlanID, Version: changes[i].Version, Event: ev, At: ats[i],
					AlreadyWithdrawn: changes[i].Patient == nil && changes[i].NotLive})
			}
		}
		c.rec.Record(applied, next.clone())
	}
	// Copied after the batch is applied, and by another goroutine: a burst
	// of refused events, or a dead-letter topic that does not answer, never
	// holds up the changes (withdrawals among them) read with them.
	dlq.flush()
	clear(changes) // drop the patients for the collector
	clear(batch)
	return changes
}

// decodeMessage turns a Kafka message into a change: a tombstone withdraws
// for good; otherwise the value must be a valid event for the message's key.
func decodeMessage(m *kafka.Message) (ch matcher.Change, at time.Time, ignored string, err error) {
	if len(m.Key) == 0 {
		return ch, at, "", deadLetter("missing key (the contract keys messages by plan_id)")
	}
	if m.Value == nil {
		if len(m.Key) > 128 {
			return ch, at, "", deadLetter("key longer than 128 bytes")
		}
		return matcher.Change{PlanID: string(m.Key), Version: TombstoneVersion}, time.Now(), "", nil
	}
	ev, err := Decode(m.Value)
	if err != nil {
		return ch, at, "", err
	}
	if ev.PlanID != string(m.Key) {
		return ch, at, "", deadLetter("plan_id does not match the message key")
	}
	at = ev.OccurredAt
	if at.IsZero() {
		at = time.Now()
	}
	return ev.Change(), at, ev.Ignored, nil
}

// deadLetters copies refused messages to the dead-letter topic, with the
// reason in a header, on a goroutine of its own. The log names partition,
// offset and reason, never the content. A copy that cannot be written, or
// finds the queue full, is logged and counted; the event itself is never
// applied either way.
type deadLetters struct {
	c       *Consumer
	w       *kafka.Writer
	pending []kafka.Message // this batch's, handed over by flush
	queue   chan []kafka.Message
	done    chan struct{}
}

// deadLetterQueue bounds the batches of refused events waiting to be copied.
const deadLetterQueue = 64

func (c *Consumer) startDeadLetters() *deadLetters {
	d := &deadLetters{c: c, queue: make(chan []kafka.Message, deadLetterQueue), done: make(chan struct{}),
		w: &kafka.Writer{Addr: kafka.TCP(c.cfg.Brokers...), Topic: c.cfg.DeadLetterTopic, Transport: c.cfg.Auth.Transport(c.cfg.ClientID),
			RequiredAcks: kafka.RequireAll, BatchTimeout: 5 * time.Millisecond, WriteTimeout: 5 * time.Second}}
	go d.run()
	return d
}

func (d *deadLetters) add(m *kafka.Message, reason error) {
	var why string
	var dl *DeadLetterError
	if errors.As(reason, &dl) {
		why = dl.Reason
	} else {
		why = reason.Error()
	}
	d.c.cfg.Log.Warn("dead letter", "partition", m.Partition, "offset", m.Offset, "reason", why)
	d.pending = append(d.pending, kafka.Message{Key: m.Key, Value: m.Value, Headers: append(m.Headers[:len(m.Headers):len(m.Headers)],
		kafka.Header{Key: HeaderReason, Value: []byte(why)},
		kafka.Header{Key: HeaderPartition, Value: strconv.AppendInt(nil, int64(m.Partition), 10)},
		kafka.Header{Key: HeaderOffset, Value: strconv.AppendInt(nil, m.Offset, 10)})})
}

// flush hands the batch's refused events to the writer without waiting.
func (d *deadLetters) flush() {
	if len(d.pending) == 0 {
		return
	}
	select {
	case d.queue <- d.pending:
	default:
		d.failed(d.pending, errors.New("dead-letter queue full (the topic is not keeping up)"))
	}
	d.pending = nil
}

func (d *deadLetters) run() {
	defer close(d.done)
	for msgs := range d.queue {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		if err := d.w.WriteMessages(ctx, msgs...); err != nil {
			d.failed(msgs, err)
		}
		cancel()
	}
}

func (d *deadLetters) failed(msgs []kafka.Message, err error) {
	d.c.cfg.Log.Error("dead letters not written", "count", len(msgs), "first_partition", header(&msgs[0], HeaderPartition),
		"first_offset", header(&msgs[0], HeaderOffset), "err", err.Error())
	if mt := d.c.cfg.Metrics; mt != nil {
		mt.DeadLetterWriteErrors.Add(float64(len(msgs)))
	}
}

func header(m *kafka.Message, key string) string {
	for _, h := range m.Headers {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return ""
}

// close writes what is queued (each batch within its timeout) and stops.
func (d *deadLetters) close() {
	d.flush()
	close(d.queue)
	<-d.done
	d.w.Close()
}

func (c *Consumer) publish(next Offsets) {
	o := next.clone()
	c.applied.Store(&o)
}

func (c *Consumer) checkCaughtUp(next Offsets) {
	for p, end := range c.end {
		if next[p] < end {
			return
		}
	}
	c.caughtUpOnce.Do(func() { close(c.caughtUp) })
}

// led reports whether md, the metadata of one topic, shows it with every
// partition led.
func led(md *kafka.MetadataResponse) bool {
	if len(md.Topics) != 1 || md.Topics[0].Error != nil || len(md.Topics[0].Partitions) == 0 {
		return false
	}
	for _, p := range md.Topics[0].Partitions {
		if p.Error != nil || p.Leader.ID < 0 || p.Leader.Host == "" {
			return false
		}
	}
	return true
}

// CreateTopic creates a topic (compacted if compact) with the given
// partitions on a single-broker or larger cluster; an existing topic is not
// an error. A refusal of auth's credentials or certificate, or of the
// permission to create or describe the topic, is an ErrKafkaAuth.
func CreateTopic(ctx context.Context, brokers []string, auth KafkaAuth, topic string, partitions int, compact bool) error {
	var cfg []kafka.ConfigEntry
	if compact {
		cfg = append(cfg, kafka.ConfigEntry{ConfigName: "cleanup.policy", ConfigValue: "compact"})
	}
	return CreateTopicConfig(ctx, brokers, auth, topic, partitions, cfg...)
}

// CreateTopicConfig is CreateTopic with the topic's configuration given
// (retention.ms, cleanup.policy, …): applied only when the topic is created
// here; an existing topic is left as its operator configured it.
func CreateTopicConfig(ctx context.Context, brokers []string, auth KafkaAuth, topic string, partitions int, cfg ...kafka.ConfigEntry) error {
	return markAuth(createTopic(ctx, brokers, auth, topic, partitions, cfg))
}

// Retention is a topic's retention.ms: how long the broker keeps a message
// before it may delete it; forever reports -1 (keep for good). A refusal of
// the permission to describe the topic is an ErrKafkaAuth.
func Retention(ctx context.Context, brokers []string, auth KafkaAuth, topic string) (d time.Duration, forever bool, err error) {
	ms, err := topicMillis(ctx, auth.Client(brokers, 15*time.Second), topic, "retention.ms")
	if err != nil {
		return 0, false, markAuth(err)
	}
	if ms < 0 {
		return 0, true, nil
	}
	return time.Duration(ms) * time.Millisecond, false, nil
}

// topicMillis reads a topic setting given in milliseconds (-1 included).
func topicMillis(ctx context.Context, cl *kafka.Client, topic, name string) (int64, error) {
	res, err := cl.DescribeConfigs(ctx, &kafka.DescribeConfigsRequest{Resources: []kafka.DescribeConfigRequestResource{{
		ResourceType: kafka.ResourceTypeTopic, ResourceName: topic, ConfigNames: []string{name}}}})
	if err != nil {
		return 0, fmt.Errorf("describe topic %s: %w", topic, err)
	}
	for _, r := range res.Resources {
		if r.Error != nil {
			return 0, fmt.Errorf("describe topic %s: %w", topic, r.Error)
		}
		for _, e := range r.ConfigEntries {
			if e.ConfigName == name {
				ms, err := strconv.ParseInt(e.ConfigValue, 10, 64)
				if err != nil || ms < -1 {
					return 0, fmt.Errorf("topic %s: %s %q is not a number of milliseconds", topic, name, e.ConfigValue)
				}
				return ms, nil
			}
		}
	}
	return 0, fmt.Errorf("topic %s: the broker did not give %s", topic, name)
}

func createTopic(ctx context.Context, brokers []string, auth KafkaAuth, topic string, partitions int, cfg []kafka.ConfigEntry) error {
	cl := auth.Client(brokers, 15*time.Second)
	md, err := cl.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{topic}})
	if err != nil {
		return fmt.Errorf("metadata: %w", err)
	}
	if led(md) {
		// It exists: nothing to create. (A client allowed to write to
		// and describe topics an operator made, but not to create any,
		// would otherwise be refused: brokers check the permission to
		// create before whether the topic exists.)
		return nil
	}
	rf := min(3, len(md.Brokers))
	res, err := cl.CreateTopics(ctx, &kafka.CreateTopicsRequest{Topics: []kafka.TopicConfig{{
		Topic: topic, NumPartitions: partitions, ReplicationFactor: rf, ConfigEntries: cfg}}})
	if err != nil {
		return err
	}
	if err := res.Errors[topic]; err != nil && !errors.Is(err, kafka.TopicAlreadyExists) {
		return err
	}
	// The controller has the topic; the brokers learn of it a moment later,
	// and a writer that asks before then is told it does not exist. Wait
	// until the metadata shows every partition with a leader.
	for {
		md, err := cl.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{topic}})
		if err == nil && led(md) {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("topic %s created, but its partitions have no leader yet: %w", topic, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}
