package feed

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"os"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// CAFile is a PEM file of the CA certificates a client verifies a server's
// certificate against, read again when it changes, so that a CA added to
// the bundle before the servers' certificates move to it (a CA rotation)
// is trusted from the next connection on without a restart. It is looked
// at, like a KeyPair's files, when a connection is made or a metrics
// scrape needs it and it has not been looked at for a while. A change that
// does not load (a file written half way, a certificate that does not
// parse, no certificate at all) leaves the CAs in use as they were; it is
// logged and counted, and the file is read again at the next check.
// Connections already made keep the verification they had.
type CAFile struct {
	watch
	name string // what the CAs are for, in logs and metrics: kafka, redis, platform
	file string
	cur  atomic.Pointer[loadedCAs]
}

type loadedCAs struct {
	pool        *x509.CertPool
	n           int       // certificates
	firstExpiry time.Time // the earliest NotAfter among them
	pem         []byte    // as read, to tell a change from the same file
}

// LoadCAFile reads the CA certificates of file; name says what they are for,
// in logs and metrics (errors leave it to the caller). It fails if they do
// not load: CAs that cannot be used at start are a configuration error.
func LoadCAFile(name, file string) (*CAFile, error) {
	c := &CAFile{name: name, file: file}
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("TLS CA file: %w", err)
	}
	cas, err := c.parse(b)
	if err != nil {
		return nil, err
	}
	c.cur.Store(cas)
	c.SetCheckEvery(KeyPairCheck)
	return c, nil
}

// parse reads every CERTIFICATE block of b (other blocks are skipped, as
// crypto/x509's AppendCertsFromPEM does). Unlike AppendCertsFromPEM it
// refuses a certificate that does not parse and anything left after the
// last block, so that a bundle caught half written is not taken up as a
// shorter one.
func (c *CAFile) parse(b []byte) (*loadedCAs, error) {
	cas := &loadedCAs{pool: x509.NewCertPool(), pem: b}
	rest := b
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("TLS CA file %s: certificate %d: %w", c.file, cas.n+1, err)
		}
		cas.pool.AddCert(cert)
		if cas.n == 0 || cert.NotAfter.Before(cas.firstExpiry) {
			cas.firstExpiry = cert.NotAfter
		}
		cas.n++
	}
	switch partial := len(bytes.TrimSpace(rest)) > 0; {
	case cas.n == 0 && partial:
		return nil, fmt.Errorf("TLS CA file %s: no PEM certificate in it, only something that is not a whole PEM block (written half way?)", c.file)
	case cas.n == 0:
		return nil, fmt.Errorf("TLS CA file %s: no PEM certificate in it", c.file)
	case partial:
		return nil, fmt.Errorf("TLS CA file %s: something after certificate %d that is not a whole PEM block (written half way?)", c.file, cas.n)
	}
	return cas, nil
}

// Name is what the CAs are for.
func (c *CAFile) Name() string { return c.name }

// FirstExpiry is when the first of the CA certificates in use expires.
func (c *CAFile) FirstExpiry() time.Time { return c.cur.Load().firstExpiry }

// Check reads the file now and takes up a change. It reports whether the
// CAs in use changed, and the error of a change that did not load (the CAs
// in use are then kept).
func (c *CAFile) Check() (changed bool, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.checked()
	return c.check()
}

// check is Check with c.mu held.
func (c *CAFile) check() (bool, error) {
	old := c.cur.Load()
	b, err := os.ReadFile(c.file)
	if err == nil && bytes.Equal(b, old.pem) {
		c.unchanged()
		return false, nil
	}
	var cas *loadedCAs
	if err == nil {
		cas, err = c.parse(b)
	} else {
		err = fmt.Errorf("TLS CA file: %w", err)
	}
	log := c.log.Load()
	if err != nil {
		if c.refused(err, b) && log != nil {
			log.Warn("TLS CA file on disk not loaded; still verifying against the CAs loaded before",
				"ca", c.name, "err", err.Error(), "certificates_in_use", old.n)
		}
		return false, err
	}
	c.taken()
	c.cur.Store(cas)
	if log != nil {
		log.Info("TLS CA file reloaded", "ca", c.name, "certificates", cas.n,
			"first_expiry", cas.firstExpiry.UTC().Format(time.RFC3339))
	}
	return true, nil
}

// Pool is the CAs to verify a new connection against, after a check if one
// is due.
func (c *CAFile) Pool() *x509.CertPool {
	c.lookIfDue(func() { _, _ = c.check() }) // a failure is logged and counted; the CAs in use stay
	return c.cur.Load().pool
}

// TLSClient is how a client reaches servers of one kind over TLS: the CAs
// that sign their certificates (a CAFile, reloaded when it changes; nil:
// the system's roots) and the certificate it presents to a server that
// asks for one (a KeyPair, reloaded when renewed; nil: none).
//
// Each connection gets its TLS settings when it is made (Dial, Config),
// with the CAs then on disk and the server's name or address to verify:
// flagd's clients (kafka-go, go-redis, net/http) are given Dial rather
// than a tls.Config of their own, which would keep the CAs read at start.
type TLSClient struct {
	base *tls.Config // MinVersion and the client certificate, without RootCAs or ServerName
	CAs  *CAFile
	Cert *KeyPair
}

// NewTLSClient builds the TLS side of a client of what (a name for errors)
// from PEM files: the CAs that sign the server's certificate (none: the
// system's), and a client certificate and key for a server that asks for
// one; name is what the CAs and the pair are for in logs and metrics. It
// returns nil if TLS is off (on false and no file given). flagd uses it for
// every server it reaches: Kafka, Redis and the care-plan platform.
func NewTLSClient(what, name string, on bool, caFile, certFile, keyFile string) (*TLSClient, error) {
	if (certFile == "") != (keyFile == "") {
		return nil, fmt.Errorf("%s TLS: give the client certificate and its key together", what)
	}
	if !on && caFile == "" && certFile == "" {
		return nil, nil
	}
	c := &TLSClient{base: &tls.Config{MinVersion: tls.VersionTLS12}}
	if caFile != "" {
		cas, err := LoadCAFile(name, caFile)
		if err != nil {
			return nil, fmt.Errorf("%s %w", what, err)
		}
		c.CAs = cas
	}
	if certFile != "" {
		kp, err := LoadKeyPair(name, certFile, keyFile)
		if err != nil {
			return nil, fmt.Errorf("%s TLS client certificate: %w", what, err)
		}
		c.Cert = kp
		c.base.GetClientCertificate = kp.GetClientCertificate
	}
	return c, nil
}

// Pair is the client certificate's KeyPair; nil without one (or with c
// nil).
func (c *TLSClient) Pair() *KeyPair {
	if c == nil {
		return nil
	}
	return c.Cert
}

// CAFile is the CAs' file; nil for the system's roots (or with c nil).
func (c *TLSClient) CAFile() *CAFile {
	if c == nil {
		return nil
	}
	return c.CAs
}

// Config is the TLS settings of a new connection to server (the host name
// or IP address dialled, which the server's certificate must name).
func (c *TLSClient) Config(server string) *tls.Config {
	cfg := c.base.Clone()
	cfg.ServerName = server
	if c.CAs != nil {
		cfg.RootCAs = c.CAs.Pool()
	}
	return cfg
}

// ServerConfig is the TLS settings of connections to the one server named
// server (a host name or IP address), whoever makes them — net/http through
// a proxy's CONNECT too, where no dial function of ours is called: the
// server's certificate is verified at each handshake against the CAs on
// disk then, by VerifyConnection (Go's own check, which would use a pool
// fixed in the settings, is turned off for it).
func (c *TLSClient) ServerConfig(server string) *tls.Config {
	cfg := c.base.Clone()
	cfg.ServerName = server
	if c.CAs == nil {
		return cfg // the system's roots: Go's own check
	}
	cfg.InsecureSkipVerify = true // verified below, never skipped
	cfg.VerifyConnection = func(cs tls.ConnectionState) error {
		if len(cs.PeerCertificates) == 0 {
			return errors.New("tls: the server sent no certificate")
		}
		opts := x509.VerifyOptions{Roots: c.CAs.Pool(), DNSName: server, Intermediates: x509.NewCertPool()}
		for _, ic := range cs.PeerCertificates[1:] {
			opts.Intermediates.AddCert(ic)
		}
		if _, err := cs.PeerCertificates[0].Verify(opts); err != nil {
			return &tls.CertificateVerificationError{UnverifiedCertificates: cs.PeerCertificates, Err: err}
		}
		return nil
	}
	return cfg
}

// Dial connects to addr (host:port) and makes the TLS handshake with
// Config(host), both within ctx.
func (c *TLSClient) Dial(ctx context.Context, network, addr string) (net.Conn, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	var d net.Dialer
	raw, err := d.DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	conn := tls.Client(raw, c.Config(host))
	if err := conn.HandshakeContext(ctx); err != nil {
		raw.Close()
		return nil, err
	}
	return conn, nil
}

// Expiry is FirstExpiry.
func (c *CAFile) Expiry() time.Time { return c.FirstExpiry() }

// What says what the file is.
func (c *CAFile) What() string { return c.name + " CA file" }

func (c *CAFile) watched() *watch { return &c.watch }
func (c *CAFile) lookNow()        { c.Pool() }

// NewCAFileCollector exports, for each CA file given (nil ones are
// skipped), when the first of its certificates expires and its changes
// taken up and refused.
func NewCAFileCollector(cas ...*CAFile) prometheus.Collector {
	return &watchedCollector{files: nonNil(cas),
		expiry: prometheus.NewDesc("planflag_tls_ca_expiry_timestamp_seconds",
			"Unix time at which the first of the CA certificates servers are verified against expires, by what they are for (kafka, redis, platform).", []string{"ca"}, nil),
		reloads: prometheus.NewDesc("planflag_tls_ca_reloads_total",
			"Changed CA files read from disk and verified against since start.", []string{"ca"}, nil),
		failures: prometheus.NewDesc("planflag_tls_ca_reload_failures_total",
			"Changed CA files that did not load (the CAs loaded before are still verified against).", []string{"ca"}, nil),
	}
}
