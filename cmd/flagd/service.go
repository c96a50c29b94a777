package main

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/valyala/fasthttp"

	"github.com/planflag/planflag/alert"
	"github.com/planflag/planflag/careplanclient"
	"github.com/planflag/planflag/feed"
	"github.com/planflag/planflag/matcher"
)

// Config is flagd's configuration, from flags with FLAGD_… fallbacks.
type Config struct {
	HTTPAddr        string
	HTTPTLSCert     string // PEM certificate chain and key: serve HTTPS
	HTTPTLSKey      string
	TLSCheck        time.Duration // how often certificate files are read again for a renewal
	DebugAddr       string        // where Go's profiles are served (empty: nowhere)
	Clients         string
	Events          string
	Demo            bool
	MaxBody         int
	MaxInFlight     int
	ShutdownTimeout time.Duration
	LogLevel        string

	KafkaBrokers     []string
	KafkaTopic       string
	KafkaDeadLetters string
	KafkaClientID    string
	KafkaAuth        feed.KafkaAuthConfig // TLS and SASL to the brokers
	RedisAddr        string
	RedisAuth        feed.RedisAuthConfig // TLS and credentials to Redis
	SnapshotInterval time.Duration
	SnapshotMaxAge   time.Duration

	LinkBaseURL string
	LinkKeyFile string
	LinkTTL     time.Duration
	AuditFile   string
	// AuditNone serves without an audit trail, as the operator asked
	// (-audit.none): without it, and with nowhere to audit to, flagd does
	// not start.
	AuditNone bool

	PlatformURL       string
	PlatformAuth      platformAuth // the platform API's token and TLS files
	ReconcileInterval time.Duration

	AlertsWindow time.Duration
	AlertsTopic  string
	AuditTopic   string
	// AuditRetention is how long an audit topic flagd creates keeps its
	// events (retention.ms); 0 keeps them for good.
	AuditRetention time.Duration

	// UnknownEnv names the FLAGD_… variables set that name no flag (a
	// misspelling, or another program's): warned of at start.
	UnknownEnv []string
}

// parseConfig reads flags (and the environment) into a Config.
func parseConfig(args []string, stderr io.Writer) (Config, error) {
	fs := flag.NewFlagSet("flagd", flag.ContinueOnError)
	fs.SetOutput(stderr)
	e := &envFlags{fs: fs}
	var c Config
	def := alert.DefaultConfig()
	addr := e.String("http.addr", "127.0.0.1:8080", "address to serve the lookup API on")
	tlsCert := e.String("http.tls-cert", "", "PEM certificate (chain) to serve HTTPS with (with -http.tls-key); without it the API is plain HTTP, for a TLS-terminating proxy in front")
	tlsKey := e.String("http.tls-key", "", "PEM key of -http.tls-cert")
	tlsCheck := e.Duration("tls.check-interval", feed.KeyPairCheck, "how often the -http, -kafka, -redis and -platform .tls-cert/.tls-key and .tls-ca files are read again: a renewed certificate is presented, and a changed CA file verified against, from the next connection on, without a restart")
	debugAddr := e.String("debug.addr", "", "serve Go's runtime profiles (/debug/pprof/: heap, goroutines, CPU) on this loopback host:port; off when empty")
	clients := e.String("clients", "", "clients file: [{\"id\", \"token_sha256\", \"scopes\", \"rate_per_s\"}] (also \"next_token_sha256\", \"webhook_url\", \"webhook_secret\"); read again, with -link.key-file, on SIGHUP")
	events := e.String("events", "", "plan events to load at start, one JSON object per line")
	demo := e.Bool("demo", false, "generate a synthetic plan store and a demo client in process, print the token and example lookups")
	maxBody := e.Int("http.max-body", def.MaxBody, "largest lookup request body in bytes (larger: 413)")
	maxInFlight := e.Int("http.max-inflight", def.MaxInFlight, "lookups answered at once before shedding with 503")
	shutdown := e.Duration("shutdown.timeout", 10*time.Second, "how long to drain in-flight requests on SIGINT/SIGTERM")
	level := e.String("log.level", "info", "log level: debug, info, warn, error")
	brokers := e.String("kafka.brokers", "", "Kafka bootstrap brokers, comma-separated: follow the plan-store topic (every partition)")
	topic := e.String("kafka.topic", feed.DefaultTopic, "plan-store topic")
	dlq := e.String("kafka.dead-letter-topic", "", "topic for refused events (default <kafka.topic>.dead-letters)")
	clientID := e.String("kafka.client-id", "planflag", "client ID the plan-store topic is read with (brokers set quotas per client ID)")
	kafkaAuth := feed.KafkaAuthFlags(e)
	redisAddr := e.String("redis.addr", "", "Redis host:port for the warm-start snapshot, client rates shared across replicas and push alerts (needs -kafka.brokers)")
	redisAuth := redisAuthFlags(e)
	snapEvery := e.Duration("snapshot.interval", 30*time.Second, "how often the snapshot is written to Redis (and on shutdown)")
	linkBase := e.String("link.base-url", "", "where plan links point: the care-plan platform's open endpoint (needed with -link.key-file)")
	linkKeys := e.String("link.key-file", "", "link-signing keys: {\"active\": ID, \"keys\": {ID: base64}}; without it answers carry no links (-demo: a key of its own)")
	linkTTL := e.Duration("link.ttl", 15*time.Minute, "how long a plan link stays valid")
	platform := e.String("platform.url", "", "care-plan platform API base URL: reconcile live plans and versions against the index")
	reconcile := e.Duration("platform.reconcile-interval", 5*time.Minute, "how often to reconcile with the platform")
	platformAuthf := platformFlags(e)
	alertsWindow := e.Duration("alerts.window", 24*time.Hour, "push alerts: a client given a plan is told of its changes for this long (needs -redis.addr)")
	alertsTopic := e.String("alerts.topic", "plan-alerts", "push alerts: Kafka topic for alert events (empty: webhooks only)")
	audit := e.String("audit.file", "", "append an audit event per lookup to this file (JSON lines); without it, with Kafka, to -audit.topic")
	auditTopic := e.String("audit.topic", "lookup-audit", "Kafka topic for audit events when following Kafka without -audit.file")
	auditRetention := e.Duration("audit.retention", 0, "following Kafka with -audit.topic: how long the audit topic keeps events, set when flagd creates it (0: for good, retention.ms -1; at least 24h; the broker's default is often 7 days); an existing topic is left as configured, with a warning if it keeps events for less")
	auditNone := e.Bool("audit.none", false, "serve without an audit trail (a trial, a test); without it flagd will not start with nowhere to audit to (-audit.file, or -audit.topic following Kafka; -demo audits to a file of its own)")
	snapAge := e.Duration("snapshot.max-age", 12*time.Hour, "a snapshot whose offsets were last at the log's head longer ago is not used at start (lowered to half the topic's delete.retention.ms if above it)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: flagd [flags]            serve the lookup API")
		fmt.Fprintln(stderr, "       flagd -demo              serve a synthetic demo plan store")
		fmt.Fprintln(stderr, "       flagd lookup -events F   answer lookup requests from standard input")
		fmt.Fprintln(stderr, "       flagd audit -file F -plan ID   who looked up a plan, and when")
		fmt.Fprintln(stderr, "Flags:")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if err := e.err(); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected argument %q (flags come before nothing else)", fs.Arg(0))
	}
	c = Config{UnknownEnv: e.unknownEnv(), HTTPAddr: *addr, HTTPTLSCert: *tlsCert, HTTPTLSKey: *tlsKey, TLSCheck: *tlsCheck, DebugAddr: *debugAddr, Clients: *clients, Events: *events, Demo: *demo, MaxBody: *maxBody,
		MaxInFlight: *maxInFlight, ShutdownTimeout: *shutdown, LogLevel: *level,
		KafkaTopic: *topic, KafkaDeadLetters: *dlq, KafkaClientID: *clientID, KafkaAuth: kafkaAuth(), RedisAddr: *redisAddr, RedisAuth: redisAuth(),
		SnapshotInterval: *snapEvery, SnapshotMaxAge: *snapAge,
		LinkBaseURL: *linkBase, LinkKeyFile: *linkKeys, LinkTTL: *linkTTL, AuditFile: *audit, AuditNone: *auditNone,
		PlatformURL: strings.TrimRight(*platform, "/"), PlatformAuth: platformAuthf(), ReconcileInterval: *reconcile,
		AlertsWindow: *alertsWindow, AlertsTopic: *alertsTopic, AuditTopic: *auditTopic, AuditRetention: *auditRetention}
	for _, b := range strings.Split(*brokers, ",") {
		if b = strings.TrimSpace(b); b != "" {
			if !isHostPort(b) {
				return c, fmt.Errorf("-kafka.brokers: %q is not host:port", b)
			}
			c.KafkaBrokers = append(c.KafkaBrokers, b)
		}
	}
	kafka := len(c.KafkaBrokers) > 0
	if c.Demo && c.LinkBaseURL == "" {
		c.LinkBaseURL = demoLinkBase // -demo's links, made with its own key or -link.key-file's
	}
	if (c.HTTPTLSCert == "") != (c.HTTPTLSKey == "") {
		return c, errors.New("give -http.tls-cert and -http.tls-key together")
	}
	if c.DebugAddr != "" && !isLoopback(c.DebugAddr) {
		// Profiles show the service's internals (and can stall it for a
		// CPU profile's length): never on a network interface.
		return c, fmt.Errorf("-debug.addr: %q is not a loopback host:port (127.0.0.1:PORT, [::1]:PORT or localhost:PORT)", c.DebugAddr)
	}
	switch {
	case c.RedisAddr != "" && !kafka:
		return c, errors.New("-redis.addr needs -kafka.brokers: a snapshot is only sound with the offsets it reflects")
	case c.RedisAddr != "" && !isHostPort(c.RedisAddr):
		return c, fmt.Errorf("-redis.addr: %q is not host:port", c.RedisAddr)
	case kafka && c.Events != "":
		return c, errors.New("give one plan source: -events FILE or -kafka.brokers, not both")
	case kafka && c.Demo:
		return c, errors.New("-demo generates its own plans; it does not take -kafka.brokers")
	case c.KafkaTopic == "":
		return c, errors.New("-kafka.topic must not be empty")
	case c.LinkTTL < time.Minute || c.LinkTTL > 24*time.Hour:
		return c, errors.New("-link.ttl must be between 1m and 24h")
	case c.LinkKeyFile != "" && c.LinkBaseURL == "":
		return c, errors.New("-link.key-file needs -link.base-url: the care-plan platform's address the links open")
	case c.LinkBaseURL != "" && !strings.HasPrefix(c.LinkBaseURL, "https://") && !strings.HasPrefix(c.LinkBaseURL, "http://"):
		return c, fmt.Errorf("-link.base-url: %q is not an http(s) URL", c.LinkBaseURL)
	case c.PlatformURL != "" && !strings.HasPrefix(c.PlatformURL, "https://") && !strings.HasPrefix(c.PlatformURL, "http://"):
		return c, fmt.Errorf("-platform.url: %q is not an http(s) URL", c.PlatformURL)
	case c.AlertsWindow < time.Minute:
		return c, errors.New("-alerts.window must be at least 1m")
	case c.ReconcileInterval < time.Second:
		return c, errors.New("-platform.reconcile-interval must be at least 1s")
	case c.SnapshotInterval < time.Second:
		return c, errors.New("-snapshot.interval must be at least 1s")
	case c.SnapshotMaxAge < c.SnapshotInterval:
		return c, errors.New("-snapshot.max-age must be longer than -snapshot.interval")
	case c.MaxBody < 256:
		return c, errors.New("-http.max-body must be at least 256 bytes")
	case c.MaxInFlight < 1:
		return c, errors.New("-http.max-inflight must be at least 1")
	case c.TLSCheck < time.Second:
		return c, errors.New("-tls.check-interval must be at least 1s")
	case c.ShutdownTimeout <= 0:
		return c, errors.New("-shutdown.timeout must be more than 0 (the time lookups in flight have to finish)")
	case !c.Demo && c.Clients == "":
		return c, errors.New("no clients: give -clients FILE (or -demo)")
	case !c.Demo && c.Events == "" && !kafka:
		return c, errors.New("no plan source: give -events FILE.jsonl or -kafka.brokers (or -demo)")
	}
	// A setting whose feature is off would be ignored: say so rather than
	// let the operator believe it is in force.
	for _, n := range []struct {
		flag, needs string
		off         bool
	}{
		{"kafka.topic", "-kafka.brokers", !kafka},
		{"kafka.dead-letter-topic", "-kafka.brokers", !kafka},
		{"kafka.client-id", "-kafka.brokers", !kafka},
		{"kafka.tls", "-kafka.brokers", !kafka},
		{"kafka.tls-ca", "-kafka.brokers", !kafka},
		{"kafka.tls-cert", "-kafka.brokers", !kafka},
		{"kafka.tls-key", "-kafka.brokers", !kafka},
		{"kafka.sasl", "-kafka.brokers", !kafka},
		{"kafka.sasl-user", "-kafka.brokers", !kafka},
		{"kafka.sasl-password-file", "-kafka.brokers", !kafka},
		{"snapshot.interval", "-redis.addr", c.RedisAddr == ""},
		{"redis.tls", "-redis.addr", c.RedisAddr == ""},
		{"redis.tls-ca", "-redis.addr", c.RedisAddr == ""},
		{"redis.tls-cert", "-redis.addr", c.RedisAddr == ""},
		{"redis.tls-key", "-redis.addr", c.RedisAddr == ""},
		{"redis.user", "-redis.addr", c.RedisAddr == ""},
		{"redis.password-file", "-redis.addr", c.RedisAddr == ""},
		{"snapshot.max-age", "-redis.addr", c.RedisAddr == ""},
		{"alerts.window", "-redis.addr", c.RedisAddr == ""},
		{"alerts.topic", "-redis.addr", c.RedisAddr == ""},
		{"platform.reconcile-interval", "-platform.url", c.PlatformURL == ""},
		{"platform.token-file", "-platform.url", c.PlatformURL == ""},
		{"platform.tls-ca", "-platform.url", c.PlatformURL == ""},
		{"platform.tls-cert", "-platform.url", c.PlatformURL == ""},
		{"platform.tls-key", "-platform.url", c.PlatformURL == ""},
		{"link.base-url", "-link.key-file", c.LinkKeyFile == "" && !c.Demo},
		{"link.ttl", "-link.key-file", c.LinkKeyFile == "" && !c.Demo},
		{"tls.check-interval", "a certificate or CA file (-http.tls-cert, or -kafka, -redis or -platform .tls-cert or .tls-ca)",
			c.HTTPTLSCert == "" && c.KafkaAuth.CertFile == "" && c.RedisAuth.CertFile == "" && c.PlatformAuth.CertFile == "" &&
				c.KafkaAuth.CAFile == "" && c.RedisAuth.CAFile == "" && c.PlatformAuth.CAFile == ""},
	} {
		if how := e.given(n.flag); n.off && how != "" {
			return c, fmt.Errorf("%s has no effect without %s", how, n.needs)
		}
	}
	// The audit topic is written only following Kafka without -audit.file.
	// Given empty it says "no audit topic", true whatever the source.
	if how := e.given("audit.topic"); how != "" && c.AuditTopic != "" {
		switch {
		case !kafka:
			return c, fmt.Errorf("%s has no effect without -kafka.brokers (audit to a file: -audit.file)", how)
		case c.AuditFile != "":
			return c, fmt.Errorf("%s has no effect with -audit.file: audit events go to the file", how)
		case c.AuditNone:
			return c, fmt.Errorf("%s and -audit.none contradict each other", how)
		}
	}
	if how := e.given("audit.retention"); how != "" {
		switch {
		case c.AuditRetention < 0:
			return c, fmt.Errorf("%s must not be negative (0 keeps audit events for good)", how)
		case c.AuditRetention > 0 && c.AuditRetention < minAuditRetention:
			return c, fmt.Errorf("%s must be at least %v: the broker would delete the audit trail almost as it is written (0 keeps it for good)", how, minAuditRetention)
		case !kafka || c.AuditFile != "" || c.AuditNone || c.AuditTopic == "":
			return c, fmt.Errorf("%s has no effect without an audit topic (-kafka.brokers, without -audit.file or -audit.none)", how)
		}
	}
	// Every lookup is audited (DESIGN.md): a replica with nowhere to write
	// its audit events does not start unless the operator says so.
	switch {
	case c.AuditNone && c.AuditFile != "":
		return c, fmt.Errorf("-audit.file and -audit.none contradict each other")
	case c.AuditNone:
		c.AuditTopic = ""
	case c.AuditFile == "" && !c.Demo && !(kafka && c.AuditTopic != ""):
		where := "-audit.file"
		if kafka {
			where = "-audit.file or -audit.topic"
		}
		return c, fmt.Errorf("lookups would not be audited: give %s, or -audit.none to serve without an audit trail", where)
	}
	return c, nil
}

// minAuditRetention is the shortest -audit.retention flagd takes: an audit
// trail kept for less is no trail (a typo of 24h as 24s, 500us).
const minAuditRetention = 24 * time.Hour

// demoLinkBase is where -demo's plan links point when -link.base-url is not
// given: nowhere real, as its plans are not.
const demoLinkBase = "https://careplans.invalid/open"

// isHostPort reports whether addr is a host (a name or an address) and a
// port number from 1 to 65535.
func isHostPort(addr string) bool {
	host, port, err := net.SplitHostPort(addr)
	if err != nil || host == "" {
		return false
	}
	n, err := strconv.Atoi(port)
	return err == nil && n >= 1 && n <= 65535
}

// Main is the running service: Run starts it, Close stops it in order.
type Main struct {
	Config Config
	Log    *slog.Logger
	Stdout io.Writer // where -demo prints its token and examples

	// Addr is the address the API listens on, once Run has returned;
	// DebugAddr the profiles', with -debug.addr.
	Addr      string
	DebugAddr string

	api     *alert.Server
	metrics *alert.Metrics
	http    *fasthttp.Server
	ln      net.Listener
	ix      *matcher.Index
	snaps   *feed.Snapshots
	auditor *alert.Auditor
	pusher  *alert.Pusher
	rates   *alert.RateShare // clients' rates shared with the other replicas (with Redis)
	// clients are the clients in force (Reload replaces them), read again
	// with the rate limiters' clock, limiterNow; reloads counts the
	// readings of the clients and link-key files by file and result.
	clients    *alert.Clients
	limiterNow func() int64
	reloads    *prometheus.CounterVec
	reloadMu   sync.Mutex // one Reload at a time
	closers    []func() error
	feedM      *feed.Metrics
	// kafkaAuth is how every Kafka client reaches the brokers (from
	// Config.KafkaAuth).
	kafkaAuth feed.KafkaAuth
	redisAuth feed.RedisAuth         // how every Redis client reaches Redis
	platform  *careplanclient.Client // the care-plan platform's API (-platform.url)
	served    chan error
	failed    chan error // the plan source cannot load (a bad file, credentials refused): flagd exits
	loading   sync.WaitGroup
	topics    []chan struct{} // closed once the topics flagd writes exist (ensureTopics)
	// -demo: the folder of its files, and its clients file.
	demoFiles, demoClientsFile string
	cancel                     context.CancelFunc

	readyMu sync.Mutex // guards closing, and readiness turned on against it
	closing bool       // Close has begun: never ready again
}

// Run listens, then loads the plan source in the background (/readyz turns
// 200 when it is loaded) and returns; the API serves until Close.
func (m *Main) Run(ctx context.Context) error {
	ctx, m.cancel = context.WithCancel(ctx)
	for _, name := range m.Config.UnknownEnv {
		m.Log.Warn("environment variable names no flagd setting; ignored (flagd -h lists them)", "variable", name)
	}
	// The rate limiters' clock: nanoseconds since start on the monotonic
	// clock, so a step of the wall clock (NTP, an operator) neither refuses
	// nor frees lookups.
	started := time.Now()
	now := func() int64 { return int64(time.Since(started)) }
	var clients *alert.Clients
	var err error
	var demoToken string
	if m.Config.Demo && m.Config.Clients == "" {
		demoToken, clients, err = m.demoClients(now)
	} else {
		clients, err = alert.LoadClients(m.Config.Clients, now)
	}
	if err != nil {
		return err
	}
	m.warnExposedSecrets(clients)
	if err := checkEventsFile(m.Config.Events); err != nil {
		return err
	}
	if err := m.checkWebhooks(clients); err != nil {
		return err
	}
	m.clients, m.limiterNow = clients, now
	m.failed = make(chan error, 1)
	m.metrics = alert.NewMetrics()
	m.reloads = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "planflag_reloads_total",
		Help: "Readings of a file after start (SIGHUP), by file (clients, link_keys) and result: ok, or error (what was read before stayed in force)."}, []string{"file", "result"})
	m.metrics.Registry.MustRegister(m.reloads)
	if len(m.Config.KafkaBrokers) > 0 {
		if m.kafkaAuth, err = m.Config.KafkaAuth.Build(); err != nil {
			return fmt.Errorf("-kafka.tls…/-kafka.sasl… settings: %w", err)
		}
		m.feedM = feed.NewMetrics(m.metrics.Registry)
		if m.Config.RedisAddr != "" {
			if m.redisAuth, err = m.Config.RedisAuth.Build(); err != nil {
				return fmt.Errorf("-redis.tls…/-redis.user/-redis.password-file settings: %w", err)
			}
			m.snaps = feed.NewSnapshots(feed.SnapshotConfig{Addr: m.Config.RedisAddr, Redis: m.redisAuth, Topic: m.Config.KafkaTopic,
				Interval: m.Config.SnapshotInterval, MaxAge: m.Config.SnapshotMaxAge, Log: m.Log, Metrics: m.feedM})
		}
	}
	cfg := alert.Config{MaxBody: m.Config.MaxBody, MaxInFlight: m.Config.MaxInFlight}
	m.api = alert.NewServer(cfg, clients, m.metrics, m.Log, time.Now)
	if err := m.setupLinksAndAudit(ctx); err != nil {
		return err
	}
	var platformTLS *feed.TLSClient
	if m.Config.PlatformURL != "" {
		if m.platform, platformTLS, err = m.Config.PlatformAuth.client(m.Config.PlatformURL); err != nil {
			return err
		}
	}
	if m.snaps != nil {
		m.setupShared(ctx, clients) // shared rates and push alerts need Redis
	}
	m.ix = matcher.NewIndex(nil)
	m.api.SetMatcher(m.ix)
	m.http = alert.HTTPServer(m.api.Handler, m.api.ErrorHandler, m.Config.MaxBody, m.api.ConnLogger())
	var serverTLS *tls.Config
	var httpCert *feed.KeyPair
	if m.Config.HTTPTLSCert != "" {
		if httpCert, err = feed.LoadKeyPair("http", m.Config.HTTPTLSCert, m.Config.HTTPTLSKey); err != nil {
			return fmt.Errorf("-http.tls-cert/-http.tls-key: %w", err)
		}
		serverTLS = &tls.Config{GetCertificate: httpCert.GetCertificate, MinVersion: tls.VersionTLS12}
	}
	m.watchTLS([]*feed.KeyPair{httpCert, m.kafkaAuth.TLS.Pair(), m.redisAuth.TLS.Pair(), platformTLS.Pair()},
		[]*feed.CAFile{m.kafkaAuth.TLS.CAFile(), m.redisAuth.TLS.CAFile(), platformTLS.CAFile()})
	m.ln, err = net.Listen("tcp", m.Config.HTTPAddr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", m.Config.HTTPAddr, err)
	}
	m.Addr = m.ln.Addr().String()
	if serverTLS != nil {
		m.ln = tls.NewListener(m.ln, serverTLS)
	}
	if m.Config.DebugAddr != "" {
		if err := m.serveDebug(); err != nil {
			m.ln.Close()
			return err
		}
	}
	m.served = make(chan error, 1)
	go func() { m.served <- m.http.Serve(m.ln) }()
	m.Log.Info("listening", "addr", m.Addr, "tls", serverTLS != nil)

	m.loading.Add(1)
	go func() {
		defer m.loading.Done()
		if err := m.load(ctx, demoToken); err != nil {
			if ctx.Err() != nil && errors.Is(err, ctx.Err()) {
				m.Log.Info("plan source load stopped: shutting down")
				return
			}
			if len(m.Config.KafkaBrokers) == 0 || errors.Is(err, feed.ErrKafkaAuth) {
				// A file is read once, and credentials the brokers refuse
				// stay refused: neither will get better.
				m.failed <- err
				return
			}
			m.Log.Error("plan source not loaded; staying not ready", "err", err.Error())
		}
	}()
	return nil
}

// watchTLS has the certificates flagd presents and the CA files it verifies
// servers against (nil ones skipped) log their changes and report their
// expiry on /metrics; each is taken up again from its files when changed
// there.
func (m *Main) watchTLS(pairs []*feed.KeyPair, cas []*feed.CAFile) {
	watch := func(f feed.Watched) {
		f.SetLogger(m.Log)
		f.SetCheckEvery(m.Config.TLSCheck)
		if left := time.Until(f.Expiry()); left < certWarn {
			m.Log.Warn("TLS certificate expires soon or has expired; renew it in its file (flagd reads it again)",
				"file", f.What(), "expires", f.Expiry().UTC().Format(time.RFC3339))
		}
	}
	for _, p := range pairs {
		if p != nil {
			watch(p)
		}
	}
	for _, c := range cas {
		if c != nil {
			watch(c)
		}
	}
	m.metrics.Registry.MustRegister(feed.NewKeyPairCollector(pairs...), feed.NewCAFileCollector(cas...))
}

// certWarn is how close to its expiry a certificate loaded at start is
// warned about.
const certWarn = 14 * 24 * time.Hour

// URL is where the API serves: http://Addr, or https:// with -http.tls-cert.
func (m *Main) URL() string {
	if m.Config.HTTPTLSCert != "" {
		return "https://" + m.Addr
	}
	return "http://" + m.Addr
}

// Failed delivers the error that stopped the plan file loading, after
// which the service would never be ready.
func (m *Main) Failed() <-chan error { return m.failed }

// checkEventsFile refuses an -events path that cannot be a file of events,
// before the service starts. It is not opened here: opening a pipe waits
// for its writer, and loading does that in the background.
func checkEventsFile(path string) error {
	if path == "" {
		return nil
	}
	fi, err := os.Stat(path)
	switch {
	case err != nil:
		return fmt.Errorf("-events: %w", err)
	case fi.IsDir():
		return fmt.Errorf("-events: %s is a directory, not a file of plan events", path)
	}
	return nil
}

// load fills the index from the configured source, then turns ready.
func (m *Main) load(ctx context.Context, demoToken string) error {
	start := time.Now()
	progress := func(st feed.LoadStats) {
		m.metrics.IndexPlans.Set(float64(m.ix.Live()))
		m.Log.Info("loading plan events", "events", st.Events, "live", m.ix.Live(), "dead_letters", st.DeadLetters)
	}
	var examples []demoQuery
	if len(m.Config.KafkaBrokers) > 0 {
		if err := m.follow(ctx); err != nil {
			return err
		}
	} else if m.Config.Demo && m.Config.Events == "" {
		var err error
		examples, err = demoLoad(m.ix)
		if err != nil {
			return err
		}
	} else {
		st, err := m.loadFile(ctx, progress)
		if err == nil && ctx.Err() == nil {
			err = st.Unusable(m.Config.Events)
		}
		if err != nil {
			return err
		}
		m.metrics.Loaded.WithLabelValues("upserted").Add(float64(st.Upserted))
		m.metrics.Loaded.WithLabelValues("withdrawn").Add(float64(st.Withdrawn))
		m.metrics.Loaded.WithLabelValues("stale").Add(float64(st.Stale))
		m.metrics.Loaded.WithLabelValues("dead_letter").Add(float64(st.DeadLetters))
		for _, d := range st.FirstDeadLetters {
			m.Log.Warn("dead letter", "where", d)
		}
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	// Lookups search one level of postings; loading allocates far more
	// than the index keeps (decoded events, batches): give that back to
	// the OS now rather than over minutes, and collect as a serving
	// replica should from here on.
	m.ix.Compact()
	feed.ServingGC()
	debug.FreeOSMemory()
	st := m.ix.Stats()
	m.metrics.IndexPlans.Set(float64(st.Live))
	m.metrics.Sparse.Set(float64(st.Sparse))
	for _, created := range m.topics { // the audit and alert topics (ensureTopics)
		select {
		case <-created:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if !m.setReady() {
		m.Log.Info("plan source loaded after shutdown began; staying not ready", "live", st.Live)
		return nil
	}
	if m.rates != nil {
		// Not before: until ready the replica serves no lookup, and a warm
		// start's snapshot reads keep Redis busy past an exchange's deadline
		// (at 10,000,000 plans, seven "Redis unreachable" warnings in one
		// warm start).
		go m.rates.Run(ctx)
	}
	if m.Config.PlatformURL != "" {
		m.loading.Add(1)
		go func() {
			defer m.loading.Done()
			m.reconcile(ctx)
		}()
	}
	m.Log.Info("ready", "live", st.Live, "sparse", st.Sparse, "seconds", time.Since(start).Seconds())
	if m.Config.Demo {
		clientsFile := m.demoClientsFile
		if demoToken == "" {
			clientsFile = m.Config.Clients
		}
		printDemo(m.Stdout, m.URL(), demoToken, clientsFile, st.Live, examples, m.Config.AuditFile)
	}
	return nil
}

// loadFile loads -events until ctx ends. Shutdown stops it: the file is
// closed and its reader reads no more, so a slow or endless source (a
// pipe, a network mount) does not hold Close up.
func (m *Main) loadFile(ctx context.Context, progress func(feed.LoadStats)) (feed.LoadStats, error) {
	f, err := os.Open(m.Config.Events)
	if err != nil {
		return feed.LoadStats{}, fmt.Errorf("open events: %w", err)
	}
	defer f.Close()
	stop := context.AfterFunc(ctx, func() { f.Close() }) // ends a read waiting on a pipe
	defer stop()
	return feed.LoadJSONL(ctxReader{ctx, f}, m.ix, progress)
}

// ctxReader reads from r until ctx ends, then fails with ctx's error.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	n, err := c.r.Read(p)
	if err != nil && c.ctx.Err() != nil {
		err = c.ctx.Err() // the read failed because shutdown closed the file
	}
	return n, err
}

// setReady turns lookups and /readyz on, unless Close has begun (a load
// finishing during the drain must not turn them back on); it reports
// whether it did.
func (m *Main) setReady() bool {
	m.readyMu.Lock()
	defer m.readyMu.Unlock()
	if m.closing {
		return false
	}
	m.api.SetReady(true)
	return true
}

// Close stops the service in order: readiness off, drain in-flight
// requests, stop loading; each step's duration is logged.
func (m *Main) Close() error {
	step := func(name string, f func() error) error {
		start := time.Now()
		err := f()
		m.Log.Info("shutdown step", "step", name, "millis", time.Since(start).Milliseconds())
		return err
	}
	m.readyMu.Lock()
	m.closing = true
	m.api.SetReady(false)
	m.readyMu.Unlock()
	var errs []error
	errs = append(errs, step("drain http", func() error {
		ctx, cancel := context.WithTimeout(context.Background(), m.Config.ShutdownTimeout)
		defer cancel()
		err := m.http.ShutdownWithContext(ctx)
		// Shutdown closes only the listeners Serve has taken up: called
		// right after Run (a signal at start) it may find none, and Serve,
		// starting later, would serve on and Close wait for it forever.
		_ = m.ln.Close()
		return err
	}))
	errs = append(errs, step("stop feed", func() error {
		m.cancel()
		stopped := make(chan struct{})
		go func() {
			m.loading.Wait()
			close(stopped)
		}()
		// A source that ignores the cancellation (an open(2) of a pipe no
		// one writes to) is abandoned: the process is on its way out.
		select {
		case <-stopped:
			return nil
		case <-time.After(m.Config.ShutdownTimeout):
			return fmt.Errorf("plan source still loading %v after it was told to stop; abandoned", m.Config.ShutdownTimeout)
		}
	}))
	if m.auditor != nil {
		errs = append(errs, step("flush audit", m.auditor.Close))
	}
	for _, c := range m.closers {
		errs = append(errs, c())
	}
	if m.snaps != nil {
		errs = append(errs, step("write snapshot", func() error {
			return m.snaps.Close(m.Config.ShutdownTimeout)
		}))
	}
	if err := <-m.served; err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// demoClients makes a client with a fresh random token.
func (m *Main) demoClients(now func() int64) (string, *alert.Clients, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", nil, err
	}
	token := "demo-" + hex.EncodeToString(b[:])
	cfg := []alert.ClientConfig{{ID: "demo-cad", TokenSHA256: alert.TokenHash(token), Scopes: []string{alert.ScopeLookup}}}
	raw, _ := json.Marshal(cfg)
	if dir, err := m.demoDir(); err == nil {
		m.demoClientsFile = filepath.Join(dir, "clients.json") // the token stored hashed, as -clients takes it
		if os.WriteFile(m.demoClientsFile, raw, 0o600) != nil {
			m.demoClientsFile = ""
		}
	}
	cs, err := alert.ParseClients(raw, now)
	return token, cs, err
}

// demoDir is the folder of the demo's files (its clients file, its audit
// file): one a run, made on first use.
func (m *Main) demoDir() (string, error) {
	if m.demoFiles == "" {
		dir, err := os.MkdirTemp("", "planflag-demo-")
		if err != nil {
			return "", err
		}
		m.demoFiles = dir
	}
	return m.demoFiles, nil
}

func printDemo(w io.Writer, base, token, clientsFile string, live int, examples []demoQuery, auditFile string) {
	fmt.Fprintf(w, "\nplanflag demo: %d live synthetic plans (every record is generated; no real person's data)\n", live)
	if token == "" {
		// -clients given: the token is one of that file's, which flagd
		// holds only hashed.
		token = "$TOKEN"
		fmt.Fprintf(w, "Serving on %s — set TOKEN to a token of a client in -clients %s\n\n", base, clientsFile)
	} else {
		fmt.Fprintf(w, "Serving on %s — demo client token: %s (clients file: %s)\n\n", base, token, clientsFile)
	}
	for _, ex := range examples {
		body, _ := json.Marshal(ex.q)
		fmt.Fprintf(w, "# %s\ncurl -s -H 'Authorization: Bearer %s' -d '%s' %s/v1/lookup\n\n",
			ex.what, token, strings.ReplaceAll(string(body), "'", `'\''`), base)
	}
	fmt.Fprintln(w, "Every lookup is audited (field names, tier, plan and link IDs; never values) to", auditFile)
	fmt.Fprintln(w, "Stop with Ctrl-C.")
}

// isLoopback reports whether addr is host:port with a loopback host.
func isLoopback(addr string) bool {
	host, port, err := net.SplitHostPort(addr)
	if err != nil || port == "" {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// serveDebug serves Go's runtime profiles on Config.DebugAddr until Close:
// what an operator needs to see where memory or goroutines go. They hold
// code locations and sizes, never the index's contents.
func (m *Main) serveDebug() error {
	ln, err := net.Listen("tcp", m.Config.DebugAddr)
	if err != nil {
		return fmt.Errorf("-debug.addr: listen on %s: %w", m.Config.DebugAddr, err)
	}
	m.DebugAddr = ln.Addr().String()
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	m.closers = append(m.closers, srv.Close)
	m.Log.Info("serving runtime profiles", "addr", m.DebugAddr)
	return nil
}

// checkWebhooks refuses clients that take push alerts when flagd has no
// way to send them: a webhook that could never be called is refused, as a
// flag whose feature is off is, since its client expects alerts.
func (m *Main) checkWebhooks(clients *alert.Clients) error {
	if ids := clients.WithWebhook(); len(ids) > 0 && (m.Config.RedisAddr == "" || len(m.Config.KafkaBrokers) == 0) {
		return fmt.Errorf("clients file: %s take push alerts (webhook_url), which need -kafka.brokers and -redis.addr",
			strings.Join(ids, ", "))
	}
	return nil
}

// Reload reads the clients file and the link-signing keys
// (-link.key-file) again, as flagd does on SIGHUP: a client added, a token
// revoked, a rate changed or the active signing key rotated, without a
// restart; the next lookup sees them. A file that cannot be read, or is
// refused as it would be at start, changes nothing of its own: what was
// read before stays in force, and the error is logged and returned.
func (m *Main) Reload() error {
	m.reloadMu.Lock()
	defer m.reloadMu.Unlock()
	err := errors.Join(m.reloadClients(), m.reloadLinkKeys())
	m.warnExposedSecrets(m.clients)
	return err
}

func (m *Main) reloadClients() error {
	path := m.Config.Clients
	if path == "" {
		path = m.demoClientsFile
	}
	next, err := alert.LoadClients(path, m.limiterNow)
	if err == nil {
		err = m.checkWebhooks(next)
	}
	if err != nil {
		m.reloads.WithLabelValues("clients", "error").Inc()
		m.Log.Error("clients file not read again; the clients before stay in force", "err", err.Error())
		return err
	}
	added, removed, kept := m.clients.Replace(next)
	m.reloads.WithLabelValues("clients", "ok").Inc()
	m.Log.Info("clients file read again", "clients", kept+len(added),
		"added", strings.Join(added, ","), "removed", strings.Join(removed, ","))
	return nil
}

func (m *Main) reloadLinkKeys() error {
	if m.Config.LinkKeyFile == "" {
		return nil
	}
	keys, err := careplanclient.LoadKeys(m.Config.LinkKeyFile)
	if err != nil {
		err = fmt.Errorf("-link.key-file %s: %w", m.Config.LinkKeyFile, err)
		m.reloads.WithLabelValues("link_keys", "error").Inc()
		m.Log.Error("link keys not read again; the keys before stay in force", "err", err.Error())
		return err
	}
	m.api.SetLinker(&careplanclient.Linker{Base: m.Config.LinkBaseURL, TTL: m.Config.LinkTTL, Keys: keys})
	m.reloads.WithLabelValues("link_keys", "ok").Inc()
	m.Log.Info("link keys read again", "active", keys.Active)
	return nil
}

// warnExposedSecrets warns of each file holding a secret that others than
// its owner may read (a private key, a password or token file, the link
// keys, a clients file holding webhook secrets): flagd reads it all the
// same, as a service must start, but the operator should know. At start
// and at each Reload, with the clients then in force.
func (m *Main) warnExposedSecrets(clients *alert.Clients) {
	c := m.Config
	files := []struct{ flag, path string }{
		{"-http.tls-key", c.HTTPTLSKey}, {"-link.key-file", c.LinkKeyFile},
		{"-kafka.tls-key", c.KafkaAuth.KeyFile}, {"-kafka.sasl-password-file", c.KafkaAuth.PasswordFile},
		{"-redis.tls-key", c.RedisAuth.KeyFile}, {"-redis.password-file", c.RedisAuth.PasswordFile},
		{"-platform.tls-key", c.PlatformAuth.KeyFile}, {"-platform.token-file", c.PlatformAuth.TokenFile},
	}
	if c.Clients != "" && len(clients.WithWebhook()) > 0 {
		files = append(files, struct{ flag, path string }{"-clients (it holds webhook secrets)", c.Clients})
	}
	for _, f := range files {
		if f.path == "" {
			continue
		}
		if st, err := os.Stat(f.path); err == nil && st.Mode().Perm()&0o077 != 0 {
			m.Log.Warn("a file holding secrets may be read by others than its owner: chmod 600 it", "flag", f.flag,
				"file", f.path, "mode", fmt.Sprintf("%#o", st.Mode().Perm()))
		}
	}
}
