package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/segmentio/kafka-go"

	"github.com/planflag/planflag/alert"
	"github.com/planflag/planflag/bench"
	"github.com/planflag/planflag/feed"
)

// runSoak runs the real flagd binary for a long while under steady churn
// and lookups, and samples what would show a leak or drift: resident
// memory, heap, goroutines, open files, the snapshot and keys in Redis,
// and how long a withdrawn plan goes on being flagged.
func runSoak(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("soak", flag.ContinueOnError)
	fs.SetOutput(stderr)
	brokers := fs.String("brokers", os.Getenv("KAFKA_BROKERS"), "Kafka brokers (env KAFKA_BROKERS)")
	redisAddr := fs.String("redis", os.Getenv("REDIS_ADDR"), "Redis address (env REDIS_ADDR)")
	flagd := fs.String("flagd", "", "the flagd binary to run (default: built from ./cmd/flagd, so run from the repository)")
	plans := fs.Int("plans", 200_000, "plans in the synthetic plan store published before flagd starts")
	seed := fs.Uint64("seed", 1, "seed of the synthetic plan store")
	dur := fs.Duration("duration", 25*time.Minute, "how long flagd runs under churn and lookups")
	every := fs.Duration("sample", 30*time.Second, "time between samples")
	churn := fs.Float64("churn", 300, "plan events a second: updates, new plans, withdrawals, tombstones")
	lookups := fs.Float64("lookups", 300, "lookups a second, drawn from the synthetic callers")
	probes := fs.Int("probes", 6, "withdrawals timed each sample interval (half of them tombstones)")
	snapEvery := fs.Duration("snapshot.interval", 30*time.Second, "flagd's -snapshot.interval")
	auditKafka := fs.Bool("audit.kafka", false, "audit to flagd's Kafka topic instead of a file")
	dir := fs.String("dir", "", "keep flagd's log, clients and audit file in this folder (default: a temporary one, removed at the end)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	mix := bench.DefaultChurnMix
	switch {
	case fs.NArg() > 0:
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	case *plans < 100:
		return errors.New("-plans must be at least 100")
	case *dur < 2**every:
		return fmt.Errorf("-duration must be at least two samples (2 × -sample = %v): a trend needs them", 2**every)
	case *every < time.Second:
		return errors.New("-sample must be at least 1s")
	case !(*churn > 0):
		return errors.New("-churn must be more than 0 events a second: a soak without churn finds no leak of the feed")
	case !(*lookups > 0):
		return errors.New("-lookups must be more than 0 a second: a soak without lookups finds no leak of the API")
	case *probes < 1 || time.Duration(*probes)*10*time.Second > *every*2:
		return fmt.Errorf("-probes must be from 1 to %d (each may wait up to 10s for its withdrawal, within two intervals)", int(*every*2/(10*time.Second)))
	case *snapEvery < time.Second:
		return errors.New("-snapshot.interval must be at least 1s")
	case *brokers == "" || *redisAddr == "":
		return errors.New("give -brokers and -redis (or run: eval \"$(scripts/services.sh up)\")")
	}
	bs := strings.Split(*brokers, ",")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	work := *dir
	if work == "" {
		var err error
		if work, err = os.MkdirTemp("", "planflag-soak-"); err != nil {
			return err
		}
		defer os.RemoveAll(work)
	} else if err := os.MkdirAll(work, 0o755); err != nil {
		return err
	}
	bin := *flagd
	if bin == "" {
		bin = filepath.Join(work, "flagd")
		build := exec.Command("go", "build", "-o", bin, "./cmd/flagd")
		build.Stderr = stderr
		if err := build.Run(); err != nil {
			return fmt.Errorf("building flagd from ./cmd/flagd (run from the repository, or give -flagd): %w", err)
		}
	}

	// The store, and a reserve of new plans for the churn's whole run.
	start := time.Now()
	newPlans := int(*churn*mix.New/(mix.Update+mix.New+mix.Withdraw+mix.Tombstone)*dur.Seconds()*1.05) + 1
	cfg := bench.DefaultConfig()
	cfg.Seed, cfg.Plans, cfg.Queries = *seed, *plans+newPlans, 10_000
	ds, err := bench.Generate(cfg)
	if err != nil {
		return err
	}
	ch, msgs, err := bench.NewChurn(ds.Events, newPlans, mix, *seed, time.Now)
	if err != nil {
		return err
	}
	callers, _ := bench.Lookups(ds.Queries) // a caller refused with 400 is not a lookup
	bodies := make([][]byte, len(callers))
	for i, q := range callers {
		bodies[i], _ = json.Marshal(q.Query)
	}
	ds = nil
	fmt.Fprintf(stderr, "generated %d events, %d new plans held back (%.1fs)\n", len(msgs), newPlans, time.Since(start).Seconds())

	var b [4]byte
	_, _ = rand.Read(b[:])
	topic := "soak-" + hex.EncodeToString(b[:])
	if err := feed.CreateTopic(ctx, bs, feed.KafkaAuth{}, topic, 6, true); err != nil {
		return err
	}
	writer := func(batch time.Duration) *kafka.Writer {
		return &kafka.Writer{Addr: kafka.TCP(bs...), Topic: topic, Balancer: &kafka.Murmur2Balancer{},
			RequiredAcks: kafka.RequireAll, BatchSize: 1000, BatchBytes: 16 << 20, BatchTimeout: batch}
	}
	w := writer(2 * time.Millisecond)
	defer w.Close()
	i := 0
	pub, err := bench.Publish(ctx, w, func() (bench.Message, bool) {
		if i == len(msgs) {
			return bench.Message{}, false
		}
		i++
		return msgs[i-1], true
	}, 0, stderr, nil, nil)
	if err != nil {
		return err
	}
	msgs = nil
	fmt.Fprintf(stderr, "published %d events to %s in %.1fs\n", pub.Published, topic, pub.Seconds)

	// flagd, as deployed: a client with a webhook (push alerts), snapshots,
	// shared rates and the audit.
	var alerts atomic.Int64
	hook, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	go http.Serve(hook, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		alerts.Add(1)
	}))
	defer hook.Close()
	token := "soak-" + hex.EncodeToString(b[:])
	clients, _ := json.Marshal([]alert.ClientConfig{{ID: "soak-cad", TokenSHA256: alert.TokenHash(token),
		Scopes: []string{alert.ScopeLookup}, RatePerS: 100 * (*lookups + 100),
		WebhookURL: "http://" + hook.Addr().String() + "/alerts", WebhookSecret: "soak-webhook-secret"}})
	clientsFile := filepath.Join(work, "clients.json")
	if err := os.WriteFile(clientsFile, clients, 0o600); err != nil {
		return err
	}
	addr, err := freeAddr()
	if err != nil {
		return err
	}
	auditFile := filepath.Join(work, "audit.jsonl")
	fargs := []string{"-http.addr", addr, "-clients", clientsFile, "-kafka.brokers", *brokers, "-kafka.topic", topic,
		"-redis.addr", *redisAddr, "-snapshot.interval", snapEvery.String(), "-alerts.topic", topic + ".alerts"}
	if *auditKafka {
		fargs = append(fargs, "-audit.topic", topic+".audit")
		auditFile = ""
	} else {
		fargs = append(fargs, "-audit.file", auditFile)
	}
	logf, err := os.Create(filepath.Join(work, "flagd.log"))
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd := exec.Command(bin, fargs...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		_ = cmd.Process.Signal(os.Interrupt)
		select {
		case <-exited:
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
		}
	}()
	base := "http://" + addr
	start = time.Now()
	if err := waitReady(base, exited, 5*time.Minute); err != nil {
		return fmt.Errorf("flagd (log: %s): %w", logf.Name(), err)
	}
	fmt.Fprintf(stderr, "flagd (pid %d) ready in %.1fs; log in %s\n", cmd.Process.Pid, time.Since(start).Seconds(), logf.Name())

	// The run: churn, lookups and withdrawal probes side by side; samples
	// every interval.
	rdb := redis.NewClient(&redis.Options{Addr: *redisAddr})
	defer rdb.Close()
	runCtx, stop := context.WithTimeout(ctx, *dur)
	defer stop()
	var wg sync.WaitGroup
	var churnErr, loadErr error
	var load bench.LoadResult
	wg.Add(3)
	go func() {
		defer wg.Done()
		cw := writer(2 * time.Millisecond)
		defer cw.Close()
		_, churnErr = bench.Publish(runCtx, cw, func() (bench.Message, bool) { return ch.Next(), runCtx.Err() == nil },
			*churn, nil, nil, nil)
		if errors.Is(churnErr, context.DeadlineExceeded) {
			churnErr = nil
		}
	}()
	go func() {
		defer wg.Done()
		load, loadErr = bench.OpenLoop(runCtx, &bench.LoadTarget{URL: base + "/v1/lookup", Token: token, Bodies: bodies},
			*lookups, 16, *dur)
	}()
	pr := &prober{url: base + "/v1/lookup", token: token, churn: ch, w: writer(time.Millisecond)}
	defer pr.w.Close()
	go func() {
		defer wg.Done()
		pr.run(runCtx, *every/time.Duration(*probes))
	}()
	var samples []soakSample
	t := time.NewTicker(*every)
	defer t.Stop()
	fmt.Fprintln(stderr, soakHeader)
	for done := false; !done; {
		select {
		case <-runCtx.Done():
			done = true
		case err := <-exited:
			return fmt.Errorf("flagd exited during the run (log: %s): %v", logf.Name(), err)
		case <-t.C:
		}
		if done && len(samples) > 0 && time.Since(start)-samples[len(samples)-1].at < *every/2 {
			break // the run ended just after a sample
		}
		s := sample(ctx, cmd.Process.Pid, base, rdb, topic, auditFile, time.Since(start))
		s.probes = pr.drain()
		s.churned = ch.Counts()
		s.alerts = alerts.Load()
		samples = append(samples, s)
		fmt.Fprintln(stderr, s.row())
	}
	wg.Wait()
	if err := errors.Join(churnErr, loadErr, pr.err()); err != nil {
		return err
	}
	report(stdout, samples, load, *plans, *churn, *lookups, *dur)
	return nil
}

// freeAddr returns a loopback address with a port free now.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// waitReady waits for /readyz to answer 200, flagd to exit, or limit.
func waitReady(base string, exited <-chan error, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		select {
		case err := <-exited:
			return fmt.Errorf("exited before it was ready: %v", err)
		case <-time.After(200 * time.Millisecond):
		}
		if r, err := http.Get(base + "/readyz"); err == nil {
			r.Body.Close()
			if r.StatusCode == http.StatusOK {
				return nil
			}
		}
	}
	return fmt.Errorf("not ready after %v", limit)
}

// prober withdraws live plans one at a time and times how long each goes on
// being flagged to a caller giving its details exactly.
type prober struct {
	url, token string
	churn      *bench.Churn
	w          *kafka.Writer
	client     http.Client

	mu        sync.Mutex
	latencies []time.Duration // since the last drain; -1: still flagged after 10 s
	errs      []error
}

func (p *prober) run(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for n := 0; ; n++ {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := p.probe(ctx, n%2 == 1); err != nil && ctx.Err() == nil {
			p.mu.Lock()
			p.errs = append(p.errs, err)
			p.mu.Unlock()
		}
	}
}

// probe withdraws one flagged plan (by a null value if tombstone) and
// records the time from the start of its publication to the first lookup
// that no longer returns it.
func (p *prober) probe(ctx context.Context, tombstone bool) error {
	var e *bench.Message
	var q []byte
	var planID string
	for range 20 { // a plan its exact details flag (not one too sparse to match)
		ev, ok := p.churn.Take()
		if !ok {
			return errors.New("probe: no live plan left")
		}
		q, _ = json.Marshal(bench.ExactQuery(ev))
		flagged, err := p.flagged(q, ev.PlanID)
		if err != nil {
			return err
		}
		if flagged {
			planID = ev.PlanID
			m := bench.Message{Key: ev.PlanID}
			if !tombstone {
				m.Value, _ = json.Marshal(bench.Withdrawal(ev, time.Now()))
			}
			e = &m
			break
		}
	}
	if e == nil {
		return errors.New("probe: no plan flagged by its exact details in 20 tries")
	}
	sent := time.Now()
	if err := p.w.WriteMessages(ctx, kafka.Message{Key: []byte(e.Key), Value: e.Value}); err != nil {
		return fmt.Errorf("probe: publish withdrawal: %w", err)
	}
	lat := time.Duration(-1)
	for time.Since(sent) < 10*time.Second && ctx.Err() == nil {
		flagged, err := p.flagged(q, planID)
		if err != nil {
			return err
		}
		if !flagged {
			lat = time.Since(sent)
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	if ctx.Err() != nil {
		return nil
	}
	p.mu.Lock()
	p.latencies = append(p.latencies, lat)
	p.mu.Unlock()
	return nil
}

// flagged reports whether a lookup of q returns planID among its candidates.
func (p *prober) flagged(q []byte, planID string) (bool, error) {
	req, _ := http.NewRequest(http.MethodPost, p.url, bytes.NewReader(q))
	req.Header.Set("Authorization", "Bearer "+p.token)
	resp, err := p.client.Do(req)
	if err != nil {
		return false, fmt.Errorf("probe lookup: %w", err)
	}
	defer resp.Body.Close()
	var ans struct {
		Candidates []struct {
			PlanID string `json:"plan_id"`
		} `json:"candidates"`
	}
	if resp.StatusCode != http.StatusOK {
		return false, fmt.Errorf("probe lookup: status %d", resp.StatusCode)
	}
	if err := json.NewDecoder(resp.Body).Decode(&ans); err != nil {
		return false, fmt.Errorf("probe lookup: %w", err)
	}
	for _, c := range ans.Candidates {
		if c.PlanID == planID {
			return true, nil
		}
	}
	return false, nil
}

// drain returns the latencies measured since the last drain, sorted.
func (p *prober) drain() []time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := p.latencies
	p.latencies = nil
	slices.Sort(out)
	return out
}

func (p *prober) err() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.errs) == 0 {
		return nil
	}
	return fmt.Errorf("%d probes failed, the first: %w", len(p.errs), p.errs[0])
}

// soakSample is one look at the running flagd.
type soakSample struct {
	at                    time.Duration
	rssMiB                int
	heapInuse             float64 // bytes
	heapGoal              float64 // bytes: the live heap at the last collection × (1 + GOGC/100)
	goroutines, fds       int
	live                  float64
	snapEntries           int64 // plan entries in the current snapshot generation
	redisKeys, redisNoTTL int64
	redisMiB              float64
	auditMiB              float64
	probes                []time.Duration
	churned               [4]int
	alerts                int64
	errs                  int // what could not be read
}

const soakHeader = "    t |  RSS MiB | heap MiB | goal MiB | goal B/live | gor |  fd |    live | snap entries | redis keys (no TTL) | redis MiB | audit MiB | withdrawal p50 / max (n)"

func (s soakSample) row() string {
	w := "-"
	if len(s.probes) > 0 {
		w = fmt.Sprintf("%s / %s (%d)", fmtLat(bench.Percentile(s.probes, 0.5)), fmtLat(s.probes[len(s.probes)-1]), len(s.probes))
	}
	perLive := 0.0
	if s.live > 0 {
		perLive = s.heapGoal / s.live
	}
	return fmt.Sprintf("%5.0fs | %8d | %8.1f | %8.1f | %11.0f | %3d | %3d | %7.0f | %12d | %10d (%6d) | %9.1f | %9.1f | %s",
		s.at.Seconds(), s.rssMiB, s.heapInuse/(1<<20), s.heapGoal/(1<<20), perLive, s.goroutines, s.fds, s.live, s.snapEntries,
		s.redisKeys, s.redisNoTTL, s.redisMiB, s.auditMiB, w)
}

// fmtLat prints a probe's latency; -1 is a plan still flagged after 10 s.
func fmtLat(d time.Duration) string {
	if d < 0 {
		return ">10s"
	}
	return d.Round(100 * time.Microsecond).String()
}

func sample(ctx context.Context, pid int, base string, rdb *redis.Client, topic, auditFile string, at time.Duration) soakSample {
	s := soakSample{at: at, rssMiB: rssMiB(pid)}
	if ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid)); err == nil {
		s.fds = len(ents)
	} else {
		s.errs++
	}
	for name, v := range map[string]*float64{"go_memstats_heap_inuse_bytes": &s.heapInuse, "go_memstats_next_gc_bytes": &s.heapGoal, "planflag_index_plans": &s.live} {
		var err error
		if *v, err = scrapeCounter(base+"/metrics", name); err != nil {
			s.errs++
		}
	}
	g, err := scrapeCounter(base+"/metrics", "go_goroutines")
	s.goroutines = int(g)
	if err != nil {
		s.errs++
	}
	// The snapshot: the current generation's entries, all 256 buckets.
	tag := "{planflag:" + topic + "}"
	if gen, err := rdb.HGet(ctx, tag+":meta", "gen").Result(); err == nil {
		pipe := rdb.Pipeline()
		cmds := make([]*redis.IntCmd, 256)
		for i := range cmds {
			cmds[i] = pipe.HLen(ctx, fmt.Sprintf("%s:%s:b%03d", tag, gen, i))
		}
		if _, err := pipe.Exec(ctx); err == nil {
			for _, c := range cmds {
				s.snapEntries += c.Val()
			}
		}
	}
	// Keys, and those without a TTL, from INFO keyspace: db0:keys=N,expires=M,…
	if info, err := rdb.Info(ctx, "keyspace", "memory").Result(); err == nil {
		for _, l := range strings.Split(info, "\r\n") {
			if k, ok := strings.CutPrefix(l, "db0:"); ok {
				for _, f := range strings.Split(k, ",") {
					name, v, _ := strings.Cut(f, "=")
					n, _ := strconv.ParseInt(v, 10, 64)
					switch name {
					case "keys":
						s.redisKeys = n
					case "expires":
						s.redisNoTTL = -n
					}
				}
			}
			if v, ok := strings.CutPrefix(l, "used_memory:"); ok {
				n, _ := strconv.ParseFloat(v, 64)
				s.redisMiB = n / (1 << 20)
			}
		}
		s.redisNoTTL += s.redisKeys
	} else {
		s.errs++
	}
	if auditFile != "" {
		if fi, err := os.Stat(auditFile); err == nil {
			s.auditMiB = float64(fi.Size()) / (1 << 20)
		}
	}
	return s
}

// report prints the samples and the trends over the run's second half.
func report(w io.Writer, samples []soakSample, load bench.LoadResult, plans int, churn, lookups float64, dur time.Duration) {
	last := samples[len(samples)-1]
	fmt.Fprintf(w, "### Soak: flagd for %v, %d plans, churn %.0f events/s (%s: %v), lookups %.0f/s\n\n",
		dur, plans, churn, strings.Join(bench.ChurnKinds[:], "/"), last.churned, lookups)
	fmt.Fprintln(w, "```")
	fmt.Fprintln(w, soakHeader)
	for _, s := range samples {
		fmt.Fprintln(w, s.row())
	}
	fmt.Fprintln(w, "```")
	var all []time.Duration
	stuck := 0
	for _, s := range samples {
		for _, d := range s.probes {
			if d < 0 {
				stuck++
			} else {
				all = append(all, d)
			}
		}
	}
	slices.Sort(all)
	over := len(all) - sort.Search(len(all), func(i int) bool { return all[i] > time.Second })
	fmt.Fprintf(w, "\nWithdrawal → no longer flagged (%d probes): p50 %v, p90 %v, p99 %v, max %v; over 1 s: %d; still flagged after 10 s: %d.\n",
		len(all)+stuck, bench.Percentile(all, 0.5), bench.Percentile(all, 0.9), bench.Percentile(all, 0.99), bench.Percentile(all, 1), over, stuck)
	fmt.Fprintf(w, "Lookups: %v. Push alerts received: %d.\n\n", load, last.alerts)

	// Trends over the second half, as change per hour and as the change
	// over that half against its mean: what steady state must keep flat.
	var half []soakSample
	for _, s := range samples {
		if s.at >= last.at/2 {
			half = append(half, s)
		}
	}
	fmt.Fprintf(w, "Trends over the second half (%d samples, %v to %v): fitted change over the half, and per hour.\n\n",
		len(half), half[0].at.Round(time.Second), last.at.Round(time.Second))
	fmt.Fprintln(w, "| measure | mean | change over half | per hour | verdict |")
	fmt.Fprintln(w, "|---|---|---|---|---|")
	span := (last.at - half[0].at).Hours()
	for _, m := range []struct {
		name  string
		v     func(soakSample) float64
		grows func(change, mean float64) bool
	}{
		{"heap in use (MiB)", func(s soakSample) float64 { return s.heapInuse / (1 << 20) }, relGrowth(0.05)},
		{"heap goal (MiB)", func(s soakSample) float64 { return s.heapGoal / (1 << 20) }, relGrowth(0.05)},
		{"heap goal per live plan (B)", func(s soakSample) float64 { return s.heapGoal / max(s.live, 1) }, relGrowth(0.05)},
		{"resident (MiB)", func(s soakSample) float64 { return float64(s.rssMiB) }, relGrowth(0.05)},
		{"goroutines", func(s soakSample) float64 { return float64(s.goroutines) }, absGrowth(2)},
		{"open files", func(s soakSample) float64 { return float64(s.fds) }, absGrowth(2)},
		{"live plans", func(s soakSample) float64 { return s.live }, relGrowth(0.05)},
		{"snapshot entries", func(s soakSample) float64 { return float64(s.snapEntries) }, relGrowth(0.05)},
		{"Redis keys without TTL", func(s soakSample) float64 { return float64(s.redisNoTTL) }, absGrowth(2)},
		{"Redis memory (MiB)", func(s soakSample) float64 { return s.redisMiB }, relGrowth(0.05)},
	} {
		xs, ys := make([]float64, len(half)), make([]float64, len(half))
		var mean float64
		for i, s := range half {
			xs[i], ys[i] = s.at.Hours(), m.v(s)
			mean += ys[i] / float64(len(half))
		}
		slope := bench.Trend(xs, ys)
		verdict := "flat"
		if m.grows(slope*span, mean) {
			verdict = "**grows**"
		} else if m.grows(-slope*span, mean) {
			verdict = "falls"
		}
		fmt.Fprintf(w, "| %s | %.1f | %+.1f (%+.1f %%) | %+.1f | %s |\n", m.name, mean, slope*span, 100*slope*span/max(mean, 1e-9), slope, verdict)
	}
	fmt.Fprintln(w, "\nA measure grows when its fitted change over the second half is more than 5 % of its mean (2 for counts).")
}

func relGrowth(f float64) func(change, mean float64) bool {
	return func(change, mean float64) bool { return change > f*mean }
}

func absGrowth(n float64) func(change, mean float64) bool {
	return func(change, _ float64) bool { return change > n }
}
