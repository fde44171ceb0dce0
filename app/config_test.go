package app_test

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/probekit/probes"
	"github.com/probekit/probes/app"
	"github.com/probekit/probes/deployspec"
	"github.com/probekit/probes/internal/testenv/testutil"
	"github.com/probekit/probes/liveness"
)

// TestConfigErrors: every field that no service can have is reported at
// once, each by its name.
func TestConfigErrors(t *testing.T) {
	_, err := app.New(app.Config{
		Drain: -time.Second, DrainMin: time.Second, ShutdownTimeout: -1,
		DrainProbes: 2, DrainQuiet: time.Second,
		Addr: "8080", AgentAddr: "localhost",
		Logger: zap.NewNop(), Slog: nil,
		ProbesOnAddr: true, ProbeAddr: ":9000",
	})
	if err == nil {
		t.Fatal("no error")
	}
	for _, field := range []string{"Config.Drain:", "Config.ShutdownTimeout:", "Config.DrainQuiet:", "Config.Addr:", "Config.AgentAddr:", "Config.ProbesOnAddr:"} {
		if !strings.Contains(err.Error(), field) {
			t.Errorf("error lacks %s:\n%v", field, err)
		}
	}
	for _, tc := range []struct {
		cfg  app.Config
		want string
	}{
		{app.Config{DrainMin: time.Second}, "Config.DrainMin: 1s without DrainQuiet"},
		{app.Config{Handler: http.NotFoundHandler(), Addr: ":9000", ProbeAddr: ":9000"}, "Config.ProbeAddr: \":9000\" is Addr too; to serve the probes on Addr, set ProbesOnAddr"},
		{app.Config{Logger: zap.NewNop(), Slog: slogDiscard()}, "Config.Slog: and Logger both set"},
		{app.Config{ProbesOnAddr: true}, "Config.ProbesOnAddr: without a Handler"},
		{app.Config{Parts: []app.Part{nil}}, "Config.Parts[0] is nil"},
		{app.Config{Parts: []app.Part{app.Task("bad name!", nil)}}, "Config.Parts[0]"},
		{app.Config{Parts: []app.Part{app.Worker("w", 0, func(context.Context, *liveness.Heartbeat) error { return nil })}}, `Worker("w"): within is 0s`},
		{app.Config{Parts: []app.Part{app.Worker("w", time.Second, nil)}}, `Worker("w"): fn is nil`},
		{app.Config{Parts: []app.Part{app.PartFunc(func(*app.App) error { return errors.New("no") })}}, "Config.Parts[0] (app.PartFunc): no"},
	} {
		if _, err := app.New(tc.cfg); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("error %v, want one containing %q", err, tc.want)
		}
	}
}

// TestRunBindFails: a listener that cannot be bound fails Run at once,
// naming its field, and nothing runs.
func TestRunBindFails(t *testing.T) {
	taken := testutil.Listen(t)
	for _, tc := range []struct {
		cfg  app.Config
		want string
	}{
		{app.Config{Handler: http.NotFoundHandler(), Addr: taken.Addr().String(), ProbeAddr: testutil.FreeAddr(t)}, "app: Config.Addr: listen tcp"},
		{app.Config{Handler: http.NotFoundHandler(), Addr: testutil.FreeAddr(t), ProbeAddr: taken.Addr().String()}, "app: Config.ProbeAddr: listen tcp"},
		{app.Config{ProbeAddr: testutil.FreeAddr(t), AdminSocket: filepath.Join(t.TempDir(), "no", "such", "dir", "admin.sock")}, "its directory does not exist; create it first"},
		{app.Config{ProbeAddr: testutil.FreeAddr(t), AgentAddr: taken.Addr().String()}, "Config.AgentAddr"},
	} {
		a, err := app.New(tc.cfg)
		if err != nil {
			t.Fatal(err)
		}
		if err := a.Run(context.Background()); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Run: %v, want an error containing %q", err, tc.want)
		}
		if p := a.Lifecycle.Phase(); p != probes.Cold {
			t.Errorf("phase %s after a failed bind, want cold", p)
		}
	}
}

// TestProbesOnAddr: the probes share the application's listener, ahead of
// the handler; a worker with no HTTP API is probed on its own listener.
func TestProbesOnAddr(t *testing.T) {
	addr := testutil.FreeAddr(t)
	a, err := app.New(app.Config{Name: "shop", Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(418) }),
		Addr: addr, ProbesOnAddr: true, Drain: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	testutil.Eventually(t, "readyz on the application's address", func() bool { return status(t, "http://"+addr+"/readyz", "") == 200 })
	if code := status(t, "http://"+addr+"/anything", ""); code != 418 {
		t.Errorf("the application's route: %d, want its 418", code)
	}
	if code := status(t, "http://"+addr+"/history", ""); code != 200 {
		t.Errorf("/history on the application's address: %d", code)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}

	probeAddr := testutil.FreeAddr(t)
	w, err := app.New(app.Config{ProbeAddr: probeAddr, Drain: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel = context.WithCancel(context.Background())
	go func() { done <- w.Run(ctx) }()
	testutil.Eventually(t, "a worker's readyz", func() bool { return status(t, "http://"+probeAddr+"/readyz", "") == 200 })
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// TestDefaults: the zero Config's identity and timings.
func TestDefaults(t *testing.T) {
	t.Setenv("POD_NAME", "")
	a, err := app.New(app.Config{})
	if err != nil {
		t.Fatal(err)
	}
	id := a.Lifecycle.Identity()
	if id.Service == "" || id.Instance == "" {
		t.Errorf("identity %+v: want the executable's name and the host's", id)
	}
	tm := a.Server().Timings()
	if tm.Drain != 5*time.Second || tm.ShutdownTimeout != 15*time.Second {
		t.Errorf("timings %+v, want the library's defaults", tm)
	}
	if a.Startup.Deadline() != 5*time.Minute {
		t.Errorf("warm-up deadline %s, want 5m", a.Startup.Deadline())
	}
	none, err := app.New(app.Config{Drain: app.NoDrain})
	if err != nil {
		t.Fatal(err)
	}
	if d := none.Server().Timings().Drain; d != 0 {
		t.Errorf("NoDrain: drain %s, want none", d)
	}
	if _, err := app.New(app.Config{Drain: app.NoDrain, DrainQuiet: time.Second}); err == nil || !strings.Contains(err.Error(), "Config.Drain: NoDrain with DrainQuiet") {
		t.Errorf("NoDrain with DrainQuiet: %v", err)
	}
}

// TestWorkerFailureStopsTheService: a worker whose loop returns an error
// stops the service, and Run says why.
func TestWorkerFailureStopsTheService(t *testing.T) {
	a, err := app.New(app.Config{ProbeAddr: testutil.FreeAddr(t), Drain: time.Millisecond, Parts: []app.Part{
		app.Worker("sync", time.Second, func(context.Context, *liveness.Heartbeat) error { return errors.New("queue gone") }),
	}})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Run(context.Background()); err == nil || !strings.Contains(err.Error(), "queue gone") {
		t.Errorf("Run: %v, want the worker's error", err)
	}
}

// TestTerminationLog: the service leaves why it stopped at
// Config.TerminationLog, and nothing with NoTerminationLog.
func TestTerminationLog(t *testing.T) {
	path := filepath.Join(t.TempDir(), "termination-log")
	a, err := app.New(app.Config{ProbeAddr: testutil.FreeAddr(t), Drain: time.Millisecond, TerminationLog: path, Parts: []app.Part{
		app.Worker("sync", time.Second, func(context.Context, *liveness.Heartbeat) error { return errors.New("queue gone") }),
	}})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Run(context.Background()); err == nil {
		t.Fatal("Run: nil, want the worker's error")
	}
	msg, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if first, _, _ := strings.Cut(string(msg), "\n"); first != `broken: background work "sync" failed: queue gone` {
		t.Errorf("first line %q, want the worker's failure", first)
	}

	if _, err := app.New(app.Config{TerminationLog: "a\x00b"}); err == nil || !strings.Contains(err.Error(), "Config.TerminationLog:") {
		t.Errorf("a NUL in the path: %v, want an error naming Config.TerminationLog", err)
	}
	dir := t.TempDir()
	t.Chdir(dir)
	none, err := app.New(app.Config{ProbeAddr: testutil.FreeAddr(t), Drain: app.NoDrain, TerminationLog: app.NoTerminationLog})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := none.Run(ctx); err != nil {
		t.Fatal(err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("NoTerminationLog wrote %v", entries)
	}
}

func slogDiscard() *slog.Logger { return slog.New(slog.DiscardHandler) }

// TestDeploySpec: the spec is the service as it is: its deadline, its
// server's real stop with the hooks the parts added, its addresses; and
// deployspec computes a plan from it whose grace period covers that stop.
func TestDeploySpec(t *testing.T) {
	a, err := app.New(app.Config{
		WarmupDeadline: 2 * time.Minute, Drain: 20 * time.Second, ShutdownTimeout: 10 * time.Second, ProbeAddr: "0.0.0.0:9081",
		Parts: []app.Part{app.Check("db", &ownedCheck{})}, // its client closed within 5s after the server
	})
	if err != nil {
		t.Fatal(err)
	}
	s := a.DeploySpec()
	if s.WarmupDeadline != 2*time.Minute || s.Stop.Drain != 20*time.Second || s.Stop.ShutdownTimeout != 10*time.Second ||
		s.Stop.AfterClose != app.DefaultCloseTimeout || s.ProbeAddr != "0.0.0.0:9081" {
		t.Errorf("spec %+v", s)
	}
	p, err := deployspec.Compute(s, false)
	if err != nil {
		t.Fatal(err)
	}
	if got, least := time.Duration(p.TerminationGracePeriodSeconds.Value)*time.Second, s.Stop.Stop(); got < least {
		t.Errorf("grace period %s below the real stop %s", got, least)
	}
}

// TestStateDir: with a state directory, the service after a restart lists
// the one before, stopped for the reason its stop began; a state directory
// that cannot be one fails New, naming the field; and the Deployment
// mounts an emptyDir there.
func TestStateDir(t *testing.T) {
	dir := t.TempDir()
	run := func() *app.App {
		t.Helper()
		a, err := app.New(app.Config{Name: "shop", ProbeAddr: testutil.FreeAddr(t), Drain: app.NoDrain, StateDir: dir})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- a.Run(ctx) }()
		testutil.Eventually(t, "ready", func() bool { return a.Lifecycle.Phase() == probes.Ready })
		cancel()
		if err := <-done; err != nil {
			t.Fatalf("Run: %v", err)
		}
		return a
	}
	if a := run(); a.History.Restarts() != 0 {
		t.Errorf("first run: %d restarts", a.History.Restarts())
	}
	a := run()
	prev := a.History.Previous()
	if a.History.Restarts() != 1 || len(prev) != 1 || prev[0].Ended != probes.EndedStopped || prev[0].Cause != "stopped: the context was cancelled: the service's own stop" ||
		prev[0].Identity.Service != "shop" {
		t.Errorf("second run: %d restarts, %+v; want the first, stopped because its context was done", a.History.Restarts(), prev)
	}
	if p := a.Lifecycle.Past(); p.Restarts != 1 || p.Ended != probes.EndedStopped {
		t.Errorf("the lifecycle's past: %+v", p)
	}
	if _, err := app.New(app.Config{StateDir: filepath.Join(dir, "nope")}); err == nil || !strings.Contains(err.Error(), "Config.StateDir") {
		t.Errorf("a missing state directory: %v, want an error naming Config.StateDir", err)
	}

	b, err := app.New(app.Config{Addr: ":8080", ProbeAddr: ":8081", StateDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer b.History.Close()
	defer b.Page.Close()
	for _, tt := range []struct{ given, want string }{{"", dir}, {"/var/lib/shop", "/var/lib/shop"}} {
		y, err := b.Deployment(deployspec.Deployment{Name: "shop", Image: "shop:1", StateDir: tt.given})
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(y, "mountPath: "+tt.want+"\n") || !strings.Contains(y, "emptyDir:") {
			t.Errorf("StateDir %q: the Deployment lacks the emptyDir at %s:\n%s", tt.given, tt.want, y)
		}
	}
}
