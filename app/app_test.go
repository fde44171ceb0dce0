package app_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/probekit/probes"
	"github.com/probekit/probes/app"
	"github.com/probekit/probes/deployspec"
	"github.com/probekit/probes/grpchealth"
	"github.com/probekit/probes/internal/exporttest"
	"github.com/probekit/probes/internal/testenv/testutil"
	"github.com/probekit/probes/liveness"
	"github.com/probekit/probes/metrics"
	"github.com/probekit/probes/startup"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// ownedCheck fails with a reason that holds a secret, and owns a client
// the assembly must close after the server has stopped.
type ownedCheck struct{ closed atomic.Int32 }

func (c *ownedCheck) Check(context.Context) error {
	return errors.New("dial postgres://app:hunter2@db:5432: connection refused")
}
func (c *ownedCheck) Owned() bool  { return true }
func (c *ownedCheck) Close() error { c.closed.Add(1); return nil }

// operator is the service's read policy: a bearer token.
func operator(r *http.Request) bool { return r.Header.Get("Authorization") == "Bearer op" }

// TestWholeService builds a whole service through the assembly with every
// surface on (HTTP API and probes, page, /history, metrics, gRPC health,
// admin socket, HAProxy's agent, a warm-up task, a worker with a
// heartbeat, a check that owns its client) and asks each over the real
// transport: one read policy governs all of them, and each names the
// service.
func TestWholeService(t *testing.T) {
	addr, probeAddr, grpcAddr, agentAddr := testutil.FreeAddr(t), testutil.FreeAddr(t), testutil.FreeAddr(t), testutil.FreeAddr(t)
	socket := filepath.Join(t.TempDir(), "admin.sock")
	core, logs := observer.New(zap.InfoLevel)
	loaded := make(chan struct{})
	db := &ownedCheck{}
	r := chi.NewRouter()
	r.Get("/api/hello", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "hello") })
	gs := grpc.NewServer(grpchealth.ServerOptions()...)
	reg := prometheus.NewRegistry()

	a, err := app.New(app.Config{
		Name: "shop", Release: "1.4.2", Instance: "shop-0",
		Handler: r, Addr: addr, ProbeAddr: probeAddr, AdminSocket: socket, AgentAddr: agentAddr,
		Readers: operator, Logger: zap.New(core), DrainQuiet: 50 * time.Millisecond, Drain: time.Second,
		Parts: []app.Part{
			metrics.Part(reg),
			grpchealth.Part(gs, grpcAddr),
			app.Task("cache", func(ctx context.Context, p *startup.Progress) error {
				select {
				case <-loaded:
					return nil
				case <-ctx.Done():
					return ctx.Err()
				}
			}),
			app.Worker("refresher", time.Second, func(ctx context.Context, beat *liveness.Heartbeat) error {
				tick := time.NewTicker(10 * time.Millisecond)
				defer tick.Stop()
				for {
					beat.Tick()
					select {
					case <-ctx.Done():
						return ctx.Err()
					case <-tick.C:
					}
				}
			}),
			app.Check("postgres", db, probes.NonCritical(), probes.Every(10*time.Millisecond)),
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
		if n := db.closed.Load(); n != 1 {
			t.Errorf("the owned client was closed %d times, want once", n)
		}
	}()

	probe := "http://" + probeAddr
	// Warming: startup fails, liveness already passes.
	testutil.Eventually(t, "liveness passes while the cache loads", func() bool { return status(t, probe+"/livez", "") == 200 })
	if code := status(t, probe+"/startupz", ""); code != 503 {
		t.Errorf("startup while warming: %d, want 503", code)
	}
	// The API is guarded by default: nothing is served half-loaded.
	if code := status(t, "http://"+addr+"/api/hello", ""); code != 503 {
		t.Errorf("the API while warming: %d, want 503", code)
	}
	close(loaded)
	testutil.Eventually(t, "ready", func() bool { return status(t, probe+"/readyz", "") == 200 })
	testutil.Eventually(t, "the check's failure seen", func() bool {
		return strings.Contains(body(t, probe+"/healthz?verbose", "Bearer op", ""), "refused")
	})

	// The application.
	if got := body(t, "http://"+addr+"/api/hello", "", ""); got != "hello" {
		t.Errorf("API: %q", got)
	}

	// HTTP, anonymous and authorised: identity for both, the reason for the
	// operator only, the secret for no one.
	var anon, op map[string]any
	mustJSON(t, body(t, probe+"/healthz?verbose", "", ""), &anon)
	mustJSON(t, body(t, probe+"/healthz?verbose", "Bearer op", ""), &op)
	for who, b := range map[string]map[string]any{"anonymous": anon, "operator": op} {
		if b["serviceId"] != "shop" || b["releaseId"] != "1.4.2" || b["instance"] != "shop-0" {
			t.Errorf("%s deep view: serviceId %v, releaseId %v, instance %v", who, b["serviceId"], b["releaseId"], b["instance"])
		}
	}
	anonText, opText := body(t, probe+"/healthz?verbose", "", ""), body(t, probe+"/healthz?verbose", "Bearer op", "")
	if strings.Contains(anonText, "refused") || strings.Contains(anonText, "hunter2") {
		t.Errorf("anonymous deep view shows the reason: %s", anonText)
	}
	if !strings.Contains(opText, "refused") || strings.Contains(opText, "hunter2") {
		t.Errorf("operator's deep view: want the reason, masked: %s", opText)
	}

	// The page and /history under the same policy.
	page := body(t, probe+"/healthz", "", "text/html")
	if !strings.Contains(page, "<title>shop 1.4.2 on shop-0</title>") || strings.Contains(page, "refused") {
		t.Errorf("anonymous page: want the identity in the title and no reason")
	}
	if opPage := body(t, probe+"/healthz", "Bearer op", "text/html"); !strings.Contains(opPage, "refused") || strings.Contains(opPage, "hunter2") {
		t.Errorf("operator's page: want the reason, masked")
	}
	testutil.Eventually(t, "the failure in /history", func() bool {
		return strings.Contains(body(t, probe+"/history", "Bearer op", ""), "refused")
	})
	if h := body(t, probe+"/history", "", ""); strings.Contains(h, "refused") || strings.Contains(h, "hunter2") {
		t.Errorf("anonymous /history shows the reason: %s", h)
	}

	// Metrics: on the probe listener, with the identity.
	if !strings.Contains(body(t, probe+"/metrics", "", ""), `probes_info{instance="shop-0",node="",release="1.4.2",service="shop"} 1`) {
		t.Error("/metrics lacks probes_info with the identity")
	}
	if v, ok := exporttest.Value(t, reg, "probes_check_status", "gate", "readiness", "check", "postgres", "status", "fail"); !ok || v != 1 {
		t.Errorf("probes_check_status of postgres fail = %v (%v), want 1", v, ok)
	}

	// gRPC: anonymous, statuses only.
	conn, err := grpc.NewClient(grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	res, err := healthpb.NewHealthClient(conn).Check(context.Background(), &healthpb.HealthCheckRequest{Service: "readiness"})
	if err != nil || res.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Errorf("gRPC readiness: %v, %v; want SERVING", res.GetStatus(), err)
	}

	// The admin socket: its peer is authorised by uid; the same document,
	// the reason masked, the identity.
	adminText := unixGet(t, socket, "/status")
	var st map[string]any
	mustJSON(t, adminText, &st)
	if st["serviceId"] != "shop" || !strings.Contains(adminText, "refused") || strings.Contains(adminText, "hunter2") {
		t.Errorf("admin /status: want the identity and the masked reason: %s", adminText)
	}

	// HAProxy's agent.
	c, err := net.Dial("tcp", agentAddr)
	if err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	c.Close()
	if err != nil || !strings.Contains(line, "up") {
		t.Errorf("agent: %q, %v; want up", line, err)
	}

	// Every library line names the service and the instance; none holds
	// the secret.
	for _, e := range logs.All() {
		seen := map[string]int{}
		for _, f := range e.Context {
			if seen[f.Key]++; seen[f.Key] == 2 {
				t.Errorf("log line %q has %s twice", e.Message, f.Key)
			}
		}
		m := e.ContextMap()
		if m["service"] != "shop" || m["instance"] != "shop-0" {
			t.Errorf("log line %q without the identity: %v", e.Message, m)
		}
		if raw, _ := json.Marshal(m); strings.Contains(string(raw), "hunter2") {
			t.Errorf("log line %q holds the secret", e.Message)
		}
	}
}

func status(t *testing.T, url, auth string) int {
	t.Helper()
	code, _ := get(t, url, auth, "")
	return code
}

func body(t *testing.T, url, auth, accept string) string {
	t.Helper()
	_, b := get(t, url, auth, accept)
	return b
}

func get(t *testing.T, url, auth, accept string) (int, string) {
	t.Helper()
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

func unixGet(t *testing.T, socket, path string) string {
	t.Helper()
	c := &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", socket)
		},
		DisableKeepAlives: true,
	}, Timeout: 5 * time.Second}
	res, err := c.Get("http://admin" + path)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return string(b)
}

func mustJSON(t *testing.T, s string, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(s), v); err != nil {
		t.Fatalf("%v: %s", err, s)
	}
}

// TestDeploymentScrapes: with metrics.Part, the App's Deployment has
// Prometheus's scrape annotations for /metrics on the probe port, and a
// loopback address is refused, naming it, rather than written into probes
// that would always fail.
func TestDeploymentScrapes(t *testing.T) {
	a, err := app.New(app.Config{Name: "shop", Handler: http.NotFoundHandler(), ProbeAddr: ":9001",
		Parts: []app.Part{metrics.Part(prometheus.NewRegistry())}})
	if err != nil {
		t.Fatal(err)
	}
	y, err := a.Deployment(deployspec.Deployment{Name: "shop", Image: "shop:1"})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`prometheus.io/port: "9001"`, "prometheus.io/path: /metrics", `probes.probekit.dev/service: "warmup-deadline=5m probe-addr=:9001"`} {
		if !strings.Contains(y, want) {
			t.Errorf("the Deployment lacks %s:\n%s", want, y)
		}
	}
	lo, err := app.New(app.Config{Name: "shop", Handler: http.NotFoundHandler(), ProbeAddr: "127.0.0.1:9001"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := lo.Deployment(deployspec.Deployment{Name: "shop", Image: "shop:1"}); err == nil || !strings.Contains(err.Error(), "loopback") {
		t.Errorf("a loopback probe address: %v, want it refused", err)
	}
}
