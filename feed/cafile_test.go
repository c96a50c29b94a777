package feed_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/planflag/planflag/feed"
	"github.com/planflag/planflag/feed/feedtest"
)

// A CA added to the CA file on disk is trusted from the next connection on,
// and one taken out is no longer; a file caught half written, or with a
// certificate that does not parse, leaves the CAs in use, logged and
// counted once however often it is looked at.
func TestCAFileRotation(t *testing.T) {
	dir := t.TempDir()
	caFile := filepath.Join(dir, "ca.pem")
	srv, srvCert := serverPair(t)
	addr, _ := tlsServer(t, &tls.Config{Certificates: []tls.Certificate{srvCert}})
	other := newPair(t, 7, time.Now().Add(2*time.Hour))

	write(t, caFile, other.cert) // not the server's CA
	tc, err := feed.NewTLSClient("kafka", "kafka", false, caFile, "", "")
	if err != nil {
		t.Fatal(err)
	}
	var logs feedtest.LogBuffer
	tc.CAFile().SetLogger(slog.New(slog.NewTextHandler(&logs, nil)))
	tc.CAFile().SetCheckEvery(0)
	reg := prometheus.NewRegistry()
	reg.MustRegister(feed.NewCAFileCollector(tc.CAFile()))
	dial := func() error {
		c, err := tc.Dial(context.Background(), "tcp", addr)
		if err == nil {
			c.Close()
		}
		return err
	}
	var unknown x509.UnknownAuthorityError
	if err := dial(); !errors.As(err, &unknown) {
		t.Fatalf("with another CA: %v, want the server's certificate refused", err)
	}

	// The new CA joins the bundle.
	bundle := append(append([]byte{}, other.cert...), srv.cert...)
	write(t, caFile, bundle)
	if err := dial(); err != nil {
		t.Fatalf("after the server's CA was added: %v", err)
	}
	if !strings.Contains(logs.String(), "TLS CA file reloaded") || !strings.Contains(logs.String(), "certificates=2") {
		t.Errorf("log %q, want the reload with its 2 certificates", logs.String())
	}

	// Half written (the second certificate cut off), then a certificate
	// that does not parse: the bundle in use stays, each refusal counted
	// and logged once.
	write(t, caFile, bundle[:len(bundle)-40])
	for range 3 {
		if err := dial(); err != nil {
			t.Fatalf("with the bundle half written: %v, want the one in use kept", err)
		}
	}
	broken := bytes.Replace(bundle, []byte("CERTIFICATE-----\nMII"), []byte("CERTIFICATE-----\nMIX"), 1)
	write(t, caFile, broken)
	for range 3 {
		if err := dial(); err != nil {
			t.Fatalf("with a certificate that does not parse: %v, want the bundle in use kept", err)
		}
	}
	if n := strings.Count(logs.String(), "not loaded"); n != 2 {
		t.Errorf("%d warnings, want 2 (one a bad file):\n%s", n, logs.String())
	}
	got := gather(t, reg, "kafka")
	if got["planflag_tls_ca_reloads_total"] != 1 || got["planflag_tls_ca_reload_failures_total"] != 2 ||
		got["planflag_tls_ca_expiry_timestamp_seconds"] != float64(srv.notAfter.Unix()) {
		t.Errorf("metrics %v, want 1 reload, 2 failures, expiry %d (the first to expire)", got, srv.notAfter.Unix())
	}

	// The server's CA taken out again: refused again.
	write(t, caFile, other.cert)
	if err := dial(); !errors.As(err, &unknown) {
		t.Errorf("after the server's CA was taken out: %v, want the certificate refused", err)
	}
}

// The file is looked at no more often than asked: a change within the
// interval is not seen until it has passed.
func TestCAFileCheckInterval(t *testing.T) {
	dir := t.TempDir()
	caFile := filepath.Join(dir, "ca.pem")
	a, b := newPair(t, 1, time.Now().Add(time.Hour)), newPair(t, 2, time.Now().Add(time.Hour))
	write(t, caFile, a.cert)
	f, err := feed.LoadCAFile("redis", caFile)
	if err != nil {
		t.Fatal(err)
	}
	f.SetCheckEvery(time.Hour)
	write(t, caFile, append(append([]byte{}, a.cert...), b.cert...))
	pool := f.Pool()
	if changed, err := f.Check(); !changed || err != nil {
		t.Fatalf("Check: changed %v, %v; want the change taken up", changed, err)
	}
	if f.Pool() == pool {
		t.Error("Pool() is the one from before the check")
	}
	if changed, err := f.Check(); changed || err != nil {
		t.Errorf("second Check: changed %v, %v; want nothing new", changed, err)
	}
}

// CA files that cannot be used are refused at start, naming what they are
// for and what is wrong.
func TestLoadCAFileErrors(t *testing.T) {
	dir := t.TempDir()
	a := newPair(t, 1, time.Now().Add(time.Hour))
	for _, c := range []struct {
		name    string
		content []byte
		want    string
	}{
		{"empty.pem", nil, "no PEM certificate"},
		{"key.pem", a.key, "no PEM certificate"},
		{"cut.pem", a.cert[:len(a.cert)-30], "written half way"},
		{"junk.pem", []byte("hello\n"), "no PEM certificate"},
		{"cut-second.pem", append(append([]byte{}, a.cert...), a.cert[:50]...), "after certificate 1 that is not a whole PEM block"},
	} {
		file := filepath.Join(dir, c.name)
		write(t, file, c.content)
		_, err := feed.NewTLSClient("redis", "redis", true, file, "", "")
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "redis TLS CA file") {
			t.Errorf("%s: %v, want a redis CA file error with %q", c.name, err, c.want)
		}
	}
	if _, err := feed.NewTLSClient("redis", "redis", true, filepath.Join(dir, "missing.pem"), "", ""); err == nil ||
		!strings.Contains(err.Error(), "redis TLS CA file") {
		t.Errorf("missing file: %v", err)
	}
	// A bundle with other PEM blocks among the certificates (an OpenSSL
	// habit) loads the certificates.
	file := filepath.Join(dir, "mixed.pem")
	write(t, file, append(append([]byte{}, a.key...), a.cert...))
	if _, err := feed.LoadCAFile("redis", file); err != nil {
		t.Errorf("a key block beside the certificate: %v", err)
	}
}

// ServerConfig verifies the one server it names against the CAs on disk at
// each handshake, whoever dials: here net/http through a CONNECT proxy, the
// way a platform behind an HTTPS_PROXY is reached. A CA added to the file
// is trusted from the next connection; another server name is refused.
func TestServerConfigThroughProxy(t *testing.T) {
	dir := t.TempDir()
	caFile := filepath.Join(dir, "ca.pem")
	srv, srvCert := serverPair(t)
	hs := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok") }))
	hs.TLS = &tls.Config{Certificates: []tls.Certificate{srvCert}}
	hs.StartTLS()
	defer hs.Close()
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodConnect {
			http.Error(w, "CONNECT only", http.StatusMethodNotAllowed)
			return
		}
		up, err := net.Dial("tcp", r.Host)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		w.WriteHeader(http.StatusOK)
		c, buffered, err := w.(http.Hijacker).Hijack()
		if err != nil {
			up.Close()
			return
		}
		// Read through the server's buffer: it may already hold the
		// first bytes of the client's TLS handshake.
		go func() { io.Copy(up, buffered); up.Close() }()
		io.Copy(c, up)
		c.Close()
	}))
	defer proxy.Close()
	proxyURL, _ := url.Parse(proxy.URL)

	other := newPair(t, 7, time.Now().Add(time.Hour))
	write(t, caFile, other.cert)
	tc, err := feed.NewTLSClient("platform", "platform", true, caFile, "", "")
	if err != nil {
		t.Fatal(err)
	}
	tc.CAFile().SetCheckEvery(0)
	get := func(server string) error {
		tr := &http.Transport{Proxy: http.ProxyURL(proxyURL), TLSClientConfig: tc.ServerConfig(server)}
		defer tr.CloseIdleConnections()
		resp, err := (&http.Client{Transport: tr, Timeout: 10 * time.Second}).Get(hs.URL)
		if err == nil {
			resp.Body.Close()
		}
		return err
	}
	if err := get("127.0.0.1"); err == nil || !strings.Contains(err.Error(), "unknown authority") {
		t.Fatalf("through the proxy with another CA: %v, want the server's certificate refused", err)
	}
	write(t, caFile, append(append([]byte{}, other.cert...), srv.cert...))
	if err := get("127.0.0.1"); err != nil {
		t.Fatalf("through the proxy once the CA was added: %v", err)
	}
	if err := get("platform.example"); err == nil {
		t.Error("a certificate for 127.0.0.1 accepted as platform.example's")
	}
}

// serverPair is a new self-signed certificate for 127.0.0.1 (serial 100,
// an hour to run) as PEM and as a server presents it.
func serverPair(t *testing.T) (pemPair, tls.Certificate) {
	t.Helper()
	p := newPair(t, 100, time.Now().Add(time.Hour))
	c, err := tls.X509KeyPair(p.cert, p.key)
	if err != nil {
		t.Fatal(err)
	}
	return p, c
}
