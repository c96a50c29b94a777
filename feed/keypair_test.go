package feed_test

import (
	"context"
	"crypto/tls"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/planflag/planflag/feed"
	"github.com/planflag/planflag/feed/feedtest"
)

// pemPair is a self-signed certificate for 127.0.0.1 and its key, as PEM.
type pemPair struct {
	cert, key []byte
	notAfter  time.Time
}

func newPair(t *testing.T, serial int64, notAfter time.Time) pemPair {
	t.Helper()
	cert, key := feedtest.SelfSigned(t, serial, notAfter)
	return pemPair{cert, key, notAfter.Truncate(time.Second)}
}

func write(t *testing.T, file string, b []byte) {
	t.Helper()
	if err := os.WriteFile(file, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// tlsServer accepts TLS connections on loopback with cfg, completes each
// handshake and records the serial of the client's certificate, if any.
func tlsServer(t *testing.T, cfg *tls.Config) (addr string, clientSerial *atomic.Int64) {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	clientSerial = new(atomic.Int64)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			tc := c.(*tls.Conn)
			if tc.Handshake() == nil {
				if certs := tc.ConnectionState().PeerCertificates; len(certs) > 0 {
					clientSerial.Store(certs[0].SerialNumber.Int64())
				}
			}
			c.Close()
		}
	}()
	return ln.Addr().String(), clientSerial
}

// serverSerial connects and returns the serial of the certificate the
// server presented.
func serverSerial(t *testing.T, addr string, cfg *tls.Config) int64 {
	t.Helper()
	c, err := tls.Dial("tcp", addr, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0].SerialNumber.Int64()
}

// A server certificate renewed on disk is presented from the next handshake
// on; a renewal half written (the certificate and not yet its key) keeps the
// one in use until the key follows; the files are looked at no more often
// than asked.
func TestKeyPairServerRenewal(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	a := newPair(t, 1, time.Now().Add(24*time.Hour))
	write(t, certFile, a.cert)
	write(t, keyFile, a.key)
	kp, err := feed.LoadKeyPair("http", certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	kp.SetCheckEvery(0)
	addr, _ := tlsServer(t, &tls.Config{GetCertificate: kp.GetCertificate, MinVersion: tls.VersionTLS12})
	client := &tls.Config{InsecureSkipVerify: true} // the test reads the serial; trust is not under test
	if s := serverSerial(t, addr, client); s != 1 {
		t.Fatalf("serial %d, want 1", s)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(feed.NewKeyPairCollector(kp, nil))

	b := newPair(t, 2, time.Now().Add(48*time.Hour))
	write(t, certFile, b.cert) // the key not yet
	if s := serverSerial(t, addr, client); s != 1 {
		t.Errorf("half-written renewal: serial %d presented, want the old 1", s)
	}
	if changed, err := kp.Check(); changed || err == nil {
		t.Errorf("half-written renewal: Check %v, %v; want an error and no change", changed, err)
	} else if strings.Contains(err.Error(), "PRIVATE KEY") || strings.Contains(err.Error(), string(a.key[40:80])) {
		t.Errorf("error quotes the key: %v", err)
	}
	write(t, keyFile, b.key)
	if s := serverSerial(t, addr, client); s != 2 {
		t.Errorf("after renewal: serial %d, want 2", s)
	}
	if !kp.NotAfter().Equal(b.notAfter) {
		t.Errorf("NotAfter %v, want %v", kp.NotAfter(), b.notAfter)
	}
	got := gather(t, reg, "http")
	if got["planflag_tls_certificate_expiry_timestamp_seconds"] != float64(b.notAfter.Unix()) ||
		got["planflag_tls_certificate_reloads_total"] != 1 || got["planflag_tls_certificate_reload_failures_total"] != 1 {
		// one failure: the handshake's check and Check's both met the
		// same half-written pair, counted once
		t.Errorf("metrics %v", got)
	}

	// Looked at no more often than asked: a renewal waits for the next
	// check, which Check (or a scrape) can bring forward.
	kp.SetCheckEvery(time.Hour)
	c := newPair(t, 3, time.Now().Add(72*time.Hour))
	write(t, certFile, c.cert)
	write(t, keyFile, c.key)
	if s := serverSerial(t, addr, client); s != 2 {
		t.Errorf("before the check is due: serial %d, want 2", s)
	}
	if changed, err := kp.Check(); !changed || err != nil {
		t.Errorf("Check: %v, %v; want a change", changed, err)
	}
	if s := serverSerial(t, addr, client); s != 3 {
		t.Errorf("after Check: serial %d, want 3", s)
	}
	if changed, err := kp.Check(); changed || err != nil {
		t.Errorf("Check of unchanged files: %v, %v", changed, err)
	}
	// A renewal that has already expired is not taken up.
	expired := newPair(t, 4, time.Now().Add(-time.Minute))
	write(t, certFile, expired.cert)
	write(t, keyFile, expired.key)
	if changed, err := kp.Check(); changed || err == nil || !strings.Contains(err.Error(), "expired") {
		t.Errorf("expired renewal: Check %v, %v; want it refused as expired", changed, err)
	}
	if s := serverSerial(t, addr, client); s != 3 {
		t.Errorf("after an expired renewal: serial %d, want 3 still", s)
	}
}

// gather returns the values of the samples labelled cert=name.
func gather(t *testing.T, reg *prometheus.Registry, name string) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			if m.GetLabel()[0].GetValue() != name {
				continue
			}
			if m.GetGauge() != nil {
				got[mf.GetName()] = m.GetGauge().GetValue()
			} else {
				got[mf.GetName()] = m.GetCounter().GetValue()
			}
		}
	}
	return got
}

// A client certificate renewed on disk is presented to the next server
// that asks for one.
func TestKeyPairClientRenewal(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	srv := newPair(t, 100, time.Now().Add(time.Hour))
	srvCert, err := tls.X509KeyPair(srv.cert, srv.key)
	if err != nil {
		t.Fatal(err)
	}
	addr, seen := tlsServer(t, &tls.Config{Certificates: []tls.Certificate{srvCert}, ClientAuth: tls.RequireAnyClientCert})
	caFile := filepath.Join(dir, "ca.pem")
	write(t, caFile, srv.cert)

	a := newPair(t, 1, time.Now().Add(time.Hour))
	write(t, certFile, a.cert)
	write(t, keyFile, a.key)
	tc, err := feed.NewTLSClient("kafka", "kafka", true, caFile, certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	tc.Pair().SetCheckEvery(0)
	handshake := func() int64 {
		t.Helper()
		seen.Store(0)
		c, err := tc.Dial(context.Background(), "tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		// The server records the client's certificate once its side of
		// the handshake is done.
		buf := make([]byte, 1)
		c.Read(buf)
		c.Close()
		return seen.Load()
	}
	if s := handshake(); s != 1 {
		t.Fatalf("client serial %d, want 1", s)
	}
	b := newPair(t, 2, time.Now().Add(time.Hour))
	write(t, certFile, b.cert)
	write(t, keyFile, b.key)
	if s := handshake(); s != 2 {
		t.Errorf("after renewal: client serial %d, want 2", s)
	}
}

// Files that do not make a pair are refused at start, naming what they are
// for and never quoting the key.
func TestLoadKeyPairErrors(t *testing.T) {
	dir := t.TempDir()
	a, b := newPair(t, 1, time.Now().Add(time.Hour)), newPair(t, 2, time.Now().Add(time.Hour))
	certFile, keyFile, otherKey := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem"), filepath.Join(dir, "other.pem")
	write(t, certFile, a.cert)
	write(t, keyFile, a.key)
	write(t, otherKey, b.key)
	for _, c := range []struct {
		cert, key, want string
	}{
		{filepath.Join(dir, "missing.pem"), keyFile, "http TLS certificate"},
		{certFile, filepath.Join(dir, "missing.pem"), "http TLS key"},
		{certFile, otherKey, "does not match"},
		{keyFile, keyFile, "http TLS certificate"},
	} {
		_, err := feed.LoadKeyPair("http", c.cert, c.key)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s + %s: %v, want an error with %q", filepath.Base(c.cert), filepath.Base(c.key), err, c.want)
		} else if strings.Contains(err.Error(), "PRIVATE KEY") || strings.Contains(err.Error(), string(b.key[40:80])) {
			t.Errorf("error quotes the key: %v", err)
		}
	}
}
