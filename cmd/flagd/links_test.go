package main

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/planflag/planflag/alert"
	"github.com/planflag/planflag/careplanclient"
	"github.com/planflag/planflag/feed/feedtest"
)

// TestServiceLinksAndAudit: with a key file every candidate carries a
// signed link for the calling client, and every lookup leaves an audit
// event naming the fields given, never their values; `flagd audit` finds
// who looked up a plan.
func TestServiceLinksAndAudit(t *testing.T) {
	dir := t.TempDir()
	keyFile, _ := linkKeyFile(t, dir)
	audit := filepath.Join(dir, "audit.jsonl")
	m := boot(t, eventsFile(t), "-link.key-file", keyFile, "-link.base-url", "https://plans.example/open",
		"-link.ttl", "10m", "-audit.file", audit)
	waitReady(t, m)
	start := time.Now()
	r := post(t, m, tokenCAD, `{"given_name":"Peggy","family_name":"OBrien","birth_date":"07/03/1941","postcode":"sw1a1aa"}`)
	cands, _ := r.body["candidates"].([]any)
	if r.status != 200 || len(cands) != 1 {
		t.Fatalf("lookup: %d %v", r.status, r.body)
	}
	c := cands[0].(map[string]any)
	link, _ := c["link"].(string)
	exp, err := time.Parse(time.RFC3339, c["link_expires_at"].(string))
	if !strings.HasPrefix(link, "https://plans.example/open?t=") || err != nil ||
		exp.Sub(start) > 10*time.Minute+time.Second || exp.Sub(start) < 9*time.Minute {
		t.Fatalf("link %q expires %v (%v)", link, c["link_expires_at"], err)
	}
	keys, _ := careplanclient.LoadKeys(keyFile)
	claims, err := keys.Verify(careplanclient.TokenOf(link), "las-cad", time.Now())
	if err != nil || claims.PlanID != "UCP-123" {
		t.Fatalf("link does not verify for the caller: %+v %v", claims, err)
	}
	post(t, m, tokenCAD, `{"given_name":"John","family_name":"Smith","birth_date":"1950-01-01","postcode":"M1 1AE"}`)
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}

	raw, err := os.ReadFile(audit)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(raw)), "\n")
	if len(lines) != 2 {
		t.Fatalf("audit has %d events, want 2:\n%s", len(lines), raw)
	}
	for _, value := range []string{"Peggy", "OBrien", "1941", "07/03", "sw1a", "Smith", "M1 1AE"} {
		if feedtest.Carries(string(raw), value) {
			t.Errorf("audit trail carries a caller's value %q", value)
		}
	}
	if !strings.Contains(lines[0], `"fields_supplied":["given_name","family_name","birth_date","postcode"]`) ||
		!strings.Contains(lines[0], `"plan_ids":["UCP-123"]`) || !strings.Contains(lines[0], `"link_ids":["`+claims.ID+`"]`) ||
		!strings.Contains(lines[0], `"client_id":"las-cad"`) || !strings.Contains(lines[1], `"tier":"none"`) {
		t.Errorf("audit events:\n%s", raw)
	}

	var out, errs bytes.Buffer
	if err := run([]string{"audit", "-file", audit, "-plan", "UCP-123"}, &out, &errs); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(out.String(), "\n"); n != 1 || !strings.Contains(out.String(), r.body["request_id"].(string)) {
		t.Errorf("flagd audit found %d events:\n%s", n, out.String())
	}
}

// TestServiceReconcile: flagd compares its index with the platform's live
// plans and reports the drift in /metrics. The platform's API is reached
// over TLS (its CA given) with a bearer token.
func TestServiceReconcile(t *testing.T) {
	const token = "platform-token-1"
	plat := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+token {
			http.Error(w, "unauthorised", http.StatusUnauthorized)
			return
		}
		if r.URL.Path != "/api/plans" || r.URL.Query().Get("live") != "true" {
			http.NotFound(w, r)
			return
		}
		// UCP-123 at the index's version; UCP-777 live on the platform only.
		w.Write([]byte(`[{"plan_id":"UCP-123","live":true,"version":7},{"plan_id":"UCP-777","live":true,"version":1}]`))
	}))
	defer plat.Close()
	dir := t.TempDir()
	ca, tokenFile := filepath.Join(dir, "ca.pem"), filepath.Join(dir, "token")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: plat.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(tokenFile, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := runErr(t, "-clients", clientsFile(t, dir), "-events", eventsFile(t), "-platform.url", "http://platform.invalid",
		"-platform.tls-ca", ca); err == nil || !strings.Contains(err.Error(), "need an https:// -platform.url") {
		t.Errorf("TLS files with an http:// platform: %v", err)
	}
	m := boot(t, eventsFile(t), "-platform.url", plat.URL, "-platform.reconcile-interval", "1s",
		"-platform.tls-ca", ca, "-platform.token-file", tokenFile)
	defer m.Close()
	waitReady(t, m)
	waitMetrics(t, m, "reconcile", `planflag_reconcile_drift_plans{kind="missing"} 1`,
		`planflag_reconcile_drift_plans{kind="extra"} 0`)
}

// waitMetrics polls /metrics until it holds every line given, failing after
// 5 s with the lines that mention about.
func waitMetrics(t *testing.T, m *Main, about string, want ...string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		resp, err := http.Get("http://" + m.Addr + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		all := true
		for _, w := range want {
			all = all && strings.Contains(string(b), w)
		}
		if all {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("/metrics lacks %q:\n%s", want, grepLines(string(b), about))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// TestServiceAuditSinkDown: with the audit sink failing (a full disk),
// lookups are answered as ever and the loss is counted.
func TestServiceAuditSinkDown(t *testing.T) {
	if _, err := os.Stat("/dev/full"); err != nil {
		t.Skip("no /dev/full here")
	}
	m := boot(t, eventsFile(t), "-audit.file", "/dev/full")
	defer m.Close()
	waitReady(t, m)
	for range 20 {
		if r := post(t, m, tokenCAD, `{"given_name":"Peggy","family_name":"OBrien","birth_date":"07/03/1941"}`); r.status != 200 {
			t.Fatalf("lookup with the audit sink down: %d %v", r.status, r.body)
		}
	}
	waitMetrics(t, m, "audit", `planflag_audit_lost_total{reason="write_error"}`)
}

// Serving unaudited (-audit.none: flagd refuses to start with nowhere to
// audit to otherwise, TestConfigErrors) is warned of at start, and only
// then.
func TestServiceWarnsWithoutAudit(t *testing.T) {
	const warning = "lookups are not audited"
	for _, c := range []struct {
		extra []string
		warns bool
	}{
		{[]string{"-audit.none"}, true},
		{[]string{"-audit.file", filepath.Join(t.TempDir(), "audit.jsonl")}, false},
	} {
		var logs feedtest.LogBuffer
		m := bootLogged(t, &logs, eventsFile(t), c.extra...)
		m.Close()
		if got := strings.Contains(logs.String(), warning); got != c.warns {
			t.Errorf("flags %q: warned %v, want %v:\n%s", c.extra, got, c.warns, logs.String())
		}
	}
}

// An audit file flagd cannot open stops it at start with an error that
// names the flag, not only the path.
func TestServiceAuditFileNotOpened(t *testing.T) {
	dir := t.TempDir()
	err := runErr(t, "-clients", clientsFile(t, dir), "-events", eventsFile(t),
		"-audit.file", filepath.Join(dir, "no-such-dir", "audit.jsonl"))
	if err == nil || !strings.HasPrefix(err.Error(), "-audit.file: ") {
		t.Errorf("audit file in a missing folder: error %v; want one beginning -audit.file:", err)
	}
}

// flagd audit takes the Kafka security settings as flagd does, from flags
// or FLAGD_… variables, and refuses a variable it cannot read rather than
// connect without it.
func TestAuditCommandSettings(t *testing.T) {
	t.Setenv("FLAGD_KAFKA_TLS", "maybe")
	var out, errs strings.Builder
	err := run([]string{"audit", "-plan", "UCP-1", "-brokers", "127.0.0.1:1"}, &out, &errs)
	if err == nil || !strings.Contains(err.Error(), "FLAGD_KAFKA_TLS") {
		t.Errorf("FLAGD_KAFKA_TLS=maybe: %v", err)
	}
}

func TestAuditCommandSASL(t *testing.T) {
	var out, errs strings.Builder
	err := run([]string{"audit", "-plan", "UCP-1", "-brokers", "127.0.0.1:1", "-kafka.sasl", "plain",
		"-kafka.sasl-user", "u", "-kafka.sasl-password-file", "/nonexistent"}, &out, &errs)
	if err == nil || !strings.Contains(err.Error(), "password file") {
		t.Errorf("SASL with a missing password file: %v", err)
	}
}

// A client that takes push alerts (webhook_url) with no Redis and Kafka to
// send them is refused at start, naming the client: its webhook would never
// be called.
func TestServiceWebhookNeedsRedis(t *testing.T) {
	dir := t.TempDir()
	b, _ := json.Marshal([]alert.ClientConfig{{ID: "las-cad", TokenSHA256: alert.TokenHash(tokenCAD), Scopes: []string{"lookup"},
		WebhookURL: "https://cad.example/alerts", WebhookSecret: "0123456789abcdef0123"}})
	path := filepath.Join(dir, "clients.json")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	err := runErr(t, "-clients", path, "-events", eventsFile(t))
	if err == nil || !strings.Contains(err.Error(), "las-cad") || !strings.Contains(err.Error(), "-redis.addr") {
		t.Errorf("webhook without Redis: %v, want it refused naming the client and -redis.addr", err)
	}
}

// The link keys read again (SIGHUP): the next link is signed with the new
// active key; a file refused leaves the keys before in force.
func TestServiceLinkKeysReloaded(t *testing.T) {
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "keys.json")
	k1 := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 32))
	k2 := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{9}, 32))
	write := func(js string) {
		t.Helper()
		if err := os.WriteFile(keyFile, []byte(js), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(`{"active":"k1","keys":{"k1":"` + k1 + `"}}`)
	m := boot(t, eventsFile(t), "-link.key-file", keyFile, "-link.base-url", "https://plans.example/open")
	defer m.Close()
	waitReady(t, m)
	signer := func() string {
		t.Helper()
		r := post(t, m, tokenCAD, `{"given_name":"Peggy","family_name":"OBrien","birth_date":"07/03/1941","postcode":"sw1a1aa"}`)
		cands, _ := r.body["candidates"].([]any)
		if r.status != 200 || len(cands) != 1 {
			t.Fatalf("lookup: %d %v", r.status, r.body)
		}
		link, _ := cands[0].(map[string]any)["link"].(string)
		keys, err := careplanclient.LoadKeys(keyFile)
		if err != nil {
			t.Fatal(err)
		}
		for _, id := range []string{"k1", "k2"} {
			if strings.HasPrefix(careplanclient.TokenOf(link), "v1."+id+".") {
				if _, err := keys.Verify(careplanclient.TokenOf(link), "las-cad", time.Now()); err != nil {
					t.Fatalf("link signed by %s does not verify: %v", id, err)
				}
				return id
			}
		}
		t.Fatalf("link %q signed by no known key", link)
		return ""
	}
	if id := signer(); id != "k1" {
		t.Fatalf("signed by %s before, want k1", id)
	}
	write(`{"active":"k2","keys":{"k1":"` + k1 + `","k2":"` + k2 + `"}}`)
	if err := m.Reload(); err != nil {
		t.Fatal(err)
	}
	if id := signer(); id != "k2" {
		t.Errorf("signed by %s after the rotation, want k2", id)
	}
	write(`{"active":"k3","keys":{"k1":"` + k1 + `"}}`) // the active key missing: refused
	if err := m.Reload(); err == nil {
		t.Error("a refused key file read without error")
	}
	write(`{"active":"k2","keys":{"k1":"` + k1 + `","k2":"` + k2 + `"}}`) // for signer's check
	if id := signer(); id != "k2" {
		t.Errorf("signed by %s after a refused file, want k2 still", id)
	}
	if got := metricLine(t, m, `planflag_reloads_total{file="link_keys",result="error"}`); got != "1" {
		t.Errorf("link-key reload errors counted %q, want 1", got)
	}
}

// A file holding secrets that others may read is warned of, at start and
// on reload; one only its owner reads is not.
func TestServiceWarnsOfExposedSecrets(t *testing.T) {
	keyFile, secret := linkKeyFile(t, t.TempDir())
	if err := os.Chmod(keyFile, 0o644); err != nil {
		t.Fatal(err)
	}
	var logs feedtest.LogBuffer
	m := bootLogged(t, &logs, eventsFile(t), "-link.key-file", keyFile, "-link.base-url", "https://plans.example/open")
	defer m.Close()
	const warning = `"msg":"a file holding secrets may be read by others than its owner: chmod 600 it","flag":"-link.key-file"`
	if !strings.Contains(logs.String(), warning) || !strings.Contains(logs.String(), `"mode":"0644"`) {
		t.Errorf("no warning of a link-key file readable by all:\n%s", logs.String())
	}
	if strings.Contains(logs.String(), secret) {
		t.Error("the secret logged")
	}
	if err := os.Chmod(keyFile, 0o600); err != nil {
		t.Fatal(err)
	}
	before := strings.Count(logs.String(), warning)
	if err := m.Reload(); err != nil {
		t.Fatal(err)
	}
	if strings.Count(logs.String(), warning) != before {
		t.Error("warned of a file only its owner reads")
	}
}

// linkKeyFile writes a link-keys file in dir with one key, k1, readable by
// its owner only, and returns its path and the key (base64).
func linkKeyFile(t *testing.T, dir string) (path, secret string) {
	t.Helper()
	path = filepath.Join(dir, "keys.json")
	secret = base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 32))
	if err := os.WriteFile(path, []byte(`{"active":"k1","keys":{"k1":"`+secret+`"}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	return path, secret
}
