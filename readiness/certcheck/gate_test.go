package certcheck_test

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/probekit/probes"
	"github.com/probekit/probes/internal/testenv/testutil"
	"github.com/probekit/probes/readiness/certcheck"
)

// Through a running gate, a certificate file rotated on disk is seen at a
// following check, both ways: an expired one fails readiness (the
// check is the instance's own, Local), a renewed one passes it again.
func TestGateSeesRotation(t *testing.T) {
	const interval = 100 * time.Millisecond
	ca := newCA(t, "test root")
	now := time.Now()
	path := filepath.Join(t.TempDir(), "tls.crt")
	writeFile(t, path, ca.issue(t, now.Add(-day), now.Add(90*day)).pem(t, false))
	c, err := certcheck.File(path)
	if err != nil {
		t.Fatal(err)
	}
	ready := testutil.ReadyGate(t, "tls-cert", c, probes.Every(interval), probes.Local())
	testutil.WaitStatus(t, ready, "start", probes.Pass, 5*time.Second)

	// Generous bounds, for a loaded machine: the times are logged.
	writeFile(t, path, ca.issue(t, now.Add(-90*day), now.Add(-time.Hour)).pem(t, false))
	expired := testutil.WaitStatus(t, ready, "expired", probes.Fail, testutil.Deadline)
	writeFile(t, path, ca.issue(t, now.Add(-time.Hour), now.Add(90*day)).pem(t, false))
	renewed := testutil.WaitStatus(t, ready, "renewed", probes.Pass, testutil.Deadline)
	t.Logf("interval %s: an expired certificate written over the file failed readiness after %s, a renewed one passed it after %s",
		interval, expired.Round(time.Millisecond), renewed.Round(time.Millisecond))
}
