package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/planflag/planflag/feed/feedtest"
)

// flagd follows the plan store through a broker listener that wants TLS
// and SASL, writes and reads its audit topic the same way, and keeps its
// snapshot in a Redis reached over TLS as an ACL user.
func TestFlagdSecureKafka(t *testing.T) {
	k := newKafkaEnv(t) // the topic, and a plaintext writer to publish with
	s := feedtest.SecureKafka(t)
	secure := func(pwFile string) []string {
		return []string{"-kafka.brokers", strings.Join(s.SASLBrokers, ","), "-kafka.tls-ca", s.CAFile,
			"-kafka.sasl", "scram-sha-256", "-kafka.sasl-user", s.User, "-kafka.sasl-password-file", pwFile}
	}
	r := feedtest.RedisTLS(t)
	redisUser, redisPassword := feedtest.RedisUser(t)
	k.publish(t, upsertMsg(1, 1))
	p := startFlagd(t, append([]string{"-clients", fastClients(t, t.TempDir()), "-kafka.topic", k.topic,
		"-audit.topic", k.topic + "-audit", "-redis.addr", r.TLSAddr, "-redis.tls-ca", r.CAFile,
		"-redis.user", redisUser, "-redis.password-file", redisPassword, "-snapshot.interval", "1s"}, secure(s.PasswordFile)...)...)
	p.waitReady(t, 60*time.Second)
	if len(p.flags(t, 1)) == 0 {
		t.Fatal("plan read over SASL_SSL not flagged")
	}
	// Redis over TLS, as an ACL user: the snapshot is written and client
	// rates are shared.
	feedtest.Eventually(t, 10*time.Second, "snapshot written and rates shared over TLS", func() bool {
		return p.metric(t, `planflag_snapshot_writes_total{result="ok"}`) != "" && p.metric(t, "planflag_rate_share_up") == "1"
	})
	// The CA files are watched: their expiry is on /metrics.
	for _, ca := range []string{"kafka", "redis"} {
		if v := p.metric(t, `planflag_tls_ca_expiry_timestamp_seconds{ca="`+ca+`"}`); v == "" || v == "0" {
			t.Errorf("%s CA file expiry on /metrics: %q", ca, v)
		}
	}
	// The lookup's audit event reached the topic, and flagd audit reads it
	// back with the same settings.
	feedtest.Eventually(t, 10*time.Second, "audit event on the topic", func() bool {
		var out, errs strings.Builder
		err := run(append([]string{"audit", "-topic", k.topic + "-audit", "-plan", feedtest.PlanID(1),
			"-brokers", strings.Join(s.SASLBrokers, ",")}, secure(s.PasswordFile)[2:]...), &out, &errs)
		return err == nil && strings.Count(out.String(), "\n") == 1
	})

	// A password the broker refuses stops flagd with the reason, rather
	// than leaving it not ready for ever.
	wrong := filepath.Join(t.TempDir(), "wrong")
	if err := os.WriteFile(wrong, []byte("not-the-password"), 0o600); err != nil {
		t.Fatal(err)
	}
	q := startFlagd(t, append([]string{"-clients", fastClients(t, t.TempDir()), "-kafka.topic", k.topic}, secure(wrong)...)...)
	select {
	case <-q.done:
	case <-time.After(30 * time.Second):
		t.Fatal("flagd still running 30 s after the broker refused its password")
	}
	if code := q.cmd.ProcessState.ExitCode(); code == 0 {
		t.Error("flagd exited 0 after the broker refused its password")
	}
	log := strings.Join(q.logLines(), "\n")
	if !strings.Contains(log, "SASL Authentication Failed") || strings.Contains(log, "not-the-password") {
		t.Errorf("exit log does not give the reason, or quotes the password:\n%s", log)
	}
}
