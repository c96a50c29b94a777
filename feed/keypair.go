package feed

import (
	"bytes"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// KeyPairCheck is how often a KeyPair looks at its files again by default.
const KeyPairCheck = 10 * time.Second

// KeyPair is a TLS certificate and its key read from PEM files and read
// again when they change, so that a certificate renewed on disk (by an
// operator, cert-manager, a mounted secret) is presented from the next TLS
// handshake on without a restart. The files are looked at when a handshake
// or a metrics scrape needs the pair and Check has not looked for a while
// (KeyPairCheck), so a renewal is taken up within seconds and costs no
// goroutine. A renewal that does not load (the certificate written and its
// key not yet, a key that does not match) or that has expired or is not yet
// valid leaves the pair in use as it was; it is logged and counted, and the
// files are read again at the next check.
//
// The CAs a client verifies servers against are reloaded in the same way
// (CAFile).
type KeyPair struct {
	watch                    // renewals: failures are those found on disk that did not load
	name              string // what the pair is for, in logs and metrics: http, kafka, redis, platform
	certFile, keyFile string

	cur atomic.Pointer[loadedPair]
}

// watch is the bookkeeping of files read again when they change: when to
// look next, one look at a time, the last change that did not load (so
// that it is logged and counted once, not at every look while the files
// stay so), the changes taken up and refused, and where to log them.
type watch struct {
	every    atomic.Int64 // time.Duration between looks at the files
	next     atomic.Int64 // Unix nanoseconds after which the files are looked at again
	mu       sync.Mutex   // one look at a time
	lastBad  badPair      // the last change that did not load (under mu)
	log      atomic.Pointer[slog.Logger]
	failures atomic.Uint64 // changes found on disk that did not load
	reloads  atomic.Uint64 // changes taken up
}

// SetCheckEvery changes how often the files are looked at (tests use 0:
// at every use).
func (w *watch) SetCheckEvery(d time.Duration) {
	w.every.Store(int64(d))
	w.next.Store(time.Now().Add(d).UnixNano())
}

// checked records a look at the files now.
func (w *watch) checked() { w.next.Store(time.Now().UnixNano() + w.every.Load()) }

// SetLogger has changes taken up and refused logged (without it they are
// only counted).
func (w *watch) SetLogger(l *slog.Logger) { w.log.Store(l) }

// lookIfDue runs look, with mu held, if a look is due; one already under
// way elsewhere is not waited for.
func (w *watch) lookIfDue(look func()) {
	if time.Now().UnixNano() >= w.next.Load() && w.mu.TryLock() {
		if time.Now().UnixNano() >= w.next.Load() {
			w.checked()
			look()
		}
		w.mu.Unlock()
	}
}

// refused counts a change of the files (their content) that did not load,
// with mu held, and reports whether it is a new one, to be logged: the
// same error on the same content is counted and logged once.
func (w *watch) refused(err error, content ...[]byte) bool {
	h := sha256.New()
	for _, c := range content {
		h.Write(c)
	}
	bad := badPair{err: err.Error()}
	h.Sum(bad.digest[:0])
	if bad == w.lastBad {
		return false
	}
	w.lastBad = bad
	w.failures.Add(1)
	return true
}

// unchanged records, with mu held, a look that found the files as loaded.
func (w *watch) unchanged() { w.lastBad = badPair{} }

// taken records, with mu held, a change taken up.
func (w *watch) taken() {
	w.lastBad = badPair{}
	w.reloads.Add(1)
}

type loadedPair struct {
	cert            tls.Certificate
	notAfter        time.Time
	certPEM, keyPEM []byte // as read, to tell a renewal from the same files
}

// LoadKeyPair reads a certificate (chain) and its key from PEM files; name
// says what they are for, in errors, logs and metrics. It fails if they do
// not load: a pair that cannot be used at start is a configuration error.
func LoadKeyPair(name, certFile, keyFile string) (*KeyPair, error) {
	k := &KeyPair{name: name, certFile: certFile, keyFile: keyFile}
	p, err := k.read()
	if err != nil {
		return nil, err
	}
	k.cur.Store(p)
	k.SetCheckEvery(KeyPairCheck)
	return k, nil
}

// Name is what the pair is for.
func (k *KeyPair) Name() string { return k.name }

// NotAfter is when the certificate in use expires.
func (k *KeyPair) NotAfter() time.Time { return k.cur.Load().notAfter }

// read loads the files. Errors name the pair and the file, never a key.
func (k *KeyPair) read() (*loadedPair, error) {
	certPEM, keyPEM, err := k.files()
	if err != nil {
		return nil, err
	}
	return k.parse(certPEM, keyPEM)
}

// files reads the certificate and key files.
func (k *KeyPair) files() (certPEM, keyPEM []byte, err error) {
	if certPEM, err = os.ReadFile(k.certFile); err != nil {
		return nil, nil, fmt.Errorf("%s TLS certificate: %w", k.name, err)
	}
	if keyPEM, err = os.ReadFile(k.keyFile); err != nil {
		return nil, nil, fmt.Errorf("%s TLS key: %w", k.name, err)
	}
	return certPEM, keyPEM, nil
}

func (k *KeyPair) parse(certPEM, keyPEM []byte) (*loadedPair, error) {
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		// The error names what is wrong with the PEM or the pair; it
		// does not quote the key.
		return nil, fmt.Errorf("%s TLS certificate %s and key %s: %w", k.name, k.certFile, k.keyFile, err)
	}
	leaf := cert.Leaf
	if leaf == nil {
		if leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
			return nil, fmt.Errorf("%s TLS certificate %s: %w", k.name, k.certFile, err)
		}
		cert.Leaf = leaf
	}
	return &loadedPair{cert: cert, notAfter: leaf.NotAfter, certPEM: certPEM, keyPEM: keyPEM}, nil
}

// Check reads the files now and takes up a renewal. It reports whether the
// pair in use changed, and the error of a renewal that did not load (the
// pair in use is then kept).
func (k *KeyPair) Check() (changed bool, err error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.checked()
	return k.check()
}

// check is Check with k.mu held. A renewal that does not load is logged and
// counted once, not again at every check while the files stay as they are.
func (k *KeyPair) check() (bool, error) {
	old := k.cur.Load()
	certPEM, keyPEM, err := k.files()
	if err == nil && bytes.Equal(certPEM, old.certPEM) && bytes.Equal(keyPEM, old.keyPEM) {
		k.unchanged()
		return false, nil
	}
	var p *loadedPair
	if err == nil {
		p, err = k.parse(certPEM, keyPEM)
	}
	if now := time.Now(); err == nil {
		// A renewal that no client would accept is not taken up: the
		// pair in use may still be good.
		switch leaf := p.cert.Leaf; {
		case now.After(leaf.NotAfter):
			err = fmt.Errorf("%s TLS certificate %s expired at %s", k.name, k.certFile, leaf.NotAfter.UTC().Format(time.RFC3339))
		case now.Before(leaf.NotBefore):
			err = fmt.Errorf("%s TLS certificate %s is not valid until %s", k.name, k.certFile, leaf.NotBefore.UTC().Format(time.RFC3339))
		}
	}
	log := k.log.Load()
	if err != nil {
		if k.refused(err, certPEM, keyPEM) && log != nil {
			log.Warn("TLS certificate on disk not loaded; still presenting the one loaded before",
				"cert", k.name, "err", err.Error(), "in_use_expires", old.notAfter.UTC().Format(time.RFC3339))
		}
		return false, err
	}
	k.taken()
	k.cur.Store(p)
	if log != nil {
		log.Info("TLS certificate reloaded", "cert", k.name, "expires", p.notAfter.UTC().Format(time.RFC3339))
	}
	return true, nil
}

// badPair tells one change that did not load from the next: its error and
// a digest of the files' content.
type badPair struct {
	err    string
	digest [sha256.Size]byte
}

// current is the pair to present, after a check if one is due. A check
// already under way elsewhere is not waited for.
func (k *KeyPair) current() *tls.Certificate {
	k.lookIfDue(func() { _, _ = k.check() }) // a failure is logged and counted; the pair in use stays
	return &k.cur.Load().cert
}

// GetCertificate serves a tls.Config of a server.
func (k *KeyPair) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return k.current(), nil
}

// GetClientCertificate serves a tls.Config of a client.
func (k *KeyPair) GetClientCertificate(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
	return k.current(), nil
}

// Watched is TLS files read again when they change: a KeyPair or a
// CAFile.
type Watched interface {
	Name() string
	// Expiry is when the certificate in use expires (of a CAFile, the
	// first of its CAs to expire).
	Expiry() time.Time
	// What says what the files are, for messages: "kafka client
	// certificate", "redis CA file".
	What() string
	SetLogger(*slog.Logger)
	SetCheckEvery(time.Duration)

	watched() *watch
	lookNow() // a look at the files, if one is due
}

// Expiry is NotAfter.
func (k *KeyPair) Expiry() time.Time { return k.NotAfter() }

// What says what the pair is.
func (k *KeyPair) What() string {
	if k.name == "http" {
		return "http server certificate"
	}
	return k.name + " client certificate"
}

func (k *KeyPair) watched() *watch { return &k.watch }
func (k *KeyPair) lookNow()        { k.current() }

// NewKeyPairCollector exports, for each pair given (nil ones are skipped),
// when its certificate in use expires (for alerting well before it does)
// and its renewals taken up and refused. A scrape also checks the files
// when a check is due, so the figures follow the disk even while no
// handshake happens.
func NewKeyPairCollector(pairs ...*KeyPair) prometheus.Collector {
	return &watchedCollector{files: nonNil(pairs),
		expiry: prometheus.NewDesc("planflag_tls_certificate_expiry_timestamp_seconds",
			"Unix time at which the TLS certificate presented expires, by what it is for (http, kafka, redis, platform).", []string{"cert"}, nil),
		reloads: prometheus.NewDesc("planflag_tls_certificate_reloads_total",
			"Renewed TLS certificates read from disk and presented since start.", []string{"cert"}, nil),
		failures: prometheus.NewDesc("planflag_tls_certificate_reload_failures_total",
			"Changed TLS certificate files that did not load (the certificate loaded before is still presented).", []string{"cert"}, nil),
	}
}

// nonNil is the files of xs that are not nil.
func nonNil[T interface {
	comparable
	Watched
}](xs []T) []Watched {
	var none T
	var ws []Watched
	for _, x := range xs {
		if x != none {
			ws = append(ws, x)
		}
	}
	return ws
}

// watchedCollector exports the expiry, reloads and refused changes of
// watched files, labelled by their names.
type watchedCollector struct {
	files                     []Watched
	expiry, reloads, failures *prometheus.Desc
}

// Describe implements prometheus.Collector.
func (c *watchedCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.expiry
	ch <- c.reloads
	ch <- c.failures
}

// Collect implements prometheus.Collector.
func (c *watchedCollector) Collect(ch chan<- prometheus.Metric) {
	for _, f := range c.files {
		f.lookNow()
		w := f.watched()
		ch <- prometheus.MustNewConstMetric(c.expiry, prometheus.GaugeValue, float64(f.Expiry().Unix()), f.Name())
		ch <- prometheus.MustNewConstMetric(c.reloads, prometheus.CounterValue, float64(w.reloads.Load()), f.Name())
		ch <- prometheus.MustNewConstMetric(c.failures, prometheus.CounterValue, float64(w.failures.Load()), f.Name())
	}
}
