package grpchealth_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/probekit/probes"
	"github.com/probekit/probes/grpchealth"
	"github.com/probekit/probes/internal/testenv/testutil"
	"github.com/probekit/probes/liveness"
	"github.com/probekit/probes/readiness"
	"github.com/probekit/probes/server"
	"github.com/probekit/probes/startup"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const (
	serving    = healthpb.HealthCheckResponse_SERVING
	notServing = healthpb.HealthCheckResponse_NOT_SERVING
	unknown    = healthpb.HealthCheckResponse_SERVICE_UNKNOWN
)

// service is a gRPC-only service: a lifecycle with the three gates, a
// warm-up task that waits for load, and the health service, run by
// server.Run on loopback.
type service struct {
	lc     *probes.Lifecycle
	warm   *startup.Gate
	load   chan struct{} // a send lets one warm-up (or Rewarm) finish
	client healthpb.HealthClient
	cancel context.CancelFunc
	done   chan error
}

func start(t *testing.T) *service {
	t.Helper()
	s := &service{lc: probes.NewLifecycle(), load: make(chan struct{}), done: make(chan error, 1)}
	var err error
	if s.warm, err = startup.New(s.lc); err != nil {
		t.Fatal(err)
	}
	if err := s.warm.Task("cache", func(ctx context.Context, p *startup.Progress) error {
		select {
		case <-s.load:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := liveness.New(s.lc); err != nil {
		t.Fatal(err)
	}
	if _, err := readiness.New(s.lc); err != nil {
		t.Fatal(err)
	}
	h, err := grpchealth.New(s.lc, grpchealth.Services("items.v1.Items"))
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer()
	h.Register(gs)
	ln := testutil.Listen(t)
	peer, err := grpchealth.Serving(gs, ln, h)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := server.New(nil, s.lc, server.Also("grpc", peer),
		server.DrainDelay(300*time.Millisecond), server.ShutdownTimeout(2*time.Second), server.Signals())
	if err != nil {
		t.Fatal(err)
	}
	conn, err := grpc.NewClient(ln.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	s.client = healthpb.NewHealthClient(conn)
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	go func() { s.done <- srv.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-s.done
	})
	return s
}

func (s *service) check(t *testing.T, name string) (healthpb.HealthCheckResponse_ServingStatus, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	res, err := s.client.Check(ctx, &healthpb.HealthCheckRequest{Service: name})
	return res.GetStatus(), err
}

// want checks every service's status through Check.
func (s *service) want(t *testing.T, when string, want map[string]healthpb.HealthCheckResponse_ServingStatus) {
	t.Helper()
	for name, w := range want {
		got, err := s.check(t, name)
		if err != nil || got != w {
			t.Errorf("%s: Check(%q) = %s, %v; want %s", when, name, got, err, w)
		}
	}
}

// watcher records what one Watch stream receives.
type watcher struct {
	mu   sync.Mutex
	got  []healthpb.HealthCheckResponse_ServingStatus
	at   []time.Time
	err  error
	done chan struct{}
}

func (s *service) watch(t *testing.T, name string) *watcher {
	t.Helper()
	stream, err := s.client.Watch(context.Background(), &healthpb.HealthCheckRequest{Service: name})
	if err != nil {
		t.Fatal(err)
	}
	w := &watcher{done: make(chan struct{})}
	go func() {
		defer close(w.done)
		for {
			res, err := stream.Recv()
			w.mu.Lock()
			if err != nil {
				w.err = err
				w.mu.Unlock()
				return
			}
			w.got = append(w.got, res.GetStatus())
			w.at = append(w.at, time.Now())
			w.mu.Unlock()
		}
	}()
	return w
}

func (w *watcher) last() (healthpb.HealthCheckResponse_ServingStatus, int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.got) == 0 {
		return healthpb.HealthCheckResponse_UNKNOWN, 0
	}
	return w.got[len(w.got)-1], len(w.got)
}

func (w *watcher) waitFor(t *testing.T, what string, st healthpb.HealthCheckResponse_ServingStatus) {
	t.Helper()
	testutil.Eventually(t, what, func() bool { got, _ := w.last(); return got == st })
}

// Check and Watch through a whole life: warming, ready, a Rewarm,
// draining, stopped; unknown names; the drain pushed to Watch at once.
func TestWholeLife(t *testing.T) {
	s := start(t)
	testutil.Eventually(t, "warming", func() bool { return s.lc.Phase() == probes.Warming })
	s.want(t, "warming", map[string]healthpb.HealthCheckResponse_ServingStatus{
		"": notServing, "readiness": notServing, "items.v1.Items": notServing, "liveness": serving, "startup": notServing,
	})
	if _, err := s.check(t, "nope"); status.Code(err) != codes.NotFound {
		t.Errorf("Check of an unknown name: %v, want NotFound", err)
	}
	whole, live, start, nope := s.watch(t, ""), s.watch(t, "liveness"), s.watch(t, "startup"), s.watch(t, "nope")
	whole.waitFor(t, "Watch(\"\") hears the present status", notServing)
	nope.waitFor(t, "Watch of an unknown name hears SERVICE_UNKNOWN", unknown)

	s.load <- struct{}{}
	whole.waitFor(t, "Watch hears ready", serving)
	start.waitFor(t, "startup passes", serving)
	s.want(t, "ready", map[string]healthpb.HealthCheckResponse_ServingStatus{
		"": serving, "readiness": serving, "items.v1.Items": serving, "liveness": serving, "startup": serving,
	})

	// A Rewarm: readiness fails and passes again; startup stays passed.
	rewarmed := make(chan error, 1)
	go func() { rewarmed <- s.warm.Rewarm(context.Background(), "test") }()
	whole.waitFor(t, "Watch hears the Rewarm", notServing)
	s.want(t, "rewarming", map[string]healthpb.HealthCheckResponse_ServingStatus{"": notServing, "liveness": serving, "startup": serving})
	s.load <- struct{}{}
	if err := <-rewarmed; err != nil {
		t.Fatal(err)
	}
	whole.waitFor(t, "ready again after the Rewarm", serving)

	// The drain: every Watch of readiness hears NOT_SERVING at once.
	_, before := whole.last()
	drained := time.Now() // an upper bound: Run reacts to the cancel first
	s.cancel()
	whole.waitFor(t, "Watch hears the drain", notServing)
	whole.mu.Lock()
	lag := whole.at[before].Sub(drained)
	whole.mu.Unlock()
	t.Logf("the drain reached Watch(\"\") %s after the cancel that started it", lag)
	if lag > 50*time.Millisecond {
		t.Errorf("the drain reached Watch %s after the cancel that started it", lag)
	}
	s.want(t, "draining", map[string]healthpb.HealthCheckResponse_ServingStatus{
		"": notServing, "items.v1.Items": notServing, "liveness": serving, "startup": serving,
	})

	if err := <-s.done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	s.done <- nil // for the cleanup
	for name, w := range map[string]*watcher{"": whole, "liveness": live, "startup": start, "nope": nope} {
		<-w.done
		if status.Code(w.err) != codes.Unavailable {
			t.Errorf("Watch(%q) ended with %v, want Unavailable", name, w.err)
		}
	}
	if got, _ := whole.last(); got != notServing {
		t.Errorf("Watch(\"\") last heard %s", got)
	}
	if got, n := nope.last(); got != unknown || n != 1 {
		t.Errorf("Watch of an unknown name heard %d messages, the last %s; want SERVICE_UNKNOWN once", n, got)
	}
}

func TestBroken(t *testing.T) {
	s := start(t)
	s.load <- struct{}{}
	w := s.watch(t, "liveness")
	w.waitFor(t, "liveness serving", serving)
	if err := s.lc.MarkBroken(errors.New("wedged")); err != nil {
		t.Fatal(err)
	}
	w.waitFor(t, "liveness not serving once broken", notServing)
	if err := <-s.done; err == nil {
		t.Error("Run returned nil for a broken lifecycle")
	}
	s.done <- nil
	<-w.done
}

// Many Watch streams while the service warms, rewarms and drains: every
// stream ends on the status Check gives, and the race detector sees no
// race.
func TestManyWatchers(t *testing.T) {
	s := start(t)
	var ws []*watcher
	for i := range 40 {
		ws = append(ws, s.watch(t, []string{"", "readiness", "liveness", "startup"}[i%4]))
	}
	s.load <- struct{}{}
	testutil.Eventually(t, "ready", func() bool { return s.lc.Phase() == probes.Ready })
	for range 20 {
		rewarmed := make(chan error, 1)
		go func() { rewarmed <- s.warm.Rewarm(context.Background(), "again") }()
		s.load <- struct{}{}
		if err := <-rewarmed; err != nil {
			t.Fatal(err)
		}
	}
	for i, w := range ws {
		name := []string{"", "readiness", "liveness", "startup"}[i%4]
		want, err := s.check(t, name)
		if err != nil {
			t.Fatal(err)
		}
		w.waitFor(t, fmt.Sprintf("watcher %d of %q settles on %s", i, name, want), want)
	}
	s.cancel()
	<-s.done
	s.done <- nil
	for _, w := range ws {
		<-w.done
	}
}

func TestNewRejectsBadInput(t *testing.T) {
	if _, err := grpchealth.New(nil); err == nil {
		t.Error("New(nil) succeeded")
	}
	lc := probes.NewLifecycle()
	for _, names := range [][]string{{""}, {"liveness"}, {"a", "a"}} {
		_, err := grpchealth.New(lc, grpchealth.Services(names...))
		if err == nil || !strings.Contains(err.Error(), "Services") {
			t.Errorf("Services(%q): %v, want an error naming the option", names, err)
		}
	}
	h, err := grpchealth.New(lc)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	list := func() map[string]healthpb.HealthCheckResponse_ServingStatus {
		res, err := h.List(context.Background(), &healthpb.HealthListRequest{})
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]healthpb.HealthCheckResponse_ServingStatus{}
		for n, st := range res.GetStatuses() {
			out[n] = st.GetStatus()
		}
		return out
	}
	// Before any gate: the phase alone. Liveness passes in Cold.
	if got := list(); len(got) != 4 || got["readiness"] != notServing || got["liveness"] != serving || got["startup"] != notServing {
		t.Errorf("List of a cold service without gates: %v", got)
	}
	// A readiness gate built after the service, with a check that fails
	// once ready: the service follows it.
	ready, err := readiness.New(lc)
	if err != nil {
		t.Fatal(err)
	}
	if err := ready.Add("db", probes.CheckFunc(func(context.Context) error { return errors.New("down") }), probes.Local()); err != nil {
		t.Fatal(err)
	}
	testutil.Background(t, lc.Run)
	testutil.Ready(t, lc)
	testutil.Eventually(t, "the db check failed", func() bool { c, _ := ready.Report().Check("db"); return !c.Time.IsZero() })
	if got := list(); got["readiness"] != notServing || got[""] != notServing || got["startup"] != serving {
		t.Errorf("List once ready with a readiness gate built late and failing: %v", got)
	}
}

// A cordon makes readiness (and the services that follow it) NOT_SERVING
// through Check and Watch, while liveness and startup stay SERVING; the
// uncordon brings it back.
func TestCordonNotServing(t *testing.T) {
	s := start(t)
	s.load <- struct{}{}
	whole := s.watch(t, "")
	whole.waitFor(t, "ready", serving)
	if _, err := s.lc.Cordon("disk swap", time.Hour); err != nil {
		t.Fatal(err)
	}
	whole.waitFor(t, "Watch hears the cordon", notServing)
	s.want(t, "cordoned", map[string]healthpb.HealthCheckResponse_ServingStatus{
		"": notServing, "readiness": notServing, "items.v1.Items": notServing, "liveness": serving, "startup": serving,
	})
	if _, err := s.lc.Uncordon(); err != nil {
		t.Fatal(err)
	}
	whole.waitFor(t, "Watch hears the uncordon", serving)
	s.want(t, "uncordoned", map[string]healthpb.HealthCheckResponse_ServingStatus{"": serving, "readiness": serving})
}
