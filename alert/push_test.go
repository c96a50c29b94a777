package alert

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/redis/go-redis/v9"
	"github.com/segmentio/kafka-go"

	"github.com/planflag/planflag/feed"
	"github.com/planflag/planflag/feed/feedtest"
)

const hookSecret = "webhook-secret-0123456789"

// receiver is a client's webhook endpoint: it checks signatures and fails
// the first failFirst deliveries.
type receiver struct {
	*httptest.Server
	failFirst int64
	calls     atomic.Int64
	mu        sync.Mutex
	got       []PlanAlert
	badSig    int
}

func newReceiver(t *testing.T, failFirst int64) *receiver {
	r := &receiver{failFirst: failFirst}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		defer r.mu.Unlock()
		if req.Header.Get(SignatureHeader) != Sign([]byte(hookSecret), body) {
			r.badSig++
		}
		if r.calls.Add(1) <= r.failFirst {
			http.Error(w, "down", http.StatusBadGateway)
			return
		}
		var a PlanAlert
		_ = json.Unmarshal(body, &a)
		r.got = append(r.got, a)
	}))
	t.Cleanup(r.Close)
	return r
}

func (r *receiver) alerts() []PlanAlert {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]PlanAlert(nil), r.got...)
}

// pushClient is a Redis client and the client las-cad with its webhook at hook.
func pushClient(t *testing.T, hook string) (*redis.Client, *Clients) {
	rdb := redis.NewClient(&redis.Options{Addr: feedtest.Redis(t)})
	t.Cleanup(func() { rdb.Close() })
	clients, err := ParseClients([]byte(`[{"id":"las-cad","token_sha256":"`+TokenHash("t")+`","scopes":["lookup"],`+
		`"webhook_url":"`+hook+`","webhook_secret":"`+hookSecret+`"}]`), func() int64 { return 0 })
	if err != nil {
		t.Fatal(err)
	}
	return rdb, clients
}

func pushers(t *testing.T, hook string, n int) ([]*Pusher, []*prometheus.Registry) {
	rdb, clients := pushClient(t, hook)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	var ps []*Pusher
	var regs []*prometheus.Registry
	for range n {
		reg := prometheus.NewRegistry()
		p := NewPusher(PushConfig{Attempts: 3, Backoff: 10 * time.Millisecond}, rdb, clients, nil, nil,
			slog.New(slog.DiscardHandler), reg)
		go p.Run(ctx)
		ps, regs = append(ps, p), append(regs, reg)
	}
	return ps, regs
}

// looked records a lookup and waits until the registry has it.
func looked(t *testing.T, p *Pusher, plan string, at time.Time) {
	p.Looked("las-cad", []string{plan}, at)
	feedtest.Eventually(t, 5*time.Second, "registry updated", func() bool {
		n, _ := p.rdb.Exists(context.Background(), recentKey(plan)).Result()
		return n == 1
	})
}

// TestPushOncePerChange: two replicas apply the same change to a plan a
// client was given; the client's webhook gets one signed alert, after a
// retry.
func TestPushOncePerChange(t *testing.T) {
	hook := newReceiver(t, 1)
	ps, _ := pushers(t, hook.URL, 2)
	plan := feedtest.Name("UCP")
	now := time.Now()
	looked(t, ps[0], plan, now.Add(-time.Hour))
	change := []feed.Applied{{PlanID: plan, Version: 8, At: now}} // a withdrawal (no event)
	ps[0].Record(change, nil)
	ps[1].Record(change, nil)
	// An older change (before the lookup) is not pushed.
	ps[1].Record([]feed.Applied{{PlanID: plan, Version: 7, Event: []byte(`{}`), At: now.Add(-2 * time.Hour)}}, nil)
	feedtest.Eventually(t, 5*time.Second, "alert delivered", func() bool { return len(hook.alerts()) == 1 })
	time.Sleep(200 * time.Millisecond) // room for a duplicate to arrive, if there were one
	got := hook.alerts()
	if len(got) != 1 || got[0].PlanID != plan || got[0].Change != "withdrawn" || got[0].Version != 8 || got[0].ClientID != "las-cad" {
		t.Fatalf("alerts %+v", got)
	}
	if hook.calls.Load() != 2 || hook.badSig != 0 {
		t.Errorf("%d deliveries (want 2: one failed, one retried), %d bad signatures", hook.calls.Load(), hook.badSig)
	}
}

// TestPushDeadLetter: a webhook that keeps failing is tried Attempts times,
// then the alert is a counted dead letter.
func TestPushDeadLetter(t *testing.T) {
	hook := newReceiver(t, 1000)
	ps, regs := pushers(t, hook.URL, 1)
	plan := feedtest.Name("UCP")
	looked(t, ps[0], plan, time.Now().Add(-time.Minute))
	ps[0].Record([]feed.Applied{{PlanID: plan, Version: 2, Event: []byte(`{}`), At: time.Now()}}, nil)
	feedtest.Eventually(t, 5*time.Second, "dead letter counted", func() bool {
		return testutil.ToFloat64(ps[0].failed.WithLabelValues("webhook")) == 1
	})
	if hook.calls.Load() != 3 {
		t.Errorf("%d attempts, want 3", hook.calls.Load())
	}
	_ = regs
}

// TestPushInOrder: a plan is updated and then withdrawn while the first
// alert's delivery is being retried; the client hears of the changes in the
// order they were applied.
func TestPushInOrder(t *testing.T) {
	hook := newReceiver(t, 1)
	ps, _ := pushers(t, hook.URL, 1)
	plan := feedtest.Name("UCP")
	now := time.Now()
	looked(t, ps[0], plan, now.Add(-time.Minute))
	ps[0].Record([]feed.Applied{
		{PlanID: plan, Version: 2, Event: []byte(`{}`), At: now},
		{PlanID: plan, Version: 3, At: now}, // withdrawn
	}, nil)
	feedtest.Eventually(t, 5*time.Second, "both alerts delivered", func() bool { return len(hook.alerts()) == 2 })
	got := hook.alerts()
	if got[0].Change != "updated" || got[0].Version != 2 || got[1].Change != "withdrawn" || got[1].Version != 3 {
		t.Errorf("alerts arrived as %+v, want updated v2 then withdrawn v3", got)
	}
}

// TestPushLostAtShutdown: alerts claimed but not yet delivered when the
// pusher stops are counted as lost, not dropped silently.
func TestPushLostAtShutdown(t *testing.T) {
	hook := newReceiver(t, 1000) // always down: the first alert waits in backoff
	rdb, clients := pushClient(t, hook.URL)
	p := NewPusher(PushConfig{Attempts: 3, Backoff: time.Minute}, rdb, clients, nil, nil,
		slog.New(slog.DiscardHandler), prometheus.NewRegistry())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { p.Run(ctx); close(done) }()
	plan := feedtest.Name("UCP")
	now := time.Now()
	looked(t, p, plan, now.Add(-time.Minute))
	p.Record([]feed.Applied{
		{PlanID: plan, Version: 2, Event: []byte(`{}`), At: now},
		{PlanID: plan, Version: 3, Event: []byte(`{}`), At: now},
		{PlanID: plan, Version: 4, At: now},
	}, nil)
	feedtest.Eventually(t, 5*time.Second, "all three claimed, the first tried", func() bool {
		n, _ := rdb.Exists(context.Background(), "{planflag:alerts}:"+plan+":4:las-cad").Result()
		return n == 1 && hook.calls.Load() == 1
	})
	cancel()
	<-done
	feedtest.Eventually(t, 5*time.Second, "three alerts counted lost", func() bool {
		return testutil.ToFloat64(p.lost.WithLabelValues("shutdown")) == 3
	})
}

// TestPushReplayOfRecentChanges: a replica replaying a day of changes (a
// fresh replica, or a store re-published) hands the pusher the feed's
// catch-up batches of 32,768 changes, each from within the window, faster
// than it can check them. Every change is checked against the registry and
// the one plan a client was given is alerted on; none is dropped. (With a
// round trip per change and room for 10,000, a replay of 10 million plans
// lost 8.7 million of these checks.)
func TestPushReplayOfRecentChanges(t *testing.T) {
	hook := newReceiver(t, 0)
	rdb, clients := pushClient(t, hook.URL)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	p := NewPusher(PushConfig{Changes: 4096}, rdb, clients, nil, nil, slog.New(slog.DiscardHandler), prometheus.NewRegistry())
	go p.Run(ctx)
	plan := feedtest.Name("UCP")
	now := time.Now()
	looked(t, p, plan, now.Add(-time.Hour))
	const batches, size = 3, 32768
	for b := range batches {
		changes := make([]feed.Applied, size)
		for i := range changes {
			changes[i] = feed.Applied{PlanID: fmt.Sprintf("%s-other-%d-%d", plan, b, i), Version: 1, Event: []byte(`{}`), At: now}
		}
		if b == batches-1 {
			changes[size-1] = feed.Applied{PlanID: plan, Version: 5, Event: []byte(`{}`), At: now}
		}
		p.Record(changes, nil)
	}
	feedtest.Eventually(t, 60*time.Second, "alert delivered", func() bool { return len(hook.alerts()) == 1 })
	if got := hook.alerts()[0]; got.PlanID != plan || got.Version != 5 || got.Change != "updated" {
		t.Errorf("alert %+v", got)
	}
	if lost := testutil.ToFloat64(p.lost.WithLabelValues("queue_full")) + testutil.ToFloat64(p.lost.WithLabelValues("redis")); lost != 0 {
		t.Errorf("%v changes lost", lost)
	}
	feedtest.Eventually(t, 10*time.Second, "queue drained", func() bool { return p.pending.Load() == 0 })
}

// The backlog shows on /metrics: what Record queued and Run has not checked.
func TestPusherPendingMetric(t *testing.T) {
	reg := prometheus.NewRegistry()
	p := NewPusher(PushConfig{}, nil, &Clients{}, nil, nil, slog.New(slog.DiscardHandler), reg)
	p.Record(changesAt(700, time.Now()), nil)
	n, err := testutil.GatherAndCount(reg, "planflag_push_pending_changes")
	if err != nil || n != 1 {
		t.Fatalf("metric gathered %d times, %v", n, err)
	}
	mfs, _ := reg.Gather()
	for _, mf := range mfs {
		if mf.GetName() == "planflag_push_pending_changes" {
			if v := mf.GetMetric()[0].GetGauge().GetValue(); v != 700 {
				t.Errorf("pending changes %v, want 700", v)
			}
		}
	}
}

// A replay hands the pusher every applied change, batch after batch: once
// its queue is full each dropped change is counted, but the log gets at
// most a line a second, with the count, not a line per change.
func TestPusherQueueFullLogThrottled(t *testing.T) {
	var logs bytes.Buffer
	p := NewPusher(PushConfig{Changes: 10}, nil, &Clients{}, nil, nil,
		slog.New(slog.NewJSONHandler(&logs, nil)), prometheus.NewRegistry())
	p.RecordHead(time.Time{}, nil) // serving: Record never waits
	sec := int64(1_800_000_000)
	p.now = func() time.Time { return time.Unix(sec, 0) }
	batch := func(n int) []feed.Applied { return changesAt(n, time.Unix(sec, 0)) }
	check := func(wantLines int, wantLast string) {
		t.Helper()
		lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
		if len(lines) != wantLines || !strings.Contains(lines[len(lines)-1], wantLast) {
			t.Errorf("log has %d lines, want %d, the last with %s:\n%s", len(lines), wantLines, wantLast, logs.String())
		}
	}
	p.Record(batch(10), nil)   // queued
	p.Record(batch(1000), nil) // dropped
	check(1, `"changes":1000`)
	p.Record(batch(1000), nil)
	p.Record(batch(1000), nil)
	check(1, `"changes":1000`)
	sec++
	p.Record(batch(1), nil)
	check(2, `"changes":2001`)
	if lost := testutil.ToFloat64(p.lost.WithLabelValues("queue_full")); lost != 3001 {
		t.Errorf("%v changes counted lost, want 3001", lost)
	}
}

// Before the feed first reaches the log's head, Record waits for the pusher
// rather than drop, but only while it gets on: with nothing checking (here
// no Run; in flagd a hung Redis) it gives up after stallWait and then drops
// at once, until the pusher has cleared its queue.
func TestPusherReplayWaitsOnlyWhileChecking(t *testing.T) {
	p := NewPusher(PushConfig{Changes: 10}, nil, &Clients{}, nil, nil,
		slog.New(slog.DiscardHandler), prometheus.NewRegistry())
	sec := int64(1_800_000_000)
	p.now = func() time.Time { return time.Unix(sec, 0) }
	batch := func(n int) []feed.Applied { return changesAt(n, time.Unix(sec, 0)) }
	timed := func(n int) time.Duration {
		start := time.Now()
		p.Record(batch(n), nil)
		return time.Since(start)
	}
	if d := timed(25); d > stallWait/2 { // none waiting: a batch over the bound goes in whole
		t.Errorf("the first batch took %v", d)
	}
	if d := timed(5); d < stallWait || d > 3*stallWait {
		t.Errorf("a batch with the pusher stalled took %v, want about %v", d, stallWait)
	}
	if d := timed(5); d > stallWait/2 {
		t.Errorf("a batch after the stall took %v, want no wait", d)
	}
	if lost := testutil.ToFloat64(p.lost.WithLabelValues("queue_full")); lost != 10 || p.pending.Load() != 25 {
		t.Errorf("%v changes lost, %d waiting; want 10 and 25", lost, p.pending.Load())
	}
}

// A change older than the window, which a replica replaying the topic's
// history applies, is not pushed: it was news when it happened. A recent
// one is queued.
func TestPusherSkipsChangesOlderThanTheWindow(t *testing.T) {
	p := NewPusher(PushConfig{Changes: 10, Window: time.Hour}, nil, &Clients{}, nil, nil,
		slog.New(slog.DiscardHandler), prometheus.NewRegistry())
	sec := int64(1_800_000_000)
	p.now = func() time.Time { return time.Unix(sec, 0) }
	now := time.Unix(sec, 0)
	p.Record([]feed.Applied{
		{PlanID: "UCP-OLD", Version: 1, At: now.Add(-3 * time.Hour)},
		{PlanID: "UCP-EDGE", Version: 1, At: now.Add(-time.Hour - clockSlack + time.Second)},
		{PlanID: "UCP-NEW", Version: 1, At: now.Add(-time.Minute)},
	}, nil)
	var got []string
	for len(p.changed) > 0 {
		for _, c := range <-p.changed {
			got = append(got, c.plan)
		}
	}
	if !slices.Equal(got, []string{"UCP-EDGE", "UCP-NEW"}) {
		t.Errorf("queued %v, want [UCP-EDGE UCP-NEW]", got)
	}
}

// With Redis away, a replay's changes are counted lost by the chunk and the
// log gets at most a line a second, not one a chunk; the replay is not held
// up.
func TestPushRegistryAway(t *testing.T) {
	var logs feedtest.LogBuffer
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1})
	t.Cleanup(func() { rdb.Close() })
	p := NewPusher(PushConfig{}, rdb, &Clients{}, nil, nil,
		slog.New(slog.NewJSONHandler(&logs, nil)), prometheus.NewRegistry())
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	go p.Run(ctx)
	changes := changesAt(3000, time.Now())
	start := time.Now()
	p.Record(changes, nil)
	p.Record(changes, nil)
	if d := time.Since(start); d > stallWait {
		t.Errorf("replay held %v by a Redis that is away", d)
	}
	feedtest.Eventually(t, 10*time.Second, "changes counted lost", func() bool {
		return testutil.ToFloat64(p.lost.WithLabelValues("redis")) == 6000
	})
	took := time.Since(start)
	// At most a line a second of the clock: a span of took touches at
	// most took (rounded down) + 2 distinct seconds.
	if n := strings.Count(logs.String(), "recent-lookups registry not read"); n < 1 || n > int(took/time.Second)+2 {
		t.Errorf("%d log lines for 6 chunks that failed in %v:\n%s", n, took, logs.String())
	}
}

// changesAt is n updates of plans UCP-0, UCP-1, … made at at.
func changesAt(n int, at time.Time) []feed.Applied {
	changes := make([]feed.Applied, n)
	for i := range changes {
		changes[i] = feed.Applied{PlanID: fmt.Sprintf("UCP-%d", i), Version: 1, At: at}
	}
	return changes
}

// A withdrawal that reaches planflag late (the plan store published it
// late, Kafka was away, the feed lagged) is pushed to a client given the
// plan before it was applied, however long before that it happened: until
// it was applied, lookups were answered with the plan. A client that looked
// the plan up well after it was applied was given the plan without it and
// hears nothing.
func TestPushLateChangeByApplyTime(t *testing.T) {
	for _, tc := range []struct {
		name string
		late time.Duration // occurred_at this long before it is applied
	}{
		{"ten minutes late", 10 * time.Minute},
		{"older than the window", 25 * time.Hour}, // the feed was stuck for a day
	} {
		t.Run(tc.name, func(t *testing.T) {
			hook := newReceiver(t, 0)
			ps, _ := pushers(t, hook.URL, 1)
			ps[0].RecordHead(time.Now(), nil) // serving
			plan, later := feedtest.Name("UCP"), feedtest.Name("UCP")
			now := time.Now()
			looked(t, ps[0], plan, now)                      // answered from an index that still held the plan
			looked(t, ps[0], later, now.Add(10*time.Minute)) // answered well after the withdrawal was applied
			ps[0].Record([]feed.Applied{
				{PlanID: plan, Version: 9, At: now.Add(-tc.late)},
				{PlanID: later, Version: 9, At: now.Add(-tc.late)},
			}, nil)
			feedtest.Eventually(t, 5*time.Second, "withdrawal alert delivered", func() bool { return len(hook.alerts()) > 0 })
			time.Sleep(200 * time.Millisecond) // room for the other alert, were there one
			got := hook.alerts()
			if len(got) != 1 || got[0].PlanID != plan || got[0].Change != "withdrawn" || !got[0].At.Equal(now.Add(-tc.late).UTC()) {
				t.Errorf("alerts %+v, want one: %s withdrawn, at its occurred_at", got, plan)
			}
		})
	}
}

// Once the replica serves, Record queues a change whenever it happened: it
// is news to every lookup answered before it was applied. (In a replay,
// before the head, changes older than the window are still skipped.)
func TestPusherQueuesLateChangesAtTheHead(t *testing.T) {
	p := NewPusher(PushConfig{Window: time.Hour}, nil, &Clients{}, nil, nil,
		slog.New(slog.DiscardHandler), prometheus.NewRegistry())
	p.RecordHead(time.Now(), nil)
	p.Record([]feed.Applied{{PlanID: "UCP-LATE", Version: 1, At: time.Now().Add(-3 * time.Hour)}}, nil)
	if p.pending.Load() != 1 || len(p.changed) != 1 {
		t.Errorf("%d changes queued, want the late one", p.pending.Load())
	}
}

// A client given a plan just before it is withdrawn is alerted, however
// its lookup and the withdrawal meet the registry: the lookup queued
// behind a busy control room's other lookups, queued just before the
// withdrawal is applied, queued just after it (the handler notes a lookup
// once Match has returned, and the feed may apply a change in between), or
// answered by another replica.
func TestPushLookupJustBeforeAChange(t *testing.T) {
	for _, tc := range []struct {
		name        string
		busy        int           // other clients' lookups queued ahead
		after       time.Duration // Looked this long after the change is applied; 0: before
		sameReplica bool
	}{
		{"queued behind other lookups", 200, 0, true},
		{"queued just before", 0, 0, true},
		{"queued just after", 0, 20 * time.Millisecond, true},
		{"on another replica", 0, 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hook := newReceiver(t, 0)
			ps, _ := pushers(t, hook.URL, 2)
			for _, p := range ps {
				p.RecordHead(time.Now(), nil)
			}
			applies, answers := ps[0], ps[0]
			if !tc.sameReplica {
				answers = ps[1]
			}
			const n = 20
			var plans []string
			for i := range n {
				plan := feedtest.Name("UCP")
				plans = append(plans, plan)
				now := time.Now()
				for j := range tc.busy {
					answers.Looked("other-cad", []string{fmt.Sprintf("%s-busy-%d", plan, j)}, now)
				}
				if tc.after == 0 {
					answers.Looked("las-cad", []string{plan}, now) // answered with the plan…
				}
				applies.Record([]feed.Applied{{PlanID: plan, Version: 9, At: now.Add(time.Millisecond)}}, nil) // …then withdrawn
				if tc.after > 0 {
					time.Sleep(tc.after)
					answers.Looked("las-cad", []string{plan}, now)
				}
				if i%5 == 4 {
					time.Sleep(50 * time.Millisecond)
				}
			}
			missing := func() (m int) {
				got := map[string]bool{}
				for _, a := range hook.alerts() {
					got[a.PlanID] = true
				}
				for _, plan := range plans {
					if !got[plan] {
						m++
					}
				}
				return m
			}
			for deadline := time.Now().Add(5 * time.Second); missing() > 0 && time.Now().Before(deadline); {
				time.Sleep(20 * time.Millisecond)
			}
			if m := missing(); m > 0 {
				var lost float64
				for _, p := range ps {
					lost += testutil.ToFloat64(p.lost.WithLabelValues("queue_full")) + testutil.ToFloat64(p.lost.WithLabelValues("redis"))
				}
				t.Errorf("%d of %d clients given a plan just before its withdrawal were never alerted (%v counted lost)", m, n, lost)
			}
		})
	}
}

// A busy control room makes thousands of lookups a second: queued lookups
// are registered many to a Redis round trip, not one each, so the registry
// keeps up.
func TestPushRegistersLookupsInBatches(t *testing.T) {
	hook := newReceiver(t, 0)
	rdb, clients := pushClient(t, hook.URL)
	var trips atomic.Int64
	rdb.AddHook(countPipelines{&trips})
	p := NewPusher(PushConfig{}, rdb, clients, nil, nil, slog.New(slog.DiscardHandler), prometheus.NewRegistry())
	plan := feedtest.Name("UCP")
	const lookups = 10000
	for i := range lookups {
		p.Looked("las-cad", []string{fmt.Sprintf("%s-%d", plan, i)}, time.Now())
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	start := time.Now()
	go p.Run(ctx)
	feedtest.Eventually(t, 60*time.Second, "every lookup registered", func() bool {
		n, _ := rdb.Exists(context.Background(), recentKey(fmt.Sprintf("%s-%d", plan, lookups-1))).Result()
		return n == 1
	})
	took := time.Since(start)
	t.Logf("%d lookups registered in %v (%.0f/s), %d round trips", lookups, took, lookups/took.Seconds(), trips.Load())
	if trips.Load() > 100 {
		t.Errorf("%d lookups took %d round trips to register", lookups, trips.Load())
	}
}

// countPipelines counts the pipelines (round trips) a client sends.
type countPipelines struct{ n *atomic.Int64 }

func (countPipelines) DialHook(next redis.DialHook) redis.DialHook          { return next }
func (countPipelines) ProcessHook(next redis.ProcessHook) redis.ProcessHook { return next }
func (c countPipelines) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		c.n.Add(1)
		return next(ctx, cmds)
	}
}

// When the claim on an alert fails (Redis failing over, a timeout), nothing
// retries it: the alert is counted lost (redis) and logged with the plan
// and client IDs, not dropped silently.
func TestPushClaimFailureCounted(t *testing.T) {
	hook := newReceiver(t, 0)
	rdb, clients := pushClient(t, hook.URL)
	rdb.AddHook(failSetHook{})
	var logs feedtest.LogBuffer
	p := NewPusher(PushConfig{}, rdb, clients, nil, nil, slog.New(slog.NewJSONHandler(&logs, nil)), prometheus.NewRegistry())
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	go p.Run(ctx)
	plan := feedtest.Name("UCP")
	now := time.Now()
	looked(t, p, plan, now.Add(-time.Minute))
	p.Record([]feed.Applied{{PlanID: plan, Version: 9, At: now}}, nil)
	feedtest.Eventually(t, 5*time.Second, "alert counted lost", func() bool {
		return testutil.ToFloat64(p.lost.WithLabelValues("redis")) == 1
	})
	// The count comes just before the log line: wait for the line too.
	logged := func() bool {
		l := logs.String()
		return strings.Contains(l, `"plan_id":"`+plan+`"`) && strings.Contains(l, `"client_id":"las-cad"`)
	}
	feedtest.Eventually(t, 5*time.Second, "lost alert logged with its plan and client", logged)
	if len(hook.alerts()) != 0 {
		t.Errorf("alerts %+v sent without a claim", hook.alerts())
	}
}

// failSetHook fails SET commands (the claim), as a Redis failing over would.
type failSetHook struct{}

func (failSetHook) DialHook(next redis.DialHook) redis.DialHook { return next }
func (failSetHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if cmd.Name() == "set" {
			err := errors.New("READONLY You can't write against a read only replica.")
			cmd.SetErr(err)
			return err
		}
		return next(ctx, cmd)
	}
}
func (failSetHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

// At shutdown, lookups answered in the last moments and still queued are
// registered (a withdrawal another replica applies afterwards must find
// them), and what cannot be registered, or checked, is counted lost
// (shutdown): nothing is dropped silently, and the pending-changes gauge
// goes back to 0.
func TestPushShutdown(t *testing.T) {
	// stopped stops a pusher on rdb and waits for Run to return. queued is
	// done before Run starts (the work still queued when ctx ends), running
	// while it runs.
	stopped := func(t *testing.T, rdb *redis.Client, clients *Clients, queued, running func(p *Pusher)) *Pusher {
		t.Helper()
		p := NewPusher(PushConfig{}, rdb, clients, nil, nil, slog.New(slog.DiscardHandler), prometheus.NewRegistry())
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		done := make(chan struct{})
		queued(p)
		if running == nil {
			cancel()
		}
		go func() { p.Run(ctx); close(done) }()
		if running != nil {
			running(p)
			cancel()
		}
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatal("Run did not return")
		}
		return p
	}
	queue := func(plan string) func(p *Pusher) {
		return func(p *Pusher) {
			for i := range 100 {
				p.Looked("las-cad", []string{fmt.Sprintf("%s-%d", plan, i)}, time.Now())
			}
		}
	}
	t.Run("queued lookups registered", func(t *testing.T) {
		rdb, clients := pushClient(t, newReceiver(t, 0).URL)
		plan := feedtest.Name("UCP")
		p := stopped(t, rdb, clients, queue(plan), nil)
		registered := 0
		for i := range 100 {
			n, _ := rdb.Exists(context.Background(), recentKey(fmt.Sprintf("%s-%d", plan, i))).Result()
			registered += int(n)
		}
		if lost := testutil.ToFloat64(p.lost.WithLabelValues("shutdown")); registered != 100 || lost != 0 {
			t.Errorf("%d of 100 queued lookups registered, %v counted lost", registered, lost)
		}
	})
	t.Run("Redis away: queued lookups counted", func(t *testing.T) {
		rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1})
		t.Cleanup(func() { rdb.Close() })
		p := stopped(t, rdb, &Clients{}, queue("UCP"), nil)
		if lost := testutil.ToFloat64(p.lost.WithLabelValues("shutdown")) + testutil.ToFloat64(p.lost.WithLabelValues("redis")); lost != 100 {
			t.Errorf("%v of 100 queued lookups counted lost", lost)
		}
	})
	t.Run("unchecked changes counted", func(t *testing.T) {
		rdb, clients := pushClient(t, newReceiver(t, 0).URL)
		p := stopped(t, rdb, clients, func(p *Pusher) {
			p.RecordHead(time.Now(), nil)
			p.Record(changesAt(3, time.Now()), nil) // not yet taken by Run
		}, func(p *Pusher) {
			p.Record(changesAt(5, time.Now()), nil) // applied just now: not yet checked
		})
		if lost := testutil.ToFloat64(p.lost.WithLabelValues("shutdown")); lost != 8 || p.pending.Load() != 0 {
			t.Errorf("%v of 8 unchecked changes counted lost, %d still pending", lost, p.pending.Load())
		}
	})
}

// A withdrawal of a plan that was not live (a tombstone after the plan
// store's plan.withdrawn) changes nothing a client was given: the client
// heard of the first withdrawal and is not told again.
func TestPusherSkipsRepeatedWithdrawal(t *testing.T) {
	p := NewPusher(PushConfig{Window: time.Hour}, nil, &Clients{}, nil, nil,
		slog.New(slog.DiscardHandler), prometheus.NewRegistry())
	p.RecordHead(time.Now(), nil)
	p.Record([]feed.Applied{
		{PlanID: "UCP-1", Version: 2, At: time.Now()},
		{PlanID: "UCP-1", Version: feed.TombstoneVersion, At: time.Now(), AlreadyWithdrawn: true},
	}, nil)
	if p.pending.Load() != 1 {
		t.Errorf("%d changes queued, want the first withdrawal only", p.pending.Load())
	}
}

// flakyTopic fails its first fail writes (with err, or a temporary
// error), then takes messages.
type flakyTopic struct {
	mu    sync.Mutex
	fail  int
	err   error
	calls int
	got   []kafka.Message
}

func (f *flakyTopic) WriteMessages(ctx context.Context, msgs ...kafka.Message) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if err := ctx.Err(); err != nil {
		return err
	}
	if f.calls <= f.fail {
		if f.err != nil {
			return f.err
		}
		return kafka.LeaderNotAvailable
	}
	f.got = append(f.got, msgs...)
	return nil
}

func (f *flakyTopic) writes() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls
}

// TestPushKafkaRetried: an alert event the brokers refuse is published
// again after a backoff, up to Attempts times, then counted failed; a
// refusal that would come again (no permission) is not retried. The
// webhook has a lane of its own: brokers away do not hold it back. An
// alert event whose retries are cut short by shutdown is counted lost.
func TestPushKafkaRetried(t *testing.T) {
	a := PlanAlert{PlanID: "UCP-1", ClientID: "las-cad", Change: "withdrawn", Version: 3}
	for _, c := range []struct {
		name                            string
		fail                            int
		err                             error
		writes, sent, failed, published int
	}{
		{"refused twice", 2, nil, 3, 1, 0, 1},
		{"refused every time", 3, nil, 3, 0, 1, 0},
		{"not allowed to write", 3, kafka.TopicAuthorizationFailed, 1, 0, 1, 0},
	} {
		topic := &flakyTopic{fail: c.fail, err: c.err}
		p := NewPusher(PushConfig{Attempts: 3, Backoff: time.Millisecond}, nil, &Clients{}, topic, nil,
			slog.New(slog.DiscardHandler), prometheus.NewRegistry())
		p.publish(context.Background(), a)
		sent, failed := testutil.ToFloat64(p.sent.WithLabelValues("kafka")), testutil.ToFloat64(p.failed.WithLabelValues("kafka"))
		if topic.calls != c.writes || len(topic.got) != c.published || int(sent) != c.sent || int(failed) != c.failed {
			t.Errorf("%s: %d writes, %d published, sent %v, failed %v; want %d writes, %d published, sent %d, failed %d",
				c.name, topic.calls, len(topic.got), sent, failed, c.writes, c.published, c.sent, c.failed)
		}
		if len(topic.got) == 1 && string(topic.got[0].Key) != "UCP-1" {
			t.Errorf("%s: keyed %q, want the plan ID", c.name, topic.got[0].Key)
		}
	}

	hook := newReceiver(t, 0)
	clients, err := ParseClients([]byte(`[{"id":"las-cad","token_sha256":"`+TokenHash("t")+`","scopes":["lookup"],`+
		`"webhook_url":"`+hook.URL+`","webhook_secret":"`+hookSecret+`"}]`), func() int64 { return 0 })
	if err != nil {
		t.Fatal(err)
	}
	topic := &flakyTopic{fail: 1000}
	p := NewPusher(PushConfig{Attempts: 5, Backoff: time.Minute}, nil, clients, topic, nil,
		slog.New(slog.DiscardHandler), prometheus.NewRegistry())
	ctx, cancel := context.WithCancel(context.Background())
	p.enqueue(ctx, a)
	feedtest.Eventually(t, 5*time.Second, "webhook delivered while the topic refuses", func() bool {
		return topic.writes() == 1 && testutil.ToFloat64(p.sent.WithLabelValues("webhook")) == 1
	})
	cancel()
	p.closeLanes()
	done := make(chan struct{})
	go func() { p.laneRun.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("the alert topic's lane still waiting out its backoff after shutdown")
	}
	lost, failed := testutil.ToFloat64(p.lost.WithLabelValues("shutdown")), testutil.ToFloat64(p.failed.WithLabelValues("kafka"))
	if lost != 1 || failed != 0 || len(hook.alerts()) != 1 {
		t.Errorf("cut short by shutdown: lost %v, failed %v, %d webhook alerts; want lost 1, failed 0, 1 alert", lost, failed, len(hook.alerts()))
	}
}

// A clients file read again while an alert is being retried: the next try
// goes to the webhook and secret now in force (a leaked secret signs
// nothing more); a webhook removed ends the tries, counted lost.
func TestPushWebhookReadAtEveryTry(t *testing.T) {
	a := PlanAlert{PlanID: "UCP-1", ClientID: "las-cad", Change: "withdrawn", Version: 3}
	// down refuses every delivery, each held until the test lets it go,
	// so the file is read again while a try is in flight, whatever the
	// machine's speed.
	tries, release := make(chan struct{}, 10), make(chan struct{}, 10)
	down := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		tries <- struct{}{}
		<-release
		http.Error(w, "down", http.StatusBadGateway)
	}))
	defer down.Close()
	moved := newReceiver(t, 0)
	parse := func(entry string) *Clients {
		t.Helper()
		cs, err := ParseClients([]byte(`[{"id":"las-cad","token_sha256":"`+TokenHash("t")+`","scopes":["lookup"]`+entry+`}]`),
			func() int64 { return 0 })
		if err != nil {
			t.Fatal(err)
		}
		return cs
	}
	hooked := func(url, secret string) string {
		return `,"webhook_url":"` + url + `","webhook_secret":"` + secret + `"`
	}
	for _, c := range []struct {
		name string
		next string // the clients file's entry read again
	}{
		{"moved", hooked(moved.URL, hookSecret)},
		{"removed", ""},
	} {
		clients := parse(hooked(down.URL, "leaked-secret-0123456789"))
		p := NewPusher(PushConfig{Attempts: 5, Backoff: time.Millisecond}, nil, clients, nil, nil,
			slog.New(slog.DiscardHandler), prometheus.NewRegistry())
		done := make(chan error, 1)
		go func() { done <- p.deliverHook(context.Background(), a) }()
		<-tries
		clients.Replace(parse(c.next))
		release <- struct{}{}
		if err := <-done; err != nil {
			t.Fatalf("%s: delivery: %v", c.name, err)
		}
		lost, failed := testutil.ToFloat64(p.lost.WithLabelValues("webhook_removed")), testutil.ToFloat64(p.failed.WithLabelValues("webhook"))
		switch c.name {
		case "moved":
			moved.mu.Lock()
			got, bad := len(moved.got), moved.badSig
			moved.mu.Unlock()
			if got != 1 || bad != 0 || lost != 0 || failed != 0 {
				t.Errorf("moved: %d alerts at the new webhook, %d badly signed, lost %v, failed %v; want 1 signed with the new secret", got, bad, lost, failed)
			}
		case "removed":
			if lost != 1 || failed != 0 {
				t.Errorf("removed: lost %v, failed %v; want 1, 0", lost, failed)
			}
		}
	}
}
