package grpccheck_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/tap"

	"github.com/probekit/probes"
	"github.com/probekit/probes/grpchealth"
	"github.com/probekit/probes/internal/testenv/testutil"
	"github.com/probekit/probes/readiness"
	"github.com/probekit/probes/readiness/grpccheck"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// checkTimeout is the checks' timeout in the tests.
const checkTimeout = 500 * time.Millisecond

// returnsWithin bounds how long a check against a server that does not
// answer may take to return in a test: generous, for a loaded machine. How
// soon it fails is measured by the BenchmarkFrozen benchmarks.
const returnsWithin = 10 * checkTimeout

// serve runs gs on a loopback port until the test ends (or stop is
// called), and returns its address and a stop function.
func serve(t testing.TB, gs *grpc.Server) (addr string, stop func()) {
	t.Helper()
	ln := testutil.Listen(t)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = gs.Serve(ln)
	}()
	stop = func() {
		gs.Stop()
		<-done
	}
	t.Cleanup(stop) // Stop twice is harmless
	return ln.Addr().String(), stop
}

// dial opens a client connection to addr, closed when the test ends.
func dial(t testing.TB, addr string) *grpc.ClientConn {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// fixed is a health service that answers every Check the same way.
type fixed struct {
	healthpb.UnimplementedHealthServer
	res *healthpb.HealthCheckResponse
	err error
}

func (f fixed) Check(context.Context, *healthpb.HealthCheckRequest) (*healthpb.HealthCheckResponse, error) {
	return f.res, f.err
}

// hung is a health service whose Check answers only when the caller gives
// up, as a server does whose health handler waits on a lock.
type hung struct {
	healthpb.UnimplementedHealthServer
}

func (hung) Check(ctx context.Context, _ *healthpb.HealthCheckRequest) (*healthpb.HealthCheckResponse, error) {
	<-ctx.Done()
	return nil, ctx.Err()
}

func withHealth(register func(*grpc.Server)) *grpc.Server {
	gs := grpc.NewServer()
	register(gs)
	return gs
}

// standard is grpc-go's own health server knowing "items" (SERVING) and
// "search" (NOT_SERVING).
func standard() *grpc.Server {
	return withHealth(func(gs *grpc.Server) {
		hs := health.NewServer()
		hs.SetServingStatus("items", healthpb.HealthCheckResponse_SERVING)
		hs.SetServingStatus("search", healthpb.HealthCheckResponse_NOT_SERVING)
		healthpb.RegisterHealthServer(gs, hs)
	})
}

func answering(res *healthpb.HealthCheckResponse, err error) *grpc.Server {
	return withHealth(func(gs *grpc.Server) { healthpb.RegisterHealthServer(gs, fixed{res: res, err: err}) })
}

// ours is the project's own health service over a lifecycle in phase
// ready or drained.
func ours(t *testing.T, drained bool) *grpc.Server {
	t.Helper()
	lc := probes.NewLifecycle()
	if _, err := readiness.New(lc); err != nil {
		t.Fatal(err)
	}
	testutil.Ready(t, lc)
	if drained {
		if err := lc.Drain("test"); err != nil {
			t.Fatal(err)
		}
	}
	h, err := grpchealth.New(lc, grpchealth.Services("items.v1.Items"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Close)
	return withHealth(h.Register)
}

// limited is grpc-go's health server behind a rate limiter refusing every
// call, as grpc.InTapHandle's documentation has one do: with
// ResourceExhausted.
func limited() *grpc.Server {
	gs := grpc.NewServer(grpc.InTapHandle(func(ctx context.Context, _ *tap.Info) (context.Context, error) {
		return ctx, status.Error(codes.ResourceExhausted, "rate limit exceeded")
	}))
	hs := health.NewServer()
	hs.SetServingStatus("items", healthpb.HealthCheckResponse_SERVING)
	healthpb.RegisterHealthServer(gs, hs)
	return gs
}

func TestAnswers(t *testing.T) {
	for _, tt := range []struct {
		name    string
		server  func(t *testing.T) *grpc.Server
		service string
		opts    []grpccheck.Option
		status  probes.Status
		want    string // in the error
	}{
		{"SERVING passes", func(*testing.T) *grpc.Server { return standard() }, "items", nil, probes.Pass, ""},
		{"the whole server passes", func(*testing.T) *grpc.Server { return standard() }, "", nil, probes.Pass, ""},
		{"NOT_SERVING fails", func(*testing.T) *grpc.Server { return standard() }, "search", nil, probes.Fail,
			`health of service "search": NOT_SERVING`},
		{"unknown to grpc-go's server fails", func(*testing.T) *grpc.Server { return standard() }, "billing", nil, probes.Fail,
			`health of service "billing": SERVICE_UNKNOWN (NotFound): the server does not know it`},
		{"SERVICE_UNKNOWN fails", func(*testing.T) *grpc.Server {
			return answering(&healthpb.HealthCheckResponse{Status: healthpb.HealthCheckResponse_SERVICE_UNKNOWN}, nil)
		}, "billing", nil, probes.Fail, `health of service "billing": SERVICE_UNKNOWN: the server does not know it`},
		{"UNKNOWN fails", func(*testing.T) *grpc.Server {
			return answering(&healthpb.HealthCheckResponse{Status: healthpb.HealthCheckResponse_UNKNOWN}, nil)
		}, "billing", nil, probes.Fail, `health of service "billing": UNKNOWN`},
		{"no health service fails", func(*testing.T) *grpc.Server { return grpc.NewServer() }, "items", nil, probes.Fail,
			`health of service "items": the server has no grpc.health.v1 service`},
		{"another error fails", func(*testing.T) *grpc.Server {
			return answering(nil, status.Error(codes.PermissionDenied, "who are you"))
		}, "items", nil, probes.Fail, "Health/Check: rpc error: code = PermissionDenied desc = who are you"},
		{"ResourceExhausted from a rate limiter warns", func(*testing.T) *grpc.Server { return limited() }, "items", nil, probes.Warn,
			`health of service "items": the server is at a limit (ResourceExhausted): rpc error: code = ResourceExhausted desc = rate limit exceeded`},
		{"ResourceExhausted from the health handler warns", func(*testing.T) *grpc.Server {
			return answering(nil, status.Error(codes.ResourceExhausted, "too many calls"))
		}, "items", nil, probes.Warn, "at a limit (ResourceExhausted)"},
		{"ResourceExhausted, Exhausted(Fail), fails", func(*testing.T) *grpc.Server { return limited() }, "items",
			[]grpccheck.Option{grpccheck.Exhausted(probes.Fail)}, probes.Fail, "at a limit (ResourceExhausted)"},
		{"a ready service of ours passes", func(t *testing.T) *grpc.Server { return ours(t, false) }, "items.v1.Items", nil, probes.Pass, ""},
		{"a draining service of ours fails", func(t *testing.T) *grpc.Server { return ours(t, true) }, "readiness", nil, probes.Fail,
			`health of service "readiness": NOT_SERVING`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			addr, _ := serve(t, tt.server(t))
			c, err := grpccheck.New(dial(t, addr), tt.service, tt.opts...)
			if err != nil {
				t.Fatal(err)
			}
			_, err = testutil.CheckOnce(c, checkTimeout)
			if got := probes.StatusOf(err); got != tt.status {
				t.Errorf("status: got %s (%v), want %s", got, err, tt.status)
			}
			if tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)) {
				t.Errorf("error: got %v, want it to contain %q", err, tt.want)
			}
		})
	}
}

// frozen returns the address of a listener that never accepts, until the
// test ends: the kernel completes the handshake of a connection queued
// there, and the client then waits for a first word that never comes.
func frozen(t testing.TB) string { return testutil.Listen(t).Addr().String() }

// newChecker returns a Checker of "items" over a connection of its own to
// addr.
func newChecker(t testing.TB, addr string) *grpccheck.Checker {
	t.Helper()
	c, err := grpccheck.New(dial(t, addr), "items")
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// A server that stops is reported at the next check, without waiting for
// the timeout; one that accepts and never speaks at the check's timeout,
// and the check returns rather than hangs.
func TestDoesNotAnswer(t *testing.T) {
	for _, tt := range []struct {
		name    string
		checker func(t *testing.T) *grpccheck.Checker
		want    string
		atLeast time.Duration // the check takes at least this long
	}{
		{"stopped", func(t *testing.T) *grpccheck.Checker {
			addr, stop := serve(t, standard())
			c := newChecker(t, addr)
			if _, err := testutil.CheckOnce(c, checkTimeout); err != nil {
				t.Fatalf("before the stop: %v", err)
			}
			stop()
			return c
		}, `health of service "items": the server does not answer, connection `, 0},
		{"never there", func(t *testing.T) *grpccheck.Checker { return newChecker(t, testutil.FreeAddr(t)) },
			"the server does not answer, connection TRANSIENT_FAILURE", 0},
		{"hung health handler", func(t *testing.T) *grpccheck.Checker {
			addr, _ := serve(t, withHealth(func(gs *grpc.Server) { healthpb.RegisterHealthServer(gs, hung{}) }))
			return newChecker(t, addr)
		}, "no answer before the timeout, connection READY", checkTimeout},
		{"frozen", func(t *testing.T) *grpccheck.Checker { return newChecker(t, frozen(t)) },
			"no answer before the timeout, connection CONNECTING", checkTimeout},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := tt.checker(t)
			var err error
			took := testutil.Returns(t, returnsWithin, func() { _, err = testutil.CheckOnce(c, checkTimeout) })
			if probes.StatusOf(err) != probes.Fail || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %v, want a failure containing %q", err, tt.want)
			}
			if took < tt.atLeast {
				t.Errorf("took %s, want at least %s", took, tt.atLeast)
			}
			t.Logf("%s: failed after %s (timeout %s): %v", tt.name, took.Round(time.Millisecond), checkTimeout, err)
		})
	}
}

// BenchmarkFrozenServer measures how soon an upstream that accepts and
// never speaks HTTP/2 is reported failing (ns/op), against the design's
// target of the check's timeout plus 100 ms (ms-past-timeout).
func BenchmarkFrozenServer(b *testing.B) {
	testutil.TimeToFail(b, newChecker(b, frozen(b)), 100*time.Millisecond)
}

// BenchmarkFrozenHealthHandler is BenchmarkFrozenServer for a server
// whose health handler hangs on a working connection.
func BenchmarkFrozenHealthHandler(b *testing.B) {
	addr, _ := serve(b, withHealth(func(gs *grpc.Server) { healthpb.RegisterHealthServer(gs, hung{}) }))
	testutil.TimeToFail(b, newChecker(b, addr), 100*time.Millisecond)
}

func TestNewRejectsBadInput(t *testing.T) {
	conn := dial(t, "127.0.0.1:1")
	for _, tt := range []struct {
		name string
		conn grpc.ClientConnInterface
		opts []grpccheck.Option
		want string
	}{
		{"nil conn", nil, nil, "grpccheck: New(nil)"},
		{"nil call option", conn, []grpccheck.Option{grpccheck.CallOptions(grpc.WaitForReady(true), nil)}, "grpccheck: CallOptions: option 1 is nil"},
		{"Exhausted(pass)", conn, []grpccheck.Option{grpccheck.Exhausted(probes.Pass)}, "grpccheck: Exhausted(pass): use probes.Warn or probes.Fail"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := grpccheck.New(tt.conn, "items", tt.opts...)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %v, want an error naming %q", err, tt.want)
			}
		})
	}
}
