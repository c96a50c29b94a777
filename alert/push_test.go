package alert

import (
	"bytes"
	"context"
	"encoding/json"
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
	p.now = func() int64 { return sec }
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
	p.now = func() int64 { return sec }
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
	p.now = func() int64 { return sec }
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
	if n := strings.Count(logs.String(), "recent-lookups registry not read"); n < 1 || n > int(took/time.Second)+1 {
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
