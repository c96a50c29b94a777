package careplanclient

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// platform is an httptest care-plan platform whose behaviour a test sets.
type platform struct {
	*httptest.Server
	calls atomic.Int64
	mu    sync.Mutex
	mode  string // "ok", "slow", "5xx", "drop", "5xx-once"
}

func newPlatform(t *testing.T) *platform {
	p := &platform{mode: "ok"}
	p.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := p.calls.Add(1)
		p.mu.Lock()
		mode := p.mode
		p.mu.Unlock()
		switch {
		case mode == "slow":
			select {
			case <-r.Context().Done():
			case <-time.After(2 * time.Second):
			}
			return
		case mode == "5xx", mode == "5xx-once" && n == 1:
			http.Error(w, "busy", http.StatusServiceUnavailable)
			return
		case mode == "drop":
			conn, _, _ := w.(http.Hijacker).Hijack()
			conn.Close()
			return
		}
		switch r.URL.Path {
		case "/api/plans/UCP-1":
			json.NewEncoder(w).Encode(PlanStatus{PlanID: "UCP-1", Live: true, Version: 3})
		case "/api/plans":
			json.NewEncoder(w).Encode([]PlanStatus{{"UCP-1", true, 3}, {"UCP-2", true, 5}, {"UCP-3", true, 1}})
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(p.Close)
	return p
}

func (p *platform) set(mode string) {
	p.mu.Lock()
	p.mode = mode
	p.mu.Unlock()
	p.calls.Store(0)
}

func TestClientStatus(t *testing.T) {
	p := newPlatform(t)
	// A breaker that does not open here: TestBreaker tests it.
	c := &Client{Base: p.URL, Timeout: 200 * time.Millisecond, Retries: 2, Breaker: &Breaker{Threshold: 1000}}
	ctx := context.Background()
	st, err := c.Status(ctx, "UCP-1")
	if err != nil || !st.Live || st.Version != 3 {
		t.Fatalf("status: %+v %v", st, err)
	}
	if _, err := c.Status(ctx, "UCP-404"); !errors.Is(err, ErrNotFound) || p.calls.Load() != 2 {
		t.Errorf("unknown plan: %v after %d calls (404 is not retried)", err, p.calls.Load())
	}

	p.set("5xx-once")
	if _, err := c.Status(ctx, "UCP-1"); err != nil || p.calls.Load() != 2 {
		t.Errorf("a 503 then success: %v after %d calls, want success after 2", err, p.calls.Load())
	}

	p.set("slow")
	start := time.Now()
	_, err = c.Status(ctx, "UCP-1")
	if err == nil || time.Since(start) > 2500*time.Millisecond || p.calls.Load() != 3 {
		t.Errorf("slow platform: %v after %v and %d calls; want a timeout per attempt, 3 attempts", err, time.Since(start), p.calls.Load())
	}

	p.set("drop")
	if _, err := c.Status(ctx, "UCP-1"); err == nil || p.calls.Load() != 3 {
		t.Errorf("dropped connections: %v after %d calls", err, p.calls.Load())
	}
}

// TestBreaker: repeated failures open the breaker (calls stop reaching the
// platform); after the cooldown one trial goes through, and its success
// closes it.
func TestBreaker(t *testing.T) {
	p := newPlatform(t)
	now := time.Unix(0, 0)
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	br := &Breaker{Threshold: 3, Cooldown: 10 * time.Second, Now: clock}
	c := &Client{Base: p.URL, Timeout: 100 * time.Millisecond, Retries: -1, Breaker: br}
	ctx := context.Background()
	p.set("5xx")
	for range 3 {
		if _, err := c.Status(ctx, "UCP-1"); err == nil {
			t.Fatal("5xx accepted")
		}
	}
	if br.State() != "open" {
		t.Fatalf("after 3 failures the breaker is %s", br.State())
	}
	calls := p.calls.Load()
	if _, err := c.Status(ctx, "UCP-1"); !errors.Is(err, ErrOpen) || p.calls.Load() != calls {
		t.Errorf("open breaker: %v, and the platform was called", err)
	}
	mu.Lock()
	now = now.Add(11 * time.Second)
	mu.Unlock()
	if br.State() != "half-open" {
		t.Errorf("after the cooldown: %s", br.State())
	}
	p.set("5xx")
	if _, err := c.Status(ctx, "UCP-1"); err == nil || br.State() != "open" {
		t.Errorf("failed trial: %v, breaker %s; want open again", err, br.State())
	}
	mu.Lock()
	now = now.Add(11 * time.Second)
	mu.Unlock()
	p.set("ok")
	if _, err := c.Status(ctx, "UCP-1"); err != nil || br.State() != "closed" {
		t.Errorf("successful trial: %v, breaker %s; want closed", err, br.State())
	}
}

type fakeIndex map[string]uint64 // live plans and versions

func (f fakeIndex) Version(p string) (uint64, bool) { v, ok := f[p]; return v, ok }
func (f fakeIndex) EachLive(fn func(string, uint64)) {
	for p, v := range f {
		fn(p, v)
	}
}

func TestReconcile(t *testing.T) {
	p := newPlatform(t)
	c := &Client{Base: p.URL}
	// Platform: UCP-1 v3, UCP-2 v5, UCP-3 v1. Index: UCP-1 v3 (same), UCP-2
	// v4 (behind), UCP-9 (extra), UCP-3 missing.
	d, err := Reconcile(context.Background(), c, fakeIndex{"UCP-1": 3, "UCP-2": 4, "UCP-9": 1})
	if err != nil {
		t.Fatal(err)
	}
	want := Drift{PlatformLive: 3, IndexLive: 3, Missing: 1, Behind: 1, Extra: 1}
	if d != want || d.Total() != 3 {
		t.Errorf("drift %+v, want %+v", d, want)
	}
}

// TestDefaultBreakerShared: a Client without a Breaker makes one default
// breaker for all its calls, concurrent ones included (run with -race: it
// used to be assigned to the Client by whichever call came first).
func TestDefaultBreakerShared(t *testing.T) {
	p := newPlatform(t)
	p.set("5xx")
	c := &Client{Base: p.URL, Timeout: 100 * time.Millisecond, Retries: -1}
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() { defer wg.Done(); c.Status(context.Background(), "UCP-1") }()
	}
	wg.Wait()
	// Eight failures between them: the default breaker (5 failures) is
	// open for every call now, and the platform is not called.
	calls := p.calls.Load()
	if _, err := c.Status(context.Background(), "UCP-1"); !errors.Is(err, ErrOpen) || p.calls.Load() != calls {
		t.Errorf("after 8 failures: %v, platform calls %d → %d; want the shared breaker open", err, calls, p.calls.Load())
	}
}
