package bench

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"
)

// LoadTarget is an HTTP endpoint under load and the request bodies to send.
type LoadTarget struct {
	URL    string
	Token  string // sent as a bearer token when set
	Bodies [][]byte

	auth []byte // "Bearer <Token>", built once
}

// LoadResult is one load run.
type LoadResult struct {
	Requests                 int
	Errors                   int // transport errors and non-200 answers
	Seconds                  float64
	Throughput               float64 // answered requests per second
	P50, P90, P99, P999, Max time.Duration
}

func (r LoadResult) String() string {
	return fmt.Sprintf("%d requests in %.1fs (%.0f/s), errors %d, p50 %v p90 %v p99 %v p99.9 %v max %v",
		r.Requests, r.Seconds, r.Throughput, r.Errors, r.P50, r.P90, r.P99, r.P999, r.Max)
}

// newClient returns a client for t's host, and readies t for sending.
func newClient(t *LoadTarget, conns int) (*fasthttp.HostClient, error) {
	var u fasthttp.URI
	if err := u.Parse(nil, []byte(t.URL)); err != nil {
		return nil, err
	}
	if t.Token != "" {
		t.auth = []byte("Bearer " + t.Token)
	}
	return &fasthttp.HostClient{Addr: string(u.Host()), MaxConns: conns, ReadTimeout: 10 * time.Second,
		WriteTimeout: 10 * time.Second, MaxIdleConnDuration: time.Minute}, nil
}

// send makes one request; ok means a 200 answer.
func send(c *fasthttp.HostClient, t *LoadTarget, body []byte) bool {
	req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	req.SetRequestURI(t.URL)
	req.Header.SetMethod("POST")
	req.Header.SetContentType("application/json")
	if len(t.auth) > 0 {
		req.Header.SetBytesV("Authorization", t.auth)
	}
	req.SetBodyRaw(body)
	return c.Do(req, resp) == nil && resp.StatusCode() == 200
}

// ClosedLoop runs workers that each send the next request as soon as the
// last is answered, for d: the most the server can answer.
func ClosedLoop(ctx context.Context, t *LoadTarget, workers int, d time.Duration) (LoadResult, error) {
	c, err := newClient(t, workers)
	if err != nil {
		return LoadResult{}, err
	}
	var next, errs atomic.Int64
	lat := make([][]time.Duration, workers)
	deadline := time.Now().Add(d)
	start := time.Now()
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(deadline) && ctx.Err() == nil {
				i := next.Add(1)
				s := time.Now()
				if !send(c, t, t.Bodies[int(i)%len(t.Bodies)]) {
					errs.Add(1)
				}
				lat[w] = append(lat[w], time.Since(s))
			}
		}()
	}
	wg.Wait()
	return summarise(slices.Concat(lat...), int(errs.Load()), time.Since(start)), nil
}

// OpenLoop sends requests at a fixed rate for d, whatever the answers do,
// and measures each request's latency from the time it was scheduled to be
// sent, so time spent queueing behind slow answers counts (no coordinated
// omission). conns bounds the connections; a request with none free waits,
// and that wait is in its latency.
func OpenLoop(ctx context.Context, t *LoadTarget, rate float64, conns int, d time.Duration) (LoadResult, error) {
	c, err := newClient(t, conns)
	if err != nil {
		return LoadResult{}, err
	}
	n := int(rate * d.Seconds())
	lat := make([]time.Duration, n)
	ok := make([]bool, n)
	jobs := make(chan int, n)
	start := time.Now()
	interval := time.Duration(float64(time.Second) / rate)
	var wg sync.WaitGroup
	for range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				ok[i] = send(c, t, t.Bodies[i%len(t.Bodies)])
				lat[i] = time.Since(start.Add(time.Duration(i) * interval))
			}
		}()
	}
	// The dispatcher sleeps until the next send is due and then hands out
	// every request that is due, so a late wake-up delays requests but
	// never drops them; that lateness is in the measured latency, which
	// makes the figures conservative.
	sent := 0
	for ; sent < n && ctx.Err() == nil; sent++ {
		if wait := time.Until(start.Add(time.Duration(sent) * interval)); wait > 0 {
			time.Sleep(wait)
		}
		jobs <- sent
	}
	close(jobs)
	wg.Wait()
	lat, ok = lat[:sent], ok[:sent]
	errs := 0
	for _, o := range ok {
		if !o {
			errs++
		}
	}
	return summarise(lat, errs, time.Since(start)), nil
}

func summarise(lat []time.Duration, errs int, took time.Duration) LoadResult {
	slices.Sort(lat)
	r := LoadResult{Requests: len(lat), Errors: errs, Seconds: took.Seconds()}
	if len(lat) == 0 {
		return r
	}
	r.Throughput = float64(len(lat)-errs) / took.Seconds()
	at := func(p float64) time.Duration { return lat[min(len(lat)-1, int(p*float64(len(lat))))] }
	r.P50, r.P90, r.P99, r.P999, r.Max = at(0.5), at(0.9), at(0.99), at(0.999), lat[len(lat)-1]
	return r
}
