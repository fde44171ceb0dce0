package certcheck_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/probekit/probes/internal/testenv/testutil"
)

// authority is a certificate authority made by the test.
type authority struct {
	cert *x509.Certificate
	key  crypto.Signer
}

// pool returns a pool holding only the authority.
func (a *authority) pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(a.cert)
	return p
}

func nextSerial() *big.Int {
	n, err := rand.Int(rand.Reader, big.NewInt(1<<62))
	if err != nil {
		panic(err)
	}
	return n
}

func newKey(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return key
}

// newCA makes a root authority valid from an hour ago for a year.
func newCA(t *testing.T, cn string) *authority {
	t.Helper()
	key := newKey(t)
	tmpl := &x509.Certificate{
		SerialNumber:          nextSerial(),
		Subject:               pkix.Name{CommonName: cn},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(365 * 24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &authority{cert: cert, key: key}
}

// intermediate makes an intermediate authority signed by a, valid from
// notBefore to notAfter.
func (a *authority) intermediate(t *testing.T, cn string, notBefore, notAfter time.Time) *authority {
	t.Helper()
	key := newKey(t)
	tmpl := &x509.Certificate{
		SerialNumber:          nextSerial(),
		Subject:               pkix.Name{CommonName: cn},
		NotBefore:             notBefore,
		NotAfter:              notAfter,
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, a.cert, key.Public(), a.key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &authority{cert: cert, key: key}
}

// crossSigned returns a's key under a certificate of a's subject signed
// by by, valid from notBefore to notAfter: the cross-signed twin of a root,
// which a server presents after its intermediate so that older clients,
// trusting by and not a, find a path too.
func (a *authority) crossSigned(t *testing.T, by *authority, notBefore, notAfter time.Time) *authority {
	t.Helper()
	tmpl := &x509.Certificate{
		SerialNumber:          nextSerial(),
		Subject:               a.cert.Subject,
		NotBefore:             notBefore,
		NotAfter:              notAfter,
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, by.cert, a.key.Public(), by.key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &authority{cert: cert, key: a.key}
}

// leaf is a server certificate and its key, with the chain that goes with
// it (leaf first, no root).
type leaf struct {
	chain []*x509.Certificate
	key   crypto.Signer
}

// issue makes a server certificate for localhost and 127.0.0.1 signed by a,
// valid from notBefore to notAfter; parents are the intermediates between
// a and the root, nearest first, to present with it.
func (a *authority) issue(t *testing.T, notBefore, notAfter time.Time, parents ...*authority) leaf {
	t.Helper()
	key := newKey(t)
	tmpl := &x509.Certificate{
		SerialNumber: nextSerial(),
		Subject:      pkix.Name{CommonName: "localhost"},
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:    notBefore,
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, a.cert, key.Public(), a.key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	l := leaf{chain: []*x509.Certificate{cert}, key: key}
	if a.cert.Subject.String() != a.cert.Issuer.String() { // a is an intermediate
		l.chain = append(l.chain, a.cert)
	}
	for _, p := range parents {
		l.chain = append(l.chain, p.cert)
	}
	return l
}

// pem returns the chain, and the key first when withKey, as PEM.
func (l leaf) pem(t *testing.T, withKey bool) []byte {
	t.Helper()
	var out []byte
	if withKey {
		der, err := x509.MarshalPKCS8PrivateKey(l.key)
		if err != nil {
			t.Fatal(err)
		}
		out = pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
	}
	for _, c := range l.chain {
		out = append(out, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
	}
	return out
}

// writeFile puts data at path the way a Secret volume is updated: a new
// file renamed over the old one.
func writeFile(t *testing.T, path string, data []byte) {
	t.Helper()
	tmp := filepath.Join(filepath.Dir(path), ".tmp-"+filepath.Base(path))
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// serve serves l over TLS on a loopback port until the test ends, and
// returns the address. Each connection is handshaken and closed.
func serve(t *testing.T, l leaf) string {
	t.Helper()
	cert := tls.Certificate{PrivateKey: l.key, Leaf: l.chain[0]}
	for _, c := range l.chain {
		cert.Certificate = append(cert.Certificate, c.Raw)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			conn, err := ln.Accept()
			if errors.Is(err, net.ErrClosed) {
				return
			}
			if err != nil {
				t.Errorf("accept: %v", err)
				return
			}
			_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
			_ = conn.(*tls.Conn).Handshake() // the client may give up first
			conn.Close()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		<-done
	})
	return ln.Addr().String()
}

// frozen returns the address of a listener that never accepts, until the
// test ends: the kernel completes the handshake of a connection queued
// there, and the client then waits for a first word that never comes.
func frozen(t testing.TB) string { return testutil.Listen(t).Addr().String() }
