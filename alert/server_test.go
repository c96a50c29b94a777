package alert

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/planflag/planflag/careplanclient"
	"github.com/planflag/planflag/matcher"
)

// blockingMatcher answers after release is closed, so tests can hold
// lookups in flight.
type blockingMatcher struct {
	entered chan struct{}
	release chan struct{}
}

func (b *blockingMatcher) Match(matcher.Query) (matcher.Result, error) {
	b.entered <- struct{}{}
	<-b.release
	return matcher.Result{Tier: matcher.TierNone}, nil
}

const testToken = "t0ken"

func testServer(t *testing.T, cfg Config, m Matcher) (*Server, *fasthttp.Server, string) {
	t.Helper()
	cs, err := ParseClients([]byte(`[{"id":"cad","token_sha256":"`+TokenHash(testToken)+`","scopes":["lookup"],"rate_per_s":1000}]`),
		func() int64 { return time.Now().UnixNano() })
	if err != nil {
		t.Fatal(err)
	}
	return testServerFor(t, cfg, m, cs)
}

// testServerFor serves s's lookups to clients cs on a loopback port; the
// server is ready.
func testServerFor(t *testing.T, cfg Config, m Matcher, cs *Clients) (*Server, *fasthttp.Server, string) {
	t.Helper()
	s := NewServer(cfg, cs, NewMetrics(), slog.New(slog.NewTextHandler(io.Discard, nil)), time.Now)
	s.SetMatcher(m)
	s.SetReady(true)
	hs := &fasthttp.Server{Handler: s.Handler, ErrorHandler: s.ErrorHandler, MaxRequestBodySize: cfg.MaxBody}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go hs.Serve(ln)
	return s, hs, "http://" + ln.Addr().String()
}

func lookup(url string) (*http.Response, error) {
	req, _ := http.NewRequest("POST", url+"/v1/lookup", strings.NewReader(`{"given_name":"Ann","family_name":"Lee"}`))
	req.Header.Set("Authorization", "Bearer "+testToken)
	return http.DefaultClient.Do(req)
}

// Past the in-flight bound the server sheds load with 503 and Retry-After
// instead of queueing.
func TestLoadShedding(t *testing.T) {
	bm := &blockingMatcher{entered: make(chan struct{}, 4), release: make(chan struct{})}
	_, hs, url := testServer(t, Config{MaxBody: 4096, MaxInFlight: 2}, bm)
	defer hs.Shutdown()
	var wg sync.WaitGroup
	codes := make(chan int, 2)
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := lookup(url)
			if err != nil {
				t.Error(err)
				return
			}
			resp.Body.Close()
			codes <- resp.StatusCode
		}()
	}
	<-bm.entered
	<-bm.entered
	resp, err := lookup(url)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "" || !strings.Contains(string(body), "overloaded") {
		t.Errorf("third lookup: %d %q %s", resp.StatusCode, resp.Header.Get("Retry-After"), body)
	}
	close(bm.release)
	wg.Wait()
	close(codes)
	for c := range codes {
		if c != 200 {
			t.Errorf("held lookup answered %d", c)
		}
	}
}

// A lookup shed with 503 (the index loading, too many in flight) was not
// answered: it costs the client none of its rate, so a client that retries
// after Retry-After is not then refused with 429 for lookups it never got.
func TestShedLookupsKeepTheirRate(t *testing.T) {
	clock := time.Now().UnixNano() // never advances: no token comes back by itself
	cs, err := ParseClients([]byte(`[{"id":"cad","token_sha256":"`+TokenHash(testToken)+`","scopes":["lookup"],"rate_per_s":1}]`),
		func() int64 { return clock })
	if err != nil {
		t.Fatal(err)
	}
	bm := &blockingMatcher{entered: make(chan struct{}, 1), release: make(chan struct{})}
	s, hs, url := testServerFor(t, Config{MaxBody: 4096, MaxInFlight: 1}, bm, cs)
	defer hs.Shutdown()
	status := func() (int, string) {
		t.Helper()
		resp, err := lookup(url)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	const burst = 10 // max(rate, 10)
	s.SetReady(false)
	for i := range 2 * burst {
		if code, body := status(); code != 503 || !strings.Contains(body, "not_ready") {
			t.Fatalf("lookup %d while loading: %d %s", i, code, body)
		}
	}
	s.SetReady(true)
	held := make(chan int)
	go func() {
		resp, err := lookup(url)
		if err != nil {
			t.Error(err)
			held <- 0
			return
		}
		resp.Body.Close()
		held <- resp.StatusCode
	}()
	<-bm.entered
	for i := range 2 * burst {
		if code, body := status(); code != 503 || !strings.Contains(body, "overloaded") {
			t.Fatalf("lookup %d past the in-flight bound: %d %s", i, code, body)
		}
	}
	close(bm.release)
	if code := <-held; code != 200 {
		t.Fatalf("held lookup: %d", code)
	}
	// The held lookup took one token; the shed ones none.
	for i := range burst - 1 {
		go func() { <-bm.entered }()
		if code, body := status(); code != 200 {
			t.Fatalf("lookup %d of the burst after shedding: %d %s", i, code, body)
		}
	}
	if code, _ := status(); code != 429 {
		t.Errorf("lookup past the burst: %d, want 429", code)
	}
}

// Shutdown drains: a lookup in flight when shutdown starts is answered.
func TestGracefulShutdown(t *testing.T) {
	bm := &blockingMatcher{entered: make(chan struct{}, 1), release: make(chan struct{})}
	s, hs, url := testServer(t, DefaultConfig(), bm)
	got := make(chan int, 1)
	go func() {
		resp, err := lookup(url)
		if err != nil {
			got <- -1
			return
		}
		resp.Body.Close()
		got <- resp.StatusCode
	}()
	<-bm.entered
	s.SetReady(false)
	done := make(chan error, 1)
	go func() { done <- hs.ShutdownWithContext(context.Background()) }()
	select {
	case <-done:
		t.Fatal("shutdown returned with a lookup in flight")
	case <-time.After(100 * time.Millisecond):
	}
	close(bm.release)
	if c := <-got; c != 200 {
		t.Errorf("in-flight lookup answered %d", c)
	}
	if err := <-done; err != nil {
		t.Errorf("shutdown: %v", err)
	}
}

// handlerFixture is a ready server over a one-plan index and a function
// that sends it, in process, a lookup request that finds the plan.
// Deployed, its answers carry plan links and every lookup is audited (to a
// file sink that discards); stop closes the auditor.
func handlerFixture(deployed bool) (ctx *fasthttp.RequestCtx, run, stop func()) {
	ix := matcher.NewIndex(nil)
	ix.Upsert("UCP-1", 1, &matcher.Patient{GivenNames: []string{"Ann"}, FamilyName: "Lee", BirthDate: "1940-01-02",
		Addresses: []matcher.Address{{Lines: []string{"1 High Street"}, Postcode: "M1 1AE"}}})
	cs, _ := ParseClients([]byte(`[{"id":"cad","token_sha256":"`+TokenHash(testToken)+`","scopes":["lookup"],"rate_per_s":1e9}]`),
		func() int64 { return time.Now().UnixNano() })
	metrics := NewMetrics()
	s := NewServer(DefaultConfig(), cs, metrics, slog.New(slog.NewTextHandler(io.Discard, nil)), time.Now)
	s.SetMatcher(ix)
	s.SetReady(true)
	stop = func() {}
	if deployed {
		s.SetLinker(&careplanclient.Linker{Base: "https://plans.example/open", Keys: careplanclient.RandomKeys("k1")})
		a := NewAuditor(NewFileSink(io.Discard), 1<<16, slog.New(slog.DiscardHandler), metrics.Registry)
		s.SetAuditor(a)
		stop = func() { a.Close() }
	}
	ctx = new(fasthttp.RequestCtx)
	body := []byte(`{"given_name":"Ann","family_name":"Lee","birth_date":"1940-01-02","postcode":"M1 1AE"}`)
	return ctx, func() {
		ctx.Request.Reset()
		ctx.Response.Reset()
		ctx.Request.Header.SetMethod("POST")
		ctx.Request.SetRequestURI("/v1/lookup")
		ctx.Request.Header.Set("Authorization", "Bearer "+testToken)
		ctx.Request.SetBody(body)
		s.Handler(ctx)
	}, stop
}

// The handler path's allocations, the matcher's own included: as served
// bare, and deployed (a plan link, an audit event written by the auditor).
func TestHandlerAllocations(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts differ under -race")
	}
	for _, c := range []struct {
		deployed bool
		budget   float64
	}{{false, 10}, {true, 12}} {
		ctx, run, stop := handlerFixture(c.deployed)
		run()
		if ctx.Response.StatusCode() != 200 || !strings.Contains(string(ctx.Response.Body()), `"tier":"match"`) {
			t.Fatalf("answer %d %s", ctx.Response.StatusCode(), ctx.Response.Body())
		}
		if c.deployed && !strings.Contains(string(ctx.Response.Body()), `"link":"https://plans.example/open?t=`) {
			t.Fatalf("deployed answer without a link: %s", ctx.Response.Body())
		}
		allocs := testing.AllocsPerRun(200, run)
		stop()
		t.Logf("deployed %v: allocations per lookup request: %.0f", c.deployed, allocs)
		if allocs > c.budget {
			t.Errorf("deployed %v: %.0f allocations per lookup request, budget %.0f", c.deployed, allocs, c.budget)
		}
	}
}

// BenchmarkHandler is the handler path without the network: auth, limits,
// decoding, a match on a one-plan index, the answer, metrics.
func BenchmarkHandler(b *testing.B) {
	for _, deployed := range []bool{false, true} {
		b.Run(map[bool]string{false: "bare", true: "deployed"}[deployed], func(b *testing.B) {
			_, run, stop := handlerFixture(deployed)
			defer stop()
			b.ReportAllocs()
			for b.Loop() {
				run()
			}
		})
	}
}

// A request fasthttp cannot read is answered in the API's error shape with
// the status that says why: 431 for headers too large (a 5 KiB token), 413
// for a body over the limit, 408 for a request that stops arriving, 400 for
// one that is malformed.
func TestErrorHandlerStatuses(t *testing.T) {
	s := NewServer(Config{MaxBody: 1024, MaxInFlight: 8}, &Clients{}, NewMetrics(), slog.New(slog.DiscardHandler), time.Now)
	s.SetMatcher(matcher.NewIndex(nil))
	s.SetReady(true)
	hs := HTTPServer(s.Handler, s.ErrorHandler, 1024, s.ConnLogger())
	hs.ReadTimeout = 2 * time.Second // the 408 case waits this long; the others must be read within it
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go hs.Serve(ln)
	defer hs.Shutdown()
	const head = "POST /v1/lookup HTTP/1.1\r\nHost: x\r\n"
	for _, c := range []struct {
		name, req string
		status    int
		code      string
	}{
		{"5 KiB bearer token", head + "Authorization: Bearer " + strings.Repeat("a", 5000) + "\r\nContent-Length: 2\r\n\r\n{}", 431, "headers_too_large"},
		{"body over the limit", head + "Content-Length: 2000\r\n\r\n" + strings.Repeat("x", 2000), 413, "body_too_large"},
		{"body stops arriving", head + "Content-Length: 100\r\n\r\n{\"given_name\":", 408, "request_timeout"},
		{"content-length not a number", head + "Content-Length: 7x\r\n\r\n{}", 400, "bad_request"},
	} {
		conn, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(conn, c.req)
		conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatalf("%s: no answer: %v", c.name, err)
		}
		var body struct {
			Error *Error `json:"error"`
		}
		raw, _ := io.ReadAll(resp.Body)
		conn.Close()
		if err := json.Unmarshal(raw, &body); err != nil || body.Error == nil || resp.StatusCode != c.status ||
			body.Error.Code != c.code || body.Error.Message == "" || resp.Header.Get("Content-Type") != "application/json" {
			t.Errorf("%s: answered %d %s, want %d with code %s", c.name, resp.StatusCode, raw, c.status, c.code)
		}
	}
}
