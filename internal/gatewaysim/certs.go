package gatewaysim

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// CertBundle holds a throw-away PKI in PEM form: one CA that signs a server certificate and a
// client certificate, laid out like the OpenShell Helm chart's TLS Secrets.
type CertBundle struct {
	CACert     []byte
	ServerCert []byte
	ServerKey  []byte
	ClientCert []byte
	ClientKey  []byte

	caKey *ecdsa.PrivateKey
}

// GenerateCertBundle creates a fresh CA, a server certificate valid for hosts (IP addresses or
// DNS names; localhost and 127.0.0.1 when none are given) and a client certificate.
func GenerateCertBundle(hosts ...string) (*CertBundle, error) {
	if len(hosts) == 0 {
		hosts = []string{"localhost", "127.0.0.1"}
	}
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate CA key: %w", err)
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: "openshell-ca", Organization: []string{"openshell"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(365 * 24 * time.Hour),
		IsCA:                  true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, fmt.Errorf("create CA certificate: %w", err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		return nil, fmt.Errorf("parse CA certificate: %w", err)
	}

	serverTmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: "openshell-server", Organization: []string{"openshell"}},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(365 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			serverTmpl.IPAddresses = append(serverTmpl.IPAddresses, ip)
		} else {
			serverTmpl.DNSNames = append(serverTmpl.DNSNames, h)
		}
	}
	serverCert, serverKey, err := issue(serverTmpl, ca, caKey)
	if err != nil {
		return nil, fmt.Errorf("server certificate: %w", err)
	}
	clientCert, clientKey, err := IssueClientCert(&CertBundle{CACert: pemCert(caDER)}, caKey, "openshell-client", now.Add(365*24*time.Hour))
	if err != nil {
		return nil, err
	}
	b := &CertBundle{CACert: pemCert(caDER), ServerCert: serverCert, ServerKey: serverKey, ClientCert: clientCert, ClientKey: clientKey}
	b.caKey = caKey
	return b, nil
}

// IssueClient issues another client certificate from the bundle's CA, valid until notAfter
// (which may lie in the past, to produce an expired certificate for tests).
func (b *CertBundle) IssueClient(commonName string, notAfter time.Time) (certPEM, keyPEM []byte, err error) {
	if b.caKey == nil {
		return nil, nil, fmt.Errorf("bundle has no CA key: only bundles from GenerateCertBundle can issue")
	}
	return IssueClientCert(b, b.caKey, commonName, notAfter)
}

// IssueClientCert issues a client certificate signed by the bundle's CA and caKey.
func IssueClientCert(b *CertBundle, caKey *ecdsa.PrivateKey, commonName string, notAfter time.Time) (certPEM, keyPEM []byte, err error) {
	block, _ := pem.Decode(b.CACert)
	if block == nil {
		return nil, nil, fmt.Errorf("CA certificate is not PEM")
	}
	ca, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, nil, fmt.Errorf("parse CA certificate: %w", err)
	}
	notBefore := time.Now().Add(-time.Hour)
	if notAfter.Before(notBefore) {
		notBefore = notAfter.Add(-24 * time.Hour)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: commonName, OrganizationalUnit: []string{"openshell-user"}},
		NotBefore:    notBefore,
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	certPEM, keyPEM, err = issue(tmpl, ca, caKey)
	if err != nil {
		return nil, nil, fmt.Errorf("client certificate: %w", err)
	}
	return certPEM, keyPEM, nil
}

// WriteDir writes the bundle as ca.crt, server.crt, server.key (the server side) and
// tls.crt, tls.key (the client side, the layout of the Helm chart's openshell-client-tls).
func (b *CertBundle) WriteDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create %s: %w", dir, err)
	}
	files := map[string][]byte{
		"ca.crt": b.CACert, "server.crt": b.ServerCert, "server.key": b.ServerKey,
		"tls.crt": b.ClientCert, "tls.key": b.ClientKey,
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			return fmt.Errorf("write %s: %w", name, err)
		}
	}
	return nil
}

// LoadServerCerts reads ca.crt, server.crt and server.key from dir.
func LoadServerCerts(dir string) (*CertBundle, error) {
	b := &CertBundle{}
	for name, dst := range map[string]*[]byte{"ca.crt": &b.CACert, "server.crt": &b.ServerCert, "server.key": &b.ServerKey} {
		data, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", name, err)
		}
		*dst = data
	}
	return b, nil
}

func issue(tmpl, ca *x509.Certificate, caKey *ecdsa.PrivateKey) (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return nil, nil, err
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	return pemCert(der), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), nil
}

func pemCert(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

func serial() *big.Int {
	n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	return n
}
