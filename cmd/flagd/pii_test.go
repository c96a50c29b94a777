package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode"

	"github.com/segmentio/kafka-go"

	"github.com/planflag/planflag/alert"
	"github.com/planflag/planflag/feed"
	"github.com/planflag/planflag/feed/feedtest"
)

// The design's rule: "responses do not echo identifiers; logs and metrics
// carry none". These tests push events and lookups whose every identifier
// is a recognisable sentinel — and wrong-typed, invalid, over-long and
// non-UTF-8 variants of each — through every error path a user or a plan
// store can reach, and look for the sentinels in everything flagd says:
// its log, HTTP answers (errors and all), /metrics, the audit trail, the
// batch command's output and the errors it returns.

// Sentinel identifiers: nothing else flagd handles looks like them.
const (
	piiGiven    = "Zqxgiven"
	piiFamily   = "Zqxfamily"
	piiMaiden   = "Zqxmaiden"
	piiNHS      = "4862139752" // a valid NHS number (modulus 11)
	piiNHSBad   = "4862139753" // its check digit wrong
	piiDOB      = "1923-11-29"
	piiDOBBad   = "1923-13-29" // no month 13
	piiDOBUK    = "29/13/1923"
	piiPostcode = "XQ7 3ZZ"
	piiPCBad    = "XQ77 3ZZZ"
	piiPhone    = "07700 900461"
	piiPhoneBad = "07700 900461 ext 9"
	piiAddress  = "17 Zqxville Crescent"
	piiCity     = "Zqxtown"
	piiGender   = "zqxgender"
)

// piiFragments are what a leak would show, looked for in text lower-cased
// and with spaces, dashes, slashes and dots taken out (so "4862 139 752",
// "07700-900461" and "29/11/1923" are found too). Each is long or odd
// enough not to turn up by chance in an ID, a time or a count.
var piiFragments = []string{
	"zqx",        // every name, address, city and gender sentinel
	"486213975",  // the NHS number and its invalid variants
	"19231129",   // the birth date, ISO
	"29111923",   // the birth date, UK order
	"19231329",   // the impossible birth date, ISO
	"29131923",   // the impossible birth date, UK order
	"xq73zz",     // the postcode
	"xq773zzz",   // the invalid postcode
	"770090046",  // the phone, in any form
	"7700900461", // the phone as a number
}

// flatten is text as piiFragments are looked for in it.
func flatten(s string) string {
	return strings.Map(func(r rune) rune {
		switch r {
		case ' ', '-', '/', '.', '\t', '\r', '\n':
			return -1
		}
		return unicode.ToLower(r)
	}, s)
}

// piiLeaks returns the sentinel fragments in text.
func piiLeaks(text string) []string {
	flat := flatten(text)
	var found []string
	for _, f := range piiFragments {
		if strings.Contains(flat, f) {
			found = append(found, f)
		}
	}
	return found
}

// checkNoPII fails the test for every sentinel fragment in text, showing
// the lines (cut short) that hold it.
func checkNoPII(t *testing.T, where, text string) {
	t.Helper()
	for _, f := range piiLeaks(text) {
		var shown []string
		for _, line := range strings.Split(text, "\n") {
			if strings.Contains(flatten(line), f) && len(shown) < 3 {
				if len(line) > 400 {
					line = line[:400] + "…"
				}
				shown = append(shown, line)
			}
		}
		t.Errorf("%s: personal data leaked (%q):\n%s", where, f, strings.Join(shown, "\n"))
	}
}

// TestPIICheckFinds: the check finds each sentinel in the forms a leak
// would take (a check that cannot fail guards nothing), and passes the
// kind of line flagd should write.
func TestPIICheckFinds(t *testing.T) {
	for _, leak := range []string{
		`{"msg":"x","err":"parsing time \"` + piiDOBBad + `\""}`,
		`family "` + strings.ToUpper(piiFamily) + `"`, piiMaiden, piiAddress, piiCity, piiGender,
		"nhs 486 213 9752", "nhs " + piiNHSBad, `invalid "29/11/1923"`, piiDOBUK, "xq7 3zz", piiPCBad,
		"+44 7700 900461", `"phone":7700900461`, piiPhoneBad,
	} {
		if len(piiLeaks(leak)) == 0 {
			t.Errorf("the check misses %q", leak)
		}
	}
	checkNoPII(t, "clean text", `{"time":"2026-11-24T10:00:00.123456789Z","level":"WARN","msg":"dead letter","where":"line 3: dead letter: field patient.birth_date: want a string, got JSON number","request_id":"0a1b2c3d4e5f-z9"}`)
}

// piiPatient is a plan holder whose every identifier is a sentinel.
func piiPatient() map[string]any {
	return map[string]any{
		"nhs_number": piiNHS, "given_names": []any{piiGiven, "Ann"}, "family_name": piiFamily,
		"other_names": []any{map[string]any{"given_names": []any{piiGiven}, "family_name": piiMaiden, "use": "maiden"}},
		"birth_date":  piiDOB, "gender": "female",
		"addresses": []any{map[string]any{"lines": []any{"Flat 2", piiAddress}, "city": piiCity, "postcode": piiPostcode}},
		"phones":    []any{piiPhone},
	}
}

// piiLong is a value far longer than any identifier.
var piiLong = strings.Repeat(piiFamily+" "+piiNHS+" ", 3000)

// piiBadPatientFields are wrong-typed and invalid values of each patient
// field, each carrying a sentinel.
var piiBadPatientFields = map[string][]any{
	"nhs_number":  {4862139752, []any{piiNHS}, map[string]any{"v": piiNHS}, true, piiNHSBad, "486213975X", "nhs " + piiNHS, piiLong},
	"given_names": {piiGiven, []any{4862139752}, []any{[]any{piiGiven}}, map[string]any{piiGiven: piiNHS}, []any{piiLong}},
	"family_name": {[]any{piiFamily}, 4862139752, map[string]any{"f": piiFamily}, piiLong},
	"birth_date":  {19231129, []any{piiDOB}, piiDOBBad, piiDOBUK, piiDOB + "T00:00:00Z", "29.11.1923x", piiLong},
	"gender":      {4862139752, []any{piiGender}, piiGender},
	"addresses": {piiAddress, map[string]any{"postcode": piiPostcode}, []any{piiAddress},
		[]any{map[string]any{"lines": piiAddress}}, []any{map[string]any{"lines": []any{7700900461}}},
		[]any{map[string]any{"city": []any{piiCity}}}, []any{map[string]any{"postcode": 19231129}},
		[]any{map[string]any{"postcode": piiPCBad}}, []any{map[string]any{"postcode": piiLong}}},
	"phones": {piiPhone, []any{7700900461}, []any{map[string]any{"p": piiPhone}}, []any{piiPhoneBad}, []any{"0770090046"}, []any{piiLong}},
	"other_names": {piiMaiden, []any{piiMaiden}, []any{map[string]any{"family_name": 4862139752}},
		[]any{map[string]any{"given_names": piiGiven}}, []any{map[string]any{"use": []any{piiMaiden}}}},
}

// piiEvents are plan events, one a line: a good plan (UCP-PII-GOOD), then
// for every field each bad value (kept with the field left out, or a dead
// letter), malformed envelopes and lines that are not events at all.
func piiEvents() []string {
	line := func(v any) string {
		b, err := json.Marshal(v)
		if err != nil {
			panic(err)
		}
		return string(b)
	}
	up := func(id string, patient any) map[string]any {
		return map[string]any{"type": "plan.upserted", "plan_id": id, "version": 1, "occurred_at": "2026-11-24T10:00:00Z", "patient": patient}
	}
	out := []string{line(up("UCP-PII-GOOD", piiPatient()))}
	n := 0
	for _, field := range []string{"nhs_number", "given_names", "family_name", "birth_date", "gender", "addresses", "phones", "other_names"} {
		for _, bad := range piiBadPatientFields[field] {
			p := piiPatient()
			p[field] = bad
			n++
			out = append(out, line(up(fmt.Sprintf("UCP-PII-%03d", n), p)))
		}
	}
	envelope := []map[string]any{
		{"patient": piiFamily},
		{"patient": []any{piiPatient()}},
		{"type": piiFamily},
		{"type": 4862139752},
		{"plan_id": 4862139752},
		{"plan_id": nil},
		{"version": piiNHS},
		{"version": -19231129},
		{"version": 1.5},
		{"version": nil},
		{"occurred_at": piiDOB},
		{"occurred_at": piiDOBBad + "T10:00:00Z"},
		{"occurred_at": 19231129},
	}
	for _, change := range envelope {
		n++
		ev := up(fmt.Sprintf("UCP-PII-%03d", n), piiPatient())
		for k, v := range change {
			ev[k] = v
		}
		out = append(out, line(ev))
	}
	// A withdrawal needs only its type, plan ID and version: it is applied
	// despite malformed fields, which are named, not quoted.
	out = append(out, line(map[string]any{"type": "plan.withdrawn", "plan_id": "UCP-PII-001", "version": 2,
		"occurred_at": piiDOBBad, "patient": piiFamily}))
	out = append(out, line(map[string]any{"type": "plan.withdrawn", "plan_id": "UCP-PII-002", "version": 2,
		"occurred_at": "2026-11-25T08:00:00Z", "patient": map[string]any{"nhs_number": 4862139752}}))
	// Not events: broken JSON, another JSON value, bad bytes.
	good := line(up("UCP-PII-X", piiPatient()))
	out = append(out,
		good[:len(good)/2],
		good[:len(good)-1]+`,"family_name":"`+piiFamily+`"`,
		`"`+piiFamily+` `+piiNHS+`"`,
		`[`+good+`]`,
		piiNHS,
		piiFamily+" "+piiDOB+" "+piiPostcode,
		strings.Replace(good, piiFamily, piiFamily+"\xff\xfe", 1),
		strings.Replace(good, `"`+piiFamily+`"`, `"`+piiFamily+`\ud800\`+`"`, 1),
		strings.Replace(good, `"type"`, "\x00\"type\"", 1),
		// An event over the 1 MiB line limit.
		line(up("UCP-PII-HUGE", map[string]any{"family_name": strings.Repeat(piiFamily, 1<<17)})),
	)
	return out
}

func writeLines(t *testing.T, name string, lines []string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// piiQuery is a lookup that finds the sentinel plans.
func piiQuery() map[string]any {
	return map[string]any{"given_name": piiGiven, "family_name": piiFamily, "birth_date": piiDOB,
		"postcode": piiPostcode, "phone": piiPhone, "nhs_number": piiNHS, "gender": "female", "address": piiAddress}
}

// piiLookups are lookup request bodies: good ones, then for every field
// each bad value, then bodies that are not lookups at all.
func piiLookups() []string {
	body := func(v any) string {
		b, err := json.Marshal(v)
		if err != nil {
			panic(err)
		}
		return string(b)
	}
	out := []string{body(piiQuery()), body(map[string]any{"given_name": piiGiven, "family_name": piiFamily}),
		body(map[string]any{"family_name": piiFamily, "postcode": piiPostcode, "address": piiAddress})}
	longish := strings.Repeat(piiFamily, 300) // within the HTTP body limit
	bad := map[string][]any{
		"nhs_number":  {4862139752, []any{piiNHS}, map[string]any{"n": piiNHS}, true, piiNHSBad, "486213975X", "nhs " + piiNHS, longish},
		"given_name":  {4862139752, []any{piiGiven}, map[string]any{"g": piiGiven}, false, "4862139752", longish},
		"family_name": {4862139752, []any{piiFamily}, map[string]any{"f": piiFamily}, "19231129", longish},
		"birth_date":  {19231129, []any{piiDOB}, piiDOBBad, piiDOBUK, piiDOB + "T00:00:00Z", "29.11.1923x", "born " + piiDOB, longish},
		"gender":      {4862139752, []any{piiGender}, piiGender, longish},
		"postcode":    {19231129, []any{piiPostcode}, piiPCBad, "XQ7 3ZZ " + piiFamily, longish},
		"address":     {7700900461, []any{piiAddress}, map[string]any{"a": piiAddress}},
		"phone":       {7700900461, []any{piiPhone}, piiPhoneBad, "0770090046", "+44 " + piiNHS + piiNHS, longish},
	}
	for _, field := range []string{"nhs_number", "given_name", "family_name", "birth_date", "gender", "postcode", "address", "phone"} {
		for _, v := range bad[field] {
			q := piiQuery()
			q[field] = v
			out = append(out, body(q))
			// Alone, or nearly: the field's own error, or too little to search on.
			out = append(out, body(map[string]any{field: v}), body(map[string]any{field: v, "given_name": piiGiven}))
		}
	}
	good := body(piiQuery())
	out = append(out,
		good[:len(good)/2],
		good[:len(good)-1]+`,"family_name":`,
		`[`+good+`]`,
		`"`+piiFamily+`"`,
		piiNHS,
		piiFamily+" "+piiDOB,
		strings.Replace(good, piiFamily, piiFamily+"\xff\xfe", 1),
		strings.Replace(good, `"`+piiFamily+`"`, `"`+piiFamily+`\ud800\`+`"`, 1),
		`{"query":`+good+`}`,
		`{"query":"`+piiFamily+`","note":"`+piiNHS+`"}`,
		`{"query":[`+good+`]}`,
		`{"`+piiFamily+`":"`+piiNHS+`"}`,
	)
	return out
}

// linkRE finds a plan link's token in an answer.
var linkRE = regexp.MustCompile(`\?t=([A-Za-z0-9_.-]+)`)

// readableLinks rewrites each plan link's token in text as what it says:
// its version, key ID, plan and client decoded from base64, expiry and
// nonce; its MAC, random bytes that hold nothing readable (and would now
// and then spell a fragment by chance), is left out.
func readableLinks(text string) string {
	return linkRE.ReplaceAllStringFunc(text, func(m string) string {
		parts := strings.Split(m[len("?t="):], ".")
		if len(parts) != 7 {
			return m // not a link token: checked as it is
		}
		for _, i := range []int{2, 3} {
			if b, err := base64.RawURLEncoding.DecodeString(parts[i]); err == nil {
				parts[i] = string(b)
			}
		}
		return "?t=" + strings.Join(parts[:6], " ") + " MAC"
	})
}

// httpAnswer is everything an HTTP answer says: status line, headers, body.
// finalMetrics reads m's /metrics, then closes m (noting it in closed), so
// that what shutdown logs is checked too.
func finalMetrics(t *testing.T, m *Main, closed *bool) string {
	t.Helper()
	resp, err := http.Get("http://" + m.Addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics := httpAnswer(resp)
	if err := m.Close(); err != nil {
		t.Errorf("close: %v", err)
	}
	*closed = true
	return metrics
}

func httpAnswer(resp *http.Response) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s\n", resp.Status)
	_ = resp.Header.Write(&b)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	b.Write(body)
	return b.String()
}

// rawHTTP sends bytes that need not be a valid HTTP request and returns
// what the server answers.
func rawHTTP(t *testing.T, addr, req string) string {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, req); err != nil {
		return ""
	}
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.CloseWrite()
	}
	got, _ := io.ReadAll(bufio.NewReader(c))
	return string(got)
}

// TestServiceNoPersonalData boots flagd on a file of sentinel events (good,
// wrong-typed, invalid, malformed) with links and an audit file, sends
// sentinel lookups through every answer it gives (200, 400, 401, 403, 404,
// 405, 408/400 for malformed HTTP, 413, 429, 431), and finds no sentinel
// in its log, answers, /metrics or audit trail.
func TestServiceNoPersonalData(t *testing.T) {
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "keys.json")
	if err := os.WriteFile(keyFile, []byte(`{"active":"k1","keys":{"k1":"`+strings.Repeat("QUJD", 11)+`"}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	audit := filepath.Join(dir, "audit.jsonl")
	var log feedtest.LogBuffer
	m := bootLogged(t, &log, writeLines(t, "events.jsonl", piiEvents()), "-audit.file", audit,
		"-link.key-file", keyFile, "-link.base-url", "https://plans.example/open")
	closed := false
	defer func() {
		if !closed {
			m.Close()
		}
	}()
	waitReady(t, m)

	var answers strings.Builder
	send := func(method, path, token, body string) int {
		t.Helper()
		req, _ := http.NewRequest(method, "http://"+m.Addr+path, strings.NewReader(body))
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		status := resp.StatusCode
		answers.WriteString(httpAnswer(resp) + "\n")
		return status
	}

	// The good plan is found: the test's sentinels reach the index.
	if status := send("POST", "/v1/lookup", tokenCAD, piiLookups()[0]); status != 200 ||
		!strings.Contains(answers.String(), `"plan_id":"UCP-PII-`) || !strings.Contains(answers.String(), `"tier":"match"`) {
		t.Fatalf("the sentinel plan is not matched: %s", answers.String())
	}
	statuses := map[int]int{}
	for _, body := range piiLookups() {
		statuses[send("POST", "/v1/lookup", tokenCAD, body)]++
	}
	if statuses[200] == 0 || statuses[400] < 40 {
		t.Errorf("answers by status %v: want 200s and many 400s", statuses)
	}
	q := piiLookups()[0]
	for _, c := range []struct {
		method, path, token, body string
		status                    int
	}{
		{"POST", "/v1/lookup", "", q, 401},
		{"POST", "/v1/lookup", "tok-" + piiNHS, q, 401},
		{"POST", "/v1/lookup", tokenNoScope, q, 403},
		{"GET", "/v1/lookup?family_name=" + piiFamily + "&nhs_number=" + piiNHS, tokenCAD, "", 405},
		{"POST", "/v1/lookup/" + piiFamily + "?dob=" + piiDOB, tokenCAD, q, 404},
		{"POST", "/" + piiNHS, tokenCAD, q, 404},
		{"POST", "/v1/lookup", tokenCAD, `{"family_name":"` + strings.Repeat(piiFamily, 1000) + `"}`, 413},
	} {
		if got := send(c.method, c.path, c.token, c.body); got != c.status {
			t.Errorf("%s %.40s: %d, want %d", c.method, c.path, got, c.status)
		}
	}
	limited := false
	for range 15 { // the slow client's burst is 10
		limited = send("POST", "/v1/lookup", tokenSlow, q) == 429 || limited
	}
	if !limited {
		t.Error("the slow client was never limited")
	}
	// Requests fasthttp itself cannot read, with sentinels where it reads.
	for _, raw := range []string{
		"POST /v1/lookup HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer " + tokenCAD + "\r\nContent-Length: " + piiNHS + "x\r\n\r\n" + q,
		"POST /v1/lookup?" + piiFamily + " " + piiDOB + " HTTP/1.1\r\nHost: a\r\n\r\n",
		"POST /v1/lookup HTTP/1.1\r\nHost: a\r\nX-Caller " + piiFamily + " " + piiPhone + "\r\n\r\n",
		"POST /v1/lookup HTTP/1.1\r\nHost: a\r\nX-Caller: " + strings.Repeat(piiFamily, 2000) + "\r\n\r\n",
		"POST /v1/lookup HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer " + tokenCAD + "\r\nContent-Length: 9000\r\n\r\n" + strings.Repeat(piiNHS, 900),
		"POST /v1/lookup HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz" + piiFamily + "\r\n" + q + "\r\n0\r\n\r\n",
		piiFamily + " " + piiNHS + "\r\n\r\n",
	} {
		answers.WriteString(rawHTTP(t, m.Addr, raw) + "\n")
	}

	metrics := finalMetrics(t, m, &closed)
	trail, err := os.ReadFile(audit)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(trail, []byte("UCP-PII-")) {
		t.Errorf("the audit trail lacks the lookups: %.400s", trail)
	}
	// The file's dead letters are logged (first few) without their data.
	if !strings.Contains(log.String(), `"msg":"dead letter"`) {
		t.Errorf("no dead letter logged:\n%.2000s", log.String())
	}
	checkNoPII(t, "log", log.String())
	if !strings.Contains(readableLinks(answers.String()), "?t=v1 k1 UCP-PII-") {
		t.Errorf("answers carry no plan links, or links of another form")
	}
	checkNoPII(t, "HTTP answers", readableLinks(answers.String()))
	checkNoPII(t, "/metrics", metrics)
	checkNoPII(t, "audit trail", string(trail))
}

// piiDeadLetters are the sentinel events a loader refuses.
func piiDeadLetters() []string {
	var dead []string
	for _, l := range piiEvents() {
		if _, err := feed.Decode([]byte(l)); err != nil || len(l) > 1<<20 {
			dead = append(dead, l)
		}
	}
	return dead
}

// TestServiceNoPersonalDataUnloadable: an events file none of whose events
// can be read stops flagd with an error that names the first dead letter's
// line and reason, whatever it is, and not its data.
func TestServiceNoPersonalDataUnloadable(t *testing.T) {
	dead := piiDeadLetters()
	if len(dead) < 20 {
		t.Fatalf("only %d of the sentinel events are dead letters", len(dead))
	}
	for _, first := range dead {
		var log feedtest.LogBuffer
		m := bootLogged(t, &log, writeLines(t, "bad.jsonl", []string{first, piiFamily + " " + piiNHS}))
		var err error
		select {
		case err = <-m.Failed():
		case <-time.After(10 * time.Second):
			t.Fatalf("an unreadable events file did not stop flagd (first line %.80s)", first)
		}
		m.Close()
		if err == nil {
			t.Fatalf("no error for %.80s", first)
		}
		checkNoPII(t, "flagd's exit error", "flagd: "+err.Error())
		checkNoPII(t, "log", log.String())
	}
}

// TestLookupBatchNoPersonalData: `flagd lookup` on the sentinel events,
// every sentinel lookup (plain and wrapped) and lines that are not lookups
// writes answers and errors that quote none of them, and its log and the
// error of an unreadable events file quote none either.
func TestLookupBatchNoPersonalData(t *testing.T) {
	events := writeLines(t, "events.jsonl", piiEvents())
	var in []string
	for _, l := range piiLookups() {
		in = append(in, l, `{"query":`+l+`,"expect":"`+piiFamily+`"}`)
	}
	in = append(in, strings.Repeat(piiFamily, 8000)) // over the line limit
	var out, errOut bytes.Buffer
	if err := runLookup([]string{"-events", events}, strings.NewReader(strings.Join(in, "\n")), &out, &errOut); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(out.String(), "\n"); n != len(in) {
		t.Fatalf("%d answers to %d lines", n, len(in))
	}
	if !strings.Contains(out.String(), `"plan_id":"UCP-PII-`) {
		t.Errorf("the sentinel plan is never found:\n%.1000s", out.String())
	}
	checkNoPII(t, "flagd lookup answers", out.String())
	checkNoPII(t, "flagd lookup log", errOut.String())

	// Nothing readable: the error names the first dead letter.
	unreadable := writeLines(t, "bad.jsonl", append(piiDeadLetters(), piiNHS))
	errOut.Reset()
	err := runLookup([]string{"-events", unreadable}, strings.NewReader(""), io.Discard, &errOut)
	if err == nil {
		t.Fatal("no error for an events file with nothing readable")
	}
	checkNoPII(t, "flagd lookup error", "flagd: "+err.Error())
	checkNoPII(t, "flagd lookup log", errOut.String())
}

// readTopic returns the records of every partition of topic once there are
// at least want of them, or fails the test after within.
func readTopic(t *testing.T, brokers []string, topic string, want int, within time.Duration) []kafka.Message {
	t.Helper()
	cl := &kafka.Client{Addr: kafka.TCP(brokers...), Timeout: 10 * time.Second}
	deadline := time.Now().Add(within)
	for {
		var out []kafka.Message
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		md, err := cl.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{topic}})
		if err == nil && len(md.Topics) == 1 && md.Topics[0].Error == nil {
			var reqs []kafka.OffsetRequest
			for _, p := range md.Topics[0].Partitions {
				reqs = append(reqs, kafka.FirstOffsetOf(p.ID), kafka.LastOffsetOf(p.ID))
			}
			offs, lerr := cl.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{topic: reqs}})
			err = lerr
			var parts []kafka.PartitionOffsets
			if lerr == nil { // offs is nil on an error
				parts = offs.Topics[topic]
			}
			for _, po := range parts {
				if err != nil || po.FirstOffset >= po.LastOffset {
					continue
				}
				r := kafka.NewReader(kafka.ReaderConfig{Brokers: brokers, Topic: topic, Partition: po.Partition,
					MinBytes: 1, MaxBytes: 16 << 20, MaxWait: 100 * time.Millisecond})
				_ = r.SetOffset(po.FirstOffset)
				for {
					msg, rerr := r.ReadMessage(ctx)
					if rerr != nil {
						err = rerr
						break
					}
					out = append(out, msg)
					if msg.Offset+1 >= po.LastOffset {
						break
					}
				}
				r.Close()
			}
		}
		cancel()
		if err == nil && len(out) >= want {
			return out
		}
		if time.Now().After(deadline) {
			t.Fatalf("topic %s: %d records (err %v), want %d", topic, len(out), err, want)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// headersText is a record's headers as text, one a line.
func headersText(m kafka.Message) string {
	var b strings.Builder
	for _, h := range m.Headers {
		fmt.Fprintf(&b, "%s: %s\n", h.Key, h.Value)
	}
	return b.String()
}

// TestFollowNoPersonalData follows a Kafka topic of sentinel events (good,
// wrong-typed, invalid, malformed, keyed wrong) with a Redis snapshot and
// push alerts to a webhook that always fails; then starts a second flagd
// warm from the snapshot. Neither's log, answers or /metrics, nor the
// dead-letter records' headers (their values are the original events, the
// recovery path), nor the alerts, nor the alert dead letters carry a
// sentinel.
func TestFollowNoPersonalData(t *testing.T) {
	k := newKafkaEnv(t)
	redisAddr := feedtest.Redis(t)
	var hookMu sync.Mutex
	var hookSaw strings.Builder
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		hookMu.Lock()
		fmt.Fprintf(&hookSaw, "%s %s\n", r.URL, body)
		hookMu.Unlock()
		http.Error(w, "down", http.StatusInternalServerError)
	}))
	defer hook.Close()
	dir := t.TempDir()
	b, _ := json.Marshal([]alert.ClientConfig{{ID: "las-cad", TokenSHA256: alert.TokenHash(tokenCAD),
		Scopes: []string{"lookup"}, RatePerS: 1e6, WebhookURL: hook.URL + "/hook", WebhookSecret: "push-secret-0123456789"}})
	clients := filepath.Join(dir, "clients.json")
	if err := os.WriteFile(clients, b, 0o600); err != nil {
		t.Fatal(err)
	}

	// Every sentinel event keyed by its plan ID (a refused one by a key of
	// its own), and the good one under another plan's key (the compacted
	// topic takes no record without a key).
	var msgs []kafka.Message
	dead := 0
	trace := []kafka.Header{{Key: "trace-id", Value: []byte("t-0001")}}
	for i, l := range piiEvents() {
		if len(l) > 512<<10 {
			continue // over the broker's message limit
		}
		var env struct {
			PlanID any `json:"plan_id"`
		}
		_ = json.Unmarshal([]byte(l), &env)
		key, ok := env.PlanID.(string)
		if !ok {
			key = fmt.Sprintf("UCP-PII-K%03d", i)
		}
		if _, err := feed.Decode([]byte(l)); err != nil {
			dead++
		}
		msgs = append(msgs, kafka.Message{Key: []byte(key), Value: []byte(l), Headers: trace})
	}
	good := piiEvents()[0]
	msgs = append(msgs, kafka.Message{Key: []byte("UCP-PII-OTHER"), Value: []byte(good), Headers: trace})
	dead++
	k.publish(t, msgs...)

	boot := func(log io.Writer) *Main {
		cfg, err := parseConfig([]string{"-http.addr", "127.0.0.1:0", "-clients", clients, "-kafka.brokers", strings.Join(k.brokers, ","),
			"-kafka.topic", k.topic, "-redis.addr", redisAddr, "-alerts.topic", k.topic + "-alerts", "-audit.topic", k.topic + "-audit",
			"-snapshot.interval", "1s", "-shutdown.timeout", "10s"}, io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		m := &Main{Config: cfg, Log: slog.New(slog.NewJSONHandler(log, &slog.HandlerOptions{Level: slog.LevelDebug})), Stdout: io.Discard}
		if err := m.Run(context.Background()); err != nil {
			t.Fatal(err)
		}
		return m
	}
	var log1, log2 feedtest.LogBuffer
	m := boot(&log1)
	closed := false
	defer func() {
		if !closed {
			m.Close()
		}
	}()
	for i := 0; ; i++ {
		if r, err := http.Get("http://" + m.Addr + "/readyz"); err == nil {
			r.Body.Close()
			if r.StatusCode == 200 {
				break
			}
		}
		if i == 600 {
			t.Fatal("never ready")
		}
		time.Sleep(50 * time.Millisecond)
	}

	var answers strings.Builder
	lookup := func(m *Main, body string) []string {
		req, _ := http.NewRequest("POST", "http://"+m.Addr+"/v1/lookup", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+tokenCAD)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		text := httpAnswer(resp)
		answers.WriteString(text + "\n")
		var a struct {
			Candidates []struct {
				PlanID string `json:"plan_id"`
			} `json:"candidates"`
		}
		_ = json.Unmarshal([]byte(text[strings.Index(text, "{"):]), &a)
		var ids []string
		for _, c := range a.Candidates {
			ids = append(ids, c.PlanID)
		}
		return ids
	}
	plans := lookup(m, piiLookups()[0])
	if len(plans) == 0 {
		t.Fatalf("the sentinel plans are not found: %s", answers.String())
	}
	for _, body := range piiLookups()[1:] {
		lookup(m, body)
	}

	// A change to a plan the client was given: its alert fails at the
	// webhook every time and is dead-lettered.
	time.Sleep(300 * time.Millisecond) // the recent-lookups registry is written in the background
	var ev map[string]any
	_ = json.Unmarshal([]byte(good), &ev)
	// A version new to this run: alert claims in Redis outlive a run.
	ev["plan_id"], ev["version"], ev["occurred_at"] = plans[0], time.Now().UnixMilli(), time.Now().UTC().Format(time.RFC3339Nano)
	changed, _ := json.Marshal(ev)
	k.publish(t, kafka.Message{Key: []byte(plans[0]), Value: changed})
	t.Cleanup(func() {
		if t.Failed() {
			hookMu.Lock()
			defer hookMu.Unlock()
			t.Logf("webhook calls:\n%s\nlog:\n%s", hookSaw.String(), log1.String())
		}
	})
	feedtest.Eventually(t, 60*time.Second, "the alert dead-lettered", func() bool {
		return strings.Contains(log1.String(), "push alert dead-lettered after retries")
	})

	dlq := readTopic(t, k.brokers, k.topic+".dead-letters", dead, 30*time.Second)
	alertDead := readTopic(t, k.brokers, k.topic+"-alerts.dead-letters", 1, 30*time.Second)
	alerts := readTopic(t, k.brokers, k.topic+"-alerts", 1, 30*time.Second)
	audit := readTopic(t, k.brokers, k.topic+"-audit", 1, 30*time.Second)
	metrics := finalMetrics(t, m, &closed)

	// A second replica, warm from the snapshot the first wrote.
	m2 := boot(&log2)
	feedtest.Eventually(t, 60*time.Second, "the second replica ready", func() bool {
		r, err := http.Get("http://" + m2.Addr + "/readyz")
		if err != nil {
			return false
		}
		r.Body.Close()
		return r.StatusCode == 200
	})
	if !strings.Contains(log2.String(), "warm start from snapshot") {
		t.Errorf("the second replica did not start warm:\n%.3000s", log2.String())
	}
	if len(lookup(m2, piiLookups()[0])) == 0 {
		t.Error("the second replica does not find the sentinel plans")
	}
	closed2 := false
	metrics += finalMetrics(t, m2, &closed2)

	var dlqHeaders, recovered int
	var headers strings.Builder
	for _, d := range dlq {
		headers.WriteString(headersText(d))
		if len(d.Headers) > 0 {
			dlqHeaders++
		}
		if len(piiLeaks(string(d.Value))) > 0 {
			recovered++ // the original event, kept for recovery
		}
	}
	if len(dlq) != dead || dlqHeaders != dead || recovered == 0 {
		t.Errorf("%d dead letters (%d with headers, %d holding their event), want %d", len(dlq), dlqHeaders, recovered, dead)
	}
	var alertText strings.Builder
	for _, a := range append(alerts, alertDead...) {
		fmt.Fprintf(&alertText, "%s %s\n%s", a.Key, a.Value, headersText(a))
	}
	var auditText strings.Builder
	for _, a := range audit {
		fmt.Fprintf(&auditText, "%s %s\n%s", a.Key, a.Value, headersText(a))
	}
	hookMu.Lock()
	webhook := hookSaw.String()
	hookMu.Unlock()
	if webhook == "" {
		t.Error("the webhook was never called")
	}
	checkNoPII(t, "first replica's log", log1.String())
	checkNoPII(t, "second replica's log", log2.String())
	checkNoPII(t, "HTTP answers", answers.String())
	checkNoPII(t, "/metrics", metrics)
	checkNoPII(t, "dead-letter headers", headers.String())
	checkNoPII(t, "plan alerts and their dead letters", alertText.String())
	checkNoPII(t, "webhook calls", webhook)
	checkNoPII(t, "audit topic", auditText.String())
}
