package feed_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/segmentio/kafka-go"

	"github.com/planflag/planflag/feed"
	"github.com/planflag/planflag/feed/feedtest"
	"github.com/planflag/planflag/matcher"
)

// secureListener is one way of reaching the broker securely.
type secureListener struct {
	name    string
	brokers []string
	cfg     feed.KafkaAuthConfig
}

func secureListeners(t *testing.T) []secureListener {
	s := feedtest.SecureKafka(t)
	sasl := func(mech string) feed.KafkaAuthConfig {
		return feed.KafkaAuthConfig{CAFile: s.CAFile, SASL: mech, User: s.User, PasswordFile: s.PasswordFile}
	}
	return []secureListener{
		{"sasl-plain", s.SASLBrokers, sasl(feed.SASLPlain)},
		{"scram-sha-256", s.SASLBrokers, sasl(feed.SASLScramSHA256)},
		{"scram-sha-512", s.SASLBrokers, sasl(feed.SASLScramSHA512)},
		{"client-certificate", s.TLSBrokers, feed.KafkaAuthConfig{CAFile: s.CAFile, CertFile: s.CertFile, KeyFile: s.KeyFile}},
	}
}

// Every Kafka client of the feed reaches a broker that wants TLS and SASL,
// or TLS and a client certificate: topics are created, plans read, a
// refused event copied to the dead-letter topic.
func TestKafkaSecureListeners(t *testing.T) {
	for _, l := range secureListeners(t) {
		t.Run(l.name, func(t *testing.T) {
			auth, err := l.cfg.Build()
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			topic := feedtest.Name("secure")
			if err := feed.CreateTopic(ctx, l.brokers, auth, topic, 2, true); err != nil {
				t.Fatalf("create topic: %v", err)
			}
			w := &kafka.Writer{Addr: kafka.TCP(l.brokers...), Topic: topic, Transport: auth.Transport("planflag-test"),
				Balancer: &kafka.Murmur2Balancer{}, RequiredAcks: kafka.RequireAll, BatchTimeout: time.Millisecond}
			defer w.Close()
			if err := w.WriteMessages(ctx, append(upserts(3), kafka.Message{Key: []byte("bad"), Value: []byte("{")})...); err != nil {
				t.Fatalf("publish: %v", err)
			}
			ix := matcher.NewIndex(nil)
			c := feed.NewConsumer(feed.KafkaConfig{Brokers: l.brokers, Topic: topic, Auth: auth, MaxWait: 50 * time.Millisecond}, ix, nil)
			if err := c.Prepare(ctx); err != nil {
				t.Fatalf("prepare: %v", err)
			}
			rctx, rcancel := context.WithCancel(ctx)
			done := make(chan error, 1)
			go func() { done <- c.Run(rctx, nil) }()
			select {
			case <-c.CaughtUp():
			case <-ctx.Done():
				t.Fatal("not caught up")
			}
			for i := range 3 {
				if !found(ix, i) {
					t.Errorf("plan %d not indexed", i)
				}
			}
			// The refused event reaches the dead-letter topic (read here
			// over the same secured listener).
			r := kafka.NewReader(kafka.ReaderConfig{Brokers: l.brokers, Topic: topic + ".dead-letters", Partition: 0,
				MaxWait: 100 * time.Millisecond, Dialer: auth.Dialer()})
			defer r.Close()
			m, err := r.ReadMessage(ctx)
			if err != nil || string(m.Key) != "bad" {
				t.Errorf("dead letter: %q, %v", m.Key, err)
			}
			rcancel()
			if err := <-done; err != nil {
				t.Fatal(err)
			}
		})
	}
}

// Wrong credentials, or a certificate either side refuses, stop Prepare at
// once with an error that says so, rather than a retry loop for ever; and
// CreateTopic says so too.
func TestKafkaSecureRefused(t *testing.T) {
	s := feedtest.SecureKafka(t)
	wrong := filepath.Join(t.TempDir(), "wrong")
	if err := os.WriteFile(wrong, []byte("not-the-password\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name    string
		brokers []string
		cfg     feed.KafkaAuthConfig
		want    string
	}{
		{"wrong password", s.SASLBrokers, feed.KafkaAuthConfig{CAFile: s.CAFile, SASL: feed.SASLScramSHA512, User: s.User, PasswordFile: wrong}, "SASL Authentication Failed"},
		{"unknown CA", s.SASLBrokers, feed.KafkaAuthConfig{TLS: true, SASL: feed.SASLScramSHA512, User: s.User, PasswordFile: s.PasswordFile}, "certificate"},
		{"no client certificate", s.TLSBrokers, feed.KafkaAuthConfig{CAFile: s.CAFile}, "bad certificate"},
	} {
		t.Run(c.name, func(t *testing.T) {
			auth, err := c.cfg.Build()
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			start := time.Now()
			err = feed.NewConsumer(feed.KafkaConfig{Brokers: c.brokers, Topic: "any", Auth: auth}, matcher.NewIndex(nil), nil).Prepare(ctx)
			if !errors.Is(err, feed.ErrKafkaAuth) || !strings.Contains(err.Error(), c.want) {
				t.Errorf("prepare: %v (after %v); want at once an authentication error naming %q", err, time.Since(start).Round(time.Millisecond), c.want)
			}
			if strings.Count(err.Error(), feed.ErrKafkaAuth.Error()) != 1 {
				t.Errorf("prepare: %v; want it marked once", err)
			}
			// Creating a topic (planstore, flagd's audit and alert topics)
			// says the same.
			err = feed.CreateTopic(ctx, c.brokers, auth, feedtest.Name("refused"), 1, true)
			if !errors.Is(err, feed.ErrKafkaAuth) || !strings.Contains(err.Error(), c.want) {
				t.Errorf("create topic: %v; want an authentication error naming %q", err, c.want)
			}
		})
	}
}

// Settings that cannot work are refused at start, naming the problem and
// never the password.
func TestKafkaAuthConfigErrors(t *testing.T) {
	dir := t.TempDir()
	file := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	pw := file("pw", "s3cret-Pa55\n")
	for _, c := range []struct {
		cfg  feed.KafkaAuthConfig
		want string
	}{
		{feed.KafkaAuthConfig{CertFile: "c.pem"}, "client certificate and its key together"},
		{feed.KafkaAuthConfig{CAFile: filepath.Join(dir, "missing.pem")}, "CA file"},
		{feed.KafkaAuthConfig{CAFile: file("notpem", "hello")}, "no PEM certificate"},
		{feed.KafkaAuthConfig{TLS: true, CertFile: file("c.pem", "x"), KeyFile: file("k.pem", "y")}, "client certificate"},
		{feed.KafkaAuthConfig{User: "planflag", PasswordFile: pw}, "without a SASL mechanism"},
		{feed.KafkaAuthConfig{TLS: true, SASL: "plain", User: "planflag"}, "needs a user and a password file"},
		{feed.KafkaAuthConfig{TLS: true, SASL: "plain", User: "planflag", PasswordFile: filepath.Join(dir, "none")}, "password file"},
		{feed.KafkaAuthConfig{TLS: true, SASL: "plain", User: "planflag", PasswordFile: file("empty", "\n")}, "alone on one line"},
		{feed.KafkaAuthConfig{TLS: true, SASL: "plain", User: "planflag", PasswordFile: file("two", "a\nb\n")}, "alone on one line"},
		{feed.KafkaAuthConfig{SASL: "plain", User: "planflag", PasswordFile: pw}, "in clear"},
		{feed.KafkaAuthConfig{TLS: true, SASL: "gssapi", User: "planflag", PasswordFile: pw}, `mechanism "gssapi"`},
	} {
		_, err := c.cfg.Build()
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: error %v, want %q", c.cfg, err, c.want)
		}
		if err != nil && strings.Contains(err.Error(), "s3cret") {
			t.Errorf("error quotes the password: %v", err)
		}
	}
	for _, c := range []struct {
		cfg  feed.RedisAuthConfig
		want string
	}{
		{feed.RedisAuthConfig{User: "planflag"}, "without a password file"},
		{feed.RedisAuthConfig{KeyFile: "k.pem"}, "client certificate and its key together"},
		{feed.RedisAuthConfig{CAFile: filepath.Join(dir, "missing.pem")}, "redis TLS CA file"},
		{feed.RedisAuthConfig{PasswordFile: file("r2", "a\nb")}, "alone on one line"},
	} {
		if _, err := c.cfg.Build(); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: error %v, want %q", c.cfg, err, c.want)
		}
	}
	if a, err := (feed.RedisAuthConfig{PasswordFile: pw}).Build(); err != nil || a.Password != "s3cret-Pa55" || a.User != "" {
		t.Errorf("requirepass alone: %+v, %v", a, err)
	}
	// What works: nothing (plaintext), TLS alone, SCRAM without TLS, PLAIN
	// with TLS, the mechanism's name in any case; the password's newline
	// is not part of it.
	for _, cfg := range []feed.KafkaAuthConfig{{}, {TLS: true}, {SASL: "SCRAM-SHA-512", User: "u", PasswordFile: pw},
		{TLS: true, SASL: "PLAIN", User: "u", PasswordFile: pw}} {
		a, err := cfg.Build()
		if err != nil {
			t.Errorf("%+v: %v", cfg, err)
			continue
		}
		if (a.TLS != nil) != (cfg.TLS) || (a.SASL != nil) != (cfg.SASL != "") {
			t.Errorf("%+v built %+v", cfg, a)
		}
	}
}

// The snapshot is written to and read from a Redis reached over TLS as an
// ACL user; wrong credentials and an unknown CA are refused.
func TestRedisSecure(t *testing.T) {
	s := feedtest.RedisTLS(t)
	user, pwFile := feedtest.RedisUser(t)
	auth, err := feed.RedisAuthConfig{CAFile: s.CAFile, User: user, PasswordFile: pwFile}.Build()
	if err != nil {
		t.Fatal(err)
	}
	e := newTopic(t, 1)
	e.publish(upserts(3)...)
	cfg := feed.SnapshotConfig{Addr: s.TLSAddr, Redis: auth, Topic: e.topic, Interval: time.Hour, MaxAge: time.Hour}
	snaps := feed.NewSnapshots(cfg)
	e.follow(matcher.NewIndex(nil), snaps, nil)
	ctx := context.Background()
	if err := snaps.Flush(ctx); err != nil {
		t.Fatalf("snapshot over TLS as an ACL user: %v", err)
	}
	ix := matcher.NewIndex(nil)
	if _, st, err := feed.NewSnapshots(cfg).Load(ctx, ix, nil); err != nil || st.Entries != 3 || ix.Live() != 3 {
		t.Fatalf("load over TLS: %+v, %v (%d live)", st, err, ix.Live())
	}

	wrong := filepath.Join(t.TempDir(), "wrong")
	if err := os.WriteFile(wrong, []byte("nope"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		cfg  feed.RedisAuthConfig
		want string
	}{
		{feed.RedisAuthConfig{CAFile: s.CAFile, User: user, PasswordFile: wrong}, "WRONGPASS"},
		{feed.RedisAuthConfig{TLS: true, User: user, PasswordFile: pwFile}, "certificate"},
	} {
		a, err := c.cfg.Build()
		if err != nil {
			t.Fatal(err)
		}
		rdb := redis.NewClient(a.Options(s.TLSAddr))
		err = rdb.Ping(ctx).Err()
		rdb.Close()
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: ping %v, want an error naming %q", c.cfg, err, c.want)
		}
	}
}

// A CA added to the CA file while the clients run is used for their next
// connections: to the real broker's TLS listener (topic creation through
// the transport, a consumer's reader through the dialer) and to Redis's TLS
// port (go-redis's pool dialling again), without building anything anew.
func TestCAFileRotationLive(t *testing.T) {
	s := feedtest.SecureKafka(t)
	r := feedtest.RedisTLS(t)
	realCA, err := os.ReadFile(s.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	otherCA, _ := feedtest.SelfSigned(t, 9, time.Now().Add(time.Hour))
	dir := t.TempDir()
	kafkaCA, redisCA := filepath.Join(dir, "kafka-ca.pem"), filepath.Join(dir, "redis-ca.pem")
	for _, f := range []string{kafkaCA, redisCA} {
		if err := os.WriteFile(f, otherCA, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	ka, err := feed.KafkaAuthConfig{CAFile: kafkaCA, SASL: feed.SASLScramSHA512, User: s.User, PasswordFile: s.PasswordFile}.Build()
	if err != nil {
		t.Fatal(err)
	}
	ra, err := feed.RedisAuthConfig{CAFile: redisCA, CertFile: r.CertFile, KeyFile: r.KeyFile}.Build()
	if err != nil {
		t.Fatal(err)
	}
	ka.TLS.CAFile().SetCheckEvery(0)
	ra.TLS.CAFile().SetCheckEvery(0)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	topic := feedtest.Name("ca-rotation")
	rdb := redis.NewClient(ra.Options(r.TLSAddr))
	defer rdb.Close()

	if err := feed.CreateTopic(ctx, s.SASLBrokers, ka, topic, 1, true); !errors.Is(err, feed.ErrKafkaAuth) {
		t.Fatalf("kafka with another CA: %v, want the broker's certificate refused", err)
	}
	if err := rdb.Ping(ctx).Err(); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("redis with another CA: %v, want the server's certificate refused", err)
	}

	bundle := append(append([]byte{}, otherCA...), realCA...)
	for _, f := range []string{kafkaCA, redisCA} {
		if err := os.WriteFile(f, bundle, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := feed.CreateTopic(ctx, s.SASLBrokers, ka, topic, 1, true); err != nil {
		t.Fatalf("kafka after the CA was added: %v", err)
	}
	c := feed.NewConsumer(feed.KafkaConfig{Brokers: s.SASLBrokers, Topic: topic, Auth: ka}, matcher.NewIndex(nil), nil)
	if err := c.Prepare(ctx); err != nil {
		t.Fatalf("consumer after the CA was added: %v", err)
	}
	if err := rdb.Ping(ctx).Err(); err != nil {
		t.Fatalf("redis after the CA was added: %v", err)
	}
}
