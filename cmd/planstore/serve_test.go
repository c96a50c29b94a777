package main

import (
	"context"
	"encoding/base64"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/planflag/planflag/careplanclient"
	"github.com/planflag/planflag/feed/feedtest"
	"github.com/planflag/planflag/matcher"
)

func servePlatform(t *testing.T, single bool) (*httptest.Server, *careplanclient.Linker, *time.Time) {
	keys := careplanclient.RandomKeys("k1")
	s := &store{plans: map[string]planState{}}
	s.Apply([]matcher.Change{{PlanID: "UCP-1", Version: 3, Patient: &matcher.Patient{}}, {PlanID: "UCP-2", Version: 2}})
	now := time.Now()
	p := &platform{store: s, keys: keys, now: func() time.Time { return now }}
	if single {
		rdb := redis.NewClient(&redis.Options{Addr: feedtest.Redis(t)})
		t.Cleanup(func() { rdb.Close() })
		p.single = &careplanclient.SingleUse{RDB: rdb}
	}
	srv := httptest.NewServer(p.routes())
	t.Cleanup(srv.Close)
	return srv, &careplanclient.Linker{Base: srv.URL + "/open", Keys: keys}, &now
}

func open(t *testing.T, link, client string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", link, nil)
	if client != "" {
		req.Header.Set(ClientHeader, client)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestOpenLinks: a valid link shows the plan; a tampered, expired,
// other-client or withdrawn-plan link is refused with the reason.
func TestOpenLinks(t *testing.T) {
	srv, l, now := servePlatform(t, false)
	link := l.Make("UCP-1", "las-cad", *now)
	if code, body := open(t, link.URL, "las-cad"); code != 200 || !strings.Contains(body, "UCP-1") {
		t.Fatalf("valid link: %d %s", code, body)
	}
	parts := strings.Split(careplanclient.TokenOf(link.URL), ".")
	parts[2] = base64.RawURLEncoding.EncodeToString([]byte("UCP-2"))
	tampered := srv.URL + "/open?t=" + strings.Join(parts, ".")
	cases := []struct {
		name, link, client string
		code               int
		reason             string
	}{
		{"tampered", tampered, "las-cad", 403, "tampered"},
		{"other client", link.URL, "other-cad", 403, "another client"},
		{"no client", link.URL, "", 401, "no client"},
		{"expired", l.Make("UCP-1", "las-cad", now.Add(-time.Hour)).URL, "las-cad", 403, "expired"},
		{"withdrawn plan", l.Make("UCP-2", "las-cad", *now).URL, "las-cad", 404, "withdrawn"},
		{"garbage", srv.URL + "/open?t=nonsense", "las-cad", 403, "malformed"},
	}
	for _, c := range cases {
		code, body := open(t, c.link, c.client)
		if code != c.code || !strings.Contains(body, c.reason) {
			t.Errorf("%s: %d %s, want %d with %q", c.name, code, body, c.code, c.reason)
		}
	}
	// The plan API careplanclient reads.
	cl := &careplanclient.Client{Base: srv.URL}
	st, err := cl.Status(context.Background(), "UCP-1")
	if err != nil || !st.Live || st.Version != 3 {
		t.Errorf("status: %+v %v", st, err)
	}
	live, err := cl.LivePlans(context.Background())
	if err != nil || len(live) != 1 || live["UCP-1"] != 3 {
		t.Errorf("live plans: %v %v", live, err)
	}
}

// TestSingleUseLinks: with Redis, a link opens once.
func TestSingleUseLinks(t *testing.T) {
	_, l, now := servePlatform(t, true)
	link := l.Make("UCP-1", "las-cad", *now)
	if code, _ := open(t, link.URL, "las-cad"); code != 200 {
		t.Fatalf("first open: %d", code)
	}
	if code, body := open(t, link.URL, "las-cad"); code != 403 || !strings.Contains(body, "already opened") {
		t.Errorf("second open: %d %s", code, body)
	}
}

// With Redis away a single-use link is refused (it must not open twice),
// as 503 with a reason for the caller, not 403 and the connection error.
func TestSingleUseRedisDown(t *testing.T) {
	keys := careplanclient.RandomKeys("k1")
	s := &store{plans: map[string]planState{}}
	s.Apply([]matcher.Change{{PlanID: "UCP-1", Version: 3, Patient: &matcher.Patient{}}})
	now := time.Now()
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1})
	defer rdb.Close()
	p := &platform{store: s, keys: keys, now: func() time.Time { return now },
		single: &careplanclient.SingleUse{RDB: rdb}}
	srv := httptest.NewServer(p.routes())
	defer srv.Close()
	link := (&careplanclient.Linker{Base: srv.URL + "/open", Keys: keys}).Make("UCP-1", "las-cad", now)
	code, body := open(t, link.URL, "las-cad")
	if code != 503 || !strings.Contains(body, "unavailable") || strings.Contains(body, "127.0.0.1") {
		t.Errorf("Redis down: %d %s, want 503 saying the check is unavailable", code, body)
	}
}
