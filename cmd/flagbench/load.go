package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/planflag/planflag/alert"
	"github.com/planflag/planflag/bench"
	"github.com/planflag/planflag/careplanclient"
	"github.com/planflag/planflag/feed"
	"github.com/planflag/planflag/matcher"
)

// runLoad measures the lookup API under load: a child process serves the
// index (and, beside it, a bare fasthttp server answering a fixed JSON
// body: the ceiling), and this process drives both, closed loop for the
// most throughput and open loop at a fixed rate for latency.
func runLoad(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("load", flag.ContinueOnError)
	fs.SetOutput(stderr)
	plans := fs.Int("plans", 1_000_000, "plans in the served index (beyond 1,000,000 built from 1,000,000-plan populations with seeds seed, seed+1, …; the callers are the first's)")
	seed := fs.Uint64("seed", 1, "seed of the synthetic population")
	rate := fs.Float64("rate", 5000, "open-loop request rate per second")
	dur := fs.Duration("duration", 20*time.Second, "length of each run")
	workers := fs.Int("workers", 32, "closed-loop workers (one connection each)")
	conns := fs.Int("conns", 256, "open-loop connections")
	deployed := fs.Bool("deployed", false, "answer lookups as a deployed flagd does: a signed plan link in every candidate, and every lookup audited to a file")
	rounds := fs.Int("rounds", 6, "closed loop: alternate bare and lookup runs this many times (duration split between them), so drift in the machine's speed hits both alike")
	roundWarm := fs.Duration("round-warmup", time.Second, "closed loop: run each server this long, unrecorded, before each of its rounds (0 for none)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	// Checked before the index is built: a run that could measure nothing
	// is refused, not reported as zeros.
	switch {
	case *plans < 1:
		return fmt.Errorf("-plans must be at least 1")
	case !(*rate > 0):
		return fmt.Errorf("-rate must be more than 0 requests a second")
	case *dur <= 0:
		return fmt.Errorf("-duration must be more than 0")
	case *workers < 1:
		return fmt.Errorf("-workers must be at least 1")
	case *conns < 1:
		return fmt.Errorf("-conns must be at least 1")
	case *rounds < 1:
		return fmt.Errorf("-rounds must be at least 1")
	case *roundWarm < 0:
		return fmt.Errorf("-round-warmup must not be negative")
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	cmd := exec.Command(self, "loadserver", "-plans", strconv.Itoa(*plans), "-seed", strconv.FormatUint(*seed, 10),
		"-deployed="+strconv.FormatBool(*deployed))
	cmd.Stderr = stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	defer func() { stdin.Close(); _ = cmd.Wait() }()
	var info struct{ Lookup, Bare, Token, Bodies string }
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		return fmt.Errorf("load server: %w", err)
	}
	if err := json.Unmarshal([]byte(line), &info); err != nil {
		return fmt.Errorf("load server said %q: %w", line, err)
	}
	bodies, err := readBodies(info.Bodies)
	if err != nil {
		return err
	}
	lookup := &bench.LoadTarget{URL: info.Lookup, Token: info.Token, Bodies: bodies}
	// The bare server is sent the very same requests, token included, so
	// the two differ only in the work done to answer.
	bare := &bench.LoadTarget{URL: info.Bare, Token: info.Token, Bodies: bodies}
	ctx := context.Background()
	type run struct {
		name string
		f    func() (bench.LoadResult, error)
	}
	results := map[string]bench.LoadResult{}
	// CPU seconds spent in each run by the server process and by this one
	// (the load generator), for the cost of a request on each side.
	type cpu struct{ server, client float64 }
	used := map[string]cpu{}
	runs := []run{{"warm-up", func() (bench.LoadResult, error) { return bench.ClosedLoop(ctx, lookup, *workers, 3*time.Second) }}}
	slice := *dur / time.Duration(*rounds)
	// Each round is measured after the server has run for -round-warmup
	// unrecorded, as the open loops are (below): the lookup server has sat
	// idle through the bare server's round, and on some hosts memory left
	// idle for a second is slow to touch again (docs/benchmarks.md), which
	// the bare server, touching little memory, does not pay.
	closed := func(name string, t *bench.LoadTarget) {
		if *roundWarm > 0 {
			runs = append(runs, run{name + " warm-up", func() (bench.LoadResult, error) { return bench.ClosedLoop(ctx, t, *workers, *roundWarm) }})
		}
		runs = append(runs, run{name, func() (bench.LoadResult, error) { return bench.ClosedLoop(ctx, t, *workers, slice) }})
	}
	for i := range *rounds {
		closed(fmt.Sprintf("bare closed %d", i+1), bare)
		closed(fmt.Sprintf("lookup closed %d", i+1), lookup)
	}
	metricsURL := strings.TrimSuffix(info.Lookup, "/v1/lookup") + "/metrics"
	alloc0, err := scrapeCounter(metricsURL, "go_memstats_alloc_bytes_total")
	if err != nil {
		return fmt.Errorf("reading the load server's metrics: %w", err)
	}
	gc0, _ := scrapeCounter(metricsURL, "go_gc_duration_seconds_count")
	lookups := 0 // requests the lookup server answered, for its garbage a lookup
	// Each open loop is measured after 2 s at its rate, unrecorded, as the
	// closed loops are after the warm-up: the lookup server has sat idle
	// through the bare server's run, and on some hosts memory left idle for
	// seconds is slow to touch again (docs/benchmarks.md), which would put a
	// cold start into the lookup's tail and not the bare server's.
	const openWarm = 2 * time.Second
	for _, r := range append(runs, []run{
		{"bare open warm-up", func() (bench.LoadResult, error) { return bench.OpenLoop(ctx, bare, *rate, *conns, openWarm) }},
		{"bare open", func() (bench.LoadResult, error) { return bench.OpenLoop(ctx, bare, *rate, *conns, *dur) }},
		{"lookup open warm-up", func() (bench.LoadResult, error) { return bench.OpenLoop(ctx, lookup, *rate, *conns, openWarm) }},
		{"lookup open", func() (bench.LoadResult, error) { return bench.OpenLoop(ctx, lookup, *rate, *conns, *dur) }},
	}...) {
		s0, c0 := procCPU(cmd.Process.Pid), selfCPU()
		res, err := r.f()
		if err != nil {
			return err
		}
		results[r.name] = res
		if r.name == "warm-up" || strings.HasPrefix(r.name, "lookup ") {
			lookups += res.Requests
		}
		used[r.name] = cpu{procCPU(cmd.Process.Pid) - s0, selfCPU() - c0}
		fmt.Fprintf(stderr, "%s: %v\n", r.name, res)
	}
	rss := rssMiB(cmd.Process.Pid)
	// The garbage lookups make: what the collector must keep up with, and
	// what resident memory grows by between collections.
	alloc1, err := scrapeCounter(metricsURL, "go_memstats_alloc_bytes_total")
	if err != nil {
		return fmt.Errorf("reading the load server's metrics: %w", err)
	}
	gc1, _ := scrapeCounter(metricsURL, "go_gc_duration_seconds_count")
	auditNote := ""
	if *deployed {
		// The audit must not have kept up by dropping events.
		lost, err := scrapeCounter(metricsURL, "planflag_audit_lost_total")
		if err != nil {
			return fmt.Errorf("reading the load server's metrics: %w", err)
		}
		auditNote = fmt.Sprintf(" Audit events lost: %.0f.", lost)
	}
	// Per-round ratios, and the closed-loop totals over all rounds.
	var ratios []float64
	var bc, lc bench.LoadResult
	var bcpu, lcpu cpu
	for i := range *rounds {
		bn, ln := fmt.Sprintf("bare closed %d", i+1), fmt.Sprintf("lookup closed %d", i+1)
		b, l := results[bn], results[ln]
		ratios = append(ratios, l.Throughput/b.Throughput)
		bc, lc = mergeLoad(bc, b), mergeLoad(lc, l)
		bcpu.server, bcpu.client = bcpu.server+used[bn].server, bcpu.client+used[bn].client
		lcpu.server, lcpu.client = lcpu.server+used[ln].server, lcpu.client+used[ln].client
	}
	perReq := func(seconds float64, r bench.LoadResult) float64 { return seconds / float64(max(r.Requests, 1)) * 1e6 }
	results["bare closed"], results["lookup closed"] = bc, lc
	sorted := slices.Clone(ratios)
	slices.Sort(sorted)
	median := sorted[len(sorted)/2]
	mean, half := meanCI95(ratios)
	bo, lo := results["bare open"], results["lookup open"]
	config := "no plan links, no audit (flagd without -link.key-file and -audit.file)"
	if *deployed {
		config = "a signed plan link in every candidate and every lookup audited to a file, as deployed"
	}
	fmt.Fprintf(stdout, "### Lookup API under load: %d plans, %d closed-loop workers, open loop at %.0f/s for %v (after %v unrecorded); lookups answered with %s\n\n", *plans, *workers, *rate, *dur, openWarm, config)
	fmt.Fprintln(stdout, "| run | requests/s | errors | p50 | p90 | p99 | p99.9 | max |")
	fmt.Fprintln(stdout, "|---|---|---|---|---|---|---|---|")
	for _, n := range []string{"bare closed", "lookup closed", "bare open", "lookup open"} {
		r := results[n]
		fmt.Fprintf(stdout, "| %s | %.0f | %d | %v | %v | %v | %v | %v |\n", n, r.Throughput, r.Errors, r.P50, r.P90, r.P99, r.P999, r.Max)
	}
	per := make([]string, len(ratios))
	for i, r := range ratios {
		per[i] = fmt.Sprintf("%.0f %%", 100*r)
	}
	fmt.Fprintf(stdout, "\nClosed loop (bare and lookup alternated over %d rounds, each after %v unrecorded; percentiles of the last round of each): lookup throughput is %.0f %% of the bare-server ceiling overall, median of the rounds %.0f %%, mean of the rounds %.1f %% ± %.1f (95 %% confidence; rounds: %s). CPU a request, closed loop: bare server %.1f µs + load generator %.1f µs; lookup server %.1f µs + load generator %.1f µs. Open loop at %.0f/s: lookup p99 %v (bare %v). Server resident memory after the runs: %d MiB; heap allocated a lookup %.0f B (bare requests allocate next to nothing), %.0f collections during the runs.%s\n",
		*rounds, *roundWarm, 100*lc.Throughput/bc.Throughput, 100*median, 100*mean, 100*half, strings.Join(per, ", "),
		perReq(bcpu.server, bc), perReq(bcpu.client, bc), perReq(lcpu.server, lc), perReq(lcpu.client, lc),
		*rate, lo.P99, bo.P99, rss, (alloc1-alloc0)/float64(max(lookups, 1)), gc1-gc0, auditNote)
	return nil
}

// scrapeCounter sums the samples of a Prometheus counter at a metrics URL.
func scrapeCounter(url, name string) (float64, error) {
	status, body, err := fasthttp.GetTimeout(nil, url, 10*time.Second)
	if err != nil {
		return 0, err
	}
	if status != fasthttp.StatusOK {
		return 0, fmt.Errorf("%s: status %d", url, status)
	}
	var sum float64
	for _, l := range strings.Split(string(body), "\n") {
		if !strings.HasPrefix(l, name+"{") && !strings.HasPrefix(l, name+" ") {
			continue
		}
		f := strings.Fields(l)
		v, err := strconv.ParseFloat(f[len(f)-1], 64)
		if err != nil {
			return 0, fmt.Errorf("%s: %q: %w", url, l, err)
		}
		sum += v
	}
	return sum, nil
}

// meanCI95 returns the mean of xs and the half-width of its 95 %
// confidence interval (Student's t; 0 for fewer than two values).
func meanCI95(xs []float64) (mean, half float64) {
	n := len(xs)
	for _, x := range xs {
		mean += x
	}
	mean /= float64(max(n, 1))
	if n < 2 {
		return mean, 0
	}
	var ss float64
	for _, x := range xs {
		ss += (x - mean) * (x - mean)
	}
	// Two-sided 97.5 % quantiles of Student's t for 1 to 30 degrees of
	// freedom; the normal 1.96 beyond.
	t := [...]float64{12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
		2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
		2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042}
	q := 1.96
	if n-1 <= len(t) {
		q = t[n-2]
	}
	return mean, q * math.Sqrt(ss/float64(n-1)/float64(n))
}

func readBodies(path string) ([][]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var out [][]byte
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		out = append(out, []byte(l))
	}
	return out, nil
}

// procCPU reads the user and system CPU seconds a process has used, from
// /proc; 0 if it cannot.
func procCPU(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// The fields after the command name, which is in parentheses and may
	// hold spaces: utime and stime are the 12th and 13th of them, in clock
	// ticks (100 a second on Linux).
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	return (ut + st) / 100
}

// selfCPU is the CPU seconds this process has used.
func selfCPU() float64 {
	var r syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &r); err != nil {
		return 0
	}
	return time.Duration(r.Utime.Nano() + r.Stime.Nano()).Seconds()
}

// rssMiB reads a process's resident set size from /proc.
func rssMiB(pid int) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return -1
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.Atoi(f[1])
			return kb / 1024
		}
	}
	return -1
}

// runLoadServer is the child of `flagbench load`: it builds the index,
// serves the lookup API and a bare server, prints where, and serves until
// its standard input closes.
func runLoadServer(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("loadserver", flag.ContinueOnError)
	fs.SetOutput(stderr)
	plans := fs.Int("plans", 1_000_000, "plans")
	seed := fs.Uint64("seed", 1, "seed")
	deployed := fs.Bool("deployed", false, "plan links and an audit file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg := bench.DefaultConfig()
	cfg.Seed, cfg.Plans, cfg.Queries = *seed, *plans, 10_000
	// Beyond 1,000,000 plans the index is built from 1,000,000-plan
	// populations, the callers coming from the first, so that the
	// generator's data never holds more than one.
	ix := matcher.NewIndex(nil)
	var queries []bench.LabeledQuery
	err := bench.GenerateChunks(cfg, func(chunk int, ds *bench.Dataset, changes []matcher.Change) error {
		if chunk == 0 {
			var refused int
			queries, refused = bench.Lookups(ds.Queries)
			fmt.Fprintf(stderr, "load server: %d callers, %d left out that the API refuses with 400 (a birth date in the future)\n",
				len(queries), refused)
		}
		ix.Apply(changes)
		if *plans > bench.ChunkPlans {
			fmt.Fprintf(stderr, "load server: indexed %d of %d plans\n", ix.Live(), *plans)
		}
		return nil
	})
	if err != nil {
		return err
	}
	ix.Compact() // as flagd does once loaded
	bodies, err := os.CreateTemp("", "planflag-load-*.jsonl")
	if err != nil {
		return err
	}
	defer os.Remove(bodies.Name())
	bw := bufio.NewWriter(bodies)
	for _, q := range queries {
		b, _ := json.Marshal(q.Query)
		bw.Write(append(b, '\n'))
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	bodies.Close()
	queries = nil // let the generator's data go: the server holds only the index
	// Hand the generator's memory back to the OS now and collect as a
	// serving replica, as flagd does after its initial load, so resident
	// memory is the serving process's own.
	feed.ServingGC()
	debug.FreeOSMemory()

	token := "load-token"
	clients, err := alert.ParseClients([]byte(`[{"id":"load","token_sha256":"`+alert.TokenHash(token)+`","scopes":["lookup"],"rate_per_s":1e9}]`),
		func() int64 { return time.Now().UnixNano() })
	if err != nil {
		return err
	}
	apiCfg := alert.DefaultConfig() // flagd's defaults, with room for the closed loop's connections
	apiCfg.MaxInFlight = 4096
	metrics := alert.NewMetrics()
	api := alert.NewServer(apiCfg, clients, metrics,
		slog.New(slog.NewJSONHandler(io.Discard, nil)), time.Now)
	if *deployed {
		// As flagd runs with -link.key-file and -audit.file.
		api.SetLinker(&careplanclient.Linker{Base: "https://careplans.invalid/open", TTL: 15 * time.Minute, Keys: careplanclient.RandomKeys("load")})
		dir, err := os.MkdirTemp("", "planflag-load-audit-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		f, err := os.OpenFile(filepath.Join(dir, "audit.jsonl"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
		if err != nil {
			return err
		}
		log := slog.New(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
		auditor := alert.NewAuditor(alert.NewFileSink(f), 65536, log, metrics.Registry)
		defer func() {
			if err := auditor.Close(); err != nil {
				fmt.Fprintf(stderr, "load server: audit: %v\n", err)
			}
		}()
		api.SetAuditor(auditor)
	}
	api.SetMatcher(ix)
	api.SetReady(true)
	// Both servers are configured as flagd configures its own.
	serve := func(h fasthttp.RequestHandler, errs func(*fasthttp.RequestCtx, error)) (string, error) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return "", err
		}
		go alert.HTTPServer(h, errs, apiCfg.MaxBody, nil).Serve(ln)
		return "http://" + ln.Addr().String() + "/v1/lookup", nil
	}
	// The ceiling: the same server library answering a fixed answer of the
	// lookup's size, doing no work.
	fixed := []byte(`{"request_id":"bare","flag":true,"tier":"match","candidates":[{"plan_id":"UCP-0000001","tier":"match","score":42.1,` +
		`"agreement":{"nhs_number":"missing","given_name":"exact","family_name":"exact","birth_date":"exact","gender":"missing","postcode":"exact","address":"missing","phone":"missing"}}]}`)
	bareURL, err := serve(func(ctx *fasthttp.RequestCtx) { ctx.SetContentType("application/json"); ctx.SetBody(fixed) }, nil)
	if err != nil {
		return err
	}
	lookupURL, err := serve(api.Handler, api.ErrorHandler)
	if err != nil {
		return err
	}
	if path := os.Getenv("PLANFLAG_LOADSERVER_CPUPROFILE"); path != "" {
		f, err := os.Create(path)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	info, _ := json.Marshal(map[string]string{"Lookup": lookupURL, "Bare": bareURL, "Token": token, "Bodies": bodies.Name()})
	fmt.Fprintf(stdout, "%s\n", info)
	fmt.Fprintf(stderr, "load server: %d live plans; serving\n", ix.Live())
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	done := make(chan struct{})
	go func() { io.Copy(io.Discard, os.Stdin); close(done) }()
	select {
	case <-done:
	case <-sig:
	}
	return nil
}

// mergeLoad adds run b's counts to a (throughput over the summed time);
// percentiles are b's.
func mergeLoad(a, b bench.LoadResult) bench.LoadResult {
	n := b
	n.Requests += a.Requests
	n.Errors += a.Errors
	n.Seconds += a.Seconds
	n.Throughput = float64(n.Requests-n.Errors) / n.Seconds
	return n
}
