package alert

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/planflag/planflag/feed/feedtest"
	"github.com/planflag/planflag/matcher"
)

// stuckWriter blocks every write until released: an audit sink that hangs.
type stuckWriter struct{ release chan struct{} }

func (w stuckWriter) Write(p []byte) (int, error) { <-w.release; return len(p), nil }

type brokenWriter struct{}

func (brokenWriter) Write([]byte) (int, error) { return 0, errors.New("disk gone") }

// TestAuditorNeverBlocks: with the sink hung, Record returns at once and
// events past the queue are counted lost.
func TestAuditorNeverBlocks(t *testing.T) {
	w := stuckWriter{make(chan struct{})}
	a := NewAuditor(NewFileSink(w), 4, slog.New(slog.DiscardHandler), prometheus.NewRegistry())
	start := time.Now()
	for i := range 100 {
		a.Record(&AuditEvent{RequestID: strings.Repeat("x", i%3)})
	}
	if took := time.Since(start); took > time.Second {
		t.Fatalf("100 Records took %v with the sink hung", took)
	}
	if lost := a.Lost(); lost < 90 {
		t.Errorf("lost %v events, want at least 90 (queue of 4, one in the writer)", lost)
	}
	close(w.release)
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestAuditorWriteErrors: a failing sink loses events, counted, and
// Record goes on working.
func TestAuditorWriteErrors(t *testing.T) {
	a := NewAuditor(NewFileSink(brokenWriter{}), 1024, slog.New(slog.DiscardHandler), prometheus.NewRegistry())
	for range 10 {
		a.Record(&AuditEvent{RequestID: "r"})
	}
	a.Close()
	if a.Lost() == 0 {
		t.Error("events written to a broken sink were not counted lost")
	}
}

// countingSink counts the batches and events written to it.
type countingSink struct {
	mu             sync.Mutex
	batches, count int
}

func (c *countingSink) Write(batch []*AuditEvent) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.batches++
	c.count += len(batch)
	return nil
}

func (c *countingSink) Close() error { return nil }

// TestAuditorGathers: events recorded one at a time, as lookups come, reach
// the sink in batches gathered over a few milliseconds, not one write (and
// one wake of the writer) each; Close writes every one.
func TestAuditorGathers(t *testing.T) {
	sink := &countingSink{}
	a := NewAuditor(sink, 4096, slog.New(slog.DiscardHandler), prometheus.NewRegistry())
	const n = 200
	start := time.Now()
	for range n {
		a.Record(&AuditEvent{RequestID: "r"})
		time.Sleep(20 * time.Microsecond) // the writer, were it eager, would take each alone
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if sink.count != n || a.Lost() != 0 {
		t.Fatalf("wrote %d of %d events, %v lost", sink.count, n, a.Lost())
	}
	// A batch's first event starts a gathering period, so batches cannot
	// outnumber the periods that fit in the time the events took.
	took := time.Since(start)
	if most := int(took/auditGather) + 2; sink.batches > most {
		t.Errorf("%d events recorded one at a time over %v took %d writes, want at most %d", n, took, sink.batches, most)
	}
	t.Logf("%d events over %v, %d writes", n, took, sink.batches)
}

// TestAuditorRecordAfterClose: a lookup that finishes after shutdown has
// closed the auditor (its drain timed out) is counted lost instead of
// panicking on the closed queue, as is one racing Close; every event is
// either written or counted.
func TestAuditorRecordAfterClose(t *testing.T) {
	sink := &countingSink{}
	a := NewAuditor(sink, 1<<16, slog.New(slog.DiscardHandler), prometheus.NewRegistry())
	const writers, each = 8, 500
	var wg sync.WaitGroup
	for range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range each {
				a.Record(&AuditEvent{RequestID: "r"})
			}
		}()
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	a.Record(&AuditEvent{RequestID: "late"})
	if got := float64(sink.count) + a.Lost(); got != writers*each+1 {
		t.Errorf("%d events written and %v lost of %d recorded", sink.count, a.Lost(), writers*each+1)
	}
	if closed := counterValue(a.lost.WithLabelValues("closed")); closed < 1 {
		t.Errorf("%v events counted lost as recorded after Close, want at least the late one", closed)
	}
}

// diskFillsWriter is a file on a disk that fills: while full, a write
// stores only the first half of its bytes and fails, as write(2) does on
// ENOSPC; once space is freed, writes succeed.
type diskFillsWriter struct {
	buf  bytes.Buffer
	full bool
}

func (w *diskFillsWriter) Write(p []byte) (int, error) {
	if w.full {
		n := len(p) / 2
		w.buf.Write(p[:n])
		return n, errors.New("no space left on device")
	}
	return w.buf.Write(p)
}

// auditedPlan is an audit event of a lookup that returned plan.
func auditedPlan(requestID, plan string) *AuditEvent {
	return &AuditEvent{RequestID: requestID, ClientID: "las-cad", Time: time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC),
		Fields: []string{"nhs_number"}, Tier: "match", PlanIDs: []string{plan}}
}

// A batch the disk had room for only half of is lost (the write fails) and
// leaves half a line in the file. The batches written after it, once the
// disk has room again, are found by Search (flagd audit): the fragment
// stays a line of its own, rather than swallowing the next event, and is
// reported by its line number, never its content.
func TestFileSinkFragmentDoesNotHideLaterEvents(t *testing.T) {
	w := &diskFillsWriter{}
	sink := NewFileSink(w)
	write := func(e *AuditEvent, wantErr bool) {
		t.Helper()
		if err := sink.Write([]*AuditEvent{e}); (err != nil) != wantErr {
			t.Fatalf("write %s: error %v, want an error: %v", e.RequestID, err, wantErr)
		}
	}
	write(auditedPlan("r1", "UCP-1"), false)
	w.full = true
	write(auditedPlan("r2", "UCP-2"), true) // lost, and counted so by the Auditor
	write(auditedPlan("r3", "UCP-3"), true) // the disk still full: another fragment
	w.full = false
	write(auditedPlan("r4", "UCP-4"), false)
	write(auditedPlan("r5", "UCP-5"), false)
	file := w.buf.String()
	t.Logf("audit file:\n%s", file)
	for _, plan := range []string{"UCP-1", "UCP-4", "UCP-5"} {
		got, err := Search(strings.NewReader(file), plan)
		if len(got) != 1 || got[0].PlanIDs[0] != plan {
			t.Errorf("search for %s: %d events (error %v); want the 1 written", plan, len(got), err)
		}
		if err == nil || !strings.Contains(err.Error(), "2 unreadable audit lines skipped (lines 2, 3)") {
			t.Errorf("search for %s: error %v; want the 2 fragments reported by line number", plan, err)
		} else if strings.Contains(err.Error(), "las-cad") || strings.Contains(err.Error(), "r2") {
			t.Errorf("the report quotes a fragment: %v", err)
		}
	}
}

// An audit file left ending part way through a line (the disk filled, or
// flagd crashed, before it last stopped) does not swallow the first event
// flagd appends when it starts again; a file that ends well gets no blank
// line.
func TestFileSinkAppendsAfterFragmentLeftBefore(t *testing.T) {
	for _, c := range []struct {
		name, before string
		wantLine     int // of the event appended
	}{
		{"fragment", `{"request_id":"r1","client_id":"las-c`, 2},
		{"whole lines", string(auditedPlan("r1", "UCP-1").AppendJSON(nil)) + "\n", 2},
		{"empty", "", 1},
	} {
		path := filepath.Join(t.TempDir(), "audit.jsonl")
		if err := os.WriteFile(path, []byte(c.before), 0o600); err != nil {
			t.Fatal(err)
		}
		f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600) // as flagd opens it
		if err != nil {
			t.Fatal(err)
		}
		sink := NewFileSink(f)
		if err := sink.Write([]*AuditEvent{auditedPlan("r2", "UCP-2")}); err != nil {
			t.Fatal(err)
		}
		sink.Close()
		raw, _ := os.ReadFile(path)
		lines := strings.Split(strings.TrimSuffix(string(raw), "\n"), "\n")
		if len(lines) != c.wantLine || !strings.Contains(lines[c.wantLine-1], `"request_id":"r2"`) {
			t.Errorf("%s: the event appended is not line %d of its own:\n%s", c.name, c.wantLine, raw)
		}
		if got, _ := Search(bytes.NewReader(raw), "UCP-2"); len(got) != 1 {
			t.Errorf("%s: search found %d events for the plan appended, want 1", c.name, len(got))
		}
	}
}

// Search passes every line that is not an audit event (a fragment, text,
// JSON of another shape, a line over a megabyte) and finds the events
// after it; it reports how many it skipped and their line numbers, never
// their content. Empty lines are not reported.
func TestSearchSkipsUnreadableLines(t *testing.T) {
	event := func(id string) string { return string(auditedPlan(id, "UCP-7").AppendJSON(nil)) }
	file := strings.Join([]string{
		event("r1"),
		`{"request_id":"r2","client_id":"secret-fragment`,
		"",
		"not json secret-text",
		"null",
		`["secret-array"]`,
		event("r3"),
		`{"request_id":"r4","plan_ids":["UCP-7"],"secret":"` + strings.Repeat("x", 2<<20) + `"}`,
		"  ",
		event("r5"), // the last line, with no newline
	}, "\n")
	got, err := Search(strings.NewReader(file), "UCP-7")
	var ids []string
	for _, e := range got {
		ids = append(ids, e.RequestID)
	}
	if strings.Join(ids, " ") != "r1 r3 r5" {
		t.Errorf("found events %v, want r1 r3 r5", ids)
	}
	if err == nil || err.Error() != "5 unreadable audit lines skipped (lines 2, 4, 5, 6, 8)" {
		t.Errorf("error %v; want the 5 unreadable lines listed", err)
	} else if strings.Contains(err.Error(), "secret") {
		t.Errorf("the report quotes a line: %v", err)
	}

	// A file of events alone: no error.
	if got, err := Search(strings.NewReader(event("r1")+"\n"+event("r2")+"\n"), "UCP-7"); err != nil || len(got) != 2 {
		t.Errorf("clean file: %d events, error %v", len(got), err)
	}
}

// A refusal's audit event carries its code, appended as encoding/json
// would write it, after the fields every event has (so readers of the
// older events are undisturbed); an answered lookup's event has none.
func TestAuditEventAppendJSONCode(t *testing.T) {
	for _, line := range []string{
		`{"request_id":"r-1","client_id":"cad","time":"2026-12-01T10:00:00.5Z","fields_supplied":["birth_date"],"tier":"refused","plan_ids":[],"code":"invalid_birth_date"}`,
		`{"request_id":"r-2","client_id":"cad","time":"2026-12-01T10:00:00Z","fields_supplied":[],"tier":"none","plan_ids":[]}`,
	} {
		var e AuditEvent
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatal(err)
		}
		std, _ := json.Marshal(&e)
		if got := e.AppendJSON(nil); string(got) != line || string(std) != line {
			t.Errorf("event read from\n%s\nappended as\n%s\nencoding/json\n%s", line, got, std)
		}
	}
}

// auditClients are a control room (cad), a client without the lookup
// scope (noscope) and one whose rate of 1 a second lets through only its
// burst of 10 on a clock that never moves (slow).
func auditClients(t *testing.T) *Clients {
	t.Helper()
	clock := time.Now().UnixNano()
	cs, err := ParseClients([]byte(`[{"id":"cad","token_sha256":"`+TokenHash(testToken)+`","scopes":["lookup"],"rate_per_s":1000},
		{"id":"noscope","token_sha256":"`+TokenHash("noscope-token")+`","scopes":[]},
		{"id":"slow","token_sha256":"`+TokenHash("slow-token")+`","scopes":["lookup"],"rate_per_s":1}]`),
		func() int64 { return clock })
	if err != nil {
		t.Fatal(err)
	}
	return cs
}

// Every lookup request from a known client that is given a request_id is
// audited under it, refused ones too (400 bad input or too little to
// search on, 403, 405): tier "refused", the answer's error code, the names
// of the fields the body supplied, no plans, and never a value. A request
// with no or an unknown token (401) has no client to attribute it to, and
// refusals that control load (429, 503) could flood the audit queue: those
// are counted in metrics, not audited.
func TestRefusedLookupsAudited(t *testing.T) {
	ix := matcher.NewIndex(nil)
	ix.Upsert("UCP-1", 1, &matcher.Patient{GivenNames: []string{"Ann"}, FamilyName: "Lee", BirthDate: "1940-01-02"})
	s, hs, url := testServerFor(t, DefaultConfig(), ix, auditClients(t))
	defer hs.Shutdown()
	var file bytes.Buffer // written by the auditor's goroutine; read after Close
	a := NewAuditor(NewFileSink(&file), 1024, slog.New(slog.DiscardHandler), prometheus.NewRegistry())
	s.SetAuditor(a)

	type answer struct {
		status    int
		requestID string
		code      string
	}
	send := func(method, token, body string) answer {
		t.Helper()
		req, _ := http.NewRequest(method, url+"/v1/lookup", strings.NewReader(body))
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var b struct {
			RequestID string `json:"request_id"`
			Error     *Error `json:"error"`
		}
		raw, _ := io.ReadAll(resp.Body)
		if err := json.Unmarshal(raw, &b); err != nil {
			t.Fatalf("answer %d %s: %v", resp.StatusCode, raw, err)
		}
		ans := answer{status: resp.StatusCode, requestID: b.RequestID}
		if b.Error != nil {
			ans.code = b.Error.Code
		}
		return ans
	}
	const values = `{"given_name":"Ann","family_name":"Lee","birth_date":"1940-01-02"}`
	type want struct {
		name         string
		got          answer
		status       int
		client, code string
		fields       string // as the event lists them, JSON
	}
	cases := []want{
		{"bad birth date", send("POST", testToken, `{"given_name":"Ann","family_name":"Lee","birth_date":"31/02/1940"}`),
			400, "cad", "invalid_birth_date", `["given_name","family_name","birth_date"]`},
		{"too little to search on", send("POST", testToken, `{"gender":"female","phone":""}`),
			400, "cad", "too_little_to_search", `["gender"]`},
		{"wrong JSON type", send("POST", testToken, `{"NHS_Number":9434765919,"family_name":"Lee","postcode":null}`),
			400, "cad", "invalid_nhs_number", `["nhs_number","family_name"]`},
		{"field given twice", send("POST", testToken, `{"given_name":"Ann","given_name":"Anne"}`),
			400, "cad", "invalid_given_name", `["given_name"]`},
		{"not JSON", send("POST", testToken, `{"given_name":"Ann",`),
			400, "cad", "invalid_json", `[]`},
		{"no lookup scope", send("POST", "noscope-token", values),
			403, "noscope", "forbidden", `["given_name","family_name","birth_date"]`},
		{"wrong method", send("GET", testToken, ""),
			405, "cad", "method_not_allowed", `[]`},
	}
	for range 10 { // the slow client's burst
		if got := send("POST", "slow-token", values); got.status != 200 {
			t.Fatalf("slow client within its burst: %+v", got)
		}
	}
	// Refusals that control load are counted, not audited.
	overRate := send("POST", "slow-token", values)
	s.SetReady(false)
	notReady := send("POST", testToken, values)
	s.SetReady(true)
	answered := send("POST", testToken, values)
	unknown := send("POST", "no-such-token", values)
	anonymous := send("POST", "", values)
	a.Close()

	events := map[string]string{} // by request ID: the event's line
	for _, line := range strings.Split(strings.TrimSpace(file.String()), "\n") {
		var e struct {
			RequestID string `json:"request_id"`
		}
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("audit line %q: %v", line, err)
		}
		events[e.RequestID] = line
	}
	for _, c := range cases {
		if c.got.status != c.status || c.got.code != c.code || c.got.requestID == "" {
			t.Errorf("%s: answered %+v; want %d %s with a request_id", c.name, c.got, c.status, c.code)
			continue
		}
		line, ok := events[c.got.requestID]
		if !ok {
			t.Errorf("%s: answered %d %s under request_id %s, which has no audit event", c.name, c.status, c.code, c.got.requestID)
			continue
		}
		for _, part := range []string{`"client_id":"` + c.client + `"`, `"fields_supplied":` + c.fields,
			`"tier":"refused"`, `"plan_ids":[]`, `"code":"` + c.code + `"`} {
			if !strings.Contains(line, part) {
				t.Errorf("%s: audit event lacks %s:\n%s", c.name, part, line)
			}
		}
		for _, value := range []string{"Ann", "Lee", "1940", "female", "9434765919", "UCP-1"} {
			if feedtest.Carries(line, value) {
				t.Errorf("%s: audit event carries %q:\n%s", c.name, value, line)
			}
		}
	}
	if line := events[answered.requestID]; answered.status != 200 || !strings.Contains(line, `"tier":"match","plan_ids":["UCP-1"]}`) {
		t.Errorf("answered lookup %+v: audit event %s; want the match, no code", answered, line)
	}
	for _, ans := range []answer{unknown, anonymous} {
		if _, ok := events[ans.requestID]; ans.status != 401 || ok {
			t.Errorf("lookup with no known token: %+v, audited %v; want 401, not audited", ans, ok)
		}
	}
	for _, c := range []struct {
		ans    answer
		status int
	}{{overRate, 429}, {notReady, 503}} {
		if _, ok := events[c.ans.requestID]; c.ans.status != c.status || ok {
			t.Errorf("refused to control load: %+v, audited %v; want %d, not audited", c.ans, ok, c.status)
		}
	}
	if n, want := len(events), len(cases)+10+1; n != want {
		t.Errorf("%d audit events, want %d (the refusals, the slow client's 10 lookups, one answered)", n, want)
	}
}
