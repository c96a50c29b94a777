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
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
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
