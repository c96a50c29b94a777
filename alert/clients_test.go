package alert

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// Two clients holding one token would have every lookup put down to one of
// them (its scopes, rate, audit and links): the clients file is refused,
// naming both clients and never the hash.
func TestParseClientsDuplicateToken(t *testing.T) {
	h := TokenHash("shared")
	check := func(second, want string) {
		t.Helper()
		_, err := ParseClients([]byte(`[{"id":"las-cad","token_sha256":"`+h+`","scopes":["lookup"]},
			{"id":"other","token_sha256":"`+TokenHash("own")+`"},
			{"id":"readonly","token_sha256":"`+second+`","scopes":[]}]`), func() int64 { return 0 })
		if want == "" {
			if err != nil {
				t.Errorf("distinct tokens refused: %v", err)
			}
			return
		}
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("error %v, want one saying %q", err, want)
		}
		if strings.Contains(strings.ToLower(err.Error()), h[:16]) {
			t.Errorf("error names the token hash: %v", err)
		}
	}
	check(h, "entry 3 (readonly) has the same token as entry 1 (las-cad)")
	check(strings.ToUpper(h), "entry 3 (readonly) has the same token as entry 1 (las-cad)") // the same hash in capitals
	check(TokenHash("another"), "")
}

// A clients file that holds no clients, or an entry with a key the file
// does not know (a misspelt rate_per_s would leave the default rate), is
// refused, naming the file and the problem.
func TestLoadClientsRefusesEmptyAndUnknownKeys(t *testing.T) {
	h := TokenHash("t")
	for _, c := range []struct{ body, want string }{
		{``, "is empty"},
		{`[]`, "holds no clients"},
		{`null`, "holds no clients"},
		{`[{"id":"a","token_sha256":"` + h + `","scopes":["lookup"],"rate_per_sec":5}]`, `unknown field "rate_per_sec"`},
		{`[{"id":"a",`, "clients.json"},
		{`[{"id":"a","token_sha256":"` + h + `","scopes":["lookup"]}]]`, "more after the list"},
		{`[{"id":"a","token_sha256":"` + h + `","scopes":["lookup"]}]}`, "more after the list"},
	} {
		path := filepath.Join(t.TempDir(), "clients.json")
		if err := os.WriteFile(path, []byte(c.body), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := LoadClients(path, func() int64 { return 0 })
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), path) {
			t.Errorf("%q: error %v, want one naming %s and saying %q", c.body, err, path, c.want)
		}
	}
}

// A clients file read again: a revoked token stops authenticating at once,
// a new one starts, and a client kept keeps its token bucket (no fresh
// burst from reading the file again) at its new rate.
func TestClientsReplace(t *testing.T) {
	var clock int64
	now := func() int64 { return clock }
	parse := func(js string) *Clients {
		t.Helper()
		cs, err := ParseClients([]byte(js), now)
		if err != nil {
			t.Fatal(err)
		}
		return cs
	}
	cs := parse(`[{"id":"cad","token_sha256":"` + TokenHash("cad-1") + `","scopes":["lookup"],"rate_per_s":10},
		{"id":"old","token_sha256":"` + TokenHash("old") + `","scopes":["lookup"]}]`)
	cad := cs.Authenticate([]byte("cad-1"))
	for cad.limiter.tokens >= 1 {
		cad.limiter.allow()
	}
	added, removed, kept := cs.Replace(parse(`[{"id":"cad","token_sha256":"` + TokenHash("cad-2") + `","scopes":["lookup"],"rate_per_s":20},
		{"id":"new","token_sha256":"` + TokenHash("new") + `","scopes":["lookup"]}]`))
	if !slices.Equal(added, []string{"new"}) || !slices.Equal(removed, []string{"old"}) || kept != 1 {
		t.Errorf("added %v removed %v kept %d; want [new] [old] 1", added, removed, kept)
	}
	for tok, want := range map[string]string{"cad-1": "", "old": "", "cad-2": "cad", "new": "new"} {
		got := ""
		if c := cs.Authenticate([]byte(tok)); c != nil {
			got = c.ID
		}
		if got != want {
			t.Errorf("token %s authenticates as %q, want %q", tok, got, want)
		}
	}
	cad2 := cs.Authenticate([]byte("cad-2"))
	if ok, _ := cad2.limiter.allow(); ok {
		t.Error("a client kept got a fresh burst from the file read again")
	}
	if cad2.limiter.rate != 20 {
		t.Errorf("kept client's rate %g, want the new 20", cad2.limiter.rate)
	}
	clock += int64(time.Second) / 10 // a tenth of a second at 20 a second: two lookups
	for i := range 2 {
		if ok, _ := cad2.limiter.allow(); !ok {
			t.Fatalf("lookup %d refused after a tenth of a second at the new rate", i+1)
		}
	}
	if ok, _ := cad2.limiter.allow(); ok {
		t.Error("a third lookup served within the tenth of a second")
	}
}

// Lookups authenticate while the file is read again (run with -race).
func TestClientsReplaceWhileServing(t *testing.T) {
	now := func() int64 { return time.Now().UnixNano() }
	mk := func(tok string) *Clients {
		cs, err := ParseClients([]byte(`[{"id":"cad","token_sha256":"`+TokenHash(tok)+`","scopes":["lookup"]},
			{"id":"steady","token_sha256":"`+TokenHash("steady")+`","scopes":["lookup"]}]`), now)
		if err != nil {
			t.Fatal(err)
		}
		return cs
	}
	cs := mk("a")
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range 200 {
			cs.Replace(mk([]string{"a", "b"}[i%2]))
		}
	}()
	for {
		select {
		case <-done:
			return
		default:
		}
		if c := cs.Authenticate([]byte("steady")); c == nil || c.ID != "steady" {
			t.Fatal("a client in every version of the file refused while it was read again")
		}
	}
}

// An exchange of the shared rates that began before the clients file was
// read again sets the share of the new rate, not the old one's.
func TestClientsReplaceRateShared(t *testing.T) {
	now := func() int64 { return 0 }
	mk := func(rate string) *Clients {
		cs, err := ParseClients([]byte(`[{"id":"cad","token_sha256":"`+TokenHash("t")+`","scopes":["lookup"],"rate_per_s":`+rate+`}]`), now)
		if err != nil {
			t.Fatal(err)
		}
		return cs
	}
	cs := mk("100")
	before := cs.current()[0] // what a running exchange holds
	cs.Replace(mk("10"))
	before.limiter.share(2, shareMin)
	if r := cs.current()[0].limiter.rate; r != 8 {
		t.Errorf("rate after the exchange %g, want 8 (10 less the others' 2)", r)
	}
	before.limiter.share(0, 1) // RateShare.whole
	if r := cs.current()[0].limiter.rate; r != 10 {
		t.Errorf("whole rate %g, want the new 10", r)
	}
}

// A client changing its token: both its tokens authenticate it while the
// entry holds both; a next token equal to its own or another client's is
// refused, and a malformed one named.
func TestClientsNextToken(t *testing.T) {
	now := func() int64 { return 0 }
	cs, err := ParseClients([]byte(`[{"id":"cad","token_sha256":"`+TokenHash("old")+`","next_token_sha256":"`+TokenHash("new")+`","scopes":["lookup"]},
		{"id":"other","token_sha256":"`+TokenHash("other")+`","scopes":["lookup"]}]`), now)
	if err != nil {
		t.Fatal(err)
	}
	for tok, want := range map[string]string{"old": "cad", "new": "cad", "other": "other", "neither": ""} {
		got := ""
		if c := cs.Authenticate([]byte(tok)); c != nil {
			got = c.ID
		}
		if got != want {
			t.Errorf("token %s authenticates as %q, want %q", tok, got, want)
		}
	}
	for js, want := range map[string]string{
		`[{"id":"cad","token_sha256":"` + TokenHash("a") + `","next_token_sha256":"` + TokenHash("a") + `","scopes":[]}]`: "next_token_sha256 is token_sha256 again",
		`[{"id":"cad","token_sha256":"` + TokenHash("a") + `","next_token_sha256":"` + TokenHash("b") + `","scopes":[]},
		  {"id":"x","token_sha256":"` + TokenHash("b") + `","scopes":[]}]`: "entry 2 (x) has the same token as entry 1 (cad)",
		`[{"id":"cad","token_sha256":"` + TokenHash("a") + `","next_token_sha256":"abc","scopes":[]}]`: "next_token_sha256 must be 64 hex digits",
	} {
		if _, err := ParseClients([]byte(js), now); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%.80s: %v, want %q", js, err, want)
		}
	}
}
