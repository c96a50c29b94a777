// Package careplanclient talks to the care-plan platform. It makes the
// secure, expiring links that open a plan from a lookup answer, and
// verifies them on the platform side.
package careplanclient

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"
)

// A link is <base-url>?t=<token>, and a token is
//
//	v1.<key id>.<plan id>.<client id>.<expiry, unix seconds>.<nonce>.<mac>
//
// with the plan and client IDs base64url-encoded, a random 96-bit nonce
// (hex: it is the link's ID in the audit trail) and an HMAC-SHA256 over
// everything before the last dot, under the key named by the key ID. It
// holds no personal data: plan IDs are the plan store's opaque keys.
// Keys carry IDs so a new key can sign new links while links signed with
// the old one stay valid until they expire.

// DefaultTTL is how long a link opens its plan.
const DefaultTTL = 15 * time.Minute

// Keys are the link-signing keys: Active signs, every key verifies.
type Keys struct {
	Active string
	keys   map[string][]byte
	pools  map[string]*sync.Pool // of hash.Hash, one HMAC per key
}

var keyIDPattern = regexp.MustCompile(`^[A-Za-z0-9_-]{1,32}$`)

// ParseKeys reads a keys file: {"active": "k2", "keys": {"k1": "<base64>",
// "k2": "<base64>"}}, each key at least 32 bytes.
func ParseKeys(b []byte) (*Keys, error) {
	var f struct {
		Active string            `json:"active"`
		Keys   map[string]string `json:"keys"`
	}
	if err := json.Unmarshal(b, &f); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return nil, errors.New(`link keys: not a keys object: want {"active": ID, "keys": {ID: base64, …}}`)
		}
		return nil, fmt.Errorf("link keys: not a keys object: %w (want {\"active\": ID, \"keys\": {ID: base64, …}})", err)
	}
	raw := map[string][]byte{}
	for id, v := range f.Keys {
		if !keyIDPattern.MatchString(id) {
			return nil, fmt.Errorf("link keys: key ID %q: want 1-32 of A-Z a-z 0-9 _ -", id)
		}
		k, err := base64.StdEncoding.DecodeString(v)
		if err != nil {
			return nil, fmt.Errorf("link keys: key %s is not base64", id)
		}
		if len(k) < 32 {
			return nil, fmt.Errorf("link keys: key %s has %d bytes, want at least 32", id, len(k))
		}
		raw[id] = k
	}
	if _, ok := raw[f.Active]; !ok {
		return nil, fmt.Errorf("link keys: active key %q is not among the keys", f.Active)
	}
	return NewKeys(f.Active, raw), nil
}

// LoadKeys reads a keys file; see ParseKeys.
func LoadKeys(path string) (*Keys, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("link keys: %w", err)
	}
	return ParseKeys(b)
}

// NewKeys returns keys signing with active. It panics if active is not in
// keys (a programming error; files go through ParseKeys).
func NewKeys(active string, keys map[string][]byte) *Keys {
	if _, ok := keys[active]; !ok {
		panic("careplanclient: active key not among the keys")
	}
	k := &Keys{Active: active, keys: keys, pools: map[string]*sync.Pool{}}
	for id, secret := range keys {
		k.pools[id] = &sync.Pool{New: func() any { return hmac.New(sha256.New, secret) }}
	}
	return k
}

// RandomKeys makes a fresh single key, for demos and tests.
func RandomKeys(id string) *Keys {
	secret := make([]byte, 32)
	_, _ = rand.Read(secret)
	return NewKeys(id, map[string][]byte{id: secret})
}

func (k *Keys) mac(id string, msg []byte, dst []byte) ([]byte, bool) {
	pool, ok := k.pools[id]
	if !ok {
		return nil, false
	}
	h := pool.Get().(hash.Hash)
	h.Reset()
	h.Write(msg)
	dst = h.Sum(dst)
	pool.Put(h)
	return dst, true
}

// Linker makes plan links.
type Linker struct {
	Base string // e.g. https://careplans.example.nhs.uk/open
	TTL  time.Duration
	Keys *Keys
}

// Link is a signed link to a plan for one client.
type Link struct {
	URL     string
	ID      string // the nonce, hex: names the link in the audit trail
	Expires time.Time
}

var b64 = base64.RawURLEncoding

// Make signs a link to plan for client, valid until now + TTL.
func (l *Linker) Make(plan, client string, now time.Time) Link {
	ttl := l.TTL
	if ttl <= 0 {
		ttl = DefaultTTL
	}
	exp := now.Add(ttl).Truncate(time.Second)
	var nonce [12]byte
	_, _ = rand.Read(nonce[:])
	pooled := linkBufs.Get().(*[]byte)
	defer linkBufs.Put(pooled)
	buf := append((*pooled)[:0], l.Base...)
	buf = append(buf, "?t="...)
	start := len(buf)
	buf = append(buf, "v1."...)
	buf = append(buf, l.Keys.Active...)
	buf = append(buf, '.')
	buf = b64.AppendEncode(buf, []byte(plan))
	buf = append(buf, '.')
	buf = b64.AppendEncode(buf, []byte(client))
	buf = append(buf, '.')
	buf = strconv.AppendInt(buf, exp.Unix(), 10)
	buf = append(buf, '.')
	nonceAt := len(buf)
	buf = hex.AppendEncode(buf, nonce[:])
	id := string(buf[nonceAt:])
	var sum [sha256.Size]byte
	mac, _ := l.Keys.mac(l.Keys.Active, buf[start:], sum[:0])
	buf = append(buf, '.')
	buf = b64.AppendEncode(buf, mac)
	*pooled = buf
	return Link{URL: string(buf), ID: id, Expires: exp}
}

// linkBufs holds the buffers links are built in: the signing hash is
// reached through an interface, so a buffer it reads would otherwise be a
// new allocation for every link.
var linkBufs = sync.Pool{New: func() any { b := make([]byte, 0, 256); return &b }}

// Claims are what a verified link grants.
type Claims struct {
	PlanID  string
	Client  string
	Expires time.Time
	ID      string // nonce
	KeyID   string
}

// Why a link is refused. Each is an *InvalidLink wrapping one of these.
var (
	ErrMalformed   = errors.New("malformed link")
	ErrUnknownKey  = errors.New("link signed with an unknown key")
	ErrBadMAC      = errors.New("link signature does not match (tampered)")
	ErrExpired     = errors.New("link expired")
	ErrWrongClient = errors.New("link issued to another client")
	ErrReused      = errors.New("single-use link already opened")
)

// Verify checks a token (the t parameter of a link) for client at now. An
// empty client skips the client check (the platform may check it itself).
func (k *Keys) Verify(token, client string, now time.Time) (Claims, error) {
	var c Claims
	parts := strings.Split(token, ".")
	if len(parts) != 7 || parts[0] != "v1" {
		return c, ErrMalformed
	}
	c.KeyID = parts[1]
	// Strict: the last character's spare bits must be zero, so one MAC has
	// one spelling and a changed link is refused, not opened.
	mac, err := b64.Strict().DecodeString(parts[6])
	if err != nil {
		return c, ErrMalformed
	}
	signed := token[:len(token)-len(parts[6])-1]
	var sum [sha256.Size]byte
	want, ok := k.mac(c.KeyID, []byte(signed), sum[:0])
	if !ok {
		return c, ErrUnknownKey
	}
	if !hmac.Equal(mac, want) {
		return c, ErrBadMAC
	}
	plan, err1 := b64.DecodeString(parts[2])
	cl, err2 := b64.DecodeString(parts[3])
	exp, err3 := strconv.ParseInt(parts[4], 10, 64)
	if err1 != nil || err2 != nil || err3 != nil || len(parts[5]) != 24 {
		return c, ErrMalformed
	}
	c.PlanID, c.Client, c.Expires, c.ID = string(plan), string(cl), time.Unix(exp, 0), parts[5]
	if !now.Before(c.Expires) {
		return c, ErrExpired
	}
	if client != "" && client != c.Client {
		return c, ErrWrongClient
	}
	return c, nil
}

// TokenOf returns the token of a link URL (its t parameter).
func TokenOf(link string) string {
	if i := strings.LastIndex(link, "?t="); i >= 0 {
		return link[i+3:]
	}
	return link
}
