package careplanclient

import (
	"context"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/planflag/planflag/feed/feedtest"
)

var t0 = time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)

func TestLinkRoundTrip(t *testing.T) {
	keys := RandomKeys("k1")
	l := &Linker{Base: "https://plans.example/open", Keys: keys}
	link := l.Make("UCP-123", "las-cad", t0)
	if !strings.HasPrefix(link.URL, "https://plans.example/open?t=v1.k1.") || !link.Expires.Equal(t0.Add(15*time.Minute)) {
		t.Fatalf("link %+v", link)
	}
	if strings.Contains(link.URL, "UCP-123") {
		t.Error("plan ID in clear in the link") // base64url, not secret, but not readable at a glance
	}
	c, err := keys.Verify(TokenOf(link.URL), "las-cad", t0.Add(time.Minute))
	if err != nil || c.PlanID != "UCP-123" || c.Client != "las-cad" || c.ID != link.ID {
		t.Fatalf("verify: %+v %v", c, err)
	}
	if _, err := keys.Verify(TokenOf(link.URL), "other-cad", t0); !errors.Is(err, ErrWrongClient) {
		t.Errorf("other client: %v", err)
	}
	if _, err := keys.Verify(TokenOf(link.URL), "las-cad", t0.Add(15*time.Minute)); !errors.Is(err, ErrExpired) {
		t.Errorf("at expiry: %v", err)
	}
	if l.Make("UCP-123", "las-cad", t0).ID == link.ID {
		t.Error("two links share a nonce")
	}
}

// TestLinkTampering changes each part of a token in turn: every change is
// refused.
func TestLinkTampering(t *testing.T) {
	keys := RandomKeys("k1")
	tok := TokenOf((&Linker{Base: "b", Keys: keys}).Make("UCP-123", "las-cad", t0).URL)
	parts := strings.Split(tok, ".")
	enc := base64.RawURLEncoding.EncodeToString
	swaps := map[int]string{
		0: "v2",
		1: "k2",
		2: enc([]byte("UCP-124")),
		3: enc([]byte("other")),
		4: "9999999999",
		5: strings.Repeat("0", 24),
		6: enc(make([]byte, 32)),
	}
	for i, v := range swaps {
		p := append([]string(nil), parts...)
		p[i] = v
		if _, err := keys.Verify(strings.Join(p, "."), "", t0); err == nil {
			t.Errorf("part %d changed: accepted", i)
		}
	}
	for _, bad := range []string{"", "v1", tok + ".x", strings.ReplaceAll(tok, ".", "")} {
		if _, err := keys.Verify(bad, "", t0); !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrBadMAC) {
			t.Errorf("Verify(%.20q…) = %v", bad, err)
		}
	}
	// The signature's last character carries two bits that are not the
	// signature's: a link with them changed is a changed link, and the
	// integration guide says a changed link is refused.
	last := tok[len(tok)-1]
	i := strings.IndexByte(b64URLAlphabet, last)
	changed := tok[:len(tok)-1] + string(b64URLAlphabet[i^1])
	if _, err := keys.Verify(changed, "", t0); err == nil {
		t.Errorf("signature's last character changed (%c to %c): accepted", last, b64URLAlphabet[i^1])
	}
}

const b64URLAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

// TestKeyRotation: links signed with the old key stay valid once a new key
// signs; a link under a removed key is refused.
func TestKeyRotation(t *testing.T) {
	old, err := ParseKeys([]byte(`{"active":"k1","keys":{"k1":"` + strings.Repeat("QUFB", 11) + `"}}`))
	if err != nil {
		t.Fatal(err)
	}
	link := (&Linker{Base: "b", Keys: old}).Make("UCP-1", "c", t0)
	both, err := ParseKeys([]byte(`{"active":"k2","keys":{"k1":"` + strings.Repeat("QUFB", 11) + `","k2":"` + strings.Repeat("QkJC", 11) + `"}}`))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := both.Verify(TokenOf(link.URL), "c", t0); err != nil {
		t.Errorf("old link after rotation: %v", err)
	}
	newLink := (&Linker{Base: "b", Keys: both}).Make("UCP-1", "c", t0)
	if !strings.Contains(newLink.URL, "v1.k2.") {
		t.Errorf("new links not signed with the active key: %s", newLink.URL)
	}
	onlyNew, _ := ParseKeys([]byte(`{"active":"k2","keys":{"k2":"` + strings.Repeat("QkJC", 11) + `"}}`))
	if _, err := onlyNew.Verify(TokenOf(link.URL), "c", t0); !errors.Is(err, ErrUnknownKey) {
		t.Errorf("link under a retired key: %v", err)
	}
	for _, bad := range []string{`{}`, `{"active":"k1","keys":{"k1":"c2hvcnQ="}}`, `{"active":"k9","keys":{}}`, `nope`} {
		if _, err := ParseKeys([]byte(bad)); err == nil {
			t.Errorf("ParseKeys(%s) accepted", bad)
		}
	}
}

func TestSingleUse(t *testing.T) {
	rdb := redis.NewClient(&redis.Options{Addr: feedtest.Redis(t)})
	defer rdb.Close()
	keys := RandomKeys("k1")
	link := (&Linker{Base: "b", Keys: keys}).Make("UCP-1", "c", time.Now())
	c, err := keys.Verify(TokenOf(link.URL), "c", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	su := &SingleUse{RDB: rdb}
	ctx := context.Background()
	if err := su.Redeem(ctx, c, time.Now()); err != nil {
		t.Fatalf("first open: %v", err)
	}
	if err := su.Redeem(ctx, c, time.Now()); !errors.Is(err, ErrReused) {
		t.Errorf("second open: %v, want ErrReused", err)
	}
	// The mark outlives the link by the clock skew allowed; redeemed at or
	// after its expiry (a replica whose clock is ahead), it still expires.
	for _, at := range []time.Time{time.Now(), c.Expires, c.Expires.Add(time.Hour)} {
		c.ID = feedtest.Name("link")
		if err := su.Redeem(ctx, c, at); err != nil {
			t.Fatal(err)
		}
		ttl, err := rdb.PTTL(ctx, usedKey(c.ID)).Result()
		if err != nil {
			t.Fatal(err)
		}
		if want := max(c.Expires.Sub(at), 0) + LinkClockSkew; ttl <= 0 || (ttl-want).Abs() > 2*time.Second {
			t.Errorf("redeemed at expiry%+v: mark lives %v, want %v", at.Sub(c.Expires).Round(time.Second), ttl, want)
		}
	}
}

// A keys file of the wrong shape says what shape it wants, not Go's name
// for the type it was decoded into.
func TestParseKeysWrongShape(t *testing.T) {
	for _, b := range []string{`[]`, `"k1"`, `{"active":"k1","keys":["x"]}`} {
		_, err := ParseKeys([]byte(b))
		if err == nil || strings.Contains(err.Error(), "struct") || !strings.Contains(err.Error(), `{"active": ID, "keys": {ID: base64, …}}`) {
			t.Errorf("%s: error %v", b, err)
		}
	}
}
