package probes_test

import (
	"context"
	"net"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/probekit/probes"
	"github.com/probekit/probes/grpchealth"
	"github.com/probekit/probes/internal/testenv/testutil"
	"github.com/probekit/probes/liveness"
	"github.com/probekit/probes/metrics"
	"github.com/probekit/probes/readiness"
	"github.com/probekit/probes/server"
	"github.com/probekit/probes/startup"
	"github.com/probekit/probes/systemd"
)

// within runs op and fails the test if it has not returned within the
// shared deadline: a deadlock shows as a failure, not a hung test.
func within(t *testing.T, what string, op func() error) {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- op() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	case <-time.After(testutil.Deadline):
		t.Fatalf("%s did not return within %s: something calls out under a lock", what, testutil.Deadline)
	}
}

// No package calls out while it holds its own lock: with every kind of
// subscriber in place (HTTP handlers, gRPC health, metrics, systemd, the
// server's log watcher), adding tasks and checks returns, before Run and
// while it runs, and every surface keeps answering.
func TestAddsWithEverySubscriber(t *testing.T) {
	lc := probes.NewLifecycle()
	warm, err := startup.New(lc)
	if err != nil {
		t.Fatal(err)
	}
	live, err := liveness.New(lc)
	if err != nil {
		t.Fatal(err)
	}
	ready, err := readiness.New(lc)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	if _, err := server.Register(mux, lc); err != nil {
		t.Fatal(err)
	}
	health, err := grpchealth.New(lc)
	if err != nil {
		t.Fatal(err)
	}
	defer health.Close()
	reg := prometheus.NewRegistry()
	if _, err := metrics.Register(reg, lc); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(t.TempDir(), "notify")
	notifyLn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer notifyLn.Close()
	env := map[string]string{"NOTIFY_SOCKET": sock}
	if _, err := systemd.New(lc, systemd.Environment(func(k string) string { return env[k] })); err != nil {
		t.Fatal(err)
	}
	pass := probes.CheckFunc(func(context.Context) error { return nil })
	task := func(context.Context, *startup.Progress) error { return nil }

	within(t, "Task before Run", func() error { return warm.Task("cache", task) })
	within(t, "liveness Add before Run", func() error { return live.Add("self", pass, probes.Every(time.Millisecond)) })
	within(t, "readiness Add before Run", func() error { return ready.Add("db", pass, probes.Every(time.Millisecond)) })

	ln := testutil.Listen(t)
	base := "http://" + ln.Addr().String()
	srv, err := server.New(&http.Server{Handler: mux}, lc, server.Listener(ln), server.Logger(zap.NewNop()),
		server.DrainDelay(0), server.Signals())
	if err != nil {
		t.Fatal(err)
	}
	testutil.Background(t, srv.Run)
	testutil.Eventually(t, "ready", func() bool { return lc.Phase() == probes.Ready })

	within(t, "Task while running", func() error { return warm.Task("index", task) })
	within(t, "liveness Add while running", func() error { return live.Add("self2", pass, probes.Every(time.Millisecond)) })
	within(t, "readiness Add while running", func() error { return ready.Add("db2", pass, probes.Every(time.Millisecond)) })
	within(t, "Rewarm", func() error { return warm.Rewarm(context.Background(), "with every subscriber") })
	within(t, "a scrape", func() error { _, err := reg.Gather(); return err })
	testutil.Eventually(t, "readiness answering with the new checks", func() bool {
		return probe(t, base+"/readyz/db2").code == 200 && probe(t, base+"/startupz/index").code == 200
	})
}
