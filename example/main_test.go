package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/probekit/probes/internal/testenv/pgtest"
	"github.com/probekit/probes/internal/testenv/redistest"
	"github.com/probekit/probes/internal/testenv/testutil"
	"github.com/probekit/probes/server"
	"github.com/probekit/probes/startup"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestParseConfig(t *testing.T) {
	tests := []struct {
		name string
		args []string
		env  map[string]string
		want config
		err  string
	}{
		{name: "defaults", want: config{addr: "127.0.0.1:8080", probeAddr: "127.0.0.1:8081", grpcAddr: "127.0.0.1:9090", maxInFlight: 64, reportInFlight: 2 * runtime.GOMAXPROCS(0), reportCost: 20 * time.Millisecond, warmup: 3 * time.Second, deadline: startup.DefaultDeadline, drain: server.DefaultDrainDelay, shutdownTimeout: server.DefaultShutdownTimeout, dbScope: "shared", readers: "none", metrics: true}},
		{name: "environment", env: map[string]string{"ADDR": ":9000", "PROBE_ADDR": ":9001", "GRPC_ADDR": ":9002", "MAX_INFLIGHT": "3", "REPORT_INFLIGHT": "2", "REPORT_COST": "1ms",
			"WARMUP": "1s", "DRAIN": "0s", "DATABASE_URL": "postgres://x", "DB_SCOPE": "local", "METRICS": "false"},
			want: config{addr: ":9000", probeAddr: ":9001", grpcAddr: ":9002", maxInFlight: 3, reportInFlight: 2, reportCost: time.Millisecond, warmup: time.Second, deadline: startup.DefaultDeadline, shutdownTimeout: server.DefaultShutdownTimeout, databaseURL: "postgres://x", dbScope: "local", readers: "none"}},
		{name: "metrics off by flag", args: []string{"-metrics=false"}, env: map[string]string{"METRICS": "true"},
			want: config{addr: "127.0.0.1:8080", probeAddr: "127.0.0.1:8081", grpcAddr: "127.0.0.1:9090", maxInFlight: 64, reportInFlight: 2 * runtime.GOMAXPROCS(0), reportCost: 20 * time.Millisecond, warmup: 3 * time.Second, deadline: startup.DefaultDeadline, drain: server.DefaultDrainDelay, shutdownTimeout: server.DefaultShutdownTimeout, dbScope: "shared", readers: "none"}},
		{name: "flags beat environment", args: []string{"-warmup", "2s", "-addr", ":1", "-probe-addr=", "-grpc-addr", ":3"}, env: map[string]string{"WARMUP": "9s", "PROBE_ADDR": ":2"},
			want: config{addr: ":1", grpcAddr: ":3", maxInFlight: 64, reportInFlight: 2 * runtime.GOMAXPROCS(0), reportCost: 20 * time.Millisecond, warmup: 2 * time.Second, deadline: startup.DefaultDeadline, drain: server.DefaultDrainDelay, shutdownTimeout: server.DefaultShutdownTimeout, dbScope: "shared", readers: "none", metrics: true}},
		{name: "state directory", env: map[string]string{"STATE_DIR": "/var/lib/x"},
			want: config{addr: "127.0.0.1:8080", probeAddr: "127.0.0.1:8081", grpcAddr: "127.0.0.1:9090", maxInFlight: 64, reportInFlight: 2 * runtime.GOMAXPROCS(0), reportCost: 20 * time.Millisecond, warmup: 3 * time.Second, deadline: startup.DefaultDeadline, drain: server.DefaultDrainDelay, shutdownTimeout: server.DefaultShutdownTimeout, dbScope: "shared", readers: "none", metrics: true, stateDir: "/var/lib/x"}},
		{name: "readers from the environment", env: map[string]string{"READERS": "loopback"},
			want: config{addr: "127.0.0.1:8080", probeAddr: "127.0.0.1:8081", grpcAddr: "127.0.0.1:9090", maxInFlight: 64, reportInFlight: 2 * runtime.GOMAXPROCS(0), reportCost: 20 * time.Millisecond, warmup: 3 * time.Second, deadline: startup.DefaultDeadline, drain: server.DefaultDrainDelay, shutdownTimeout: server.DefaultShutdownTimeout, dbScope: "shared", metrics: true, readers: "loopback"}},
		{name: "unknown readers", args: []string{"-readers", "all"}, err: `-readers "all": use none or loopback`},
		{name: "unknown scope", args: []string{"-db-scope", "global"}, err: `-db-scope "global"`},
		{name: "bad environment names the variable", env: map[string]string{"DRAIN": "soon"}, err: "DRAIN"},
		{name: "negative warm-up", args: []string{"-warmup", "-1s"}, err: "-warmup"},
		{name: "deadline before warm-up", args: []string{"-warmup", "6m"}, err: "-warmup-deadline 5m0s: must exceed"},
		{name: "negative in-flight bound", args: []string{"-max-inflight", "-1"}, err: "-max-inflight"},
		{name: "bad in-flight bound in the environment", env: map[string]string{"MAX_INFLIGHT": "many"}, err: "MAX_INFLIGHT"},
		{name: "negative report bound", args: []string{"-report-inflight", "-1"}, err: "-report-inflight"},
		{name: "negative report cost", args: []string{"-report-cost", "-1ms"}, err: "-report-cost"},
		{name: "bad metrics switch in the environment", env: map[string]string{"METRICS": "perhaps"}, err: "METRICS"},
		{name: "negative drain probes", env: map[string]string{"DRAIN_PROBES": "-2"}, err: "-drain-probes"},
		{name: "quiet drain", args: []string{"-drain-quiet", "1s", "-drain-min", "6s", "-drain", "30s"}, env: map[string]string{"WARMUP": "1s", "METRICS": "false"},
			want: config{addr: "127.0.0.1:8080", probeAddr: "127.0.0.1:8081", grpcAddr: "127.0.0.1:9090", maxInFlight: 64, reportInFlight: 2 * runtime.GOMAXPROCS(0), reportCost: 20 * time.Millisecond, warmup: time.Second, deadline: startup.DefaultDeadline, drain: 30 * time.Second, drainQuiet: time.Second, drainMin: 6 * time.Second, shutdownTimeout: server.DefaultShutdownTimeout, dbScope: "shared", readers: "none"}},
		{name: "quiet drain from the environment", env: map[string]string{"DRAIN_QUIET": "soon"}, err: "DRAIN_QUIET"},
		{name: "negative quiet", args: []string{"-drain-quiet", "-1s"}, err: "-drain-quiet -1s"},
		{name: "quiet and probes", args: []string{"-drain-quiet", "1s", "-drain-probes", "3"}, err: "-drain-quiet and -drain-probes"},
		{name: "min without quiet", args: []string{"-drain-min", "6s"}, err: "-drain-min 6s: only with -drain-quiet"},
		{name: "min beyond the maximum", args: []string{"-drain-quiet", "1s", "-drain-min", "6s", "-drain", "5s"}, err: "want 0 <= min <= drain"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseConfig(tt.args, func(k string) string { return tt.env[k] })
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("got error %v, want one naming %s", err, tt.err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("got %+v, %v; want %+v", got, err, tt.want)
			}
		})
	}
}

// started is the example's run on a free loopback port.
type started struct {
	addr string
	stop func() error // cancels run and returns its result
}

// startRun runs the example with cfg on a free port until stop or the end
// of the test.
func startRun(t *testing.T, cfg config) started {
	t.Helper()
	cfg.addr = testutil.FreeAddr(t) // run listens on it itself
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx, cfg, zap.NewNop()) }()
	stop := sync.OnceValue(func() error {
		cancel()
		return <-done
	})
	t.Cleanup(func() { _ = stop() })
	return started{addr: cfg.addr, stop: stop}
}

var client = &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 5 * time.Second}

// get returns the code and body of a GET of path, or 0 and the error.
func (s started) get(path string) (int, string) {
	res, err := client.Get("http://" + s.addr + path)
	if err != nil {
		return 0, err.Error()
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

func TestRun(t *testing.T) {
	s := startRun(t, config{warmup: time.Second, deadline: time.Minute, shutdownTimeout: time.Second})
	sawWarming, refused := false, false
	testutil.Eventually(t, "ready", func() bool {
		code, body := s.get("/readyz")
		if code == 503 && strings.Contains(body, "warming") {
			sawWarming = true
			switch c, _ := s.get("/api/items/7"); c {
			case 503:
				refused = true
			case 200:
				// Warm-up may have finished between the two requests; then
				// readiness must pass now. The API never serves before it.
				if after, _ := s.get("/readyz"); after != 200 {
					t.Errorf("API served 200 while readiness answers %d", after)
				}
			default:
				t.Errorf("API while warming: got %d, want 503", c)
			}
		}
		return code == 200
	})
	if !sawWarming || !refused {
		t.Errorf("while the cache loaded: saw readiness fail %v, saw the API refuse %v; want both", sawWarming, refused)
	}
	if code, body := s.get("/api/items/7"); code != 200 || !strings.Contains(body, `"name":"item 7"`) {
		t.Errorf("API when warm: got %d %s", code, body)
	}
	if code, _ := s.get("/api/items/100000"); code != 404 {
		t.Errorf("unknown item: got %d, want 404", code)
	}
	if err := s.stop(); err != nil {
		t.Errorf("run: %v", err)
	}
}

func TestRunWithPostgres(t *testing.T) {
	pg := pgtest.Start(t)
	s := startRun(t, config{deadline: time.Minute, shutdownTimeout: time.Second, databaseURL: pg.URL("pw"), dbScope: "shared"})
	testutil.Eventually(t, "ready", func() bool {
		code, body := s.get("/readyz")
		return code == 200 && strings.Contains(body, `"status":"pass"`)
	})
	if code, body := s.get("/api/stock/5"); code != 200 || body != `{"id":5,"quantity":5}`+"\n" {
		t.Errorf("stock when the database is up: %d %s", code, body)
	}
	if code, _ := s.get("/api/stock/5000"); code != 404 {
		t.Errorf("unknown stock item: got %d, want 404", code)
	}
	pg.Stop()
	// The first request to fail asks the check at once; the guard then
	// answers without touching the pool.
	testutil.Eventually(t, "the guard answers", func() bool {
		code, body := s.get("/api/stock/5")
		return code == 503 && strings.Contains(body, "needs postgres")
	})
	if code, body := s.get("/readyz"); code != 200 || !strings.Contains(body, "warning: postgres") {
		t.Errorf("readiness with the shared database down: %d %s; want 200 naming postgres", code, body)
	}
	if code, _ := s.get("/healthz"); code != 503 {
		t.Errorf("deep view with the database down: got %d, want 503", code)
	}
	if code, _ := s.get("/api/items/7"); code != 200 {
		t.Errorf("the cache route with the database down: got %d, want 200", code)
	}
	pg.StartAgain()
	testutil.Eventually(t, "stock again", func() bool { code, _ := s.get("/api/stock/5"); return code == 200 })
	if err := s.stop(); err != nil {
		t.Errorf("run: %v", err)
	}
}

// The production layout: probes on their own listener, API requests beyond
// the in-flight bound refused at once, readiness warning (not failing) while
// the service sheds.
func TestProductionLayout(t *testing.T) {
	probeAddr := testutil.FreeAddr(t)
	s := startRun(t, config{deadline: time.Minute, shutdownTimeout: time.Second, probeAddr: probeAddr,
		maxInFlight: 64, reportInFlight: 1, reportCost: 300 * time.Millisecond})
	probe := started{addr: probeAddr}
	testutil.Eventually(t, "ready", func() bool { code, _ := probe.get("/readyz"); return code == 200 })
	if code, _ := s.get("/readyz"); code != 404 {
		t.Errorf("/readyz on the API listener: %d, want 404 (the probes have their own)", code)
	}
	if code, _ := probe.get("/api/items/7"); code != 404 {
		t.Errorf("the API on the probe listener: %d, want 404", code)
	}
	if code, body := s.get("/api/report"); code != 200 || !strings.Contains(body, `"items":1000`) {
		t.Fatalf("report: %d %s", code, body)
	}
	type answer struct {
		code  int
		retry string
	}
	answers := make(chan answer, 4)
	for range cap(answers) {
		go func() {
			res, err := client.Get("http://" + s.addr + "/api/report")
			if err != nil {
				answers <- answer{}
				return
			}
			io.Copy(io.Discard, res.Body) //nolint:errcheck
			res.Body.Close()
			answers <- answer{res.StatusCode, res.Header.Get("Retry-After")}
		}()
	}
	var ok, shed int
	for range cap(answers) {
		switch a := <-answers; {
		case a.code == 200:
			ok++
		case a.code == 503 && a.retry == "1":
			shed++
		default:
			t.Errorf("report under load: %+v", a)
		}
	}
	if ok < 1 || shed < 1 {
		t.Errorf("4 reports at once with a bound of 1: %d served, %d refused; want both", ok, shed)
	}
	testutil.Eventually(t, "readiness warns of the load", func() bool {
		code, body := probe.get("/readyz?verbose")
		return code == 200 && strings.HasPrefix(body, `{"status":"warn"`) && strings.Contains(body, `"report-load:responseTime"`)
	})
	if code, _ := probe.get("/livez"); code != 200 {
		t.Errorf("liveness: %d", code)
	}
	if err := s.stop(); err != nil {
		t.Errorf("run: %v", err)
	}
}

// gRPC beside HTTP: the health service follows the lifecycle, items.v1.Items
// is refused while warming and served once warm, and the drain reaches a
// Watch stream.
func TestGRPC(t *testing.T) {
	grpcAddr := testutil.FreeAddr(t)
	s := startRun(t, config{warmup: 2 * time.Second, deadline: time.Minute, shutdownTimeout: time.Second, drain: 200 * time.Millisecond, grpcAddr: grpcAddr})
	// The client may dial before run has bound the port. grpc-go then waits
	// about a second before it dials again, which could be the whole warm-up;
	// a short backoff keeps the warm-up in sight.
	conn, err := grpc.NewClient(grpcAddr,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithConnectParams(grpc.ConnectParams{
			Backoff:           backoff.Config{BaseDelay: 10 * time.Millisecond, Multiplier: 1.6, MaxDelay: 100 * time.Millisecond},
			MinConnectTimeout: time.Second,
		}))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	health := healthpb.NewHealthClient(conn)
	check := func(name string) healthpb.HealthCheckResponse_ServingStatus {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		res, err := health.Check(ctx, &healthpb.HealthCheckRequest{Service: name})
		if err != nil {
			return healthpb.HealthCheckResponse_UNKNOWN
		}
		return res.GetStatus()
	}
	get := func(id int64) (string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		var name wrapperspb.StringValue
		err := conn.Invoke(ctx, "/items.v1.Items/Get", wrapperspb.Int64(id), &name)
		return name.GetValue(), err
	}
	sawWarming, refused := false, false
	testutil.Eventually(t, "serving", func() bool {
		if check("liveness") != healthpb.HealthCheckResponse_SERVING {
			return false // not answering yet
		}
		if check("items.v1.Items") == healthpb.HealthCheckResponse_SERVING {
			return true
		}
		sawWarming = true
		switch _, err := get(7); {
		case status.Code(err) == codes.Unavailable:
			refused = true
		case err == nil && check("") != healthpb.HealthCheckResponse_SERVING:
			t.Error("items.v1.Items/Get answered while readiness says NOT_SERVING")
		}
		return false
	})
	if !sawWarming || !refused {
		t.Errorf("while the cache loaded: saw NOT_SERVING %v, saw Get refused %v; want both", sawWarming, refused)
	}
	if name, err := get(7); err != nil || name != "item 7" {
		t.Errorf("Get(7) when warm: %q, %v", name, err)
	}
	if _, err := get(100000); status.Code(err) != codes.NotFound {
		t.Errorf("Get of an unknown item: %v, want NotFound", err)
	}
	stream, err := health.Watch(context.Background(), &healthpb.HealthCheckRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if res, err := stream.Recv(); err != nil || res.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("Watch first heard %v, %v", res, err)
	}
	stopped := make(chan error, 1)
	go func() { stopped <- s.stop() }()
	if res, err := stream.Recv(); err != nil || res.GetStatus() != healthpb.HealthCheckResponse_NOT_SERVING {
		t.Errorf("Watch on drain heard %v, %v; want NOT_SERVING", res, err)
	}
	if err := <-stopped; err != nil {
		t.Errorf("run: %v", err)
	}
	if _, err := stream.Recv(); err == nil {
		t.Error("the Watch stream outlived the server")
	}
}

// /metrics answers from the first moment, with the lifecycle's metrics and
// the Go and process collectors; -metrics=false leaves it out.
func TestMetrics(t *testing.T) {
	s := startRun(t, config{warmup: 2 * time.Second, deadline: time.Minute, shutdownTimeout: time.Second, metrics: true})
	testutil.Eventually(t, "metrics while warming", func() bool {
		code, body := s.get("/metrics")
		return code == 200 && strings.Contains(body, "probes_phase{phase=\"warming\"} 1\n")
	})
	testutil.Eventually(t, "metrics when ready", func() bool {
		_, body := s.get("/metrics")
		return strings.Contains(body, "probes_phase{phase=\"ready\"} 1\n") &&
			strings.Contains(body, "probes_transitions_total{from=\"warming\",to=\"ready\"} 1\n")
	})
	_, body := s.get("/metrics")
	for _, want := range []string{"go_goroutines ", "process_resident_memory_bytes ", "probes_drain_duration_seconds 0\n",
		`probes_check_status{check="refresher",gate="liveness",status="pass"} 1`} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	if err := s.stop(); err != nil {
		t.Errorf("run: %v", err)
	}

	off := startRun(t, config{warmup: 0, deadline: time.Minute, shutdownTimeout: time.Second})
	testutil.Eventually(t, "serving", func() bool { code, _ := off.get("/api/items/1"); return code == 200 })
	if code, _ := off.get("/metrics"); code != 404 {
		t.Errorf("/metrics with -metrics=false: %d, want 404", code)
	}
}

// With PostgreSQL and Redis, the deep view covers both; a Redis outage
// fails its own route fast, makes readiness warn (shared), and leaves the
// other routes serving.
func TestRunWithPostgresAndRedis(t *testing.T) {
	pg := pgtest.Start(t)
	rs := redistest.Start(t)
	s := startRun(t, config{deadline: time.Minute, shutdownTimeout: time.Second, databaseURL: pg.URL("pw"), dbScope: "shared",
		redisURL: "redis://" + rs.Addr()})
	testutil.Eventually(t, "ready with both", func() bool {
		code, body := s.get("/healthz?verbose")
		ready, _ := s.get("/readyz")
		return code == 200 && ready == 200 && strings.Contains(body, `"readiness/postgres:responseTime"`) && strings.Contains(body, `"readiness/redis:responseTime"`)
	})
	for want := 1; want <= 2; want++ {
		if code, body := s.get("/api/visits/7"); code != 200 || body != fmt.Sprintf(`{"id":"7","visits":%d}`+"\n", want) {
			t.Errorf("visit %d: %d %s", want, code, body)
		}
	}
	rs.Stop()
	testutil.Eventually(t, "the guard answers for redis", func() bool {
		code, body := s.get("/api/visits/7")
		return code == 503 && strings.Contains(body, "needs redis")
	})
	if code, body := s.get("/readyz"); code != 200 || !strings.Contains(body, "warning: redis") {
		t.Errorf("readiness with shared Redis down: %d %s; want 200 naming redis", code, body)
	}
	if code, _ := s.get("/api/stock/5"); code != 200 {
		t.Errorf("the database route with Redis down: got %d, want 200", code)
	}
	rs.StartAgain()
	testutil.Eventually(t, "visits again", func() bool { code, _ := s.get("/api/visits/7"); return code == 200 })
	if err := s.stop(); err != nil {
		t.Errorf("run: %v", err)
	}
}
