// Package feedtest finds the real Kafka broker and Redis that integration
// tests run against. `scripts/services.sh up` starts both and prints the
// KAFKA_BROKERS and REDIS_ADDR variables this package reads; `make test`
// does that for the whole suite.
//
// Without them a test is skipped, except under CI=true, where a missing
// service fails the run: CI must never pass by skipping its integration
// suite.
package feedtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/planflag/planflag/feed"
	"github.com/planflag/planflag/matcher"
)

// Brokers returns the Kafka brokers, or skips (fails under CI) the test.
func Brokers(t testing.TB) []string {
	t.Helper()
	v := need(t, "KAFKA_BROKERS")
	return strings.Split(v, ",")
}

// Redis returns the Redis address, or skips (fails under CI) the test.
func Redis(t testing.TB) string {
	t.Helper()
	return need(t, "REDIS_ADDR")
}

// Secure is the broker's secured listeners and what a client needs to use
// them (scripts/services.sh makes the certificates and the SASL user).
type Secure struct {
	SASLBrokers  []string // TLS, then SASL (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512)
	TLSBrokers   []string // TLS with a client certificate
	CAFile       string   // the test CA, which signs the broker's certificate
	CertFile     string   // the client's certificate and key
	KeyFile      string
	User         string // the SASL user, and a file holding its password
	PasswordFile string
}

// SecureKafka returns the broker's secured listeners, or skips (fails under
// CI) the test.
func SecureKafka(t testing.TB) Secure {
	t.Helper()
	sasl, tls := need(t, "KAFKA_SASL_SSL_BROKERS"), need(t, "KAFKA_SSL_BROKERS")
	dir := os.Getenv("SERVICES_TLS_DIR")
	user, err := os.ReadFile(filepath.Join(dir, "sasl-user"))
	if err != nil {
		missing(t, "SERVICES_TLS_DIR holds no sasl-user: "+err.Error())
	}
	return Secure{SASLBrokers: strings.Split(sasl, ","), TLSBrokers: strings.Split(tls, ","),
		CAFile: filepath.Join(dir, "ca.pem"), CertFile: filepath.Join(dir, "client.pem"), KeyFile: filepath.Join(dir, "client.key"),
		User: string(user), PasswordFile: filepath.Join(dir, "sasl-password")}
}

// SecureRedis is Redis's TLS port and the test CA and client certificate
// (scripts/services.sh makes them).
type SecureRedis struct {
	TLSAddr                   string
	CAFile, CertFile, KeyFile string
}

// RedisTLS returns Redis's TLS port, or skips (fails under CI) the test.
func RedisTLS(t testing.TB) SecureRedis {
	t.Helper()
	addr := need(t, "REDIS_TLS_ADDR")
	dir := os.Getenv("SERVICES_TLS_DIR")
	if _, err := os.Stat(filepath.Join(dir, "ca.pem")); err != nil {
		missing(t, "SERVICES_TLS_DIR holds no ca.pem: "+err.Error())
	}
	return SecureRedis{TLSAddr: addr, CAFile: filepath.Join(dir, "ca.pem"), CertFile: filepath.Join(dir, "client.pem"),
		KeyFile: filepath.Join(dir, "client.key")}
}

// RedisUser adds a Redis ACL user with a fresh password for the test (and
// removes it after), returning its name and a file holding the password.
func RedisUser(t testing.TB) (user, passwordFile string) {
	t.Helper()
	addr := Redis(t)
	admin := redis.NewClient(&redis.Options{Addr: addr})
	defer admin.Close()
	user, pw := Name("planflag"), Name("pw")
	if err := admin.Do(context.Background(), "ACL", "SETUSER", user, "on", ">"+pw, "~*", "&*", "+@all").Err(); err != nil {
		t.Fatalf("acl setuser: %v", err)
	}
	t.Cleanup(func() {
		admin := redis.NewClient(&redis.Options{Addr: addr})
		defer admin.Close()
		admin.Do(context.Background(), "ACL", "DELUSER", user)
	})
	passwordFile = filepath.Join(t.TempDir(), "redis-password")
	if err := os.WriteFile(passwordFile, []byte(pw+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return user, passwordFile
}

func need(t testing.TB, name string) string {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		missing(t, name+" is not set (run: eval \"$(scripts/services.sh up)\")")
	}
	first := strings.Split(v, ",")[0]
	c, err := net.DialTimeout("tcp", first, 2*time.Second)
	if err != nil {
		missing(t, name+" does not answer: "+err.Error())
	}
	c.Close()
	return v
}

func missing(t testing.TB, why string) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf("integration service missing under CI=true: %s", why)
	}
	t.Skipf("integration service missing: %s", why)
}

// Name returns a fresh name with the given prefix, for a topic or key
// space no other test run uses.
func Name(prefix string) string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return prefix + "-" + hex.EncodeToString(b[:])
}

// Services runs scripts/services.sh with the given command (restart-kafka,
// stop-redis, start-redis), failing the test if it fails.
func Services(t testing.TB, ctx context.Context, command string) {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	script := filepath.Join(filepath.Dir(file), "..", "..", "scripts", "services.sh")
	cmd := exec.CommandContext(ctx, "bash", script, command)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("services.sh %s: %v\n%s", command, err, out)
	}
}

// Eventually polls cond every 10ms until it holds or d passes, and returns
// how long it took; it fails the test on timeout.
func Eventually(t testing.TB, d time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > d {
			t.Fatalf("%s: not within %v", what, d)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return time.Since(start)
}

// Synthetic plan holders for integration tests: person i has a valid NHS
// number, a name and a birth date derived from i.

// NHSNumber returns a valid (modulus 11) NHS number derived from i.
func NHSNumber(i int) string {
	for base := 400000000 + i*7; ; base++ {
		d := fmt.Sprintf("%09d", base)
		if check, ok := matcher.NHSCheckDigit(d); ok {
			return d + string(check)
		}
	}
}

// PlanID is synthetic person i's plan ID.
func PlanID(i int) string { return fmt.Sprintf("UCP-T%06d", i) }

// Upsert builds a plan.upserted event for synthetic person i.
func Upsert(i int, version uint64) []byte {
	ev := feed.Event{Type: feed.TypeUpserted, PlanID: PlanID(i), Version: version,
		OccurredAt: time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC),
		Patient: &matcher.Patient{NHSNumber: NHSNumber(i), GivenNames: []string{"Testa"},
			FamilyName: fmt.Sprintf("Family%d", i), BirthDate: "1940-03-0" + strconv.Itoa(1+i%9),
			Addresses: []matcher.Address{{Lines: []string{fmt.Sprintf("%d Elm Road", i)}, Postcode: "LS1 4AP"}}}}
	b, _ := json.Marshal(ev)
	return b
}

// Withdrawn builds a plan.withdrawn event for plan i.
func Withdrawn(i int, version uint64) []byte {
	b, _ := json.Marshal(feed.Event{Type: feed.TypeWithdrawn, PlanID: PlanID(i), Version: version,
		OccurredAt: time.Date(2026, 11, 24, 11, 0, 0, 0, time.UTC)})
	return b
}

// Query is a lookup that finds synthetic person i (NHS number and birth date).
func Query(i int) matcher.Query {
	return matcher.Query{NHSNumber: NHSNumber(i), BirthDate: "1940-03-0" + strconv.Itoa(1+i%9)}
}

// Carries reports whether text holds value. A number counts only whole,
// not inside a longer run of digits and letters: a timestamp's
// nanoseconds, a float's digits before its exponent ("2.1941e-05") or a
// hex request ID hold "1940" by chance; a leaked birth date sits between
// quotes, dashes or slashes.
func Carries(text, value string) bool {
	if value == "" {
		return false
	}
	digit := func(c byte) bool { return '0' <= c && c <= '9' }
	word := func(c byte) bool { return digit(c) || 'a' <= c|0x20 && c|0x20 <= 'z' }
	for from := 0; ; {
		i := strings.Index(text[from:], value)
		if i < 0 {
			return false
		}
		i += from
		end := i + len(value)
		if !digit(value[0]) || (i == 0 || !word(text[i-1])) && (end == len(text) || !word(text[end])) {
			return true
		}
		from = i + 1
	}
}
