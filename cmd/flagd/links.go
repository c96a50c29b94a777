package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"github.com/segmentio/kafka-go"

	"github.com/planflag/planflag/alert"
	"github.com/planflag/planflag/careplanclient"
	"github.com/planflag/planflag/feed"
)

// setupLinksAndAudit turns on plan links (with -link.key-file, or an
// ephemeral key under -demo) and the audit trail (-audit.file; following
// Kafka without it, -audit.topic), warning when either is off.
func (m *Main) setupLinksAndAudit(ctx context.Context) error {
	var keys *careplanclient.Keys
	switch {
	case m.Config.LinkKeyFile != "":
		k, err := careplanclient.LoadKeys(m.Config.LinkKeyFile)
		if err != nil {
			return fmt.Errorf("-link.key-file %s: %w", m.Config.LinkKeyFile, err)
		}
		keys = k
	case m.Config.Demo:
		keys = careplanclient.RandomKeys("demo")
	default:
		m.Log.Warn("no -link.key-file: answers carry no plan links")
	}
	if keys != nil {
		m.api.SetLinker(&careplanclient.Linker{Base: m.Config.LinkBaseURL, TTL: m.Config.LinkTTL, Keys: keys})
	}
	if m.Config.Demo && m.Config.AuditFile == "" && !m.Config.AuditNone {
		dir, err := m.demoDir()
		if err != nil {
			return err
		}
		m.Config.AuditFile = dir + "/audit.jsonl"
	}
	if m.Config.AuditFile != "" {
		f, err := os.OpenFile(m.Config.AuditFile, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
		if err != nil {
			return fmt.Errorf("-audit.file: %w", err)
		}
		m.auditor = alert.NewAuditor(alert.NewFileSink(f), 65536, m.Log, m.metrics.Registry)
		m.api.SetAuditor(m.auditor)
	} else if len(m.Config.KafkaBrokers) > 0 && m.Config.AuditTopic != "" && !m.Config.AuditNone {
		ms := int64(-1) // for good
		if r := m.Config.AuditRetention; r > 0 {
			ms = r.Milliseconds()
		}
		m.ensureTopics(ctx, "audit", []kafka.ConfigEntry{{ConfigName: "retention.ms", ConfigValue: strconv.FormatInt(ms, 10)}},
			m.checkAuditRetention, m.Config.AuditTopic)
		w := &kafka.Writer{Addr: kafka.TCP(m.Config.KafkaBrokers...), Transport: m.kafkaAuth.Transport(m.Config.KafkaClientID), Topic: m.Config.AuditTopic, Balancer: &kafka.Hash{},
			RequiredAcks: kafka.RequireAll, BatchTimeout: 10 * time.Millisecond, BatchSize: 1000, WriteTimeout: 10 * time.Second}
		m.auditor = alert.NewAuditor(alert.KafkaSink{W: w}, 65536, m.Log, m.metrics.Registry)
		m.api.SetAuditor(m.auditor)
	}
	if m.auditor == nil {
		m.Log.Warn("lookups are not audited (-audit.none, or no -audit.file nor, following Kafka, -audit.topic)")
	}
	return nil
}

// reconcile compares the index with the platform's live plans every
// interval until ctx ends, and reports the drift in metrics and the log
// (counts only).
func (m *Main) reconcile(ctx context.Context) {
	drift := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "planflag_reconcile_drift_plans",
		Help: "Plans differing between the index and the care-plan platform at the last reconciliation, by kind (missing, behind, extra)."},
		[]string{"kind"})
	runs := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "planflag_reconcile_runs_total",
		Help: "Reconciliations with the care-plan platform, by result."}, []string{"result"})
	breaker := prometheus.NewGauge(prometheus.GaugeOpts{Name: "planflag_platform_breaker_open",
		Help: "1 while the circuit breaker to the care-plan platform is open."})
	m.metrics.Registry.MustRegister(drift, runs, breaker)
	c := m.platform
	t := time.NewTicker(m.Config.ReconcileInterval)
	defer t.Stop()
	for {
		d, err := careplanclient.Reconcile(ctx, c, m.ix)
		if c.Breaker != nil && c.Breaker.State() != "closed" {
			breaker.Set(1)
		} else {
			breaker.Set(0)
		}
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			runs.WithLabelValues("error").Inc()
			m.Log.Warn("reconciliation with the care-plan platform failed", "err", err.Error())
		default:
			runs.WithLabelValues("ok").Inc()
			drift.WithLabelValues("missing").Set(float64(d.Missing))
			drift.WithLabelValues("behind").Set(float64(d.Behind))
			drift.WithLabelValues("extra").Set(float64(d.Extra))
			log := m.Log.Info
			if d.Total() > 0 {
				log = m.Log.Warn
			}
			log("reconciled with the care-plan platform", "platform_live", d.PlatformLive, "index_live", d.IndexLive,
				"missing", d.Missing, "behind", d.Behind, "extra", d.Extra)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// setupShared sets up what replicas share through Redis: each client's
// rate, counted across replicas once the replica is ready (load starts it),
// and push alerts (the recent-lookups registry, webhooks to the clients that
// configure one, and alert events on Kafka).
func (m *Main) setupShared(ctx context.Context, clients *alert.Clients) {
	rdb := redis.NewClient(m.redisAuth.Options(m.Config.RedisAddr))
	m.closers = append(m.closers, rdb.Close)
	m.rates = alert.NewRateShare(alert.RateShareConfig{}, rdb, clients, m.Log, m.metrics.Registry)
	var events, dead alert.MessageWriter // nil, not a nil *kafka.Writer, without Kafka
	if m.Config.AlertsTopic != "" {
		// Keyed by plan ID: one plan's alerts share a partition, in order.
		ew := &kafka.Writer{Addr: kafka.TCP(m.Config.KafkaBrokers...), Transport: m.kafkaAuth.Transport(m.Config.KafkaClientID), Topic: m.Config.AlertsTopic,
			Balancer: &kafka.Hash{}, RequiredAcks: kafka.RequireAll, AllowAutoTopicCreation: false, BatchTimeout: 5 * time.Millisecond,
			WriteTimeout: 10 * time.Second, MaxAttempts: 3} // the pusher retries too, with backoff
		dw := &kafka.Writer{Addr: kafka.TCP(m.Config.KafkaBrokers...), Transport: m.kafkaAuth.Transport(m.Config.KafkaClientID), Topic: m.Config.AlertsTopic + ".dead-letters",
			RequiredAcks: kafka.RequireAll, BatchTimeout: 5 * time.Millisecond, WriteTimeout: 10 * time.Second}
		m.closers = append(m.closers, ew.Close, dw.Close)
		events, dead = ew, dw
		m.ensureTopics(ctx, "alerts", nil, nil, m.Config.AlertsTopic, m.Config.AlertsTopic+".dead-letters")
	}
	m.pusher = alert.NewPusher(alert.PushConfig{Window: m.Config.AlertsWindow}, rdb, clients, events, dead, m.Log, m.metrics.Registry)
	m.api.SetPusher(m.pusher)
}

// platformAuth is how flagd authenticates to the care-plan platform's API:
// a bearer token, and TLS files (an https:// URL only).
type platformAuth struct {
	TokenFile                 string
	CAFile, CertFile, KeyFile string
}

// client returns the platform API's client at base, reading the files,
// and its TLS side (nil without TLS files): the CAs and client certificate,
// each read again when it changes on disk.
func (a platformAuth) client(base string) (*careplanclient.Client, *feed.TLSClient, error) {
	c := &careplanclient.Client{Base: base, Timeout: 30 * time.Second}
	if a.TokenFile != "" {
		token, err := feed.ReadSecret("-platform.token-file", a.TokenFile)
		if err != nil {
			return nil, nil, err
		}
		c.Token = token
	}
	if a.CAFile == "" && a.CertFile == "" && a.KeyFile == "" {
		return c, nil, nil
	}
	if !strings.HasPrefix(base, "https://") {
		return nil, nil, errors.New("-platform.tls-… files need an https:// -platform.url")
	}
	tc, err := feed.NewTLSClient("-platform.tls-…", "platform", true, a.CAFile, a.CertFile, a.KeyFile)
	if err != nil {
		return nil, nil, err
	}
	u, err := url.Parse(base)
	if err != nil {
		return nil, nil, fmt.Errorf("-platform.url: %w", err)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	// Settings rather than a dial function, so that a connection through
	// an HTTPS_PROXY (CONNECT) verifies the platform the same way; the CAs
	// are those on disk at each handshake.
	tr.TLSClientConfig = tc.ServerConfig(u.Hostname())
	c.HTTP = &http.Client{Transport: tr}
	return c, tc, nil
}

// ensureTopics creates the topics flagd writes to (3 partitions each) in
// the background, retrying with backoff until they exist or ctx ends: a
// broker unreachable at start must not leave them missing for the life of
// the process (every audit event written to a topic that does not exist is
// lost), nor hold up start-up and signals while it is tried. The replica
// turns ready only once they exist (load waits for m.topics). A topic
// created here is given cfg; then, once all exist, runs if not nil.
func (m *Main) ensureTopics(ctx context.Context, what string, cfg []kafka.ConfigEntry, then func(context.Context), topics ...string) {
	done := make(chan struct{})
	m.topics = append(m.topics, done)
	m.loading.Add(1)
	go func() {
		defer m.loading.Done()
		backoff, failed := time.Second, false
		for {
			var err error
			for _, t := range topics {
				cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
				err = feed.CreateTopicConfig(cctx, m.Config.KafkaBrokers, m.kafkaAuth, t, 3, cfg...)
				cancel()
				if err != nil {
					break
				}
			}
			if err == nil {
				if failed {
					m.Log.Info(what+" topics created", "topics", strings.Join(topics, ","))
				}
				close(done)
				if then != nil {
					then(ctx)
				}
				return
			}
			if ctx.Err() != nil {
				return
			}
			if errors.Is(err, feed.ErrKafkaAuth) {
				// Missing, and flagd may not create it: that will not
				// mend by waiting. Stop with the reason.
				select {
				case m.failed <- fmt.Errorf("%s topics %s: %w", what, strings.Join(topics, ","), err):
				default:
				}
				return
			}
			if !failed {
				m.Log.Warn(what+" topics not created yet; retrying, and not ready until they are", "topics", strings.Join(topics, ","), "err", err.Error())
				failed = true
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, 30*time.Second)
		}
	}()
}

// checkAuditRetention warns when the audit topic keeps its events for less
// than -audit.retention asks (for good, by default): a topic an operator
// made, or made before, that flagd leaves as it is. The broker deletes
// older audit events, and `flagd audit` cannot find them.
func (m *Main) checkAuditRetention(ctx context.Context) {
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	topic := m.Config.AuditTopic
	d, forever, err := feed.Retention(cctx, m.Config.KafkaBrokers, m.kafkaAuth, topic)
	wanted := "for good"
	if m.Config.AuditRetention > 0 {
		wanted = m.Config.AuditRetention.String()
	}
	switch {
	case ctx.Err() != nil:
		// Shutting down: nothing to tell.
	case err != nil:
		m.Log.Warn("audit topic's retention.ms not read: check it keeps audit events as long as your records policy asks", "topic", topic, "err", err.Error())
	case !forever && (m.Config.AuditRetention == 0 || d < m.Config.AuditRetention):
		m.Log.Warn("audit topic keeps events for less than -audit.retention asks: the broker deletes older audit events; set its retention.ms",
			"topic", topic, "retention", d.String(), "wanted", wanted)
	default:
		kept := "for good"
		if !forever {
			kept = d.String()
		}
		m.Log.Info("audit topic keeps events", "topic", topic, "retention", kept)
	}
}
