package app_test

import (
	"context"
	"fmt"
	"log"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"google.golang.org/grpc"

	"github.com/probekit/probes/app"
	"github.com/probekit/probes/deployspec"
	"github.com/probekit/probes/grpchealth"
	"github.com/probekit/probes/liveness"
	"github.com/probekit/probes/metrics"
	"github.com/probekit/probes/readiness/pgxcheck"
	"github.com/probekit/probes/readiness/redischeck"
	"github.com/probekit/probes/startup"
)

// A whole service: a chi API whose cache loads at start-up, PostgreSQL and
// Redis, a worker with a heartbeat, gRPC health, Prometheus, the status
// page with its history, an admin socket for probectl, systemd's
// notifications and a graceful shutdown. The probes answer on :8081, the
// API on :8080, gRPC on :9090.
func Example() {
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, os.Getenv("DATABASE_URL"))
	if err != nil {
		log.Fatal(err)
	}
	rdb := redis.NewClient(&redis.Options{Addr: os.Getenv("REDIS_ADDR")})
	r := chi.NewRouter()
	r.Get("/api/items/{id}", serveItem)
	gs := grpc.NewServer(grpchealth.ServerOptions()...)

	a, err := app.New(app.Config{
		Name:        "shop",
		Handler:     r,
		AdminSocket: "/run/shop/admin.sock",
		Parts: []app.Part{
			app.Task("cache", loadCache),
			app.Worker("refresher", 10*time.Second, refresh),
			pgxcheck.Part("postgres", pool, pgxcheck.Owned()),
			redischeck.Part("redis", rdb, redischeck.Owned()),
			grpchealth.Part(gs, ":9090"),
			metrics.Part(prometheus.NewRegistry()),
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	if err := a.Run(ctx); err != nil {
		log.Fatal(err)
	}
}

// The service's own business, which the assembly does not count.

func serveItem(w http.ResponseWriter, _ *http.Request) { w.Write([]byte(`{"id":1}`)) }

func loadCache(ctx context.Context, p *startup.Progress) error {
	for i := 1; i <= 10; i++ {
		p.Set(float64(i) / 10) // load a tenth of the cache
	}
	return nil
}

func refresh(ctx context.Context, beat *liveness.Heartbeat) error {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		beat.Tick() // refresh prices, say
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

// A service that logs through log/slog gives its logger to the assembly,
// and routes go-redis's own lines (go-redis logs through one process-wide
// logger, which only the service may set) into it too.
func Example_slog() {
	logger := slog.New(slog.NewJSONHandler(os.Stderr, nil))
	redis.SetLogger(redisLog{logger})
	a, err := app.New(app.Config{Name: "worker", Slog: logger, Drain: app.NoDrain})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(a.Lifecycle.Identity().Service)
	// Output: worker
}

// redisLog writes go-redis's lines through a slog.Logger, structured.
type redisLog struct{ l *slog.Logger }

func (r redisLog) Printf(ctx context.Context, format string, v ...any) {
	r.l.WarnContext(ctx, fmt.Sprintf(format, v...), "client", "go-redis")
}

// A service writes its own Deployment, behind a -print-deploy flag say: the
// grace period covers the pool the check owns, closed after the server
// within app.DefaultCloseTimeout, which no flag says, and the pod template
// carries that stop, for probelint to check the manifest against as it is
// edited.
func ExampleApp_Deployment() {
	a, err := app.New(app.Config{
		Name:      "shop",
		Handler:   http.NotFoundHandler(),
		Addr:      "0.0.0.0:8080",
		ProbeAddr: "0.0.0.0:8081",
		Parts:     []app.Part{app.Check("postgres", pool{})},
	})
	if err != nil {
		log.Fatal(err)
	}
	manifest, err := a.Deployment(deployspec.Deployment{Name: "shop", Image: "registry.example/shop:1.4.2"})
	if err != nil {
		log.Fatal(err)
	}
	for line := range strings.SplitSeq(manifest, "\n") {
		if line = strings.TrimSpace(line); strings.HasPrefix(line, deployspec.StopAnnotation) ||
			strings.HasPrefix(line, "# the longest stop") || strings.HasPrefix(line, "terminationGracePeriodSeconds") {
			fmt.Println(line)
		}
	}
	// Output:
	// probes.probekit.dev/stop: "drain=5s on-drain=0s shutdown-timeout=15s after-close=5s stop=28s"
	// # the longest stop is 28s (drain 5s + shutdown timeout 15s + AfterClose hooks 5s + 3s of one-second bounds), +5s to exit
	// terminationGracePeriodSeconds: 33
}

// pool is a client a check owns: the assembly closes it after the server.
type pool struct{}

func (pool) Check(context.Context) error { return nil }
func (pool) Close()                      {}
