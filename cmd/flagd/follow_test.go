package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/planflag/planflag/alert"
	"github.com/planflag/planflag/feed"
	"github.com/planflag/planflag/feed/feedtest"
)

// flagdProc is flagd running as its own process, as in production, so a
// test can kill it with SIGKILL.
type flagdProc struct {
	cmd  *exec.Cmd
	addr string
	mu   sync.Mutex
	logs []string // the process's log lines (JSON)
	done chan struct{}
}

var buildOnce struct {
	sync.Once
	path string
	err  error
}

// flagdBinary builds flagd once per test run.
func flagdBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "flagd-bin-")
		if err != nil {
			buildOnce.err = err
			return
		}
		buildOnce.path = filepath.Join(dir, "flagd")
		out, err := exec.Command("go", "build", "-o", buildOnce.path, ".").CombinedOutput()
		if err != nil {
			buildOnce.err = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildOnce.err != nil {
		t.Fatal(buildOnce.err)
	}
	return buildOnce.path
}

func startFlagd(t *testing.T, args ...string) *flagdProc {
	t.Helper()
	cmd := exec.Command(flagdBinary(t), append([]string{"-http.addr", "127.0.0.1:0", "-log.level", "info"}, args...)...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &flagdProc{cmd: cmd, done: make(chan struct{})}
	addr := make(chan string, 1)
	go func() {
		defer close(p.done)
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			p.mu.Lock()
			p.logs = append(p.logs, line)
			p.mu.Unlock()
			var l struct{ Msg, Addr string }
			if json.Unmarshal([]byte(line), &l) == nil && l.Msg == "listening" {
				addr <- l.Addr
			}
		}
		_ = cmd.Wait()
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-p.done
		if t.Failed() {
			t.Logf("flagd log:\n%s", strings.Join(p.logLines(), "\n"))
		}
	})
	select {
	case p.addr = <-addr:
	case <-p.done:
		t.Fatalf("flagd exited at start:\n%s", strings.Join(p.logLines(), "\n"))
	case <-time.After(30 * time.Second):
		t.Fatal("flagd did not listen within 30s")
	}
	return p
}

func (p *flagdProc) logLines() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.logs...)
}

func (p *flagdProc) logged(msg string) bool {
	for _, l := range p.logLines() {
		if strings.Contains(l, `"msg":"`+msg+`"`) {
			return true
		}
	}
	return false
}

func (p *flagdProc) waitReady(t *testing.T, within time.Duration) {
	t.Helper()
	feedtest.Eventually(t, within, "flagd ready", func() bool {
		r, err := http.Get("http://" + p.addr + "/readyz")
		if err != nil {
			return false
		}
		r.Body.Close()
		return r.StatusCode == 200
	})
}

// flags asks flagd whether person i has a plan: it returns the plan IDs of
// the answer's candidates.
func (p *flagdProc) flags(t *testing.T, i int) []string {
	t.Helper()
	body, _ := json.Marshal(feedtest.Query(i))
	req, _ := http.NewRequest("POST", "http://"+p.addr+"/v1/lookup", strings.NewReader(string(body)))
	req.Header.Set("Authorization", "Bearer "+tokenCAD)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("lookup: %v", err)
	}
	defer resp.Body.Close()
	var out struct {
		Candidates []struct {
			PlanID string `json:"plan_id"`
		}
	}
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || json.Unmarshal(raw, &out) != nil {
		t.Fatalf("lookup: status %d: %s", resp.StatusCode, raw)
	}
	var ids []string
	for _, c := range out.Candidates {
		ids = append(ids, c.PlanID)
	}
	return ids
}

func (p *flagdProc) metric(t *testing.T, name string) string {
	t.Helper()
	return scrapeMetric(t, p.addr, name)
}

// fastClients writes a clients file whose lookup client has a rate no test
// reaches.
func fastClients(t *testing.T, dir string) string {
	t.Helper()
	b, _ := json.Marshal([]alert.ClientConfig{{ID: "las-cad", TokenSHA256: alert.TokenHash(tokenCAD),
		Scopes: []string{"lookup"}, RatePerS: 1e6}})
	path := filepath.Join(dir, "fast-clients.json")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

type kafkaEnv struct {
	brokers []string
	topic   string
	w       *kafka.Writer
}

func newKafkaEnv(t *testing.T) *kafkaEnv {
	t.Helper()
	brokers := feedtest.Brokers(t)
	topic := feedtest.Name("flagd")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := feed.CreateTopic(ctx, brokers, feed.KafkaAuth{}, topic, 4, true); err != nil {
		t.Fatal(err)
	}
	w := &kafka.Writer{Addr: kafka.TCP(brokers...), Topic: topic, Balancer: &kafka.Murmur2Balancer{},
		RequiredAcks: kafka.RequireAll, BatchTimeout: time.Millisecond}
	t.Cleanup(func() { w.Close() })
	return &kafkaEnv{brokers: brokers, topic: topic, w: w}
}

func (k *kafkaEnv) publish(t *testing.T, msgs ...kafka.Message) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := k.w.WriteMessages(ctx, msgs...); err != nil {
		t.Fatalf("publish: %v", err)
	}
}

func upsertMsg(i int, v uint64) kafka.Message {
	return kafka.Message{Key: []byte(feedtest.PlanID(i)), Value: feedtest.Upsert(i, v)}
}

func withdrawMsg(i int, v uint64) kafka.Message {
	return kafka.Message{Key: []byte(feedtest.PlanID(i)), Value: feedtest.Withdrawn(i, v)}
}

// expect checks that flagd flags exactly the live plans among people 0..n-1.
func expect(t *testing.T, p *flagdProc, n int, live func(i int) bool) {
	t.Helper()
	for i := range n {
		ids := p.flags(t, i)
		has := len(ids) > 0 && ids[0] == feedtest.PlanID(i)
		if has != live(i) {
			t.Errorf("person %d: flagged %v (candidates %v), want %v", i, has, ids, live(i))
		}
	}
}

// TestFlagdKillAndWarmStart: flagd follows Kafka with a Redis snapshot, is
// killed with SIGKILL, misses events while down, and on restart starts warm
// from Redis with the same answers and nothing lost.
func TestFlagdKillAndWarmStart(t *testing.T) {
	k := newKafkaEnv(t)
	redisAddr := feedtest.Redis(t)
	dir := t.TempDir()
	args := []string{"-clients", fastClients(t, dir), "-kafka.brokers", strings.Join(k.brokers, ","),
		"-kafka.topic", k.topic, "-redis.addr", redisAddr, "-snapshot.interval", "1s", "-audit.topic", k.topic + "-audit"}

	const n = 400
	var msgs []kafka.Message
	for i := range n - 100 {
		msgs = append(msgs, upsertMsg(i, 1))
	}
	k.publish(t, msgs...)
	p := startFlagd(t, args...)
	p.waitReady(t, 60*time.Second)
	if !p.logged("full replay from Kafka") {
		t.Error("first start did not log a full replay")
	}
	// Changes while running: withdrawals, a tombstone, updates, new plans.
	k.publish(t, withdrawMsg(10, 2), withdrawMsg(11, 2), kafka.Message{Key: []byte(feedtest.PlanID(12))}, upsertMsg(13, 2))
	for i := n - 100; i < n-50; i++ {
		k.publish(t, upsertMsg(i, 1))
	}
	live := func(i int) bool { return i < n-50 && i != 10 && i != 11 && i != 12 }
	feedtest.Eventually(t, 5*time.Second, "changes visible", func() bool {
		return len(p.flags(t, 10)) == 0 && len(p.flags(t, n-51)) > 0
	})
	expect(t, p, n, live)
	// Every lookup goes to the audit topic: flagd audit finds who looked
	// up plan 13, once by each run of flagd.
	audited := func() (int, string) {
		var out, errs strings.Builder
		if err := run([]string{"audit", "-brokers", strings.Join(k.brokers, ","), "-topic", k.topic + "-audit",
			"-plan", feedtest.PlanID(13)}, &out, &errs); err != nil {
			t.Fatalf("flagd audit: %v %s", err, errs.String())
		}
		return strings.Count(out.String(), "\n"), out.String()
	}
	// Let a snapshot cover the changes and the audit events reach Kafka
	// (SIGKILL loses what is still queued), then kill.
	time.Sleep(2500 * time.Millisecond)
	feedtest.Eventually(t, 30*time.Second, "the first run's audit events on Kafka", func() bool { n, _ := audited(); return n == 1 })
	if p.metric(t, `planflag_snapshot_writes_total{result="ok"}`) == "" {
		t.Fatal("no snapshot written")
	}
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-p.done

	// While it is down: more withdrawals (one by tombstone), a stale copy of
	// a withdrawn plan, and new plans.
	k.publish(t, withdrawMsg(20, 2), kafka.Message{Key: []byte(feedtest.PlanID(21))}, upsertMsg(10, 1))
	for i := n - 50; i < n; i++ {
		k.publish(t, upsertMsg(i, 1))
	}
	live2 := func(i int) bool { return live(i) && i != 20 && i != 21 || i >= n-50 }

	q := startFlagd(t, args...)
	q.waitReady(t, 60*time.Second)
	if !q.logged("warm start from snapshot") {
		t.Fatal("restart did not start warm from the Redis snapshot")
	}
	expect(t, q, n, live2)

	feedtest.Eventually(t, 30*time.Second, "the second run's audit events on Kafka", func() bool { n, _ := audited(); return n >= 2 })
	if n, out := audited(); n != 2 || !strings.Contains(out, `"client_id":"las-cad"`) {
		t.Errorf("audit events for plan 13: %d\n%s", n, out)
	}
}

// TestFlagdRedisAway: with Redis stopped, lookups go on and the metric
// shows it; when Redis is back, snapshots resume.
func TestFlagdRedisAway(t *testing.T) {
	k := newKafkaEnv(t)
	redisAddr := feedtest.Redis(t)
	k.publish(t, upsertMsg(1, 1), upsertMsg(2, 1))
	p := startFlagd(t, "-clients", fastClients(t, t.TempDir()), "-kafka.brokers", strings.Join(k.brokers, ","),
		"-kafka.topic", k.topic, "-redis.addr", redisAddr, "-snapshot.interval", "1s")
	p.waitReady(t, 60*time.Second)
	feedtest.Eventually(t, 5*time.Second, "rate_share_up 1", func() bool { return p.metric(t, "planflag_rate_share_up") == "1" })

	ctx := context.Background()
	feedtest.Services(t, ctx, "stop-redis")
	restarted := false
	defer func() {
		if !restarted {
			feedtest.Services(t, ctx, "start-redis")
		}
	}()
	k.publish(t, upsertMsg(3, 1), withdrawMsg(1, 2))
	feedtest.Eventually(t, 5*time.Second, "redis_up 0", func() bool { return p.metric(t, "planflag_redis_up") == "0" })
	// Client rates fall back to each replica's own: lookups are served.
	feedtest.Eventually(t, 5*time.Second, "rate_share_up 0", func() bool { return p.metric(t, "planflag_rate_share_up") == "0" })
	if ids := p.flags(t, 3); len(ids) == 0 {
		t.Error("plan published while Redis is down not flagged")
	}
	if ids := p.flags(t, 1); len(ids) != 0 {
		t.Error("plan withdrawn while Redis is down still flagged")
	}
	feedtest.Services(t, ctx, "start-redis")
	restarted = true
	feedtest.Eventually(t, 10*time.Second, "redis_up 1", func() bool { return p.metric(t, "planflag_redis_up") == "1" })
	feedtest.Eventually(t, 5*time.Second, "rate_share_up 1", func() bool { return p.metric(t, "planflag_rate_share_up") == "1" })
}

// TestFlagdPushAlert: a client is given a plan; when the plan store then
// updates and withdraws it, the client's webhook is told, signed, once
// per change.
func TestFlagdPushAlert(t *testing.T) {
	k := newKafkaEnv(t)
	redisAddr := feedtest.Redis(t)
	type got struct {
		alert alert.PlanAlert
		ok    bool
	}
	secret := "push-secret-0123456789"
	alerts := make(chan got, 10)
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var a alert.PlanAlert
		_ = json.Unmarshal(body, &a)
		alerts <- got{a, r.Header.Get(alert.SignatureHeader) == alert.Sign([]byte(secret), body)}
	}))
	defer hook.Close()
	dir := t.TempDir()
	b, _ := json.Marshal([]alert.ClientConfig{{ID: "las-cad", TokenSHA256: alert.TokenHash(tokenCAD),
		Scopes: []string{"lookup"}, RatePerS: 1e6, WebhookURL: hook.URL, WebhookSecret: secret}})
	clients := filepath.Join(dir, "clients.json")
	if err := os.WriteFile(clients, b, 0o600); err != nil {
		t.Fatal(err)
	}
	now := func(i int, v uint64) kafka.Message {
		var ev feed.Event
		_ = json.Unmarshal(feedtest.Upsert(i, v), &ev)
		ev.OccurredAt = time.Now().UTC()
		raw, _ := json.Marshal(ev)
		return kafka.Message{Key: []byte(ev.PlanID), Value: raw}
	}
	// Plan numbers new to this run: alert claims in Redis outlive a run
	// (go test -count N shares the server).
	given := 1000 + int(time.Now().UnixNano()%900000)
	other := given + 1
	k.publish(t, now(given, 1), now(other, 1))
	p := startFlagd(t, "-clients", clients, "-kafka.brokers", strings.Join(k.brokers, ","), "-kafka.topic", k.topic,
		"-redis.addr", redisAddr, "-alerts.topic", k.topic+"-alerts", "-audit.none")
	p.waitReady(t, 60*time.Second)
	if ids := p.flags(t, given); len(ids) == 0 {
		t.Fatal("plan not flagged")
	}
	time.Sleep(300 * time.Millisecond)         // the registry is written in the background
	k.publish(t, now(given, 2), now(other, 2)) // other was never looked up: no alert for it
	k.publish(t, kafka.Message{Key: []byte(feedtest.PlanID(given))})
	want := []string{"updated", "withdrawn"}
	for _, kind := range want {
		select {
		case g := <-alerts:
			if g.alert.PlanID != feedtest.PlanID(given) || g.alert.Change != kind || g.alert.ClientID != "las-cad" || !g.ok {
				t.Errorf("alert %+v (signature ok %v), want plan %s %s", g.alert, g.ok, feedtest.PlanID(given), kind)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("no %s alert within 10s", kind)
		}
	}
	select {
	case g := <-alerts:
		t.Errorf("unexpected alert %+v", g.alert)
	case <-time.After(500 * time.Millisecond):
	}
}

// gate is a TCP proxy to addr that refuses connections until opened: a
// broker that cannot be reached, then can.
type gate struct {
	ln   net.Listener
	open atomic.Bool
}

func newGate(t *testing.T, addr string) *gate {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := &gate{ln: ln}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			if !g.open.Load() {
				c.Close()
				continue
			}
			go func() {
				defer c.Close()
				up, err := net.Dial("tcp", addr)
				if err != nil {
					return
				}
				defer up.Close()
				go io.Copy(up, c)
				io.Copy(c, up)
			}()
		}
	}()
	return g
}

// A broker that cannot be reached when flagd starts: the audit topic is
// created once it can be (retried in the background, not tried once and
// given up), flagd turns ready only then, and a lookup's audit event reaches
// the topic. Before, the topic was never created and every audit event of
// the process's life was lost.
func TestFlagdAuditTopicOnceKafkaAnswers(t *testing.T) {
	k := newKafkaEnv(t)
	k.publish(t, upsertMsg(1, 1))
	g := newGate(t, k.brokers[0])
	audit := k.topic + "-audit-late"
	p := startFlagd(t, "-clients", fastClients(t, t.TempDir()), "-kafka.brokers", g.ln.Addr().String(),
		"-kafka.topic", k.topic, "-audit.topic", audit)
	time.Sleep(3 * time.Second)
	if r, err := http.Get("http://" + p.addr + "/readyz"); err != nil || r.StatusCode == http.StatusOK {
		t.Fatalf("ready with the broker unreachable: %v %v", r, err)
	}
	g.open.Store(true)
	p.waitReady(t, 60*time.Second)
	if len(p.flags(t, 1)) == 0 {
		t.Fatal("plan not flagged")
	}
	if msgs := readTopic(t, k.brokers, audit, 1, 30*time.Second); len(msgs) == 0 {
		t.Error("no audit event on the topic")
	}
}

// The audit topic flagd creates keeps its events for good (the broker's
// default is often 7 days), or as long as -audit.retention says; a topic
// that exists already is left as it is, with a warning when it keeps events
// for less than asked.
func TestFlagdAuditTopicRetention(t *testing.T) {
	k := newKafkaEnv(t)
	k.publish(t, upsertMsg(1, 1))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	retention := func(topic string) string {
		t.Helper()
		d, forever, err := feed.Retention(ctx, k.brokers, feed.KafkaAuth{}, topic)
		if err != nil {
			t.Fatalf("retention of %s: %v", topic, err)
		}
		if forever {
			return "forever"
		}
		return d.String()
	}
	start := func(audit string, more ...string) *flagdProc {
		t.Helper()
		p := startFlagd(t, append([]string{"-clients", fastClients(t, t.TempDir()), "-kafka.brokers", k.brokers[0],
			"-kafka.topic", k.topic, "-audit.topic", audit}, more...)...)
		p.waitReady(t, 60*time.Second)
		feedtest.Eventually(t, 20*time.Second, "retention checked", func() bool {
			return p.logged("audit topic keeps events") || p.logged(retentionWarning)
		})
		return p
	}

	created := k.topic + "-audit-kept"
	p := start(created)
	if got := retention(created); got != "forever" {
		t.Errorf("created audit topic keeps events for %s, want forever", got)
	}
	if p.logged(retentionWarning) {
		t.Error("warned of a topic that keeps events for good")
	}
	capped := k.topic + "-audit-capped"
	start(capped, "-audit.retention", "720h")
	if got := retention(capped); got != (720 * time.Hour).String() {
		t.Errorf("created audit topic keeps events for %s, want 720h", got)
	}

	// A topic an operator made with two days' retention: left as it is.
	short := k.topic + "-audit-short"
	if err := feed.CreateTopicConfig(ctx, k.brokers, feed.KafkaAuth{}, short, 1,
		kafka.ConfigEntry{ConfigName: "retention.ms", ConfigValue: "172800000"}); err != nil {
		t.Fatal(err)
	}
	p = start(short)
	if got := retention(short); got != "48h0m0s" {
		t.Errorf("existing audit topic's retention changed to %s", got)
	}
	if !p.logged(retentionWarning) {
		t.Errorf("no warning of an audit topic keeping events two days; log: %v", p.logLines())
	}
	// Asked for no more than the topic keeps: no warning.
	p = start(short, "-audit.retention", "24h")
	if p.logged(retentionWarning) {
		t.Error("warned though the topic keeps events as long as asked")
	}
}

const retentionWarning = "audit topic keeps events for less than -audit.retention asks: the broker deletes older audit events; set its retention.ms"
