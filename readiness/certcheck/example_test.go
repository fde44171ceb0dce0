package certcheck_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"time"

	"github.com/probekit/probes"
	"github.com/probekit/probes/readiness"
	"github.com/probekit/probes/readiness/certcheck"
)

func ExampleEndpoint() {
	ready, err := readiness.New(probes.NewLifecycle())
	if err != nil {
		panic(err)
	}
	// An upstream's certificate, verified against the system's roots;
	// warn 30 days before it expires.
	billing, err := certcheck.Endpoint("billing.internal:443", certcheck.WarnBefore(30*24*time.Hour))
	if err != nil {
		panic(err)
	}
	if err := ready.Add("billing-cert", billing, probes.Every(time.Minute)); err != nil {
		panic(err)
	}

	_, err = certcheck.Endpoint("billing.internal")
	fmt.Println(err)
	// Output:
	// certcheck: Endpoint("billing.internal"): want host:port
}

func ExampleFile() {
	// A self-signed certificate that expires in three days, where a
	// Secret volume would mount it.
	dir, err := os.MkdirTemp("", "tls")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "items"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(3 * 24 * time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		panic(err)
	}
	path := filepath.Join(dir, "tls.crt")
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		panic(err)
	}

	own, err := certcheck.File(path) // read again at every check
	if err != nil {
		panic(err)
	}
	err = own.Check(context.Background())
	fmt.Println(probes.StatusOf(err))
	// Output:
	// warn
}
