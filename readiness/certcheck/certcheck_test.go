package certcheck_test

import (
	"crypto/x509"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/probekit/probes"
	"github.com/probekit/probes/internal/testenv/testutil"
	"github.com/probekit/probes/readiness/certcheck"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const day = 24 * time.Hour

// dayTolerance bounds how far an observed expiresIn may be from the
// certificate's NotAfter as the test computes it: the clock moves between
// the two readings.
const dayTolerance = 0.01

// checkTimeout is the checks' timeout in the tests.
const checkTimeout = 500 * time.Millisecond

// returnsWithin bounds how long a check against a server that does not
// answer may take to return in a test: generous, for a loaded machine. How
// soon it fails is measured by BenchmarkFrozenEndpoint.
const returnsWithin = 10 * checkTimeout

func TestEndpoint(t *testing.T) {
	ca := newCA(t, "test root")
	other := newCA(t, "someone else's root")
	now := time.Now()
	for _, tt := range []struct {
		name      string
		leaf      leaf
		opts      []certcheck.Option
		status    probes.Status
		want      string  // in the error
		expiresIn float64 // days, observed
	}{
		{"valid", ca.issue(t, now.Add(-day), now.Add(90*day)), nil, probes.Pass, "", 90},
		{"expiring soon warns", ca.issue(t, now.Add(-day), now.Add(3*day)), nil, probes.Warn,
			`certificate "CN=localhost" expires in 3.0 days`, 3},
		{"expiring, outside WarnBefore", ca.issue(t, now.Add(-day), now.Add(3*day)), []certcheck.Option{certcheck.WarnBefore(2 * day)}, probes.Pass, "", 3},
		{"expired fails", ca.issue(t, now.Add(-10*day), now.Add(-2*day)), nil, probes.Fail,
			`certificate "CN=localhost" expired 2.0 days ago`, -2},
		{"expired an hour ago fails", ca.issue(t, now.Add(-10*day), now.Add(-time.Hour)), nil, probes.Fail,
			`expired 1h0m0s ago`, -1.0 / 24},
		{"not yet valid fails", ca.issue(t, now.Add(2*day), now.Add(90*day)), nil, probes.Fail,
			`certificate "CN=localhost" is not valid before`, 90},
		{"unknown authority fails", other.issue(t, now.Add(-day), now.Add(90*day)), nil, probes.Fail,
			"the chain does not verify: x509: certificate signed by unknown authority", 90},
		{"unknown to the system's roots fails", ca.issue(t, now.Add(-day), now.Add(90*day)), []certcheck.Option{certcheck.WarnBefore(0)}, probes.Fail,
			"certificate signed by unknown authority", 90},
		{"wrong host name fails", ca.issue(t, now.Add(-day), now.Add(90*day)), []certcheck.Option{certcheck.ServerName("billing.example")}, probes.Fail,
			"the chain does not verify: x509: certificate is valid for localhost, not billing.example", 90},
		{"intermediate expiring soon warns", func() leaf {
			in := ca.intermediate(t, "test intermediate", now.Add(-day), now.Add(5*day))
			return in.issue(t, now.Add(-day), now.Add(90*day))
		}(), nil, probes.Warn, `certificate "CN=test intermediate" expires in 5.0 days`, 5},
		{"intermediate expired fails", func() leaf {
			in := ca.intermediate(t, "test intermediate", now.Add(-10*day), now.Add(-day))
			return in.issue(t, now.Add(-day), now.Add(90*day))
		}(), nil, probes.Fail, `certificate "CN=test intermediate" expired 1.0 days ago`, -1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			addr := serve(t, tt.leaf)
			opts := tt.opts
			if tt.name != "unknown to the system's roots fails" {
				opts = append([]certcheck.Option{certcheck.RootCAs(ca.pool())}, opts...)
			}
			c, err := certcheck.Endpoint(addr, opts...)
			if err != nil {
				t.Fatal(err)
			}
			obs, err := testutil.CheckOnce(c, checkTimeout)
			if got := probes.StatusOf(err); got != tt.status {
				t.Errorf("status: got %s (%v), want %s", got, err, tt.status)
			}
			if tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)) {
				t.Errorf("error: got %v, want it to contain %q", err, tt.want)
			}
			if got, ok := testutil.Observed(obs, "expiresIn"); !ok || math.Abs(got-tt.expiresIn) > dayTolerance {
				t.Errorf("expiresIn: got %v (observed %t), want %v days", got, ok, tt.expiresIn)
			}
		})
	}
}

// The default server name is the address's host, an IP address included.
func TestEndpointNames(t *testing.T) {
	ca := newCA(t, "test root")
	now := time.Now()
	addr := serve(t, ca.issue(t, now.Add(-day), now.Add(90*day)))
	_, port, _ := strings.Cut(addr, ":")
	for _, tt := range []struct {
		name string
		addr string
		opts []certcheck.Option
	}{
		{"IP address", addr, nil},
		{"host name", "localhost:" + port, nil},
		{"ServerName", addr, []certcheck.Option{certcheck.ServerName("localhost")}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c, err := certcheck.Endpoint(tt.addr, append(tt.opts, certcheck.RootCAs(ca.pool()))...)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := testutil.CheckOnce(c, checkTimeout); err != nil {
				t.Errorf("got %v, want a pass", err)
			}
		})
	}
}

// A server that is not there fails; one that accepts and never answers
// fails at the check's timeout, and the check returns rather than hangs.
// Neither observes anything.
func TestEndpointDoesNotAnswer(t *testing.T) {
	for _, tt := range []struct {
		name    string
		addr    string
		want    string
		atLeast time.Duration // the check takes at least this long
	}{
		{"stopped", testutil.FreeAddr(t), "no handshake: dial tcp", 0},
		{"frozen", frozen(t), "no handshake: context deadline exceeded", checkTimeout},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c, err := certcheck.Endpoint(tt.addr)
			if err != nil {
				t.Fatal(err)
			}
			var obs []probes.Observation
			took := testutil.Returns(t, returnsWithin, func() { obs, err = testutil.CheckOnce(c, checkTimeout) })
			if probes.StatusOf(err) != probes.Fail || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %v, want a failure containing %q", err, tt.want)
			}
			if took < tt.atLeast {
				t.Errorf("took %s, want at least %s", took, tt.atLeast)
			}
			if len(obs) != 0 {
				t.Errorf("observed %v, want nothing", obs)
			}
			t.Logf("%s: failed after %s (timeout %s): %v", tt.name, took.Round(time.Millisecond), checkTimeout, err)
		})
	}
}

func TestFile(t *testing.T) {
	ca := newCA(t, "test root")
	other := newCA(t, "someone else's root")
	now := time.Now()
	valid := ca.issue(t, now.Add(-day), now.Add(90*day))
	for _, tt := range []struct {
		name      string
		data      []byte // nil: no file
		opts      []certcheck.Option
		status    probes.Status
		want      string
		expiresIn float64 // days; NaN: not observed
	}{
		{"valid", valid.pem(t, false), nil, probes.Pass, "", 90},
		{"key and chain in one file", valid.pem(t, true), nil, probes.Pass, "", 90},
		{"expiring soon warns", ca.issue(t, now.Add(-day), now.Add(day/2)).pem(t, false), nil, probes.Warn, "expires in 12h0m0s", 0.5},
		{"expired fails", ca.issue(t, now.Add(-10*day), now.Add(-3*day)).pem(t, false), nil, probes.Fail, "expired 3.0 days ago", -3},
		{"not yet valid fails", ca.issue(t, now.Add(day), now.Add(90*day)).pem(t, false), nil, probes.Fail, "is not valid before", 90},
		{"verified against RootCAs", valid.pem(t, false), []certcheck.Option{certcheck.RootCAs(ca.pool())}, probes.Pass, "", 90},
		{"unknown to RootCAs fails", other.issue(t, now.Add(-day), now.Add(90*day)).pem(t, false), []certcheck.Option{certcheck.RootCAs(ca.pool())}, probes.Fail,
			"the chain does not verify: x509: certificate signed by unknown authority", 90},
		{"not for ServerName fails", valid.pem(t, false), []certcheck.Option{certcheck.ServerName("billing.example")}, probes.Fail,
			"certificate is valid for localhost, not billing.example", 90},
		{"missing fails", nil, nil, probes.Fail, "no such file or directory", math.NaN()},
		{"not PEM fails", []byte("not a certificate\n"), nil, probes.Fail, "no PEM CERTIFICATE block", math.NaN()},
		{"only a key fails", func() []byte { b := valid.pem(t, true); return b[:strings.Index(string(b), "-----BEGIN CERTIFICATE")] }(), nil, probes.Fail,
			"no PEM CERTIFICATE block", math.NaN()},
		{"a broken certificate fails", []byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"), nil, probes.Fail,
			"certificate 1: x509:", math.NaN()},
	} {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "tls.crt")
			if tt.data != nil {
				writeFile(t, path, tt.data)
			}
			c, err := certcheck.File(path, tt.opts...)
			if err != nil {
				t.Fatal(err)
			}
			obs, err := testutil.CheckOnce(c, checkTimeout)
			if got := probes.StatusOf(err); got != tt.status {
				t.Errorf("status: got %s (%v), want %s", got, err, tt.status)
			}
			if tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)) {
				t.Errorf("error: got %v, want it to contain %q", err, tt.want)
			}
			got, ok := testutil.Observed(obs, "expiresIn")
			if math.IsNaN(tt.expiresIn) && ok || !math.IsNaN(tt.expiresIn) && (!ok || math.Abs(got-tt.expiresIn) > dayTolerance) {
				t.Errorf("expiresIn: got %v (observed %t), want %v days", got, ok, tt.expiresIn)
			}
		})
	}
}

// A certificate rotated on disk is seen at the next check, whichever way it
// goes; a file that disappears fails, and passes again when it is back.
func TestFileRotated(t *testing.T) {
	ca := newCA(t, "test root")
	now := time.Now()
	path := filepath.Join(t.TempDir(), "tls.crt")
	c, err := certcheck.File(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, step := range []struct {
		name      string
		data      []byte // nil: remove the file
		status    probes.Status
		expiresIn float64
	}{
		{"expiring", ca.issue(t, now.Add(-80*day), now.Add(2*day)).pem(t, false), probes.Warn, 2},
		{"renewed", ca.issue(t, now.Add(-time.Hour), now.Add(90*day)).pem(t, false), probes.Pass, 90},
		{"removed", nil, probes.Fail, 0},
		{"back, expired", ca.issue(t, now.Add(-90*day), now.Add(-day)).pem(t, false), probes.Fail, -1},
		{"renewed again", ca.issue(t, now.Add(-time.Hour), now.Add(60*day)).pem(t, false), probes.Pass, 60},
	} {
		if step.data == nil {
			if err := os.Remove(path); err != nil {
				t.Fatal(err)
			}
		} else {
			writeFile(t, path, step.data)
		}
		obs, err := testutil.CheckOnce(c, checkTimeout)
		if got := probes.StatusOf(err); got != step.status {
			t.Errorf("%s: got %s (%v), want %s", step.name, got, err, step.status)
		}
		if got, ok := testutil.Observed(obs, "expiresIn"); step.data != nil && (!ok || math.Abs(got-step.expiresIn) > dayTolerance) {
			t.Errorf("%s: expiresIn: got %v (observed %t), want %v", step.name, got, ok, step.expiresIn)
		}
		if step.data == nil && !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s: got %v, want ErrNotExist", step.name, err)
		}
	}
}

func TestNewRejectsBadInput(t *testing.T) {
	for _, tt := range []struct {
		name string
		new  func() error
		want string
	}{
		{"Endpoint without port", func() error { _, err := certcheck.Endpoint("localhost"); return err }, `certcheck: Endpoint("localhost"): want host:port`},
		{"File without path", func() error { _, err := certcheck.File(""); return err }, `certcheck: File("")`},
		{"negative WarnBefore", func() error { _, err := certcheck.File("x", certcheck.WarnBefore(-time.Hour)); return err }, "certcheck: WarnBefore(-1h0m0s)"},
		{"nil RootCAs", func() error {
			_, err := certcheck.Endpoint("x:443", certcheck.RootCAs((*x509.CertPool)(nil)))
			return err
		}, "RootCAs(nil)"},
		{"empty ServerName", func() error { _, err := certcheck.Endpoint("x:443", certcheck.ServerName("")); return err }, `ServerName("")`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.new(); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %v, want an error naming %q", err, tt.want)
			}
		})
	}
}

// Only the chain that verifies is dated: a server may present more than a
// client uses, such as the cross-signed twin of its root for old clients,
// and that one expiring, or having expired, is no outage while a path to a
// trusted root stands. Of several paths that verify, the one that lasts
// longest counts, as a client that finds it will use it.
func TestVerifiedChainIsDated(t *testing.T) {
	now := time.Now()
	root := newCA(t, "test root")
	old := newCA(t, "old root")
	inter := root.intermediate(t, "test intermediate", now.Add(-day), now.Add(200*day))
	both := root.pool()
	both.AddCert(old.cert)
	expiredCross := root.crossSigned(t, old, now.Add(-400*day), now.Add(-2*day))
	expiringCross := root.crossSigned(t, old, now.Add(-400*day), now.Add(3*day))
	for _, tt := range []struct {
		name      string
		leaf      leaf
		roots     *x509.CertPool
		status    probes.Status
		want      string  // in the error
		expiresIn float64 // days, observed
	}{
		{"an expired cross-signed root beside a valid chain passes", inter.issue(t, now.Add(-day), now.Add(90*day), expiredCross),
			root.pool(), probes.Pass, "", 90},
		{"an expiring cross-signed root beside a longer chain passes", inter.issue(t, now.Add(-day), now.Add(90*day), expiringCross),
			both, probes.Pass, "", 90},
		{"trusted only through an expiring cross-signed root warns", inter.issue(t, now.Add(-day), now.Add(90*day), expiringCross),
			old.pool(), probes.Warn, `certificate "CN=test root" expires in 3.0 days`, 3},
		{"trusted only through an expired cross-signed root fails", inter.issue(t, now.Add(-day), now.Add(90*day), expiredCross),
			old.pool(), probes.Fail, `certificate "CN=test root" expired 2.0 days ago`, -2},
	} {
		t.Run(tt.name, func(t *testing.T) {
			for _, kind := range []string{"Endpoint", "File"} {
				var c *certcheck.Checker
				var err error
				if kind == "Endpoint" {
					c, err = certcheck.Endpoint(serve(t, tt.leaf), certcheck.RootCAs(tt.roots))
				} else {
					path := filepath.Join(t.TempDir(), "tls.crt")
					writeFile(t, path, tt.leaf.pem(t, true))
					c, err = certcheck.File(path, certcheck.RootCAs(tt.roots))
				}
				if err != nil {
					t.Fatal(err)
				}
				obs, err := testutil.CheckOnce(c, checkTimeout)
				if got := probes.StatusOf(err); got != tt.status {
					t.Errorf("%s: status: got %s (%v), want %s", kind, got, err, tt.status)
				}
				if tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)) {
					t.Errorf("%s: error: got %v, want it to contain %q", kind, err, tt.want)
				}
				if got, ok := testutil.Observed(obs, "expiresIn"); !ok || math.Abs(got-tt.expiresIn) > dayTolerance {
					t.Errorf("%s: expiresIn: got %v (observed %t), want %v days", kind, got, ok, tt.expiresIn)
				}
			}
		})
	}
}

// A File checked without RootCAs has nothing to tell the certificates a
// client uses from the others, so every one it holds is dated.
func TestFileWithoutRootsDatesEveryCertificate(t *testing.T) {
	now := time.Now()
	root := newCA(t, "test root")
	old := newCA(t, "old root")
	inter := root.intermediate(t, "test intermediate", now.Add(-day), now.Add(200*day))
	l := inter.issue(t, now.Add(-day), now.Add(90*day), root.crossSigned(t, old, now.Add(-400*day), now.Add(-2*day)))
	path := filepath.Join(t.TempDir(), "tls.crt")
	writeFile(t, path, l.pem(t, false))
	c, err := certcheck.File(path)
	if err != nil {
		t.Fatal(err)
	}
	obs, err := testutil.CheckOnce(c, checkTimeout)
	if want := `certificate "CN=test root" expired 2.0 days ago`; probes.StatusOf(err) != probes.Fail || !strings.Contains(err.Error(), want) {
		t.Errorf("got %v, want a failure containing %q", err, want)
	}
	if got, ok := testutil.Observed(obs, "expiresIn"); !ok || math.Abs(got-(-2)) > dayTolerance {
		t.Errorf("expiresIn: got %v (observed %t), want -2 days", got, ok)
	}
}

// BenchmarkFrozenEndpoint measures how soon an endpoint that accepts and
// never answers is reported failing (ns/op), against the design's target
// of the check's timeout plus 100 ms (ms-past-timeout).
func BenchmarkFrozenEndpoint(b *testing.B) {
	c, err := certcheck.Endpoint(frozen(b))
	if err != nil {
		b.Fatal(err)
	}
	testutil.TimeToFail(b, c, 100*time.Millisecond)
}
