package alert

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"github.com/segmentio/kafka-go"

	"github.com/planflag/planflag/feed"
)

// Push alerts tell a client when a plan it was given in the last Window is
// updated or withdrawn: a signed webhook POST and an event on Kafka.
//
// The recent-lookups registry lives in Redis so every replica sees every
// lookup: {planflag:recent}:<plan id> is a hash client → unix time of the
// last lookup that returned the plan, expiring Window after it. When a
// replica applies a change to a plan a client was given before it, it
// claims the alert with SET NX on {planflag:alerts}:<plan
// id>:<version>:<client>, so however many replicas apply the change, one
// sends it. Alerts carry plan ID, change kind, version and time: no
// identifiers.
//
// "Before" is judged by when the change was applied here, not when it
// happened (occurred_at): a withdrawal the plan store published late, or
// that waited out a Kafka outage or a lagging feed, was not in the index
// for the lookups answered meanwhile, however long ago it happened. Only a
// replay of the log's history, before the replica serves, goes by
// occurred_at: it applies a day of changes in minutes, and by apply time
// every one of them would be news to every client.

// clockSlack is how far before a lookup a change may be stamped (applied;
// in a replay, occurred) and still be pushed to the client: clocks differ
// between replicas and the plan store, and it is the safe side.
const clockSlack = 5 * time.Minute

// lookupGrace is how long a change applied at the head waits before the
// registry is read for it. A lookup reaches the registry after it is
// answered: the handler calls Looked once Match has returned, and Run (this
// replica's or another's) writes it when it gets to it. A change applied in
// between and checked at once would miss the client given the plan just
// before it, on every replica.
const lookupGrace = time.Second

// lookupChunk is how many queued lookups one pipeline registers: at a busy
// control room's rate a round trip each falls behind.
const lookupChunk = 512

// shutdownWait bounds registering, once Run's context has ended, the
// lookups still queued.
const shutdownWait = 2 * time.Second

// PlanAlert is the body of a webhook POST and the value of a plan-alerts
// event.
type PlanAlert struct {
	PlanID   string    `json:"plan_id"`
	Change   string    `json:"change"` // updated or withdrawn
	Version  uint64    `json:"version"`
	At       time.Time `json:"occurred_at"`
	ClientID string    `json:"client_id"`
}

// SignatureHeader carries hex HMAC-SHA256 of the webhook body under the
// client's webhook secret, as "sha256=<hex>".
const SignatureHeader = "X-Planflag-Signature"

// Sign returns the signature header value for body under secret.
func Sign(secret, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// PushConfig configures a Pusher.
type PushConfig struct {
	Window   time.Duration // how long after a lookup changes are pushed (default 24h)
	Attempts int           // attempts of each channel: webhook attempts before the dead letter, alert-event publishes (each itself retried by the Kafka writer) before it is counted failed (default 5)
	Backoff  time.Duration // first retry wait, doubling, jittered (default 1s)
	Timeout  time.Duration // per webhook attempt (default 5s)
	Queue    int           // lookups waiting to be registered (default 10000)
	// Changes bounds the applied changes waiting to be checked against
	// the registry (default 131072: four of the feed's catch-up batches).
	Changes int
}

// changeChunk is how many changes one Redis round trip checks against the
// registry: a replica replaying the day's changes hands over tens of
// thousands a second, far more than one round trip each could keep up with.
const changeChunk = 1024

// stallWait is how long a replaying Record waits for the pusher to check a
// chunk before it stops waiting and drops (Redis away or hung).
const stallWait = time.Second

// Pusher keeps the recent-lookups registry and sends push alerts. It is a
// feed.Recorder: the consumer hands it every applied change.
type Pusher struct {
	cfg     PushConfig
	rdb     *redis.Client
	clients *Clients
	events  MessageWriter // plan-alerts; nil: webhooks only
	dead    MessageWriter // plan-alerts.dead-letters; nil: logged and counted only
	http    *http.Client
	log     *slog.Logger

	looked  chan lookedUp
	changed chan []planChange                          // batches of changes, as the feed applied them
	pending atomic.Int64                               // changes handed to Run (queued or held) and not yet checked
	checked atomic.Int64                               // chunks of changes checked (or given up on): progress
	atHead  atomic.Bool                                // the feed has reached the log's head once: Record never waits
	stalled atomic.Bool                                // a replaying Record gave up waiting: it waits again once the pusher is clear
	lanes   map[laneKey]*[deliveryLanes]chan PlanAlert // client and channel → its delivery lanes; Run's alone
	laneRun sync.WaitGroup                             // the lanes' goroutines: Run waits for them

	sent, failed, lost *prometheus.CounterVec

	// A replay hands over changes by the thousand: when work is dropped,
	// the log says so at most once a second, with the count.
	now                                                                           func() time.Time
	queueFull, laneFull, registryFailed, registerFailed, claimFailed, hookRemoved logThrottle
}

// logThrottle lets a repeated error be logged at most once a second, with
// how many times it happened since the last line.
type logThrottle struct {
	last    atomic.Int64 // unix second of the last line
	pending atomic.Int64 // occurrences not yet logged
}

// add counts n occurrences at unix second now; ok says to log a line now,
// for n occurrences in all since the last.
func (t *logThrottle) add(n int, now int64) (total int64, ok bool) {
	t.pending.Add(int64(n))
	if last := t.last.Load(); last != now && t.last.CompareAndSwap(last, now) {
		return t.pending.Swap(0), true
	}
	return 0, false
}

type planChange struct {
	plan      string
	version   uint64
	at        time.Time // when it happened (occurred_at)
	applied   time.Time // when Record was handed it
	live      bool      // recorded once the feed had reached the head: applied decides, and it waits lookupGrace
	withdrawn bool
}

type lookedUp struct {
	client string
	plans  []string
	at     time.Time
}

// MessageWriter publishes to one Kafka topic: a *kafka.Writer.
type MessageWriter interface {
	WriteMessages(ctx context.Context, msgs ...kafka.Message) error
}

// NewPusher returns a pusher; call Run to start its workers. events and
// dead may be nil.
func NewPusher(cfg PushConfig, rdb *redis.Client, clients *Clients, events, dead MessageWriter, log *slog.Logger, reg prometheus.Registerer) *Pusher {
	if cfg.Window <= 0 {
		cfg.Window = 24 * time.Hour
	}
	if cfg.Attempts <= 0 {
		cfg.Attempts = 5
	}
	if cfg.Backoff <= 0 {
		cfg.Backoff = time.Second
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 5 * time.Second
	}
	if cfg.Queue <= 0 {
		cfg.Queue = 10000
	}
	if cfg.Changes <= 0 {
		cfg.Changes = 131072
	}
	// A nil *kafka.Writer in the interface is not a nil interface.
	if w, ok := events.(*kafka.Writer); ok && w == nil {
		events = nil
	}
	if w, ok := dead.(*kafka.Writer); ok && w == nil {
		dead = nil
	}
	p := &Pusher{cfg: cfg, rdb: rdb, clients: clients, events: events, dead: dead, log: log,
		http:    &http.Client{Timeout: cfg.Timeout},
		looked:  make(chan lookedUp, cfg.Queue),
		changed: make(chan []planChange, 1024),
		lanes:   make(map[laneKey]*[deliveryLanes]chan PlanAlert),
		now:     time.Now,
		sent: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "planflag_push_alerts_total",
			Help: "Push alerts delivered, by channel (webhook, kafka)."}, []string{"channel"}),
		failed: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "planflag_push_alerts_failed_total",
			Help: "Push alerts that failed, by channel; webhooks after every retry (dead letters)."}, []string{"channel"}),
		lost: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "planflag_push_lost_total",
			Help: "Push work dropped, by reason (queue_full, redis, shutdown, webhook_removed)."}, []string{"reason"}),
	}
	pending := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "planflag_push_pending_changes",
		Help: "Applied changes waiting to be checked against the recent-lookups registry."},
		func() float64 { return float64(p.pending.Load()) })
	reg.MustRegister(p.sent, p.failed, p.lost, pending)
	return p
}

func recentKey(plan string) string { return "{planflag:recent}:" + plan }

// Looked notes that client was given plans; it never blocks the lookup.
func (p *Pusher) Looked(client string, plans []string, at time.Time) {
	if len(plans) == 0 {
		return
	}
	select {
	case p.looked <- lookedUp{client, plans, at}:
	default:
		p.lost.WithLabelValues("queue_full").Inc()
	}
}

// Record implements feed.Recorder.
//
// Until the feed first reaches the head of the log (a replay, before the
// replica serves), Record waits for room in the bound on waiting changes
// rather than drop: holding the apply loop then costs only time to ready,
// while a dropped change may be one no other replica alerted on (every
// replica down when it happened). It waits only while the pusher gets on:
// after stallWait without a chunk checked (Redis away or hung) it drops.
// Once at the head, changes beyond the bound are dropped at once, so that
// withdrawals are never held up: counted, and logged at most once a second.
func (p *Pusher) Record(changes []feed.Applied, _ feed.Offsets) {
	applied, live := p.now(), p.atHead.Load()
	// In a replay, a change from longer ago than the window (and the
	// clocks' slack) is no news to any client: a lookup it could follow
	// was due its alert when the change was first applied, by whichever
	// replica was running then. A replica replaying the topic's history
	// skips it here, rather than read the registry for every event of the
	// store and, where a plan's registry entry outlives its window, alert
	// on a change of weeks ago. At the head a change is applied now,
	// whenever it happened: a late one is news to every lookup since.
	oldest := applied.Add(-p.cfg.Window - clockSlack)
	var batch []planChange
	for _, c := range changes {
		if c.AlreadyWithdrawn {
			continue // nothing a client was given changed: told once, at the first withdrawal
		}
		if live || !c.At.Before(oldest) {
			batch = append(batch, planChange{plan: c.PlanID, version: c.Version, at: c.At,
				applied: applied, live: live, withdrawn: c.Event == nil})
		}
	}
	if len(batch) == 0 {
		return
	}
	if !live {
		p.waitRoom(len(batch))
	}
	kept := batch // a batch larger than the bound still goes in whole when none are waiting
	if pending := int(p.pending.Load()); pending > 0 {
		kept = batch[:max(0, min(len(batch), p.cfg.Changes-pending))]
	}
	if len(kept) > 0 {
		p.pending.Add(int64(len(kept)))
		select {
		case p.changed <- kept:
		default: // a thousand batches waiting: the bound above is the one that holds in practice
			p.pending.Add(-int64(len(kept)))
			kept = nil
		}
	}
	dropped := batch[len(kept):]
	if len(dropped) == 0 {
		return
	}
	p.lost.WithLabelValues("queue_full").Add(float64(len(dropped)))
	if n, ok := p.queueFull.add(len(dropped), p.now().Unix()); ok {
		p.log.Error("push alert work lost: queue full", "changes", n, "plan_id", dropped[0].plan)
	}
}

// RecordHead implements feed.HeadRecorder: from now on Record never waits.
func (p *Pusher) RecordHead(time.Time, feed.Offsets) { p.atHead.Store(true) }

// waitRoom waits until n more changes fit the bound (or none are waiting),
// for as long as the pusher checks a chunk every stallWait. Once it has
// given up, it does not wait again until the pusher has cleared its queue,
// so a hung Redis costs a replay one stallWait, not one a batch.
func (p *Pusher) waitRoom(n int) {
	last, since := p.checked.Load(), time.Now()
	for {
		pending := p.pending.Load()
		if pending == 0 {
			p.stalled.Store(false)
			return
		}
		if pending+int64(n) <= int64(p.cfg.Changes) || p.stalled.Load() {
			return
		}
		if c := p.checked.Load(); c != last {
			last, since = c, time.Now()
		} else if time.Since(since) > stallWait {
			p.stalled.Store(true)
			return
		}
		time.Sleep(time.Millisecond)
	}
}

// Run works until ctx ends: it records lookups in the registry and sends
// alerts for changes.
//
// Lookups come first: every lookup queued when Run turns to a change is
// registered before the change is checked, so a lookup queued before a
// change was applied is never missed for want of Run's turn. A change
// applied at the head also waits lookupGrace after it was applied, for the
// lookups answered just before it that were not yet queued (here or on
// another replica); Run registers lookups meanwhile.
func (p *Pusher) Run(ctx context.Context) {
	defer p.laneRun.Wait() // after closeLanes: every alert delivered, failed or counted lost
	defer p.closeLanes()
	var waiting [][]planChange // batches handed over and not yet checked, in the order applied
	buf := make([]lookedUp, 0, lookupChunk)
	// A lookup taken off the queue is registered even as ctx ends, rather
	// than lost: Redis's own timeouts bound the round trip.
	rctx := context.WithoutCancel(ctx)
	wake := time.NewTimer(time.Hour)
	wake.Stop()
	defer wake.Stop()
	for {
		if ctx.Err() != nil {
			p.stop(ctx, buf, waiting)
			return
		}
		p.registerQueued(rctx, buf[:0], "redis")
		if len(waiting) > 0 && !p.now().Before(checkAt(waiting[0])) {
			if rest := p.check(ctx, rctx, buf, waiting[0]); len(rest) > 0 {
				waiting[0] = rest // ctx ended: stop counts it
				continue
			}
			waiting[0] = nil
			waiting = waiting[1:]
			continue
		}
		var due <-chan time.Time
		if len(waiting) > 0 {
			wake.Reset(checkAt(waiting[0]).Sub(p.now()))
			due = wake.C
		}
		select {
		case <-ctx.Done():
		case l := <-p.looked:
			p.registerQueued(rctx, append(buf[:0], l), "redis")
		case batch := <-p.changed:
			waiting = append(waiting, batch)
		case <-due:
		}
	}
}

// checkAt is when batch may be checked against the registry: a replay's
// at once (the replica is not serving, and its changes go by occurred_at),
// one applied at the head lookupGrace after it was applied.
func checkAt(batch []planChange) time.Time {
	if !batch[0].live {
		return time.Time{}
	}
	return batch[0].applied.Add(lookupGrace)
}

// check checks batch against the registry a chunk at a time, registering
// the lookups queued meanwhile (with rctx) before each chunk. It returns
// what is left unchecked when ctx ends.
func (p *Pusher) check(ctx, rctx context.Context, buf []lookedUp, batch []planChange) []planChange {
	for len(batch) > 0 && ctx.Err() == nil {
		p.registerQueued(rctx, buf[:0], "redis")
		n := min(len(batch), changeChunk)
		p.changes(ctx, batch[:n])
		p.pending.Add(-int64(n))
		p.checked.Add(1)
		batch = batch[n:]
	}
	return batch
}

// registerQueued registers ls and the lookups queued when it is called,
// lookupChunk to a round trip. Those it cannot register are counted lost
// for reason and logged, at most a line a second. It reads only as many as
// were queued, so lookups arriving as fast as it registers them cannot
// hold up a change.
func (p *Pusher) registerQueued(ctx context.Context, ls []lookedUp, reason string) {
	for n := len(p.looked); ; ls = ls[:0] {
		for ; n > 0 && len(ls) < lookupChunk; n-- {
			ls = append(ls, <-p.looked) // Run alone receives: n are there
		}
		if len(ls) == 0 {
			return
		}
		failed, err := p.register(ctx, ls)
		if failed == 0 {
			continue
		}
		p.lost.WithLabelValues(reason).Add(float64(failed))
		if total, ok := p.registerFailed.add(failed, p.now().Unix()); ok {
			p.log.Warn("recent-lookups registry not updated", "lookups", total, "reason", reason, "client_id", ls[0].client, "err", err.Error())
		}
	}
}

// register writes ls to the registry in one round trip and says how many
// of them did not get there, and why.
func (p *Pusher) register(ctx context.Context, ls []lookedUp) (failed int, err error) {
	if err := ctx.Err(); err != nil {
		return len(ls), err
	}
	pipe := p.rdb.Pipeline()
	for _, l := range ls {
		for _, plan := range l.plans {
			pipe.HSet(ctx, recentKey(plan), l.client, l.at.Unix())
			pipe.Expire(ctx, recentKey(plan), p.cfg.Window)
		}
	}
	cmds, err := pipe.Exec(ctx)
	if err == nil {
		return 0, nil
	}
	i := 0
	for _, l := range ls {
		ok := true
		for range l.plans {
			if i+1 >= len(cmds) || cmds[i].Err() != nil || cmds[i+1].Err() != nil {
				ok = false
			}
			i += 2
		}
		if !ok {
			failed++
		}
	}
	return failed, err
}

// stop ends Run's work once ctx has ended. Lookups answered in the last
// moments may still be queued: without them a change applied afterwards,
// on another replica, finds no entry. They are registered with a deadline
// of their own, ctx's having passed; those that cannot be, and every
// change left unchecked, are counted lost (shutdown), so the loss shows.
func (p *Pusher) stop(ctx context.Context, buf []lookedUp, waiting [][]planChange) {
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownWait)
	defer cancel()
	p.registerQueued(rctx, buf[:0], "shutdown")
	changes := 0
	for _, batch := range waiting {
		changes += len(batch)
	}
	for more := true; more; {
		select {
		case batch := <-p.changed:
			changes += len(batch)
		default:
			more = false
		}
	}
	if changes == 0 {
		return
	}
	p.pending.Add(-int64(changes))
	p.lost.WithLabelValues("shutdown").Add(float64(changes))
	p.log.Warn("applied changes not checked for push alerts: shutting down", "changes", changes)
}

// registryRead returns, for the keys (registry entries) that exist, the
// key's position (from 1) and its fields and values: one command for a
// chunk of changes, where most plans have no entry. All the keys share a
// hash slot ({planflag:recent}), as a Redis cluster requires.
var registryRead = redis.NewScript(`
local out = {}
for i, k in ipairs(KEYS) do
  if redis.call('EXISTS', k) == 1 then
    out[#out+1] = i
    out[#out+1] = redis.call('HGETALL', k)
  end
end
return out`)

// changes reads the registry entries of cs's plans in one round trip and
// alerts on each change in turn.
func (p *Pusher) changes(ctx context.Context, cs []planChange) {
	keys := make([]string, len(cs))
	for i, c := range cs {
		keys[i] = recentKey(c.plan)
	}
	found, err := registryRead.Run(ctx, p.rdb, keys).Slice()
	if err != nil && err != redis.Nil {
		if ctx.Err() != nil {
			p.lost.WithLabelValues("shutdown").Add(float64(len(cs)))
			return
		}
		p.lost.WithLabelValues("redis").Add(float64(len(cs)))
		if n, ok := p.registryFailed.add(len(cs), p.now().Unix()); ok {
			p.log.Warn("recent-lookups registry not read", "changes", n, "plan_id", cs[0].plan, "err", err.Error())
		}
		return
	}
	for j := 0; j+1 < len(found); j += 2 {
		i, _ := found[j].(int64)
		fv, _ := found[j+1].([]any)
		if i < 1 || int(i) > len(cs) || len(fv) == 0 {
			continue
		}
		recent := make(map[string]string, len(fv)/2)
		for k := 0; k+1 < len(fv); k += 2 {
			f, _ := fv[k].(string)
			v, _ := fv[k+1].(string)
			recent[f] = v
		}
		p.change(ctx, cs[i-1], recent)
	}
}

// change alerts every client in recent (the plan's registry entry: client
// → unix time of its last lookup) that was given the plan before the change
// and within the window, once across replicas.
func (p *Pusher) change(ctx context.Context, c planChange, recent map[string]string) {
	kind := "updated"
	if c.withdrawn {
		kind = "withdrawn"
	}
	// What a client was given depends on when the change reached the
	// index, not when it happened: a lookup answered before a late
	// withdrawal was applied was given the plan. A replay goes by when it
	// happened (see Record).
	at := c.at
	if c.live {
		at = c.applied
	}
	for client, ts := range recent {
		sec, err := strconv.ParseInt(ts, 10, 64)
		looked := time.Unix(sec, 0)
		// A change from before the lookup is not news to the client, but
		// clocks differ (replicas, the plan store): within clockSlack of
		// the lookup, tell them anyway (the safe side).
		if err != nil || at.Before(looked.Add(-clockSlack)) || at.Sub(looked) > p.cfg.Window {
			continue
		}
		claim := fmt.Sprintf("{planflag:alerts}:%s:%d:%s", c.plan, c.version, client)
		won, err := p.rdb.SetNX(ctx, claim, 1, 2*p.cfg.Window).Result()
		if err != nil {
			// Nothing hands this change over again: a claim not made (Redis
			// failing over, a timeout) is an alert lost, and it must show.
			reason := "redis"
			if ctx.Err() != nil {
				reason = "shutdown"
			}
			p.lost.WithLabelValues(reason).Inc()
			if n, ok := p.claimFailed.add(1, p.now().Unix()); ok {
				p.log.Error("push alerts lost: claim not made", "alerts", n, "reason", reason,
					"plan_id", c.plan, "client_id", client, "err", err.Error())
			}
			continue
		}
		if !won {
			continue // another replica sends it
		}
		p.enqueue(ctx, PlanAlert{PlanID: c.plan, Change: kind, Version: c.version, At: c.at.UTC(), ClientID: client})
	}
}

// deliveryLanes is how many alerts to one client may be in delivery at
// once on each channel. A plan's alerts to a client always take the same
// lane, one after another, so the client hears of a plan's changes in the
// order they were applied (never "withdrawn" and then an older "updated"),
// while a plan whose delivery is being retried holds up only the plans in
// its lane, and only on its channel: brokers away do not hold webhooks
// back, nor a client's webhook the alert events.
const deliveryLanes = 4

// laneQueue bounds the alerts waiting in one lane.
const laneQueue = 256

// A lane's channel.
const (
	viaWebhook = iota
	viaKafka
)

type laneKey struct {
	client  string
	channel int
}

// enqueue hands a to its lanes, one for each channel the alert goes by
// (the client's webhook, if it has one; the alert topic, if there is
// one), starting them on first use. A full lane drops the alert on that
// channel, counted and logged: the change is still applied and the
// client's next lookup shows it.
func (p *Pusher) enqueue(ctx context.Context, a PlanAlert) {
	h := fnv.New32a()
	h.Write([]byte(a.PlanID))
	n := h.Sum32() % deliveryLanes
	if _, _, ok := p.clients.Webhook(a.ClientID); ok {
		p.enqueueOn(ctx, laneKey{a.ClientID, viaWebhook}, n, a)
	}
	if p.events != nil {
		p.enqueueOn(ctx, laneKey{a.ClientID, viaKafka}, n, a)
	}
}

func (p *Pusher) enqueueOn(ctx context.Context, k laneKey, n uint32, a PlanAlert) {
	lanes := p.lanes[k]
	if lanes == nil {
		lanes = new([deliveryLanes]chan PlanAlert)
		for i := range lanes {
			lanes[i] = make(chan PlanAlert, laneQueue)
			q := lanes[i]
			p.laneRun.Go(func() { p.lane(ctx, k.channel, q) })
		}
		p.lanes[k] = lanes
	}
	select {
	case lanes[n] <- a:
	default:
		p.lost.WithLabelValues("queue_full").Inc()
		if n, ok := p.laneFull.add(1, p.now().Unix()); ok {
			p.log.Error("push alerts lost: delivery lane full", "alerts", n, "plan_id", a.PlanID, "client_id", a.ClientID,
				"channel", channelName(k.channel))
		}
	}
}

func channelName(channel int) string {
	if channel == viaKafka {
		return "kafka"
	}
	return "webhook"
}

// lane delivers its alerts on its channel one at a time, in order, until
// Run closes it. Alerts still waiting once ctx has ended, or cut short by
// it, are counted and logged as lost: this replica claimed them, so no
// other replica sends them.
func (p *Pusher) lane(ctx context.Context, channel int, q <-chan PlanAlert) {
	lost := 0
	for a := range q {
		if ctx.Err() != nil {
			lost++
			continue
		}
		var err error
		if channel == viaKafka {
			err = p.publish(ctx, a)
		} else {
			err = p.deliverHook(ctx, a)
		}
		if err != nil && ctx.Err() != nil && errors.Is(err, ctx.Err()) {
			lost++
		}
	}
	if lost > 0 {
		p.lost.WithLabelValues("shutdown").Add(float64(lost))
		p.log.Warn("push alerts not sent: shutting down", "alerts", lost)
	}
}

// closeLanes ends every lane once Run sends no more; Run only.
func (p *Pusher) closeLanes() {
	for _, lanes := range p.lanes {
		for _, q := range lanes {
			close(q)
		}
	}
	p.lanes = make(map[laneKey]*[deliveryLanes]chan PlanAlert)
}

// publish sends a as an event on the alert topic, tried up to Attempts
// times (each itself retried by the Kafka writer) with jittered backoff;
// an error the brokers will give again (no permission, too large) is not
// retried. It returns ctx's error when shutdown cut it short.
func (p *Pusher) publish(ctx context.Context, a PlanAlert) error {
	body, _ := json.Marshal(a)
	err := p.attempt(ctx, func() error {
		return p.events.WriteMessages(ctx, kafka.Message{Key: []byte(a.PlanID), Value: body})
	})
	switch {
	case err == nil:
		p.sent.WithLabelValues("kafka").Inc()
	case ctx.Err() != nil && errors.Is(err, ctx.Err()):
	default:
		p.failed.WithLabelValues("kafka").Inc()
		p.log.Error("plan alert event not published", "plan_id", a.PlanID, "client_id", a.ClientID, "err", err.Error())
	}
	return err
}

// deliverHook posts a to the client's webhook, tried up to Attempts times
// with jittered backoff, then dead-lettered. It returns ctx's error when
// shutdown cut it short.
func (p *Pusher) deliverHook(ctx context.Context, a PlanAlert) error {
	body, _ := json.Marshal(a)
	removed := false
	err := p.attempt(ctx, func() error {
		// Read at every try: the clients file read again may have moved
		// the webhook or replaced its secret (a leaked one must sign
		// nothing more), or removed it.
		url, secret, ok := p.clients.Webhook(a.ClientID)
		if !ok {
			removed = true
			return nil
		}
		return p.post(ctx, url, secret, body)
	})
	if removed {
		p.lost.WithLabelValues("webhook_removed").Inc()
		if n, ok := p.hookRemoved.add(1, p.now().Unix()); ok {
			p.log.Warn("push alerts not sent: the client's webhook was removed from the clients file", "alerts", n,
				"plan_id", a.PlanID, "client_id", a.ClientID)
		}
		return nil
	}
	switch {
	case err == nil:
		p.sent.WithLabelValues("webhook").Inc()
		return nil
	case ctx.Err() != nil && errors.Is(err, ctx.Err()):
		return err
	}
	p.failed.WithLabelValues("webhook").Inc()
	p.log.Error("push alert dead-lettered after retries", "plan_id", a.PlanID, "client_id", a.ClientID,
		"attempts", p.cfg.Attempts, "err", err.Error())
	if p.dead != nil {
		// Written even as shutdown begins: the alert was tried in full.
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		if werr := p.dead.WriteMessages(dctx, kafka.Message{Key: []byte(a.PlanID), Value: body,
			Headers: []kafka.Header{{Key: feed.HeaderReason, Value: []byte(err.Error())}}}); werr != nil {
			p.log.Error("push alert dead letter not written", "plan_id", a.PlanID, "client_id", a.ClientID, "err", werr.Error())
		}
	}
	return err
}

// attempt calls send up to Attempts times, waiting a jittered, doubling
// backoff between tries, and returns the last error; it stops early, with
// ctx's error, when ctx ends, and at once on a Kafka error that is not
// temporary (retrying would get it again).
func (p *Pusher) attempt(ctx context.Context, send func() error) error {
	var last error
	for try := range p.cfg.Attempts {
		if try > 0 {
			d := p.cfg.Backoff << (try - 1)
			d = d/2 + time.Duration(rand.Int64N(int64(d/2)+1))
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(d):
			}
		}
		if last = send(); last == nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if ke := kafka.Error(0); errors.As(last, &ke) && !ke.Temporary() {
			return last
		}
	}
	return last
}

func (p *Pusher) post(ctx context.Context, url string, secret, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(SignatureHeader, Sign(secret, body))
	resp, err := p.http.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("webhook answered %d", resp.StatusCode)
	}
	return nil
}
