package alert

import (
	"context"
	"log/slog"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/redis/go-redis/v9"

	"github.com/planflag/planflag/feed/feedtest"
)

// shareReplica is one replica's view of the client las-cad (rate_per_s
// rate), its limit shared through rdb under prefix.
func shareReplica(t *testing.T, rdb *redis.Client, prefix string, rate int) (*Client, *RateShare, prometheus.Gauge) {
	t.Helper()
	start := time.Now()
	clients, err := ParseClients([]byte(`[{"id":"las-cad","token_sha256":"`+TokenHash("t")+`","scopes":["lookup"],"rate_per_s":`+
		strconv.Itoa(rate)+`}]`), func() int64 { return int64(time.Since(start)) })
	if err != nil {
		t.Fatal(err)
	}
	rs := NewRateShare(RateShareConfig{Period: 50 * time.Millisecond, Prefix: prefix}, rdb, clients, slog.New(slog.DiscardHandler), nil)
	return clients.current()[0], rs, rs.up
}

// sharingReplicas starts n replicas' RateShares for one client (rate_per_s
// rate) on the test Redis, until the test ends, and waits until each has
// exchanged its counts.
func sharingReplicas(t *testing.T, n, rate int) []*Client {
	rdb := redis.NewClient(&redis.Options{Addr: feedtest.Redis(t)})
	t.Cleanup(func() { rdb.Close() })
	prefix := feedtest.Name("rate") + ":"
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	var replicas []*Client
	for range n {
		c, rs, up := shareReplica(t, rdb, prefix, rate)
		go rs.Run(ctx)
		feedtest.Eventually(t, 5*time.Second, "rates shared", func() bool { return testutil.ToFloat64(up) == 1 })
		replicas = append(replicas, c)
	}
	return replicas
}

// drive asks each replica's limiter for a lookup every 1/perReplica s for
// d, and returns how many lookups were allowed after warm (all replicas).
func drive(replicas []*Client, perReplica float64, d, warm time.Duration) (allowed, refused int) {
	var mu sync.Mutex
	var wg sync.WaitGroup
	start := time.Now()
	for _, c := range replicas {
		wg.Add(1)
		go func() {
			defer wg.Done()
			every := time.Duration(float64(time.Second) / perReplica)
			for i := 0; ; i++ {
				at := start.Add(time.Duration(i) * every)
				if at.Sub(start) >= d {
					return
				}
				time.Sleep(time.Until(at))
				ok, _ := c.limiter.allow()
				if at.Sub(start) < warm {
					continue
				}
				mu.Lock()
				if ok {
					allowed++
				} else {
					refused++
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return allowed, refused
}

// Two replicas, each asked for 1.5 times the client's rate: together they
// serve about the rate, where each on its own would serve all of it.
func TestRateShareHoldsTheClientToItsRate(t *testing.T) {
	replicas := sharingReplicas(t, 2, 100)
	// Over 3 s a lone replica serves its burst (a second's worth) and 3 s
	// at the rate: 400 lookups; two replicas each on their own, 800.
	allowed, _ := drive(replicas, 150, 3*time.Second, 0)
	t.Logf("two replicas asked for 900 lookups in 3 s at the client's rate of 100/s allowed %d", allowed)
	if allowed > 480 || allowed < 320 {
		t.Errorf("allowed %d lookups in 3 s, want about 400 (the rate for 3 s and one burst; each replica on its own: 800)", allowed)
	}
}

// Under its rate a client is never refused, however its lookups are spread.
func TestRateShareRefusesNothingUnderTheRate(t *testing.T) {
	replicas := sharingReplicas(t, 2, 100)
	// 80 % of the rate, in two even halves, then all of it on one replica
	// (the other gone) at once.
	if allowed, refused := drive(replicas, 40, 3*time.Second, 0); refused > 0 {
		t.Errorf("%d of %d lookups refused at 80 %% of the rate over two replicas", refused, allowed+refused)
	}
	if allowed, refused := drive(replicas[:1], 80, 3*time.Second, 0); refused > 0 {
		t.Errorf("%d of %d lookups refused at 80 %% of the rate moved to one replica", refused, allowed+refused)
	}
}

// Without Redis each replica serves the client at its whole rate.
func TestRateShareWithoutRedis(t *testing.T) {
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", DialTimeout: 100 * time.Millisecond, MaxRetries: -1})
	t.Cleanup(func() { rdb.Close() })
	c, rs, up := shareReplica(t, rdb, "unused:", 100)
	up.Set(1)
	c.limiter.setRate(10) // a share left from when Redis answered
	rs.exchange(context.Background())
	if got := testutil.ToFloat64(up); got != 0 {
		t.Errorf("planflag_rate_share_up = %v with Redis away, want 0", got)
	}
	if c.limiter.rate != 100 || c.limiter.burst != 100 {
		t.Errorf("rate %v, burst %v with Redis away; want the client's whole rate, 100", c.limiter.rate, c.limiter.burst)
	}
}
