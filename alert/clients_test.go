package alert

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
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
