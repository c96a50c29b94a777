package alert

import (
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync/atomic"
)

// Scopes a client can hold.
const ScopeLookup = "lookup"

// DefaultRatePerS is a client's sustained lookup rate when its entry sets
// none: well above one busy control room's peak of a few lookups a second
// per call handler.
const DefaultRatePerS = 200

// ClientConfig is one entry of the clients file (DESIGN.md): tokens are
// stored only as SHA-256 hashes.
type ClientConfig struct {
	ID          string `json:"id"`
	TokenSHA256 string `json:"token_sha256"`
	// NextTokenSHA256 is a second token the client may use, for a change
	// of token without a moment of refusals: added, the client moves to
	// it, then it becomes token_sha256 and the old one goes.
	NextTokenSHA256 string   `json:"next_token_sha256,omitempty"`
	Scopes          []string `json:"scopes"`
	RatePerS        float64  `json:"rate_per_s,omitempty"`
	// Push alerts: where to POST them, and the shared secret their HMAC
	// signature is made with (both or neither).
	WebhookURL    string `json:"webhook_url,omitempty"`
	WebhookSecret string `json:"webhook_secret,omitempty"`
}

// Client is an authenticated calling organisation.
type Client struct {
	ID       string
	scopes   []string
	hashes   [2][32]byte // token_sha256, next_token_sha256
	nHashes  int
	limiter  *limiter
	ratePerS float64

	webhookURL    string
	webhookSecret []byte
}

// Has reports whether the client holds a scope.
func (c *Client) Has(scope string) bool {
	for _, s := range c.scopes {
		if s == scope {
			return true
		}
	}
	return false
}

// Clients authenticates bearer tokens. Replace swaps in a clients file
// read again while lookups are served.
type Clients struct {
	list atomic.Pointer[[]*Client] // never nil once parsed; the slice is not changed after it is stored
}

// current returns the clients now in force (none for a zero Clients).
func (cs *Clients) current() []*Client {
	if l := cs.list.Load(); l != nil {
		return *l
	}
	return nil
}

// Replace makes next's clients the ones in force from now on: a clients
// file read again, to add a client, revoke a token or change a rate
// without a restart. A client whose ID both hold keeps its rate limiter
// (its tokens, set to the new rate), so reading the file again hands no
// client a fresh burst. A lookup already authenticated finishes as the
// client it was. It returns the IDs added and removed, and how many were
// kept; next must not be used after.
func (cs *Clients) Replace(next *Clients) (added, removed []string, kept int) {
	old := map[string]*Client{}
	for _, c := range cs.current() {
		old[c.ID] = c
	}
	list := next.current()
	for _, c := range list {
		o, ok := old[c.ID]
		if !ok {
			added = append(added, c.ID)
			continue
		}
		kept++
		delete(old, c.ID)
		c.limiter = o.limiter
		if c.ratePerS != o.ratePerS {
			c.limiter.setBase(c.ratePerS)
		}
	}
	for _, c := range cs.current() {
		if _, gone := old[c.ID]; gone {
			removed = append(removed, c.ID)
		}
	}
	cs.list.Store(&list)
	return added, removed, kept
}

// ParseClients reads a clients file's JSON and checks every entry.
func ParseClients(b []byte, now func() int64) (*Clients, error) {
	cs, err := parseClients(b, now)
	if err != nil {
		return nil, fmt.Errorf("clients: %w", err)
	}
	return cs, nil
}

// parseClients is ParseClients; its errors say what is wrong, not where.
// A key no entry has (a misspelt rate_per_s would leave the default rate)
// and a file without a single client are refused.
func parseClients(b []byte, now func() int64) (*Clients, error) {
	b = bytes.TrimSpace(b)
	switch {
	case len(b) == 0:
		return nil, errors.New("is empty: want a JSON list of clients")
	case b[0] != '[' && !bytes.Equal(b, []byte("null")):
		return nil, errors.New(`not a JSON list: want [{"id": …, "token_sha256": …, "scopes": […]}, …]`)
	}
	var cfg []ClientConfig
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&cfg); err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, errors.New("not valid JSON: it ends before the list does")
		}
		return nil, err
	}
	// Anything after the list (dec.More misses a stray ] or }) is an error,
	// as it was with json.Unmarshal.
	if len(bytes.TrimSpace(b[dec.InputOffset():])) > 0 {
		return nil, errors.New("more after the list of clients: want a single JSON list")
	}
	if len(cfg) == 0 {
		return nil, errors.New("holds no clients: every lookup would be refused 401")
	}
	var list []*Client
	seen := map[string]bool{}
	byHash := map[[32]byte]int{} // token hash → index of the entry holding it
	for i, c := range cfg {
		if c.ID == "" {
			return nil, fmt.Errorf("entry %d: missing id", i+1)
		}
		if seen[c.ID] {
			return nil, fmt.Errorf("entry %d: id %q twice", i+1, c.ID)
		}
		seen[c.ID] = true
		var hashes [][]byte
		for _, f := range []struct{ name, hex string }{{"token_sha256", c.TokenSHA256}, {"next_token_sha256", c.NextTokenSHA256}} {
			if f.hex == "" && f.name == "next_token_sha256" {
				continue
			}
			h, err := hex.DecodeString(strings.ToLower(f.hex))
			if err != nil || len(h) != 32 {
				return nil, fmt.Errorf("entry %d (%s): %s must be 64 hex digits", i+1, c.ID, f.name)
			}
			hashes = append(hashes, h)
		}
		for _, s := range c.Scopes {
			if s != ScopeLookup {
				return nil, fmt.Errorf("entry %d (%s): unknown scope %q", i+1, c.ID, s)
			}
		}
		if c.RatePerS < 0 {
			return nil, fmt.Errorf("entry %d (%s): rate_per_s must not be negative", i+1, c.ID)
		}
		rate := c.RatePerS
		if rate == 0 {
			rate = DefaultRatePerS
		}
		if (c.WebhookURL == "") != (c.WebhookSecret == "") {
			return nil, fmt.Errorf("entry %d (%s): give webhook_url and webhook_secret together", i+1, c.ID)
		}
		if c.WebhookURL != "" && !strings.HasPrefix(c.WebhookURL, "https://") && !strings.HasPrefix(c.WebhookURL, "http://") {
			return nil, fmt.Errorf("entry %d (%s): webhook_url is not an http(s) URL", i+1, c.ID)
		}
		if c.WebhookSecret != "" && len(c.WebhookSecret) < 16 {
			return nil, fmt.Errorf("entry %d (%s): webhook_secret must be at least 16 characters", i+1, c.ID)
		}
		cl := &Client{ID: c.ID, scopes: c.Scopes, ratePerS: rate, limiter: newLimiter(rate, now),
			webhookURL: c.WebhookURL, webhookSecret: []byte(c.WebhookSecret)}
		for _, h := range hashes {
			var hash [32]byte
			copy(hash[:], h)
			// One token, two clients: every lookup would be put down to
			// one of them (scopes, limits, audit, links). The hash is not
			// named.
			if j, dup := byHash[hash]; dup {
				if j == i {
					return nil, fmt.Errorf("entry %d (%s): next_token_sha256 is token_sha256 again", i+1, c.ID)
				}
				return nil, fmt.Errorf("entry %d (%s) has the same token as entry %d (%s): give each client its own token",
					i+1, c.ID, j+1, cfg[j].ID)
			}
			byHash[hash] = i
			cl.hashes[cl.nHashes] = hash
			cl.nHashes++
		}
		list = append(list, cl)
	}
	cs := &Clients{}
	cs.list.Store(&list)
	return cs, nil
}

// WithWebhook returns the IDs of the clients that take push alerts.
func (cs *Clients) WithWebhook() []string {
	var ids []string
	for _, c := range cs.current() {
		if c.webhookURL != "" {
			ids = append(ids, c.ID)
		}
	}
	return ids
}

// Webhook returns where the client takes push alerts and the secret that
// signs them; ok is false when it takes none.
func (cs *Clients) Webhook(id string) (url string, secret []byte, ok bool) {
	for _, c := range cs.current() {
		if c.ID == id && c.webhookURL != "" {
			return c.webhookURL, c.webhookSecret, true
		}
	}
	return "", nil, false
}

// LoadClients reads a clients file; its errors name the file.
func LoadClients(path string, now func() int64) (*Clients, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("clients: %w", err)
	}
	cs, err := parseClients(b, now)
	if err != nil {
		return nil, fmt.Errorf("clients file %s: %w", path, err)
	}
	return cs, nil
}

// Authenticate finds the client whose token (or next token) hashes to the
// presented token's hash. Every entry is compared, in constant time, so the
// time taken says nothing about which entry (or how much of one) matched.
func (cs *Clients) Authenticate(token []byte) *Client {
	if len(token) == 0 {
		return nil
	}
	h := sha256.Sum256(token)
	var found *Client
	for _, c := range cs.current() {
		for j := range c.hashes {
			// Both slots compared, the unused one refused by its index:
			// the same work for every entry.
			if subtle.ConstantTimeCompare(h[:], c.hashes[j][:])&subtle.ConstantTimeLessOrEq(j+1, c.nHashes) == 1 {
				found = c
			}
		}
	}
	return found
}

// TokenHash returns the hex SHA-256 of a token, as the clients file holds it.
func TokenHash(token string) string {
	h := sha256.Sum256([]byte(token))
	return hex.EncodeToString(h[:])
}
