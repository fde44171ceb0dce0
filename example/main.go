// Command example is a small chi service that shows probes at work: it
// listens from the first moment, loads a cache slowly at start-up (reporting
// progress), refuses API traffic with 503 until the cache is warm, and drains
// gracefully on SIGTERM or Ctrl-C.
//
//	go run ./example                      # defaults: 127.0.0.1:8080, 3s warm-up
//	go run ./example -addr :9090 -warmup 10s -drain 2s
//	DATABASE_URL=postgres://... go run ./example   # adds PostgreSQL and /api/stock/{id}
//	REDIS_URL=redis://localhost:6379 go run ./example # adds Redis and /api/visits/{id}
//
// With DATABASE_URL set, warm-up also creates and fills a small stock
// table, readiness checks PostgreSQL (a dependency the fleet shares unless
// -db-scope local), and GET /api/stock/{id} reads it, guarded so that it
// fails fast while the database is down. With REDIS_URL set, readiness
// checks Redis (shared by the fleet) and GET /api/visits/{id} counts an
// item's views there, guarded the same way. The probes have their own port
// (-probe-addr), gRPC health and items.v1.Items are on -grpc-addr, and
// GET /api/report burns CPU to show load shedding. Every flag can also be
// set from the environment: ADDR, PROBE_ADDR, GRPC_ADDR, WARMUP,
// WARMUP_DEADLINE, DRAIN, DRAIN_PROBES, DRAIN_QUIET, DRAIN_MIN,
// SHUTDOWN_TIMEOUT, DB_SCOPE,
// MAX_INFLIGHT, REPORT_INFLIGHT, REPORT_COST, METRICS, ADMIN_SOCKET,
// AGENT_ADDR, TERMINATION_LOG and STATE_DIR: -admin-socket serves cordon,
// uncordon and status to probectl, -agent-addr answers HAProxy's agent
// check, -termination-log says where the termination message goes, and
// -state-dir keeps the history in files there, so that after a restart
// the service says how the instance before it ended, and why. GET /metrics,
// beside the probes, serves Prometheus metrics (-metrics=false turns it
// off). example/deploy
// holds a systemd unit, a Kubernetes Deployment and a Dockerfile for it.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"go.uber.org/zap"

	"github.com/probekit/probes"
	"github.com/probekit/probes/app"
	"github.com/probekit/probes/liveness"
	"github.com/probekit/probes/metrics"
	"github.com/probekit/probes/readiness"
	"github.com/probekit/probes/redact"
	"github.com/probekit/probes/server"
	"github.com/probekit/probes/startup"
)

type config struct {
	addr            string
	probeAddr       string
	grpcAddr        string
	maxInFlight     int
	reportInFlight  int
	reportCost      time.Duration
	warmup          time.Duration
	deadline        time.Duration
	drain           time.Duration
	drainProbes     int
	drainQuiet      time.Duration
	drainMin        time.Duration
	shutdownTimeout time.Duration
	databaseURL     string
	redisURL        string
	dbScope         string
	metrics         bool
	adminSocket     string
	agentAddr       string
	terminationLog  string // where the termination message goes; "" for the library's default
	stateDir        string // where the history keeps its files, for the next instance
	readers         string // who sees reasons over HTTP: none or loopback
	balancer        string // the balancer in front, for -print-deploy and -drain-min's default
	printDeploy     string // a form of deployment file to print, instead of running
}

func main() {
	log, err := zap.NewProduction()
	if err != nil {
		fmt.Fprintln(os.Stderr, "example:", err)
		os.Exit(1)
	}
	defer log.Sync() //nolint:errcheck
	cfg, err := parseConfig(os.Args[1:], os.Getenv)
	if err != nil {
		fmt.Fprintln(os.Stderr, "example:", err)
		os.Exit(2)
	}
	if cfg.printDeploy != "" {
		if err := printDeploy(os.Stdout, cfg, cfg.printDeploy); err != nil {
			fmt.Fprintln(os.Stderr, "example:", err)
			os.Exit(2)
		}
		return
	}
	if err := run(context.Background(), cfg, log); err != nil {
		log.Error("exit", zap.Error(err))
		os.Exit(1)
	}
}

// parseConfig reads flags, with defaults taken from the environment.
func parseConfig(args []string, getenv func(string) string) (config, error) {
	fs := flag.NewFlagSet("example", flag.ContinueOnError)
	env := func(name, def string) string {
		if v := getenv(name); v != "" {
			return v
		}
		return def
	}
	var cfg config
	fs.StringVar(&cfg.addr, "addr", env("ADDR", "127.0.0.1:8080"), "listen address of the API (env ADDR)")
	fs.StringVar(&cfg.probeAddr, "probe-addr", env("PROBE_ADDR", "127.0.0.1:8081"),
		"listen address of the probes, apart from the API so that load on it cannot starve them; empty serves them on -addr (env PROBE_ADDR)")
	fs.StringVar(&cfg.grpcAddr, "grpc-addr", env("GRPC_ADDR", "127.0.0.1:9090"),
		"listen address of the gRPC server (grpc.health.v1 and items.v1.Items); empty for none (env GRPC_ADDR)")
	durations := []struct {
		p          *time.Duration
		flag, env  string
		def, usage string
	}{
		{&cfg.warmup, "warmup", "WARMUP", "3s", "how long the cache takes to load (env WARMUP)"},
		// The library's defaults, so that the example, the linter and a
		// service that sets nothing agree.
		{&cfg.deadline, "warmup-deadline", "WARMUP_DEADLINE", startup.DefaultDeadline.String(), "give up (go Broken) if warm-up has not finished by then (env WARMUP_DEADLINE)"},
		{&cfg.drain, "drain", "DRAIN", server.DefaultDrainDelay.String(), "how long to keep serving after readiness fails on shutdown; with -drain-probes or -drain-quiet, the drain's maximum (env DRAIN)"},
		{&cfg.drainQuiet, "drain-quiet", "DRAIN_QUIET", "0s", "end the drain once no API request has arrived for this long, after -drain-min, with -drain as the maximum; 0 for none (env DRAIN_QUIET)"},
		{&cfg.drainMin, "drain-min", "DRAIN_MIN", "0s", "with -drain-quiet, the least the drain lasts: the balancer's check interval times its fall threshold (env DRAIN_MIN)"},
		{&cfg.shutdownTimeout, "shutdown-timeout", "SHUTDOWN_TIMEOUT", server.DefaultShutdownTimeout.String(), "how long in-flight requests may take after the drain (env SHUTDOWN_TIMEOUT)"},
		{&cfg.reportCost, "report-cost", "REPORT_COST", "20ms", "CPU time one GET /api/report burns (env REPORT_COST)"},
	}
	for _, d := range durations {
		def, err := time.ParseDuration(env(d.env, d.def))
		if err != nil {
			return cfg, fmt.Errorf("%s: %w", d.env, err)
		}
		fs.DurationVar(d.p, d.flag, def, d.usage)
	}
	probesDefault, err := strconv.Atoi(env("DRAIN_PROBES", "0"))
	if err != nil {
		return cfg, fmt.Errorf("DRAIN_PROBES: %w", err)
	}
	fs.IntVar(&cfg.drainProbes, "drain-probes", probesDefault,
		"end the drain once /readyz has answered fail this many times, with -drain as the maximum; 0 for a fixed -drain (env DRAIN_PROBES)")
	bounds := []struct {
		p              *int
		flag, env, def string
		usage          string
	}{
		{&cfg.maxInFlight, "max-inflight", "MAX_INFLIGHT", "64",
			"API requests in flight at once; beyond it, 503 with Retry-After (load shedding); 0 for no bound (env MAX_INFLIGHT)"},
		{&cfg.reportInFlight, "report-inflight", "REPORT_INFLIGHT", strconv.Itoa(2 * runtime.GOMAXPROCS(0)),
			"GET /api/report requests in flight at once, a CPU-heavy route bounded near the core count; 0 for no bound (env REPORT_INFLIGHT; default 2 per core)"},
	}
	for _, b := range bounds {
		def, err := strconv.Atoi(env(b.env, b.def))
		if err != nil {
			return cfg, fmt.Errorf("%s: %w", b.env, err)
		}
		fs.IntVar(b.p, b.flag, def, b.usage)
	}
	metricsDefault, err := strconv.ParseBool(env("METRICS", "true"))
	if err != nil {
		return cfg, fmt.Errorf("METRICS: %w", err)
	}
	fs.BoolVar(&cfg.metrics, "metrics", metricsDefault,
		"serve Prometheus metrics at /metrics beside the probes (-probe-addr, or -addr without it); -metrics=false for none (env METRICS)")
	fs.Var(printFlag{&cfg.printDeploy}, "print-deploy",
		"print a deployment file whose probe and stop timings follow from these flags, and exit: alone a Kubernetes Deployment; =kubernetes-grpc for gRPC probes, =systemd for a unit")
	fs.StringVar(&cfg.adminSocket, "admin-socket", env("ADMIN_SOCKET", ""),
		"a Unix socket for probectl (cordon, uncordon, status), open to this uid and root; empty for none (env ADMIN_SOCKET)")
	fs.StringVar(&cfg.agentAddr, "agent-addr", env("AGENT_ADDR", ""),
		"listen address of HAProxy's agent check (ready up N%, drain, down), weighted by spare capacity; empty for none (env AGENT_ADDR)")
	fs.StringVar(&cfg.terminationLog, "termination-log", env("TERMINATION_LOG", ""),
		"the file the termination message (why the service stopped, then its last transitions) goes to: the container's terminationMessagePath; empty for /dev/termination-log when it exists, - for none (env TERMINATION_LOG)")
	fs.StringVar(&cfg.stateDir, "state-dir", env("STATE_DIR", ""),
		"a directory where the history keeps its files (at most 256 KiB), so that after a restart the service lists the instance before it, how it ended and why; in Kubernetes an emptyDir, which -print-deploy mounts; empty for none (env STATE_DIR)")
	fs.StringVar(&cfg.readers, "readers", env("READERS", "none"),
		"who sees reasons (check errors, causes, the cordon's reason and author) on the probe port's deep view, page and /history: none, or loopback (an operator through kubectl port-forward; not behind a proxy in the same pod); the admin socket's peers always do (env READERS)")
	fs.StringVar(&cfg.balancer, "balancer", env("BALANCER", ""),
		"the balancer in front: aws-alb, aws-nlb, google-cloud or haproxy; with -drain-quiet, -drain-min defaults to its detection time, and -print-deploy adds the Service (and BackendConfig) it needs; empty for none (env BALANCER)")
	fs.StringVar(&cfg.dbScope, "db-scope", env("DB_SCOPE", "shared"),
		"scope of the PostgreSQL check: shared (the fleet shares the database: readiness warns while it is down) or local (readiness fails) (env DB_SCOPE)")
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	if cfg.readers != "none" && cfg.readers != "loopback" {
		return cfg, fmt.Errorf("-readers %q: use none or loopback", cfg.readers)
	}
	if cfg.dbScope != "shared" && cfg.dbScope != "local" {
		return cfg, fmt.Errorf("-db-scope %q: use shared or local", cfg.dbScope)
	}
	if cfg.maxInFlight < 0 {
		return cfg, fmt.Errorf("-max-inflight %d: must not be negative", cfg.maxInFlight)
	}
	if cfg.reportInFlight < 0 {
		return cfg, fmt.Errorf("-report-inflight %d: must not be negative", cfg.reportInFlight)
	}
	if cfg.reportCost < 0 {
		return cfg, fmt.Errorf("-report-cost %s: must not be negative", cfg.reportCost)
	}
	if cfg.drainProbes < 0 {
		return cfg, fmt.Errorf("-drain-probes %d: must not be negative", cfg.drainProbes)
	}
	front, err := balancerOf(cfg.balancer)
	if err != nil {
		return cfg, err
	}
	if front != nil && cfg.drainQuiet > 0 && cfg.drainMin == 0 {
		cfg.drainMin = front.Detection()
	}
	switch {
	case cfg.drainQuiet < 0:
		return cfg, fmt.Errorf("-drain-quiet %s: must not be negative", cfg.drainQuiet)
	case cfg.drainQuiet > 0 && cfg.drainProbes > 0:
		return cfg, errors.New("-drain-quiet and -drain-probes: give one of them")
	case cfg.drainMin != 0 && cfg.drainQuiet == 0:
		return cfg, fmt.Errorf("-drain-min %s: only with -drain-quiet", cfg.drainMin)
	case cfg.drainQuiet > 0 && (cfg.drainMin < 0 || cfg.drain < max(cfg.drainMin, cfg.drainQuiet)):
		return cfg, fmt.Errorf("-drain-quiet %s, -drain-min %s, -drain %s: want 0 <= min <= drain and quiet <= drain", cfg.drainQuiet, cfg.drainMin, cfg.drain)
	}
	if cfg.warmup < 0 {
		return cfg, fmt.Errorf("-warmup %s: must not be negative", cfg.warmup)
	}
	if cfg.deadline <= cfg.warmup {
		return cfg, fmt.Errorf("-warmup-deadline %s: must exceed -warmup %s", cfg.deadline, cfg.warmup)
	}
	cfg.databaseURL = getenv("DATABASE_URL")
	cfg.redisURL = getenv("REDIS_URL")
	return cfg, nil
}

// readersOf is the read policy -readers names: nil (nobody) for none.
func readersOf(name string) func(*http.Request) bool {
	if name == "loopback" {
		return probes.FromLoopback
	}
	return nil
}

func run(ctx context.Context, cfg config, log *zap.Logger) error {
	a, err := build(cfg, log)
	if err != nil {
		return err
	}
	probeBase, base := "http://"+cfg.addr, "http://"+cfg.addr
	if cfg.probeAddr != "" {
		probeBase = "http://" + cfg.probeAddr
	}
	log.Info("listening",
		zap.String("startup", probeBase+"/startupz"), zap.String("liveness", probeBase+"/livez"),
		zap.String("readiness", probeBase+"/readyz"), zap.String("health", probeBase+"/healthz"),
		zap.String("api", base+"/api/items/{id}"), zap.Duration("warmup", cfg.warmup),
		zap.String("grpc", cfg.grpcAddr), zap.Int("maxInFlight", cfg.maxInFlight), zap.Int("reportInFlight", cfg.reportInFlight),
		zap.String("adminSocket", cfg.adminSocket), zap.String("agent", cfg.agentAddr),
		zap.Bool("postgres", cfg.databaseURL != ""), zap.Bool("redis", cfg.redisURL != ""), zap.String("dbScope", cfg.dbScope), zap.Bool("metrics", cfg.metrics))
	// Run binds every listener first, so that the probes answer (honestly)
	// while the cache loads, then serves until SIGTERM or Ctrl-C, and drains.
	return a.Run(ctx)
}

// build assembles the service cfg describes; nothing listens until Run.
// -print-deploy builds it too, so that the timings it prints are the ones
// run gets.
func build(cfg config, log *zap.Logger) (*app.App, error) {
	c := &cache{}
	parts := []app.Part{
		app.Task("cache", func(ctx context.Context, p *startup.Progress) error { return c.load(ctx, cfg.warmup, p) }),
		// A background worker (it would refresh prices, say) whose heartbeat
		// liveness watches: if its loop stops ticking for 10s, the process is
		// wedged and liveness fails. The lifecycle owns and stops it.
		app.Worker("refresher", 10*time.Second, refresh),
	}
	// A dependency every deployment has: name resolution. Non-critical, so
	// a resolver hiccup makes readiness warn (still 200) rather than fail.
	resolver, err := readiness.DNS("localhost")
	if err != nil {
		return nil, err
	}
	parts = append(parts, app.Check("dns", resolver, probes.Every(10*time.Second), probes.NonCritical()))

	// Load shedding: beyond its bound, a request gets 503 at once, so a
	// busy process spends its CPU on what it has taken and its probes are
	// not queued behind a backlog. All of /api has a broad bound; the
	// CPU-heavy report a tight one, near the core count. Readiness warns
	// while either sheds (never fails: failing would push the load onto
	// the other instances, which would shed in turn), and HAProxy's agent
	// weighs the instance by their spare capacity.
	var sheds []*server.Shedder
	shedder := func(name string, bound int) (*server.Shedder, error) {
		if bound == 0 {
			return nil, nil
		}
		s, err := server.NewShedder(bound)
		if err != nil {
			return nil, err
		}
		sheds = append(sheds, s)
		parts = append(parts, app.Check(name, s, probes.Every(time.Second), probes.Local()))
		return s, nil
	}
	shed, err := shedder("load", cfg.maxInFlight)
	if err != nil {
		return nil, err
	}
	reportShed, err := shedder("report-load", cfg.reportInFlight)
	if err != nil {
		return nil, err
	}

	// PostgreSQL and Redis: their checks own their clients, which are
	// closed after the server has stopped.
	var st *stock
	if cfg.databaseURL != "" {
		pool, err := pgxpool.New(context.Background(), cfg.databaseURL)
		if err != nil {
			return nil, fmt.Errorf("DATABASE_URL: %w", redact.Error(err))
		}
		st = &stock{pool: pool}
		parts = append(parts, st.parts(cfg.dbScope)...)
	}
	var vis *visits
	if cfg.redisURL != "" {
		if vis, err = newVisits(cfg.redisURL); err != nil {
			return nil, err
		}
		parts = append(parts, vis.part())
	}
	if cfg.grpcAddr != "" {
		parts = append(parts, grpcPart(c, cfg.grpcAddr))
	}
	// Metrics go where the probes are: the probe listener answers new
	// connections whatever the application's clients do, so monitoring
	// does not go blind in the flood it should show.
	if cfg.metrics {
		reg := prometheus.NewRegistry()
		reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
		parts = append(parts, metrics.Part(reg))
	}

	drain := cfg.drain
	if drain == 0 {
		drain = app.NoDrain // -drain=0: none
	}
	r := chi.NewRouter()
	a, err := app.New(app.Config{
		Name: "probes-example", APIVersion: "1", Description: "items API with a slow-loading cache",
		Handler: r, Addr: cfg.addr, ProbeAddr: cfg.probeAddr, ProbesOnAddr: cfg.probeAddr == "",
		WarmupDeadline: cfg.deadline, Drain: drain, DrainQuiet: cfg.drainQuiet, DrainMin: cfg.drainMin, DrainProbes: cfg.drainProbes,
		ShutdownTimeout: cfg.shutdownTimeout,
		// For operators: cordon and uncordon by hand over a socket only
		// this uid and root may use, and HAProxy's agent check from the
		// same state.
		AdminSocket: cfg.adminSocket, AgentAddr: cfg.agentAddr, Capacity: sheds,
		// Why it stopped, where kubectl describe pod shows it, and what
		// happened to the instance before this one (a restart in the same
		// pod): its end and why, on the page, /history and the deep view.
		TerminationLog: cfg.terminationLog, StateDir: cfg.stateDir, Readers: readersOf(cfg.readers),
		Logger: log, Parts: parts,
	})
	if err != nil {
		if st != nil {
			st.pool.Close()
		}
		if vis != nil {
			vis.rdb.Close()
		}
		return nil, err
	}
	if cfg.probeAddr == "" {
		r.MethodNotAllowed(server.MethodNotAllowed)
	}

	// The routes: warm-up answers first (503 until the cache is warm);
	// then a route that needs a dependency fails fast, naming it, while
	// that dependency's check fails.
	warmGuard := server.WarmupGuard(a.Lifecycle, time.Second)
	var needsDB, needsRedis func(http.Handler) http.Handler
	if st != nil {
		if needsDB, err = server.Needs(a.Readiness, "postgres"); err != nil {
			return nil, err
		}
	}
	if vis != nil {
		if needsRedis, err = server.Needs(a.Readiness, "redis"); err != nil {
			return nil, err
		}
	}
	r.Route("/api", func(r chi.Router) {
		if shed != nil {
			r.Use(shed.Middleware)
		}
		r.Use(warmGuard)
		r.Get("/items/{id}", c.serveItem)
		report := http.Handler(http.HandlerFunc(newReport(c, cfg.reportCost).serve))
		if reportShed != nil {
			report = reportShed.Middleware(report)
		}
		r.Method(http.MethodGet, "/report", report)
		if vis != nil {
			r.With(needsRedis).Get("/visits/{id}", vis.serve)
		}
		if st != nil {
			r.With(needsDB).Get("/stock/{id}", st.serve)
		}
	})
	return a, nil
}

// refresh is the background worker's loop: a tick a second.
func refresh(ctx context.Context, beat *liveness.Heartbeat) error {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		beat.Tick()
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

// item is what the API serves.
type item struct {
	ID   int    `json:"id"`
	Name string `json:"name"`
}

const cacheSize = 1000

// cache is loaded once at start-up and then only read.
type cache struct {
	items atomic.Pointer[map[int]item]
}

// load fills the cache in steps that take d in all, reporting progress.
func (c *cache) load(ctx context.Context, d time.Duration, p *startup.Progress) error {
	const steps = 20
	m := make(map[int]item, cacheSize)
	t := time.NewTicker(max(d/steps, time.Nanosecond))
	defer t.Stop()
	for s := range steps {
		for id := s * cacheSize / steps; id < (s+1)*cacheSize/steps; id++ {
			m[id+1] = item{ID: id + 1, Name: "item " + strconv.Itoa(id+1)}
		}
		if d > 0 {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-t.C:
			}
		}
		p.Count(s+1, steps)
	}
	c.items.Store(&m)
	return nil
}

func (c *cache) serveItem(w http.ResponseWriter, r *http.Request) {
	items := c.items.Load()
	if items == nil {
		// Unreachable behind WarmupGuard, but never serve a half-loaded cache.
		http.Error(w, "cache not loaded", http.StatusServiceUnavailable)
		return
	}
	id, err := strconv.Atoi(chi.URLParam(r, "id"))
	it, ok := (*items)[id]
	if err != nil || !ok {
		http.Error(w, "no such item", http.StatusNotFound)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(it) //nolint:errcheck // the client went away

}
