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

// A replay hands the pusher every applied change, batch after batch: once
// its queue is full each dropped change is counted, but the log gets at
// most a line a second, with the count, not a line per change.
func TestPusherQueueFullLogThrottled(t *testing.T) {
	var logs bytes.Buffer
	p := NewPusher(PushConfig{Queue: 10}, nil, &Clients{}, nil, nil,
		slog.New(slog.NewJSONHandler(&logs, nil)), prometheus.NewRegistry())
	sec := int64(1_800_000_000)
	p.now = func() int64 { return sec }
	batch := func(n int) []feed.Applied {
		changes := make([]feed.Applied, n)
		for i := range changes {
			changes[i] = feed.Applied{PlanID: fmt.Sprintf("UCP-%d", i), Version: 1, At: time.Unix(sec, 0)}
		}
		return changes
	}
	check := func(wantLines int, wantLast string) {
		t.Helper()
		lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
		if len(lines) != wantLines || !strings.Contains(lines[len(lines)-1], wantLast) {
			t.Errorf("log has %d lines, want %d, the last with %s:\n%s", len(lines), wantLines, wantLast, logs.String())
		}
	}
	p.Record(batch(1000), nil) // 10 queued, 990 dropped
	check(1, `"changes":990`)
	p.Record(batch(1000), nil)
	p.Record(batch(1000), nil)
	check(1, `"changes":990`)
	sec++
	p.Record(batch(1), nil)
	check(2, `"changes":2001`)
	if lost := testutil.ToFloat64(p.lost.WithLabelValues("queue_full")); lost != 2991 {
		t.Errorf("%v changes counted lost, want 2991", lost)
	}
}

// A change older than the window, which a replica replaying the topic's
// history applies, is not pushed: it was news when it happened. A recent
// one is queued.
func TestPusherSkipsChangesOlderThanTheWindow(t *testing.T) {
	p := NewPusher(PushConfig{Queue: 10, Window: time.Hour}, nil, &Clients{}, nil, nil,
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
		got = append(got, (<-p.changed).plan)
	}
	if !slices.Equal(got, []string{"UCP-EDGE", "UCP-NEW"}) {
		t.Errorf("queued %v, want [UCP-EDGE UCP-NEW]", got)
	}
}
