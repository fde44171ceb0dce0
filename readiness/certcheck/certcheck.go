// Package certcheck is a readiness check of certificates: the chain a TLS
// endpoint presents (Endpoint), such as an upstream the service calls or its
// own listener, or a certificate file on disk (File), such as the one a
// cert-manager Secret mounts. It lives in a package of its own so that a
// service that does not use it never compiles it.
//
// At each execution the check verifies the chain as a TLS client would
// and dates the chain that verified, up to its trusted root: a server may
// present certificates no client uses (the cross-signed twin of a root,
// kept for old clients), and one of those expiring is no outage while a
// valid path stands. Where several paths verify, the one whose first
// expiry is latest counts. Where none does, or there is nothing to verify
// against (a File without RootCAs), every certificate presented is dated.
// The check fails when a dated certificate has expired or is not yet
// valid, and when the chain does not verify (an unknown authority, a host
// name the certificate is not for), naming why; it warns when the first
// dated certificate to expire does so within WarnBefore (default 14 days),
// long enough before the outage for someone to act. Observed value:
// "expiresIn", the days until the first dated certificate expires
// (negative once it has).
//
// Whether the check is Shared or Local depends on the certificate: an
// upstream's is shared by the fleet (the default of readiness checks), the
// service's own file is local to the instance (probes.Local()). Either
// way, a certificate about to expire is a warning, not a reason to restart:
// a certificate check belongs to readiness, never to liveness.
//
//	api, err := certcheck.Endpoint("billing.internal:443")
//	...
//	err = ready.Add("billing-cert", api, probes.Every(time.Minute))
package certcheck

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"os"
	"time"

	"github.com/probekit/probes"
	"github.com/probekit/probes/internal/opt"
)

// DefaultWarnBefore is the default of WarnBefore.
const DefaultWarnBefore = 14 * 24 * time.Hour

// Option configures a Checker.
type Option func(*config) error

type config struct {
	warnBefore time.Duration
	roots      *x509.CertPool
	serverName string
}

// WarnBefore makes the check warn when the first certificate of the chain
// expires within d. Default DefaultWarnBefore (14 days); 0 turns the
// warning off.
func WarnBefore(d time.Duration) Option {
	return func(c *config) error {
		if d < 0 {
			return fmt.Errorf("WarnBefore(%s): must not be negative", d)
		}
		c.warnBefore = d
		return nil
	}
}

// RootCAs sets the authorities the chain must verify against. Default: the
// system's roots for Endpoint; a File is verified only when RootCAs is
// given, since the file of a service's own certificate is often issued by
// a private authority. Without it every certificate of the File is dated,
// as the check cannot tell which a client would use.
func RootCAs(pool *x509.CertPool) Option {
	return func(c *config) error {
		if pool == nil {
			return errors.New("RootCAs(nil): need a pool")
		}
		c.roots = pool
		return nil
	}
}

// ServerName sets the host name the certificate must be valid for, and that
// Endpoint sends in its handshake (SNI). Default for Endpoint: the host of
// its address; for File: none. A File given a ServerName and no RootCAs
// has only the name verified.
func ServerName(name string) Option {
	return func(c *config) error {
		if name == "" {
			return errors.New(`ServerName(""): need a host name`)
		}
		c.serverName = name
		return nil
	}
}

// Checker checks a certificate chain. Create one with Endpoint or File.
type Checker struct {
	cfg   config
	addr  string // Endpoint
	path  string // File
	chain func(ctx context.Context) ([]*x509.Certificate, error)
}

var _ probes.Checker = (*Checker)(nil)

func newConfig(opts []Option) (config, error) {
	cfg := config{warnBefore: DefaultWarnBefore}
	err := opt.Apply("certcheck", &cfg, opts)
	return cfg, err
}

// Endpoint returns a Checker that opens a TLS connection to addr, a
// "host:port", completes the handshake and checks the chain the server
// presents. It returns an error naming the option when an option is
// invalid, and when addr has no port. A server that does not complete the
// handshake fails the check at its timeout.
func Endpoint(addr string, opts ...Option) (*Checker, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil || port == "" {
		return nil, fmt.Errorf("certcheck: Endpoint(%q): want host:port", addr)
	}
	cfg, err := newConfig(opts)
	if err != nil {
		return nil, err
	}
	if cfg.serverName == "" {
		cfg.serverName = host
	}
	c := &Checker{cfg: cfg, addr: addr}
	d := tls.Dialer{Config: &tls.Config{
		ServerName: cfg.serverName,
		// The chain is verified below, after the handshake, so that the
		// check can say which certificate is wrong and how, and report
		// the days left even of a chain that no longer verifies.
		InsecureSkipVerify: true,
	}}
	c.chain = func(ctx context.Context) ([]*x509.Certificate, error) {
		conn, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			return nil, fmt.Errorf("tls %s: no handshake: %w", addr, err)
		}
		defer conn.Close()
		certs := conn.(*tls.Conn).ConnectionState().PeerCertificates
		if len(certs) == 0 {
			return nil, fmt.Errorf("tls %s: the server presented no certificate", addr)
		}
		return certs, nil
	}
	return c, nil
}

// File returns a Checker of the PEM certificates in the file at path,
// the first being the leaf, as a server's certificate file holds them; any
// other PEM block (a private key) is ignored. The file is read again at
// each check, so a rotated certificate is seen at the next one. It returns
// an error naming the option when an option is invalid, and when path is
// empty. The file need not exist yet: a check fails while it does not.
func File(path string, opts ...Option) (*Checker, error) {
	if path == "" {
		return nil, errors.New(`certcheck: File(""): need a path`)
	}
	cfg, err := newConfig(opts)
	if err != nil {
		return nil, err
	}
	c := &Checker{cfg: cfg, path: path}
	c.chain = func(context.Context) ([]*x509.Certificate, error) { return readPEM(path) }
	return c, nil
}

func readPEM(path string) ([]*x509.Certificate, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var certs []*x509.Certificate
	for block, rest := pem.Decode(data); block != nil; block, rest = pem.Decode(rest) {
		if block.Type != "CERTIFICATE" {
			continue
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%s: certificate %d: %w", path, len(certs)+1, err)
		}
		certs = append(certs, cert)
	}
	if len(certs) == 0 {
		return nil, fmt.Errorf("%s: no PEM CERTIFICATE block", path)
	}
	return certs, nil
}

// Check gets the chain, verifies it, observes the days left of the chain
// that verified (of every certificate presented when none did), and checks
// their dates and how soon the first of them expires.
func (c *Checker) Check(ctx context.Context) error {
	certs, err := c.chain(ctx)
	if err != nil {
		return err
	}
	now := time.Now()
	where := c.addr
	if where == "" {
		where = c.path
	}
	chains, verifyErr := c.verify(certs, now)
	// A server may present more than a client uses (the cross-signed twin
	// of a root, kept for old clients): once a chain verifies, only it is
	// dated. Otherwise every certificate presented is, so that an expired
	// one is named rather than hidden in the verifier's error.
	dated := certs
	if len(chains) > 0 {
		dated = latest(chains)
	}
	first := earliest(dated)
	left := first.NotAfter.Sub(now)
	probes.Observe(ctx, probes.Observation{Measurement: "expiresIn", Value: left.Hours() / 24, Unit: "days"})

	for _, cert := range dated {
		switch {
		case now.After(cert.NotAfter):
			return fmt.Errorf("%s: certificate %s expired %s ago, on %s", where, name(cert), days(now.Sub(cert.NotAfter)), cert.NotAfter.UTC().Format(time.RFC3339))
		case now.Before(cert.NotBefore):
			return fmt.Errorf("%s: certificate %s is not valid before %s, in %s", where, name(cert), cert.NotBefore.UTC().Format(time.RFC3339), days(cert.NotBefore.Sub(now)))
		}
	}
	if verifyErr != nil {
		return fmt.Errorf("%s: the chain does not verify: %w", where, verifyErr)
	}
	if left < c.cfg.warnBefore {
		return fmt.Errorf("%s: certificate %s expires in %s, on %s: %w", where, name(first), days(left), first.NotAfter.UTC().Format(time.RFC3339), probes.ErrWarn)
	}
	return nil
}

// earliest returns the certificate of chain that expires first.
func earliest(chain []*x509.Certificate) *x509.Certificate {
	first := chain[0]
	for _, cert := range chain[1:] {
		if cert.NotAfter.Before(first.NotAfter) {
			first = cert
		}
	}
	return first
}

// latest returns the chain whose first expiry is the latest: the path a
// client keeps finding longest.
func latest(chains [][]*x509.Certificate) []*x509.Certificate {
	best := chains[0]
	for _, chain := range chains[1:] {
		if earliest(chain).NotAfter.After(earliest(best).NotAfter) {
			best = chain
		}
	}
	return best
}

// verify verifies certs (leaf first) as a TLS client would, and returns
// the chains that verify, each up to its root, when there is something to
// verify against: always for an endpoint, for a file only with RootCAs. A
// file with a ServerName and no RootCAs has its name verified only.
func (c *Checker) verify(certs []*x509.Certificate, now time.Time) ([][]*x509.Certificate, error) {
	if c.addr == "" && c.cfg.roots == nil {
		if c.cfg.serverName != "" {
			return nil, certs[0].VerifyHostname(c.cfg.serverName)
		}
		return nil, nil
	}
	inter := x509.NewCertPool()
	for _, cert := range certs[1:] {
		inter.AddCert(cert)
	}
	chains, err := certs[0].Verify(x509.VerifyOptions{
		DNSName:       c.cfg.serverName,
		Roots:         c.cfg.roots, // nil: the system's
		Intermediates: inter,
		CurrentTime:   now,
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	})
	if err != nil {
		return nil, err
	}
	return chains, nil
}

// name names a certificate by its subject, or its serial number when the
// subject is empty.
func name(cert *x509.Certificate) string {
	if s := cert.Subject.String(); s != "" {
		return fmt.Sprintf("%q", s)
	}
	return "serial " + cert.SerialNumber.String()
}

// days writes d in days, as "3.2 days", or in hours below a day.
func days(d time.Duration) string {
	if d < 24*time.Hour {
		return d.Round(time.Minute).String()
	}
	return fmt.Sprintf("%.1f days", d.Hours()/24)
}
