package main

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/planflag/planflag/feed/feedtest"
)

// selfSigned writes a certificate for 127.0.0.1 and its key, and returns
// their paths and a pool trusting the certificate.
func selfSigned(t *testing.T) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	cert := writeSelfSigned(t, certFile, keyFile, 1, time.Now().Add(time.Hour))
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}

// writeSelfSigned writes a certificate for 127.0.0.1 with this serial and
// expiry, and its key, to the files given.
func writeSelfSigned(t *testing.T, certFile, keyFile string, serial int64, notAfter time.Time) *x509.Certificate {
	t.Helper()
	certPEM, keyPEM := feedtest.SelfSigned(t, serial, notAfter)
	if err := os.WriteFile(certFile, certPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, keyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(certPEM)
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

// With -http.tls-cert the API serves HTTPS only: lookups over TLS are
// answered, a plain HTTP request is not.
func TestServiceHTTPS(t *testing.T) {
	cert, key, pool := selfSigned(t)
	m := boot(t, eventsFile(t), "-http.tls-cert", cert, "-http.tls-key", key)
	defer m.Close()
	if !strings.HasPrefix(m.URL(), "https://") {
		t.Errorf("URL %s, want https", m.URL())
	}
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}, Timeout: 5 * time.Second}
	var status int
	for range 200 {
		resp, err := c.Get(m.URL() + "/readyz")
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if status = resp.StatusCode; status == 200 {
				break
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	if status != 200 {
		t.Fatalf("readyz over HTTPS: %d", status)
	}
	req, _ := http.NewRequest("POST", m.URL()+"/v1/lookup", strings.NewReader(`{"nhs_number":"9434765919","birth_date":"1941-03-07"}`))
	req.Header.Set("Authorization", "Bearer "+tokenCAD)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"tier"`) {
		t.Errorf("lookup over HTTPS: %d %s", resp.StatusCode, body)
	}
	if r, err := (&http.Client{Timeout: 2 * time.Second}).Get("http://" + m.Addr + "/healthz"); err == nil {
		r.Body.Close()
		if r.StatusCode == 200 {
			t.Error("plain HTTP answered 200 on the HTTPS port")
		}
	}
}

// A certificate renewed on disk is served from the next connection on,
// without a restart, and /metrics reports the expiry of the one served; a
// renewal that does not load is logged and counted, and the one in use
// stays.
func TestServiceHTTPSRenewal(t *testing.T) {
	certFile, keyFile, _ := selfSigned(t)
	var logs feedtest.LogBuffer
	m := bootLogged(t, &logs, eventsFile(t), "-http.tls-cert", certFile, "-http.tls-key", keyFile, "-tls.check-interval", "1s")
	defer m.Close()
	served := func() *x509.Certificate {
		t.Helper()
		c, err := tls.Dial("tcp", m.Addr, &tls.Config{InsecureSkipVerify: true}) // the test reads the certificate; trust is not under test
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		return c.ConnectionState().PeerCertificates[0]
	}
	expiry := func() string {
		t.Helper()
		c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, DisableKeepAlives: true}, Timeout: 5 * time.Second}
		resp, err := c.Get(m.URL() + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		for _, l := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(l, `planflag_tls_certificate_expiry_timestamp_seconds{cert="http"} `) {
				return strings.Fields(l)[1]
			}
		}
		return ""
	}
	if s := served().SerialNumber.Int64(); s != 1 {
		t.Fatalf("serial %d, want 1", s)
	}
	notAfter := time.Now().Add(90 * 24 * time.Hour).Truncate(time.Second)
	writeSelfSigned(t, certFile, keyFile, 2, notAfter)
	feedtest.Eventually(t, 5*time.Second, "renewed certificate served", func() bool { return served().SerialNumber.Int64() == 2 })
	if got, want := expiry(), strconv.FormatInt(notAfter.Unix(), 10); got != want && got != fmt.Sprintf("%g", float64(notAfter.Unix())) {
		t.Errorf("expiry metric %q, want %s", got, want)
	}
	if !strings.Contains(logs.String(), `"msg":"TLS certificate reloaded"`) {
		t.Error("reload not logged")
	}
	// A key that is not the certificate's: the renewal is refused and the
	// certificate in use stays.
	other := filepath.Join(t.TempDir(), "other.pem")
	writeSelfSigned(t, other, keyFile, 3, notAfter)
	feedtest.Eventually(t, 5*time.Second, "refused renewal logged", func() bool {
		served()
		return strings.Contains(logs.String(), `"msg":"TLS certificate on disk not loaded; still presenting the one loaded before"`)
	})
	if s := served().SerialNumber.Int64(); s != 2 {
		t.Errorf("after a renewal that does not load: serial %d, want 2 still", s)
	}
}

// A certificate flagd cannot use stops it at start, naming the flags.
func TestServiceHTTPSBadCert(t *testing.T) {
	cert, _, _ := selfSigned(t)
	if _, err := parseConfig([]string{"-demo", "-http.tls-cert", cert}, io.Discard); err == nil || !strings.Contains(err.Error(), "-http.tls-key") {
		t.Errorf("cert without key: %v", err)
	}
	if err := runErr(t, "-clients", clientsFile(t, t.TempDir()), "-events", eventsFile(t),
		"-http.tls-cert", cert, "-http.tls-key", cert); err == nil || !strings.Contains(err.Error(), "-http.tls-cert") {
		t.Errorf("key file holding a certificate: Run error %v, want one naming -http.tls-cert", err)
	}
}

// -debug.addr serves Go's profiles on loopback only.
func TestServiceDebugAddr(t *testing.T) {
	m := boot(t, eventsFile(t), "-debug.addr", "127.0.0.1:0")
	defer m.Close()
	resp, err := http.Get("http://" + m.DebugAddr + "/debug/pprof/heap?debug=1")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), "heap profile") {
		t.Errorf("heap profile: %d %.80s", resp.StatusCode, body)
	}
	// The API's port serves no profiles.
	if r, err := http.Get("http://" + m.Addr + "/debug/pprof/heap"); err == nil {
		r.Body.Close()
		if r.StatusCode == 200 {
			t.Error("the API's port serves profiles")
		}
	}
	for _, addr := range []string{"0.0.0.0:6060", ":6060", "10.0.0.1:6060", "localhost"} {
		if _, err := parseConfig([]string{"-demo", "-debug.addr", addr}, io.Discard); err == nil || !strings.Contains(err.Error(), "loopback") {
			t.Errorf("-debug.addr %s: %v, want refused as not loopback", addr, err)
		}
	}
}
