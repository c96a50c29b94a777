package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// selfSigned writes a certificate for 127.0.0.1 and its key, and returns
// their paths and a pool trusting the certificate.
func selfSigned(t *testing.T) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "flagd test"},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
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
