package probes_test

// The examples behind the snippets of README.md and docs/*.md. Each snippet
// names its function in a comment above it, and TestDocSnippets checks that
// its lines appear here in order. Lines marked "this example only" make an
// example finish quickly or print what it shows; the snippets leave them out.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/probekit/probes"
	"github.com/probekit/probes/admin"
	"github.com/probekit/probes/grpchealth"
	"github.com/probekit/probes/haproxy"
	"github.com/probekit/probes/history"
	"github.com/probekit/probes/liveness"
	"github.com/probekit/probes/metrics"
	"github.com/probekit/probes/readiness"
	"github.com/probekit/probes/readiness/certcheck"
	"github.com/probekit/probes/readiness/diskcheck"
	"github.com/probekit/probes/readiness/grpccheck"
	"github.com/probekit/probes/readiness/memcheck"
	"github.com/probekit/probes/readiness/pgxcheck"
	"github.com/probekit/probes/server"
	"github.com/probekit/probes/startup"
	"github.com/probekit/probes/systemd"
)

// docPinger stands for a database pool whose Ping succeeds.
type docPinger struct{}

func (docPinger) Ping(context.Context) error { return nil }

// docClient is a client that leaves no idle connection (and no
// goroutine) behind.
var docClient = &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 5 * time.Second}

// docGet returns the status and body of a GET of url.
func docGet(url string) (int, string) {
	resp, err := docClient.Get(url)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// docRun runs lc's background work until the returned function is called.
func docRun(lc *probes.Lifecycle) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- lc.Run(ctx) }()
	return func() { cancel(); <-done }
}

// docWait waits until the named check of g has a result with status want.
func docWait(g probes.Gate, name string, want probes.Status) {
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		if c, ok := g.Report().Check(name); ok && !c.Time.IsZero() && c.Status == want {
			return
		}
	}
	panic(fmt.Sprintf("check %q of %s: no %s result within 5s", name, g.Kind(), want))
}

// Example_quickStart is the README's quick start, in the recommended
// layout: the API on one listener, the probes on their own. It serves
// until SIGTERM; here the context ends it once the probes have answered.
func Example_quickStart() {
	var (
		apiAddr   = "127.0.0.1:0" // ":8080" in a container
		probeAddr = "127.0.0.1:0" // ":8081"
		loadCache = func(ctx context.Context, p *startup.Progress) error { p.Set(1); return nil }
		pool      = readiness.Pinger(docPinger{}) // *pgxpool.Pool, *sql.DB, ...
		items     = func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, `{"id":7}`) }
		log       = zap.NewNop()
	)
	ctx, stop := context.WithCancel(context.Background())
	addrs := make(chan [2]string, 1) // this example only
	run := func(ctx context.Context) error {
		apiLn, err := net.Listen("tcp", apiAddr) // bound first: what the balancers send traffic to
		if err != nil {
			return err
		}
		probeLn, err := net.Listen("tcp", probeAddr) // what the kubelet and the balancers' checks ask
		if err != nil {
			return err
		}
		addrs <- [2]string{apiLn.Addr().String(), probeLn.Addr().String()} // this example only

		lc := probes.NewLifecycle()
		warm, err := startup.New(lc, startup.Deadline(2*time.Minute))
		if err != nil {
			return err
		}
		if err := warm.Task("cache", loadCache); err != nil { // func(ctx, *startup.Progress) error
			return err
		}
		if _, err := liveness.New(lc); err != nil {
			return err
		}
		ready, err := readiness.New(lc)
		if err != nil {
			return err
		}
		db, err := readiness.Ping(pool) // or pgxcheck.New(pool): see docs/dependencies.md
		if err != nil {
			return err
		}
		if err := ready.Add("postgres", db, probes.Timeout(time.Second)); err != nil {
			return err
		}

		probeMux := http.NewServeMux()
		if _, err := server.Register(probeMux, lc); err != nil { // /startupz /livez /readyz /healthz
			return err
		}
		r := chi.NewRouter()
		r.With(server.WarmupGuard(lc, time.Second)).Get("/api/items/{id}", items)
		srv, err := server.New(&http.Server{Handler: r}, lc,
			server.Listener(apiLn),
			server.ProbeListener(probeLn, probeMux),
			server.DrainDelay(10*time.Millisecond), // this example only: 5s by default
			server.Logger(log))
		if err != nil {
			return err
		}
		return srv.Run(ctx) // runs the checks and the warm-up, serves until SIGTERM, then drains
	}

	done := make(chan error, 1)
	go func() { done <- run(ctx) }()
	var a [2]string
	select {
	case a = <-addrs:
	case err := <-done:
		panic(fmt.Sprintf("the quick start ended before it listened: %v", err))
	}
	code, body := docGet("http://" + a[1] + "/readyz")
	for deadline := time.Now().Add(5 * time.Second); code != http.StatusOK && time.Now().Before(deadline); code, body = docGet("http://" + a[1] + "/readyz") {
		time.Sleep(5 * time.Millisecond)
	}
	fmt.Print("probes :8081/readyz ", code, " ", body)
	code, body = docGet("http://" + a[0] + "/api/items/7")
	fmt.Print("api    :8080/api/items/7 ", code, " ", body)
	code, _ = docGet("http://" + a[0] + "/readyz")
	fmt.Println("api    :8080/readyz", code)
	stop()
	fmt.Println("Run:", <-done)
	// Output:
	// probes :8081/readyz 200 {"status":"pass","notes":["phase: ready"]}
	// api    :8080/api/items/7 200 {"id":7}
	// api    :8080/readyz 404
	// Run: <nil>
}

// Example_addPostgres adds PostgreSQL through the service's own pgx pool.
func Example_addPostgres() {
	ctx := context.Background()
	lc := probes.NewLifecycle()
	ready, err := readiness.New(lc)
	if err != nil {
		panic(err)
	}

	pool, err := pgxpool.New(ctx, os.Getenv("DATABASE_URL"))
	if err != nil {
		panic(err)
	}
	defer pool.Close() // in a service: server.AfterClose (see docs/shutdown.md)

	check, err := pgxcheck.New(pool) // pings through the pool: no connection per probe
	if err != nil {
		panic(err)
	}
	err = ready.Add("postgres", check, probes.Every(5*time.Second), probes.Timeout(time.Second))
	if err != nil {
		panic(err)
	}
}

// The generic checkers are built without touching the network; they run
// once the lifecycle runs.
func Example_otherDependencies() {
	lc := probes.NewLifecycle()
	ready, err := readiness.New(lc)
	if err != nil {
		panic(err)
	}
	var (
		sqlDB       readiness.Pinger = docPinger{} // *sql.DB
		searchCheck                  = probes.CheckFunc(func(context.Context) error { return nil })
	)
	add := func(name string, c probes.Checker, err error, opts ...probes.CheckOption) {
		if err == nil {
			err = ready.Add(name, c, opts...)
		}
		if err != nil {
			fmt.Println(err)
		}
	}

	up, err := readiness.HTTP("http://billing:8080/readyz") // an upstream's own readiness
	add("billing", up, err)
	tcp, err := readiness.TCP("cache:6379") // a TCP dial
	add("cache", tcp, err)
	dns, err := readiness.DNS("billing.internal") // a name that must resolve
	add("resolver", dns, err)
	pinger, err := readiness.Ping(sqlDB) // anything with Ping(ctx) error
	add("db", pinger, err)
	ready.Add("search", searchCheck, probes.NonCritical()) // failure warns (200) instead of failing

	_, err = readiness.TCP("cache") // no port
	fmt.Println(err != nil)
	for _, c := range ready.Report().Checks {
		fmt.Println(c.Name, "critical:", c.Critical, "shared:", c.Shared)
	}
	// Output:
	// true
	// billing critical: true shared: true
	// cache critical: true shared: true
	// db critical: true shared: true
	// resolver critical: true shared: true
	// search critical: false shared: true
}

// docRedis stands for go-redis's client, whose Ping returns a command.
type docRedis struct{}

type docStatusCmd struct{ err error }

func (c *docStatusCmd) Err() error { return c.err }

func (docRedis) Ping(context.Context) *docStatusCmd { return &docStatusCmd{} }

// A client whose Ping has another shape fits with one CheckFunc.
func Example_checkFunc() {
	lc := probes.NewLifecycle()
	ready, _ := readiness.New(lc)
	rdb := docRedis{}

	ready.Add("redis", probes.CheckFunc(func(ctx context.Context) error { return rdb.Ping(ctx).Err() }))

	c, _ := ready.Report().Check("redis")
	fmt.Println(c.Name, c.Status) // no result yet: a readiness check fails until it has one
	// Output:
	// redis fail
}

// A check of your own: nil passes, an error wrapping probes.ErrWarn warns,
// any other error fails; Observe adds observed values to the verbose body.
func Example_observe() {
	lc := probes.NewLifecycle()
	ready, _ := readiness.New(lc)
	lag := func(context.Context) (time.Duration, error) { return 12 * time.Second, nil } // this example only

	err := ready.Add("replica", probes.CheckFunc(func(ctx context.Context) error {
		d, err := lag(ctx) // honour ctx: it is cancelled at the check's timeout
		if err != nil {
			return err // fail
		}
		probes.Observe(ctx, probes.Observation{Measurement: "lag", Value: d.Seconds(), Unit: "s"})
		if d > 10*time.Second {
			return fmt.Errorf("replication lag %s: %w", d, probes.ErrWarn) // warn
		}
		return nil // pass
	}), probes.ComponentType("datastore"))
	if err != nil {
		panic(err)
	}

	stop := docRun(lc) // this example only: server.Server.Run does it
	docWait(ready, "replica", probes.Warn)
	stop()
	c, _ := ready.Report().Check("replica")
	fmt.Println(c.Status, c.Observations[0].Measurement, c.Observations[0].Value, c.Observations[0].Unit, c.Err)
	// Output:
	// warn lag 12 s replication lag 12s: warning
}

// Recheck and Trigger: a failing check runs again sooner than its
// interval, and the service can ask for a run when it sees the dependency
// fail first.
func Example_trigger() {
	lc := probes.NewLifecycle()
	ready, _ := readiness.New(lc)
	var check probes.Checker = probes.CheckFunc(func(context.Context) error { return nil })
	query := func(ctx context.Context) error { return nil } // a query through the pool

	err := ready.Add("postgres", check, probes.Every(5*time.Second), probes.Recheck(500*time.Millisecond))
	if err != nil {
		panic(err)
	}
	stock := func(w http.ResponseWriter, r *http.Request) {
		err := query(r.Context())
		if err != nil && r.Context().Err() == nil { // not when the client hung up
			ready.Trigger("postgres") // at most one execution per Recheck wait
		}
		if err != nil {
			http.Error(w, "service unavailable", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, `{"quantity":5}`)
	}
	rec := httptest.NewRecorder()
	stock(rec, httptest.NewRequest(http.MethodGet, "/api/stock/1", nil))
	fmt.Print(rec.Code, " ", rec.Body.String())
	// Output:
	// 200 {"quantity":5}
}

// Scopes: shared (the default for readiness) or local.
func Example_scopes() {
	lc := probes.NewLifecycle()
	ready, _ := readiness.New(lc)
	live, _ := liveness.New(lc)
	check := probes.CheckFunc(func(context.Context) error { return nil })
	proxyCheck := probes.CheckFunc(func(context.Context) error { return nil })

	ready.Add("postgres", check)                     // shared: the default for readiness
	ready.Add("replica", check, probes.Shared())     // the same, said aloud
	ready.Add("sidecar", proxyCheck, probes.Local()) // this instance's own fault: fail readiness

	fmt.Println(live.Add("db", check, probes.Shared()))
	for _, c := range ready.Report().Checks {
		fmt.Println(c.Name, "shared:", c.Shared)
	}
	// Output:
	// liveness: check "db": Shared(): these checks watch this process itself, so they are local
	// postgres shared: true
	// replica shared: true
	// sidecar shared: false
}

// Route guards: WarmupGuard outside, Needs inside.
func Example_needs() {
	lc := probes.NewLifecycle()
	ready, _ := readiness.New(lc)
	_ = ready.Add("postgres", probes.CheckFunc(func(context.Context) error { return nil }))
	stock := func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, `{"quantity":5}`) }
	r := chi.NewRouter()

	needsDB, err := server.Needs(ready, "postgres")
	if err != nil {
		panic(err)
	}
	r.With(server.WarmupGuard(lc, time.Second), needsDB).Get("/api/stock/{id}", stock)

	_ = lc.Start()
	rec := httptest.NewRecorder()
	r.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/api/stock/1", nil))
	fmt.Print(rec.Code, " Retry-After: ", rec.Header().Get("Retry-After"), " ", rec.Body.String())
	// Output:
	// 503 Retry-After: 1 service unavailable: warming
}

// A named group over chosen checks, for a monitor.
func Example_group() {
	lc := probes.NewLifecycle()
	ready, _ := readiness.New(lc)
	ok := probes.CheckFunc(func(context.Context) error { return nil })
	_ = ready.Add("postgres", ok)
	_ = ready.Add("replica", ok)
	r := chi.NewRouter()

	db, err := probes.NewGroup(lc, "db", "postgres", "replica")
	if err != nil {
		panic(err)
	}
	_, err = server.Mount(r, "/health/db", db) // /health/db and /health/db/{check}
	if err != nil {
		panic(err)
	}

	stop := docRun(lc)
	_ = lc.Start()
	_ = lc.MarkReady()
	docWait(ready, "postgres", probes.Pass)
	docWait(ready, "replica", probes.Pass)
	stop()
	for _, path := range []string{"/health/db", "/health/db/replica", "/health/db/search"} {
		rec := httptest.NewRecorder()
		r.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		fmt.Println(path, rec.Code, strings.SplitN(rec.Body.String(), ",", 2)[0])
	}
	// Output:
	// /health/db 200 {"status":"pass"
	// /health/db/replica 200 {"status":"pass"
	// /health/db/search 404 no such check

}

// An operator behind kubectl port-forward arrives from loopback and sees
// error texts; the kubelet and the balancers do not.
func Example_fromLoopback() {
	lc := probes.NewLifecycle(probes.Readers(probes.FromLoopback))
	ready, _ := readiness.New(lc)
	_ = ready.Add("postgres", probes.CheckFunc(func(context.Context) error {
		return errors.New("dial tcp 10.0.0.5:5432: connection refused")
	}), probes.Local())
	probeMux := http.NewServeMux()

	_, err := server.Register(probeMux, lc)
	if err != nil {
		panic(err)
	}

	stop := docRun(lc)
	_ = lc.Start()
	_ = lc.MarkReady()
	docWait(ready, "postgres", probes.Fail)
	stop()
	for _, peer := range []string{"127.0.0.1:50000", "10.0.0.9:50000"} {
		req := httptest.NewRequest(http.MethodGet, "/readyz?verbose", nil)
		req.RemoteAddr = peer
		req.Header.Set("Accept", "text/plain")
		rec := httptest.NewRecorder()
		probeMux.ServeHTTP(rec, req)
		fmt.Print("from ", peer, ":\n", rec.Body.String())
	}
	// Output:
	// from 127.0.0.1:50000:
	// [+]phase ok: ready
	// [-]postgres failed: dial tcp 10.0.0.5:5432: connection refused
	// readyz check failed
	// from 10.0.0.9:50000:
	// [+]phase ok: ready
	// [-]postgres failed: reason withheld
	// readyz check failed
}

// The production layout: the API behind a Shedder, the probes on their own
// listener, and a probe-aware drain. It serves until SIGTERM.
func Example_productionLayout() {
	lc := probes.NewLifecycle()
	if _, err := liveness.New(lc); err != nil {
		panic(err)
	}
	ready, err := readiness.New(lc)
	if err != nil {
		panic(err)
	}
	items := func(w http.ResponseWriter, r *http.Request) {}
	apiLn, err := net.Listen("tcp", ":8080")
	if err != nil {
		panic(err)
	}
	probeLn, err := net.Listen("tcp", ":8081")
	if err != nil {
		panic(err)
	}

	probeMux := http.NewServeMux()
	h, err := server.Register(probeMux, lc) // /startupz /livez /readyz /healthz
	if err != nil {
		panic(err)
	}

	shed, err := server.NewShedder(64) // API requests in flight at once
	if err != nil {
		panic(err)
	}
	ready.Add("load", shed, probes.Local()) // warns, never fails, while it sheds

	r := chi.NewRouter()
	r.Route("/api", func(r chi.Router) {
		r.Use(shed.Middleware, server.WarmupGuard(lc, time.Second))
		r.Get("/items/{id}", items)
	})
	srv, err := server.New(&http.Server{Handler: r}, lc,
		server.Listener(apiLn),                  // :8080, what the balancers send traffic to
		server.ProbeListener(probeLn, probeMux), // :8081, what the kubelet and the balancers' checks ask
		server.DrainUntilProbed(h.Readiness, 3, 30*time.Second))
	if err != nil {
		panic(err)
	}
	if err := srv.Run(context.Background()); err != nil {
		panic(err)
	}
}

// docPool stands for *pgxpool.Pool.
type docPool struct{}

func (docPool) Close() {}

// A probe-aware drain and a hook that closes the pool, and the longest stop
// they allow.
func Example_shutdown() {
	lc := probes.NewLifecycle()
	if _, err := readiness.New(lc); err != nil {
		panic(err)
	}
	r := chi.NewRouter()
	hs := &http.Server{Addr: ":8080", Handler: r}
	pool := docPool{}

	h, err := server.Register(r, lc)
	if err != nil {
		panic(err)
	}
	srv, err := server.New(hs, lc, server.DrainUntilProbed(h.Readiness, 3, 30*time.Second),
		server.AfterClose("pgx", 5*time.Second, func(context.Context) error { pool.Close(); return nil }))
	if err != nil {
		panic(err)
	}

	fmt.Println(srv.Timings().Stop()) // drain 30s + shutdown timeout 15s + hook 5s + 3s
	// Output:
	// 53s
}

// A quiet drain: it ends once API requests have stopped for a second,
// after the balancer's detection time (HAProxy inter 2s fall 5: 10s) and
// within a minute.
func Example_quietDrain() {
	lc := probes.NewLifecycle()
	if _, err := readiness.New(lc); err != nil {
		panic(err)
	}
	hs := &http.Server{Addr: ":8080", Handler: http.NewServeMux()}

	srv, err := server.New(hs, lc, server.DrainUntilQuiet(time.Second, 10*time.Second, 60*time.Second))
	if err != nil {
		panic(err)
	}

	t := srv.Timings()
	fmt.Println(t.DrainMin, t.DrainQuiet, t.Drain, t.Stop()) // the stop fits the maximum
	// Output:
	// 10s 1s 1m0s 1m18s
}

// gRPC health beside HTTP, one lifecycle and one drain. It serves until
// SIGTERM.
func Example_grpc() {
	lc := probes.NewLifecycle()
	if _, err := readiness.New(lc); err != nil {
		panic(err)
	}
	ctx := context.Background()
	hs := &http.Server{Addr: ":8080", Handler: http.NewServeMux()}
	grpcLn, err := net.Listen("tcp", ":9090")
	if err != nil {
		panic(err)
	}
	run := func() error {
		health, err := grpchealth.New(lc, grpchealth.Services("items.v1.Items"))
		if err != nil {
			return err
		}
		gs := grpc.NewServer(grpchealth.ServerOptions()...) // 5s handshake, 100 streams per connection
		health.Register(gs)
		// register your own services on gs here

		peer, err := grpchealth.Serving(gs, grpcLn, health) // the listener is bounded (MaxConns)
		if err != nil {
			return err
		}
		srv, err := server.New(hs, lc, server.Also("grpc", peer)) // hs may be nil for a service with gRPC only
		if err != nil {
			return err
		}
		return srv.Run(ctx) // HTTP and gRPC, one lifecycle, one drain
	}
	if err := run(); err != nil {
		panic(err)
	}
}

// Metrics mounted beside the probes before the server exists, and the
// server handed over once built.
func Example_metrics() {
	lc := probes.NewLifecycle()
	if _, err := readiness.New(lc); err != nil {
		panic(err)
	}
	probeMux := http.NewServeMux()
	hs := &http.Server{Handler: http.NewServeMux()}
	probeLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer probeLn.Close() // this example only: Run would close it

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m, err := metrics.Register(reg, lc) // before the lifecycle moves; gates before or after
	if err != nil {
		panic(err)
	}
	probeMux.Handle("/metrics", server.Monitoring(promhttp.HandlerFor(reg, promhttp.HandlerOpts{MaxRequestsInFlight: 4})))
	srv, err := server.New(hs, lc, server.ProbeListener(probeLn, probeMux))
	if err != nil {
		panic(err)
	}
	if err := m.Server(srv); err != nil { // the server's figures from the next scrape on
		panic(err)
	}

	rec := httptest.NewRecorder()
	probeMux.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	for line := range strings.SplitSeq(rec.Body.String(), "\n") {
		if strings.HasPrefix(line, "probes_drain_duration_seconds ") || strings.HasPrefix(line, `probes_phase{phase="cold"}`) {
			fmt.Println(line)
		}
	}
	// Output:
	// probes_drain_duration_seconds 0
	// probes_phase{phase="cold"} 1
}

// Under systemd: READY=1 once warm, STATUS= with the progress, STOPPING=1
// on drain, WATCHDOG=1 while liveness passes; a no-op without
// NOTIFY_SOCKET.
func Example_systemd() {
	lc := probes.NewLifecycle()
	if _, err := startup.New(lc); err != nil {
		panic(err)
	}
	if _, err := liveness.New(lc); err != nil {
		panic(err)
	}

	// After the startup and liveness gates: the notifier reads them.
	if _, err := systemd.New(lc); err != nil { // lc.Run (so Server.Run) runs it
		panic(err)
	}

	fmt.Println(lc.Phase())
	// Output:
	// cold
}

// Example_moreCheckers adds the checkers of readiness/grpccheck, certcheck,
// diskcheck and memcheck: an upstream the fleet shares, and three things
// only this instance has.
func Example_moreCheckers() {
	lc := probes.NewLifecycle()
	ready, err := readiness.New(lc)
	if err != nil {
		panic(err)
	}
	conn, err := grpc.NewClient("billing:9090", grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		panic(err)
	}
	defer conn.Close()
	add := func(name string, c probes.Checker, err error, opts ...probes.CheckOption) {
		if err == nil {
			err = ready.Add(name, c, opts...)
		}
		if err != nil {
			panic(err)
		}
	}
	billing, err := grpccheck.New(conn, "billing.v1.Billing")
	add("billing", billing, err) // an upstream the fleet shares
	cert, err := certcheck.File("/etc/tls/tls.crt")
	add("tls-cert", cert, err, probes.Local(), probes.Every(time.Minute))
	disk, err := diskcheck.New("/var/spool/app", diskcheck.FailBelow(diskcheck.Bytes(64<<20)))
	add("spool-disk", disk, err, probes.Local(), probes.ComponentType("system"))
	mem, err := memcheck.New()
	add("memory", mem, err, probes.Local(), probes.ComponentType("system"))
	fmt.Println(len(ready.Report().Checks), "checks")
	// Output: 4 checks
}

// Example_statusPage puts a live status page on the deep view: a browser
// opening /healthz gets HTML, everyone else JSON, and /history answers the
// history as JSON.
func Example_statusPage() {
	lc := probes.NewLifecycle()
	if _, err := readiness.New(lc); err != nil {
		panic(err)
	}
	hist, err := history.New(lc) // in any order with the gates
	if err != nil {
		panic(err)
	}
	defer hist.Close()
	page, err := history.NewPage(lc, hist)
	if err != nil {
		panic(err)
	}
	defer page.Close()
	probeMux := http.NewServeMux()
	if _, err := server.Register(probeMux, lc, server.Browsers(page)); err != nil {
		panic(err)
	}
	probeMux.Handle("/history", hist.Handler())

	for _, accept := range []string{"text/html", "application/json"} {
		req := httptest.NewRequest(http.MethodGet, "/healthz", nil)
		req.Header.Set("Accept", accept)
		rec := httptest.NewRecorder()
		probeMux.ServeHTTP(rec, req)
		fmt.Println(accept, "->", rec.Header().Get("Content-Type"), strings.Contains(rec.Body.String(), `data-phase="cold"`))
	}
	// Output:
	// text/html -> text/html; charset=utf-8 true
	// application/json -> application/health+json false
}

// Example_stateDir keeps the history in a state directory, and shows what
// the next instance on it knows of this one (docs/status-page.md).
func Example_stateDir() {
	stateDir, _ := os.MkdirTemp("", "state-") // this example only
	defer os.RemoveAll(stateDir)              // this example only
	for range 2 {                             // this example only: two runs of one container
		lc := probes.NewLifecycle()
		hist, err := history.New(lc, history.StateDir(stateDir)) // an emptyDir in Kubernetes
		if err != nil {
			panic(err)
		}
		for _, p := range hist.Previous() {
			fmt.Println("restarts:", hist.Restarts(), "- the last", p.Ended, "because", p.Cause)
		}
		_ = lc.Start()                    // this example only
		_ = lc.Drain("signal terminated") // this example only: what server.Server.Run does
		_ = lc.Stop()                     // this example only

		// Once the server has stopped: the end goes to the files.
		hist.Close()
	}
	// Output:
	// restarts: 1 - the last stopped because signal terminated
}

// Example_operators wires the admin socket and HAProxy's agent check beside
// the HTTP server (docs/operators.md).
func Example_operators() {
	dir, _ := os.MkdirTemp("", "operators-") // this example only
	defer os.RemoveAll(dir)                  // this example only
	socketPath := dir + "/admin.sock"        // this example only
	lc := probes.NewLifecycle()
	ready, err := readiness.New(lc)
	if err != nil {
		panic(err)
	}
	shed, err := server.NewShedder(64)
	if err != nil {
		panic(err)
	}
	if err := ready.Add("load", shed); err != nil {
		panic(err)
	}

	// probectl -socket PATH cordon|uncordon|status
	ctl, err := admin.New(lc, admin.Logger(zap.NewNop()))
	if err != nil {
		panic(err)
	}
	adminLn, err := admin.ListenUnix(socketPath) // mode 0600
	if err != nil {
		panic(err)
	}
	adminPeer, err := ctl.Serving(adminLn)
	if err != nil {
		panic(err)
	}

	// HAProxy: agent-check agent-port 8082, and weight 100 on the server line
	agent, err := haproxy.New(lc, haproxy.Capacity(shed))
	if err != nil {
		panic(err)
	}
	agentLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	agentPeer, err := agent.Serving(agentLn)
	if err != nil {
		panic(err)
	}

	srv, err := server.New(&http.Server{Handler: shed.Middleware(http.NotFoundHandler())}, lc,
		server.Also("admin", adminPeer),
		server.Also("haproxy agent", agentPeer))
	if err != nil {
		panic(err)
	}
	_ = srv              // this example only
	adminLn.Close()      // this example only
	agentLn.Close()      // this example only
	fmt.Println("wired") // this example only
	// Output: wired
}
