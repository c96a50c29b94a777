package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/planflag/planflag/alert"
	"github.com/planflag/planflag/feed/feedtest"
)

const (
	tokenCAD     = "token-cad-1"
	tokenNoScope = "token-audit-1"
	tokenSlow    = "token-slow-1"
)

func clientsFile(t *testing.T, dir string) string {
	t.Helper()
	cfg := []alert.ClientConfig{
		{ID: "las-cad", TokenSHA256: alert.TokenHash(tokenCAD), Scopes: []string{"lookup"}},
		{ID: "auditor", TokenSHA256: alert.TokenHash(tokenNoScope), Scopes: []string{}},
		{ID: "slow", TokenSHA256: alert.TokenHash(tokenSlow), Scopes: []string{"lookup"}, RatePerS: 1},
	}
	b, _ := json.Marshal(cfg)
	path := filepath.Join(dir, "clients.json")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// unaudited adds -audit.none to args that give no audit file: most tests
// are not about the audit trail.
func unaudited(args []string) []string {
	for _, a := range args {
		if a == "-audit.file" || a == "-audit.none" {
			return args
		}
	}
	return append(slices.Clone(args), "-audit.none")
}

// boot starts the whole service on 127.0.0.1:0 with the given events file
// (and any extra flags).
func boot(t *testing.T, events string, extra ...string) *Main {
	t.Helper()
	return bootLogged(t, io.Discard, events, extra...)
}

// bootLogged is boot with the service's log, at debug level, written to w.
func bootLogged(t *testing.T, w io.Writer, events string, extra ...string) *Main {
	t.Helper()
	dir := t.TempDir()
	cfg, err := parseConfig(append([]string{"-http.addr", "127.0.0.1:0", "-clients", clientsFile(t, dir), "-events", events,
		"-http.max-body", "4096", "-shutdown.timeout", "5s"}, unaudited(extra)...), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	m := &Main{Config: cfg, Log: slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug})), Stdout: io.Discard}
	if err := m.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	return m
}

func eventsFile(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "events.jsonl")
	if err := os.WriteFile(path, []byte(events), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func waitReady(t *testing.T, m *Main) {
	t.Helper()
	for i := 0; i < 200; i++ {
		if r, err := http.Get("http://" + m.Addr + "/readyz"); err == nil {
			r.Body.Close()
			if r.StatusCode == 200 {
				return
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("never ready")
}

type reply struct {
	status int
	header http.Header
	body   map[string]any
}

func post(t *testing.T, m *Main, token, body string) reply {
	t.Helper()
	req, _ := http.NewRequest("POST", "http://"+m.Addr+"/v1/lookup", strings.NewReader(body))
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var v map[string]any
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatalf("status %d, body not JSON: %q", resp.StatusCode, raw)
	}
	return reply{resp.StatusCode, resp.Header, v}
}

func errorOf(r reply) (code, field, message string) {
	e, _ := r.body["error"].(map[string]any)
	code, _ = e["code"].(string)
	field, _ = e["field"].(string)
	message, _ = e["message"].(string)
	return
}

func TestServiceLookups(t *testing.T) {
	m := boot(t, eventsFile(t))
	defer m.Close()
	waitReady(t, m)

	// The three tiers (a nickname with her mobile: a match; without it, possible).
	r := post(t, m, tokenCAD, `{"given_name":"Peggy","family_name":"OBrien","birth_date":"07/03/1941","postcode":"sw1a1aa","phone":"07700 900123","unknown":"ignored"}`)
	cands, _ := r.body["candidates"].([]any)
	if r.status != 200 || r.body["tier"] != "match" || r.body["flag"] != true || len(cands) != 1 || r.body["request_id"] == "" {
		t.Errorf("match: %d %v", r.status, r.body)
	}
	if c := cands[0].(map[string]any); c["plan_id"] != "UCP-123" || c["agreement"].(map[string]any)["given_name"] != "nickname" {
		t.Errorf("match candidate %v", c)
	}
	r = post(t, m, tokenCAD, `{"family_name":"O'Brien","postcode":"SW1A 1AA","phone":"07700 900123"}`)
	if r.status != 200 || r.body["tier"] != "possible" {
		t.Errorf("possible: %d %v", r.status, r.body)
	}
	r = post(t, m, tokenCAD, `{"given_name":"John","family_name":"Smith","birth_date":"1950-01-01","postcode":"M1 1AE"}`)
	if cands, _ := r.body["candidates"].([]any); r.status != 200 || r.body["tier"] != "none" || r.body["flag"] != false || len(cands) != 0 {
		t.Errorf("none (withdrawn plan): %d %v", r.status, r.body)
	}
	if bytes.Contains([]byte(r.body["request_id"].(string)), []byte("Smith")) {
		t.Error("request id carries input")
	}
}

func TestServiceAuth(t *testing.T) {
	m := boot(t, eventsFile(t))
	defer m.Close()
	waitReady(t, m)
	q := `{"given_name":"Margaret","family_name":"O'Brien","birth_date":"1941-03-07"}`
	for _, c := range []struct {
		token  string
		status int
		code   string
	}{{"", 401, "unauthorized"}, {"wrong-token", 401, "unauthorized"}, {tokenNoScope, 403, "forbidden"}, {tokenCAD, 200, ""}} {
		r := post(t, m, c.token, q)
		if code, _, _ := errorOf(r); r.status != c.status || code != c.code {
			t.Errorf("token %q: %d %v, want %d %s", c.token, r.status, r.body, c.status, c.code)
		}
	}
	// A GET is not a lookup.
	resp, err := http.Get("http://" + m.Addr + "/v1/lookup")
	if err != nil || resp.StatusCode != 405 {
		t.Errorf("GET /v1/lookup: %v %v", resp.StatusCode, err)
	}
}

func TestServiceBadInput(t *testing.T) {
	m := boot(t, eventsFile(t))
	defer m.Close()
	waitReady(t, m)
	for _, c := range []struct {
		body, field string
		status      int
	}{
		{`{`, "", 400},
		{`[]`, "", 400},
		{`"text"`, "", 400},
		{``, "", 400},
		{`{"nhs_number": 9434765919}`, "nhs_number", 400},
		{`{"given_name": ["Mary"], "family_name": "Smith"}`, "given_name", 400},
		{`{"family_name": {"x": 1}, "given_name": "Mary"}`, "family_name", 400},
		{`{"birth_date": 1941, "given_name": "Mary"}`, "birth_date", 400},
		{`{"gender": true, "given_name": "Mary", "family_name": "Smith"}`, "gender", 400},
		{`{"postcode": 1, "given_name": "Mary", "family_name": "Smith"}`, "postcode", 400},
		{`{"address": 1, "given_name": "Mary", "family_name": "Smith"}`, "address", 400},
		{`{"phone": 447700900123, "given_name": "Mary"}`, "phone", 400},
		{`{"nhs_number": "12345", "given_name": "Mary", "family_name": "Smith"}`, "nhs_number", 400},
		{`{"given_name": "Mary", "birth_date": "1941-02-30"}`, "birth_date", 400},
		{`{"given_name": "Mary", "birth_date": "next Tuesday"}`, "birth_date", 400},
		{`{"given_name": "Mary", "family_name": "Smith", "postcode": "XX XX"}`, "postcode", 400},
		{`{"given_name": "Mary", "family_name": "Smith", "phone": "call me"}`, "phone", 400},
		{`{"given_name": "Mary", "family_name": "Smith", "gender": "purple"}`, "gender", 400},
		{`{"given_name": "123", "family_name": "Smith"}`, "given_name", 400},
		{`{"given_name": "Mary", "family_name": "!!"}`, "family_name", 400},
		{`{"given_name": "Mary"}`, "", 400},
		{`{}`, "", 400},
		{`{"given_name": "` + strings.Repeat("a", 5000) + `"}`, "", 413},
	} {
		r := post(t, m, tokenCAD, c.body)
		code, field, msg := errorOf(r)
		if r.status != c.status || field != c.field || code == "" || msg == "" {
			t.Errorf("%.60s: %d code=%s field=%q msg=%q; want %d field %q", c.body, r.status, code, field, msg, c.status, c.field)
		}
		if strings.Contains(msg, "1941") || strings.Contains(msg, "Mary") {
			t.Errorf("error message echoes input: %s", msg)
		}
	}
}

func TestServiceRateLimit(t *testing.T) {
	m := boot(t, eventsFile(t))
	defer m.Close()
	waitReady(t, m)
	q := `{"given_name":"Margaret","family_name":"O'Brien","birth_date":"1941-03-07"}`
	limited := 0
	for i := 0; i < 15; i++ {
		r := post(t, m, tokenSlow, q)
		if r.status == 429 {
			limited++
			if s, err := strconv.Atoi(r.header.Get("Retry-After")); err != nil || s < 1 {
				t.Errorf("429 without a Retry-After: %q", r.header.Get("Retry-After"))
			}
		}
	}
	// rate 1/s: a burst of 10, then 429s.
	if limited < 4 || limited > 5 {
		t.Errorf("%d of 15 rapid lookups limited, want 5 (burst 10)", limited)
	}
	if r := post(t, m, tokenCAD, q); r.status != 200 {
		t.Errorf("another client is limited too: %d", r.status)
	}
}

// Readiness: 503 (and lookups 503) until the plan source is loaded. The
// events come through a pipe the test writes to when it chooses.
func TestServiceReadiness(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "events.fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Skipf("no fifo: %v", err)
	}
	m := boot(t, fifo)
	defer m.Close()
	resp, err := http.Get("http://" + m.Addr + "/readyz")
	if err != nil || resp.StatusCode != 503 {
		t.Fatalf("readyz before load: %v %v", resp.StatusCode, err)
	}
	if resp, _ := http.Get("http://" + m.Addr + "/healthz"); resp.StatusCode != 200 {
		t.Errorf("healthz while loading: %d", resp.StatusCode)
	}
	r := post(t, m, tokenCAD, `{"given_name":"Margaret","family_name":"O'Brien","birth_date":"1941-03-07"}`)
	if code, _, _ := errorOf(r); r.status != 503 || code != "not_ready" || r.header.Get("Retry-After") == "" {
		t.Errorf("lookup while loading: %d %v", r.status, r.body)
	}
	w, err := os.OpenFile(fifo, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	w.WriteString(events)
	w.Close()
	waitReady(t, m)
	if r := post(t, m, tokenCAD, `{"given_name":"Margaret","family_name":"O'Brien","birth_date":"1941-03-07","postcode":"SW1A 1AA"}`); r.body["tier"] != "match" {
		t.Errorf("after load: %v", r.body)
	}
	// Metrics: tiers by client, index size; no personal data in any label.
	resp, err = http.Get("http://" + m.Addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	text, _ := io.ReadAll(resp.Body)
	for _, want := range []string{`planflag_lookups_total{client="las-cad",tier="match"} 1`, "planflag_index_plans 1", "planflag_lookup_seconds_bucket", `planflag_http_errors_total{code="not_ready"} 1`} {
		if !bytes.Contains(text, []byte(want)) {
			t.Errorf("metrics lack %s", want)
		}
	}
	// Each sample's value (the line's last field) is a number, timings
	// among them, which hold any digits: personal data could only be in
	// the names, labels and help.
	var names strings.Builder
	for _, line := range strings.Split(string(text), "\n") {
		if i := strings.LastIndexByte(line, ' '); i >= 0 && !strings.HasPrefix(line, "#") {
			line = line[:i]
		}
		names.WriteString(line + "\n")
	}
	for _, pii := range []string{"Margaret", "O'Brien", "1941", "SW1A"} {
		if feedtest.Carries(names.String(), pii) {
			t.Errorf("metrics carry %q", pii)
		}
	}
}

// A FLAGD_… variable that names no flag (a misspelling, or another
// program's: OpenFeature's daemon is also called flagd) does not stop
// flagd; it is named, for a warning at start.
func TestConfigUnknownEnv(t *testing.T) {
	t.Setenv("FLAGD_AUDIT_FILES", "/tmp/a")
	t.Setenv("FLAGD_AUDIT_FILE", "/tmp/b")
	c, err := parseConfig([]string{"-demo"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(c.UnknownEnv, []string{"FLAGD_AUDIT_FILES"}) || c.AuditFile != "/tmp/b" {
		t.Errorf("unknown %v, audit file %q; want [FLAGD_AUDIT_FILES], /tmp/b", c.UnknownEnv, c.AuditFile)
	}
}

func TestConfigErrors(t *testing.T) {
	for _, c := range []struct {
		args []string
		env  [2]string
		want string
	}{
		{[]string{"-events", "x"}, [2]string{}, "no clients"},
		{[]string{"-clients", "x"}, [2]string{}, "no plan source"},
		{[]string{"-demo", "-http.max-inflight", "0"}, [2]string{}, "max-inflight"},
		{[]string{"-demo"}, [2]string{"FLAGD_HTTP_MAX_BODY", "lots"}, "FLAGD_HTTP_MAX_BODY"},
		{[]string{"-demo", "extra"}, [2]string{}, "unexpected argument"},
		{[]string{"-demo", "-shutdown.timeout", "0s"}, [2]string{}, "-shutdown.timeout must be more than 0"},
		{[]string{"-demo", "-shutdown.timeout", "-5s"}, [2]string{}, "-shutdown.timeout must be more than 0"},
		{[]string{"-clients", "c", "-events", "e", "-link.key-file", "k"}, [2]string{}, "-link.key-file needs -link.base-url"},
		{[]string{"-clients", "c", "-kafka.brokers", "k:9092", "-redis.addr", "redis:abc"}, [2]string{}, `-redis.addr: "redis:abc" is not host:port`},
		{[]string{"-clients", "c", "-kafka.brokers", "k:9092", "-redis.addr", ":"}, [2]string{}, `-redis.addr: ":" is not host:port`},
		{[]string{"-clients", "c", "-kafka.brokers", "kafka:ninety"}, [2]string{}, `-kafka.brokers: "kafka:ninety" is not host:port`},
		{[]string{"-clients", "c", "-kafka.brokers", "kafka:0"}, [2]string{}, `-kafka.brokers: "kafka:0" is not host:port`},
		{[]string{"-clients", "c", "-events", "e", "-alerts.window", "48h"}, [2]string{}, "-alerts.window has no effect without -redis.addr"},
		{[]string{"-clients", "c", "-events", "e"}, [2]string{"FLAGD_SNAPSHOT_INTERVAL", "1m"}, "FLAGD_SNAPSHOT_INTERVAL (-snapshot.interval) has no effect without -redis.addr"},
		{[]string{"-clients", "c", "-events", "e", "-kafka.dead-letter-topic", "dl"}, [2]string{}, "-kafka.dead-letter-topic has no effect without -kafka.brokers"},
		{[]string{"-clients", "c", "-events", "e", "-kafka.client-id", "replica-2"}, [2]string{}, "-kafka.client-id has no effect without -kafka.brokers"},
		{[]string{"-clients", "c", "-events", "e", "-kafka.sasl", "scram-sha-256"}, [2]string{}, "-kafka.sasl has no effect without -kafka.brokers"},
		{[]string{"-clients", "c", "-events", "e"}, [2]string{"FLAGD_KAFKA_TLS_CA", "ca.pem"}, "FLAGD_KAFKA_TLS_CA (-kafka.tls-ca) has no effect without -kafka.brokers"},
		{[]string{"-clients", "c", "-events", "e", "-platform.reconcile-interval", "1m"}, [2]string{}, "-platform.reconcile-interval has no effect without -platform.url"},
		{[]string{"-clients", "c", "-events", "e", "-link.ttl", "5m"}, [2]string{}, "-link.ttl has no effect without -link.key-file"},
		{[]string{"-clients", "c", "-events", "e", "-audit.topic", "audit"}, [2]string{}, "-audit.topic has no effect without -kafka.brokers"},
		{[]string{"-demo"}, [2]string{"FLAGD_AUDIT_TOPIC", "audit"}, "FLAGD_AUDIT_TOPIC (-audit.topic) has no effect without -kafka.brokers"},
		{[]string{"-clients", "c", "-events", "e", "-tls.check-interval", "1m"}, [2]string{}, "-tls.check-interval has no effect without a certificate or CA file"},
		{[]string{"-clients", "c", "-events", "e", "-http.tls-cert", "c.pem", "-http.tls-key", "k.pem", "-tls.check-interval", "100ms"}, [2]string{}, "-tls.check-interval must be at least 1s"},
		{[]string{"-clients", "c", "-kafka.brokers", "k:9092", "-audit.file", "a", "-audit.topic", "audit"}, [2]string{}, "-audit.topic has no effect with -audit.file"},
		// Every lookup is audited unless the operator says otherwise.
		{[]string{"-clients", "c", "-events", "e"}, [2]string{}, "lookups would not be audited: give -audit.file, or -audit.none"},
		{[]string{"-clients", "c", "-kafka.brokers", "k:9092", "-audit.topic", ""}, [2]string{}, "lookups would not be audited: give -audit.file or -audit.topic, or -audit.none"},
		{[]string{"-clients", "c", "-events", "e", "-audit.file", "a", "-audit.none"}, [2]string{}, "-audit.file and -audit.none contradict"},
		{[]string{"-clients", "c", "-kafka.brokers", "k:9092", "-audit.topic", "audit", "-audit.none"}, [2]string{}, "-audit.topic and -audit.none contradict"},
		{[]string{"-clients", "c", "-kafka.brokers", "k:9092", "-audit.retention", "-1h"}, [2]string{}, "-audit.retention must not be negative"},
		{[]string{"-clients", "c", "-kafka.brokers", "k:9092", "-audit.retention", "24s"}, [2]string{}, "-audit.retention must be at least 24h0m0s"},
		{[]string{"-clients", "c", "-kafka.brokers", "k:9092", "-audit.retention", "500us"}, [2]string{}, "-audit.retention must be at least 24h0m0s"},
		{[]string{"-clients", "c", "-events", "e", "-audit.file", "a", "-audit.retention", "720h"}, [2]string{}, "-audit.retention has no effect without an audit topic"},
		{[]string{"-clients", "c", "-kafka.brokers", "k:9092", "-audit.file", "a"}, [2]string{"FLAGD_AUDIT_RETENTION", "720h"}, "FLAGD_AUDIT_RETENTION (-audit.retention) has no effect without an audit topic"},
	} {
		t.Run(c.want, func(t *testing.T) {
			if c.env[0] != "" {
				t.Setenv(c.env[0], c.env[1])
			}
			_, err := parseConfig(c.args, io.Discard)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("%v: error %v, want %q", c.args, err, c.want)
			}
		})
	}
	for _, c := range []struct {
		args  []string
		topic string
		none  bool
	}{
		{[]string{"-clients", "c", "-kafka.brokers", "k:9092"}, "lookup-audit", false}, // the default topic
		{[]string{"-clients", "c", "-kafka.brokers", "k:9092", "-audit.none"}, "", true},
		{[]string{"-clients", "c", "-events", "e", "-audit.none"}, "", true},
		{[]string{"-demo"}, "lookup-audit", false}, // a file of its own (the topic unused without Kafka)
	} {
		if cfg, err := parseConfig(c.args, io.Discard); err != nil || cfg.AuditTopic != c.topic || cfg.AuditNone != c.none {
			t.Errorf("%v: audit topic %q, none %v, error %v; want %q, %v", c.args, cfg.AuditTopic, cfg.AuditNone, err, c.topic, c.none)
		}
	}
	// -demo's links point at careplans.invalid unless -link.base-url says
	// otherwise, whether it signs them with its own key or -link.key-file's.
	for _, args := range [][]string{{"-demo"}, {"-demo", "-link.key-file", "keys.json"}} {
		cfg, err := parseConfig(args, io.Discard)
		if err != nil || cfg.LinkBaseURL != demoLinkBase {
			t.Errorf("%v: base URL %q, error %v; want %s", args, cfg.LinkBaseURL, err, demoLinkBase)
		}
	}
	t.Setenv("FLAGD_HTTP_ADDR", "127.0.0.1:9999")
	cfg, err := parseConfig([]string{"-demo"}, io.Discard)
	if err != nil || cfg.HTTPAddr != "127.0.0.1:9999" {
		t.Errorf("env fallback: %v %v", cfg.HTTPAddr, err)
	}
}

// A request fasthttp cannot parse is answered 400 in the API's error shape,
// and the log, even at debug level, carries none of it: fasthttp's error
// text quotes the request it read (the bearer token, the caller's details),
// so it is not logged; the connection is counted by kind instead.
func TestServiceMalformedRequestNotLogged(t *testing.T) {
	var logs feedtest.LogBuffer
	m := bootLogged(t, &logs, eventsFile(t))
	defer m.Close()
	waitReady(t, m)
	body := `{"given_name":"Margaret","family_name":"O'Brien","birth_date":"1941-03-07","postcode":"SW1A 1AA"}`
	head := "POST /v1/lookup HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + tokenCAD + "\r\n"
	for _, c := range []struct{ name, req string }{
		{"content-length not a number", head + "Content-Length: 7x\r\n\r\n" + body},
		{"header line without a colon", head + "X-Caller Margaret O'Brien 1941-03-07 SW1A 1AA\r\nContent-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + body},
		{"chunk size not hex", head + "Transfer-Encoding: chunked\r\n\r\nzz\r\n" + body + "\r\n0\r\n\r\n"},
	} {
		before := len(logs.String())
		conn, err := net.Dial("tcp", m.Addr)
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(conn, c.req)
		conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatalf("%s: no answer: %v", c.name, err)
		}
		raw, _ := io.ReadAll(resp.Body)
		io.ReadAll(conn) // the server logs, then closes the connection
		conn.Close()
		if resp.StatusCode != 400 || !strings.Contains(string(raw), `"code":"bad_request"`) {
			t.Errorf("%s: answered %d %s", c.name, resp.StatusCode, raw)
		}
		logged := logs.String()[before:]
		if !strings.Contains(logged, `"msg":"http connection not served"`) {
			t.Errorf("%s: not logged at all:\n%s", c.name, logged)
		}
		for _, secret := range []string{tokenCAD, "Margaret", "O'Brien", "1941-03-07", "SW1A"} {
			if strings.Contains(logged, secret) {
				t.Errorf("%s: log carries %q:\n%s", c.name, secret, logged)
			}
		}
	}
	waitMetrics(t, m, "conn_errors", `planflag_http_conn_errors_total{kind="malformed"} 3`)
}

// An events file flagd cannot use is an error, not a service that is never
// ready or that answers every lookup "none": one missing or a directory at
// start, one with nothing readable in it once loaded.
func TestServiceUnusableEventsFile(t *testing.T) {
	dir := t.TempDir()
	start := func(events string) (*Main, error) {
		cfg, err := parseConfig([]string{"-http.addr", "127.0.0.1:0", "-clients", clientsFile(t, dir), "-events", events, "-audit.none"}, io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		m := &Main{Config: cfg, Log: slog.New(slog.NewJSONHandler(io.Discard, nil)), Stdout: io.Discard}
		return m, m.Run(context.Background())
	}
	for _, c := range []struct{ name, want string }{
		{filepath.Join(dir, "missing.jsonl"), "no such file"},
		{dir, "is a directory"},
	} {
		if m, err := start(c.name); err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "-events") {
			if err == nil {
				m.Close()
			}
			t.Errorf("-events %s: Run error %v, want one naming -events and saying %q", c.name, err, c.want)
		}
	}
	for _, c := range []struct{ body, want string }{
		{"", "no plan events"},
		{"\n\n", "no plan events"},
		{"not json\n{\"a\":1}\n", "none of its 2 events could be read (line 1: dead letter: not an event object: invalid JSON)"},
	} {
		path := filepath.Join(t.TempDir(), "events.jsonl")
		if err := os.WriteFile(path, []byte(c.body), 0o600); err != nil {
			t.Fatal(err)
		}
		m, err := start(path)
		if err != nil {
			t.Fatal(err)
		}
		select {
		case err := <-m.Failed():
			if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), path) {
				t.Errorf("%q: load error %v, want one naming the file and saying %q", c.body, err, c.want)
			}
		case <-time.After(5 * time.Second):
			t.Errorf("%q: loaded without an error", c.body)
		}
		if r, err := http.Get("http://" + m.Addr + "/readyz"); err != nil {
			t.Error(err)
		} else if r.Body.Close(); r.StatusCode != 503 {
			t.Errorf("%q: readyz %d, want 503", c.body, r.StatusCode)
		}
		m.Close()
	}
}

// Kafka security settings that cannot work stop flagd at start, naming
// them, before it listens or dials a broker.
func TestServiceKafkaAuthRefused(t *testing.T) {
	dir := t.TempDir()
	pw := filepath.Join(dir, "pw")
	if err := os.WriteFile(pw, []byte("secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"-kafka.sasl", "plain", "-kafka.sasl-user", "u", "-kafka.sasl-password-file", pw}, "in clear"},
		{[]string{"-kafka.tls-ca", filepath.Join(dir, "none.pem")}, "CA file"},
		{[]string{"-kafka.sasl", "scram-sha-1", "-kafka.sasl-user", "u", "-kafka.sasl-password-file", pw}, "mechanism"},
	} {
		err := runErr(t, append([]string{"-clients", clientsFile(t, dir), "-kafka.brokers", "127.0.0.1:1"}, c.args...)...)
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "-kafka.") || strings.Contains(err.Error(), "secret") {
			t.Errorf("%v: Run error %v, want one naming the -kafka settings and %q", c.args, err, c.want)
		}
	}
}

// runErr starts the service on 127.0.0.1:0 with args (which must parse) and
// returns Run's error, closing the service if it started.
func runErr(t *testing.T, args ...string) error {
	t.Helper()
	cfg, err := parseConfig(append([]string{"-http.addr", "127.0.0.1:0"}, unaudited(args)...), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	m := &Main{Config: cfg, Log: slog.New(slog.DiscardHandler), Stdout: io.Discard}
	err = m.Run(context.Background())
	if err == nil {
		m.Close()
	}
	return err
}

// -demo prints its token and clients file, and three lookups to paste,
// and keeps its files in one folder; with -clients, whose tokens flagd holds
// only hashed, it says to use one of that file's and prints no empty token.
func TestDemoOutput(t *testing.T) {
	run := func(extra ...string) (string, *Main) {
		t.Helper()
		cfg, err := parseConfig(append([]string{"-demo", "-http.addr", "127.0.0.1:0"}, extra...), io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		var out feedtest.LogBuffer // written by the service, read here
		m := &Main{Config: cfg, Log: slog.New(slog.DiscardHandler), Stdout: &out}
		if err := m.Run(context.Background()); err != nil {
			t.Fatal(err)
		}
		feedtest.Eventually(t, 60*time.Second, "the demo's lookups printed", func() bool { return strings.Contains(out.String(), "Stop with Ctrl-C") })
		m.Close()
		t.Cleanup(func() { os.RemoveAll(m.demoFiles) })
		return out.String(), m
	}
	out, m := run()
	if !strings.Contains(out, "demo client token: demo-") || !strings.Contains(out, m.demoClientsFile) || strings.Count(out, "curl -s -H 'Authorization: Bearer demo-") != 3 {
		t.Errorf("demo output:\n%s", out)
	}
	if filepath.Dir(m.demoClientsFile) != filepath.Dir(m.Config.AuditFile) {
		t.Errorf("clients file %s and audit file %s in different folders", m.demoClientsFile, m.Config.AuditFile)
	}
	if _, err := os.Stat(m.demoClientsFile); err != nil {
		t.Error(err)
	}
	clients := clientsFile(t, t.TempDir())
	out, _ = run("-clients", clients)
	if !strings.Contains(out, "set TOKEN to a token of a client in -clients "+clients) || strings.Contains(out, "Bearer '") ||
		strings.Count(out, "Bearer $TOKEN") != 3 {
		t.Errorf("demo output with -clients:\n%s", out)
	}
}

// The clients file read again (SIGHUP): a revoked token is refused at
// once, a new one served; a file refused as at start changes nothing.
func TestServiceClientsReloaded(t *testing.T) {
	var logs feedtest.LogBuffer
	m := bootLogged(t, &logs, eventsFile(t))
	defer m.Close()
	waitReady(t, m)
	q := `{"given_name":"Margaret","family_name":"O'Brien","birth_date":"1941-03-07"}`
	status := func(token string) int { t.Helper(); return post(t, m, token, q).status }
	if s := status(tokenCAD); s != 200 {
		t.Fatalf("before: %d", s)
	}
	write := func(cfg []alert.ClientConfig) {
		t.Helper()
		b, _ := json.Marshal(cfg)
		if err := os.WriteFile(m.Config.Clients, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write([]alert.ClientConfig{{ID: "las-cad-2", TokenSHA256: alert.TokenHash("rotated-token"), Scopes: []string{"lookup"}}})
	if err := m.Reload(); err != nil {
		t.Fatal(err)
	}
	if s := status(tokenCAD); s != 401 {
		t.Errorf("revoked token: %d, want 401", s)
	}
	if s := status("rotated-token"); s != 200 {
		t.Errorf("new token: %d, want 200", s)
	}
	if !strings.Contains(logs.String(), `"msg":"clients file read again","clients":1,"added":"las-cad-2","removed":"las-cad,auditor,slow"`) {
		t.Errorf("reload not logged as expected:\n%s", logs.String())
	}
	// A broken file, and one whose webhook flagd could not serve: the
	// clients before stay in force.
	for _, bad := range []func(){
		func() { os.WriteFile(m.Config.Clients, []byte(`[{"id":"x"`), 0o600) },
		func() {
			write([]alert.ClientConfig{{ID: "hooked", TokenSHA256: alert.TokenHash("hooked"), Scopes: []string{"lookup"},
				WebhookURL: "https://cad.invalid/alerts", WebhookSecret: "0123456789abcdef"}})
		},
	} {
		bad()
		if err := m.Reload(); err == nil {
			t.Error("a refused clients file read without error")
		}
		if s := status("rotated-token"); s != 200 {
			t.Errorf("after a refused file, the token in force: %d, want 200", s)
		}
	}
	if got := metricLine(t, m, `planflag_reloads_total{file="clients",result="error"}`); got != "2" {
		t.Errorf("reload errors counted %q, want 2", got)
	}
	if strings.Contains(logs.String(), "rotated-token") || strings.Contains(logs.String(), alert.TokenHash("rotated-token")) {
		t.Error("a token or its hash logged")
	}
}

// metricLine returns the value of the /metrics sample named (with its
// labels), or "" if there is none.
func metricLine(t *testing.T, m *Main, sample string) string {
	t.Helper()
	return scrapeMetric(t, m.Addr, sample)
}

// scrapeMetric returns the value of the sample named (with its labels) on
// the /metrics page of the service at addr, or "" if there is none.
func scrapeMetric(t *testing.T, addr, sample string) string {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	text, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(text), "\n") {
		if v, ok := strings.CutPrefix(line, sample+" "); ok {
			return v
		}
	}
	return ""
}
