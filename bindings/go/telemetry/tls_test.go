//go:build cgo

package telemetry

// HTTPS to the real collector serving a certificate that an internal CA signed, both made
// here with crypto/x509: WithCAFile delivers; without it the certificate is refused, the
// batch dropped and counted once (no retry) and a warning names the certificate; a bad
// CA file is ErrInvalidConfig naming it.

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// testPKI writes ca.pem, server.pem and server.key (a certificate for 127.0.0.1 and
// localhost signed by the CA) into a temporary directory.
type testPKI struct {
	dir  string
	pool *x509.CertPool
}

func newTestPKI(t *testing.T) testPKI {
	t.Helper()
	dir := t.TempDir()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	caTemplate := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "telemetry-core Go test internal CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTemplate, caTemplate, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	leafKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	leafTemplate := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "telemetry.corp.internal"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(24 * time.Hour),
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, leafTemplate, caCert, &leafKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(leafKey)
	if err != nil {
		t.Fatal(err)
	}
	write := func(name, kind string, blocks ...[]byte) {
		var text []byte
		for _, b := range blocks {
			text = append(text, pem.EncodeToMemory(&pem.Block{Type: kind, Bytes: b})...)
		}
		if err := os.WriteFile(filepath.Join(dir, name), text, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("ca.pem", "CERTIFICATE", caDER)
	write("server.pem", "CERTIFICATE", leafDER, caDER)
	write("server.key", "PRIVATE KEY", keyDER)
	pool := x509.NewCertPool()
	pool.AddCert(caCert)
	return testPKI{dir: dir, pool: pool}
}

func (p testPKI) path(name string) string { return filepath.Join(p.dir, name) }

// startTLSCollector runs the collector with the PKI's server certificate.
func startTLSCollector(t *testing.T, p testPKI) string {
	t.Helper()
	url := startCollectorWith(t, "--tls-cert", p.path("server.pem"), "--tls-key", p.path("server.key"))
	if !strings.HasPrefix(url, "https://127.0.0.1:") {
		t.Fatalf("the collector serves %s, not HTTPS", url)
	}
	return url
}

// storedEvents reads the collector's events over HTTPS, trusting the PKI's CA.
func storedEvents(t *testing.T, p testPKI, url string) []storedEvent {
	t.Helper()
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: p.pool}}}
	resp, err := client.Get(url + "/api/events")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var rows []storedEvent
	if err := json.NewDecoder(resp.Body).Decode(&rows); err != nil {
		t.Fatal(err)
	}
	return rows
}

func tlsClient(t *testing.T, url string, opts ...Option) (*Client, error) {
	t.Helper()
	base := []Option{
		WithProduct("gotls", "1.0.0"),
		WithEnvironment(map[string]string{"HOME": t.TempDir()}),
		WithWorkingDir(t.TempDir()),
		testIdentity,
		WithEndpoint(url),
		WithAPIKey("phc_tls"),
		WithBackoffBase(10 * time.Millisecond),
	}
	c, err := New(append(base, opts...)...)
	if c != nil {
		t.Cleanup(func() { _ = c.Close(ctxTimeout(t, 5*time.Second)) })
	}
	return c, err
}

func TestCAFileReachesACollectorSignedByAnInternalCA(t *testing.T) {
	p := newTestPKI(t)
	url := startTLSCollector(t, p)
	c, err := tlsClient(t, url, WithCAFile(p.path("ca.pem")))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Capture("server_start", map[string]any{"tls": true}); err != nil {
		t.Fatal(err)
	}
	if err := c.Flush(ctxTimeout(t, 10*time.Second)); err != nil {
		t.Fatalf("Flush: %v", err)
	}
	if s := c.Stats(); s.Sent != 1 || s.FailedRequests != 0 {
		t.Errorf("stats %+v, want 1 sent and no failure", s)
	}
	rows := storedEvents(t, p, url)
	if len(rows) != 1 || rows[0].Event != "server_start" || rows[0].Properties["tls"] != true {
		t.Errorf("stored %+v, want the one server_start", rows)
	}
}

func TestWithoutTheCAFileTheCertificateIsRefusedOnceAndLogged(t *testing.T) {
	p := newTestPKI(t)
	url := startTLSCollector(t, p)
	h := &recorder{level: slog.LevelDebug}
	c, err := tlsClient(t, url, WithLogger(slog.New(h)), WithMaxRetries(3))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Capture("untrusted", nil); err != nil {
		t.Fatal(err)
	}
	started := time.Now()
	if err := c.Flush(ctxTimeout(t, 5*time.Second)); !errors.Is(err, ErrNotDelivered) {
		t.Fatalf("Flush: %v, want ErrNotDelivered", err)
	}
	if d := time.Since(started); d > 3*time.Second {
		t.Errorf("Flush took %v", d)
	}
	// Not retried: another attempt cannot make the certificate trusted.
	if s := c.Stats(); s.DroppedFailed != 1 || s.FailedRequests != 1 || s.Retries != 0 {
		t.Errorf("stats %+v, want 1 dropped after 1 failed request and no retry", s)
	}
	if err := c.Close(ctxTimeout(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
	waitLogsHandedOver(t)
	var found bool
	for _, r := range h.all() {
		found = found || (r.Level >= slog.LevelWarn && strings.Contains(r.Message, url) &&
			strings.Contains(r.Message, "certificate"))
	}
	if !found {
		t.Errorf("no warning names the certificate: %v", h.all())
	}
	if rows := storedEvents(t, p, url); len(rows) != 0 {
		t.Errorf("stored %+v", rows)
	}
}

func TestPlatformRootsWithTheCAFileReachTheCollector(t *testing.T) {
	p := newTestPKI(t)
	url := startTLSCollector(t, p)
	c, err := tlsClient(t, url, WithTLSRoots(TLSRootsPlatform), WithCAFile(p.path("ca.pem")))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Capture("platform", nil); err != nil {
		t.Fatal(err)
	}
	if err := c.Flush(ctxTimeout(t, 10*time.Second)); err != nil {
		t.Fatalf("Flush: %v", err)
	}
	if rows := storedEvents(t, p, url); len(rows) != 1 {
		t.Errorf("stored %+v", rows)
	}
}

func TestABadCAFileIsErrInvalidConfigNamingIt(t *testing.T) {
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty.pem")
	if err := os.WriteFile(empty, []byte("# the CA goes here\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for path, says := range map[string]string{
		filepath.Join(dir, "missing.pem"): "cannot be read",
		empty:                             "holds no certificate",
	} {
		c, err := tlsClient(t, "https://telemetry.corp.internal", WithCAFile(path))
		if c != nil || !errors.Is(err, ErrInvalidConfig) {
			t.Fatalf("%s: client %v, error %v; want ErrInvalidConfig", path, c, err)
		}
		if !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), says) {
			t.Errorf("%s: %v", path, err)
		}
	}
	if _, err := tlsClient(t, "https://telemetry.corp.internal", WithTLSRoots("system")); !errors.Is(err, ErrInvalidConfig) {
		t.Errorf("tls_roots system: %v, want ErrInvalidConfig", err)
	}
}
