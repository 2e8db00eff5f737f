package mqtt

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/palid/palid/internal/mosquittotest"
)

// writeCert makes a certificate for name signed by parent (self-signed when
// parent is nil) and writes cert and key as PEM files in dir.
func writeCert(t *testing.T, dir, name string, isCA bool, parent *x509.Certificate, parentKey *ecdsa.PrivateKey) (*x509.Certificate, *ecdsa.PrivateKey, string, string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: name},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		IsCA:         isCA, BasicConstraintsValid: true,
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
	}
	signer, signKey := tmpl, key
	if parent != nil {
		signer, signKey = parent, parentKey
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, signer, &key.PublicKey, signKey)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	kder, _ := x509.MarshalECPrivateKey(key)
	certFile, keyFile := filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600)
	return cert, key, certFile, keyFile
}

// TestTLSWithClientCertificate runs the client against a real mosquitto
// TLS listener that requires a client certificate: with the CA and a
// client certificate a query is answered; without the certificate, or
// without trusting the CA, the connection is refused.
func TestTLSWithClientCertificate(t *testing.T) {
	dir := t.TempDir()
	ca, caKey, caFile, _ := writeCert(t, dir, "ca", true, nil, nil)
	_, _, srvCert, srvKey := writeCert(t, dir, "server", false, ca, caKey)
	_, _, cliCert, cliKey := writeCert(t, dir, "client", false, ca, caKey)
	b := mosquittotest.StartTLS(t, caFile, srvCert, srvKey)
	url := strings.Replace(b.URL(), "tcp://", "ssl://", 1)
	tlsBroker := Broker{URL: url, CAFile: caFile, CertFile: cliCert, KeyFile: cliKey}

	d := newFakeDaemon(t, url, t.TempDir(), 8, 0, func(c *Config) { c.Broker = tlsBroker })
	d.start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	resp, err := QueryBroker(ctx, tlsBroker, "palid/cam1", Request{Question: "is the door open?"})
	if err != nil || resp.Status != StatusOK {
		t.Fatalf("query over TLS: %+v %v", resp, err)
	}

	for name, bad := range map[string]Broker{
		"no client certificate": {URL: url, CAFile: caFile},
		"CA not trusted":        {URL: url, CertFile: cliCert, KeyFile: cliKey},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		if _, err := QueryBroker(ctx, bad, "palid/cam1", Request{Question: "x"}); err == nil {
			t.Errorf("%s: query succeeded", name)
		}
		cancel()
	}
}
