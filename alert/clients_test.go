package alert

import (
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
