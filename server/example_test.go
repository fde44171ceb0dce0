package server_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/go-chi/chi/v5"
	"go.uber.org/zap"

	"github.com/probekit/probes"
	"github.com/probekit/probes/liveness"
	"github.com/probekit/probes/readiness"
	"github.com/probekit/probes/server"
	"github.com/probekit/probes/startup"
)

func ExampleRegister() {
	lc := probes.NewLifecycle()
	_, _ = liveness.New(lc)
	_, _ = readiness.New(lc)

	r := chi.NewRouter()
	_, _ = server.Register(r, lc) // every gate built on lc

	show := func(path string) {
		rec := httptest.NewRecorder()
		r.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		fmt.Print(path, " ", rec.Code, " ", rec.Body.String())
	}
	_ = lc.Start() // warm-up under way
	show("/livez")
	show("/readyz")
	_ = lc.MarkReady() // warm-up done
	show("/readyz")
	// Output:
	// /livez 200 {"status":"pass","notes":["phase: warming"]}
	// /readyz 503 {"status":"fail","notes":["phase: warming; not ready until warm-up is done"]}
	// /readyz 200 {"status":"pass","notes":["phase: ready"]}
}

func ExampleWarmupGuard() {
	lc := probes.NewLifecycle()
	api := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, `{"id":1}`) })
	h := server.WarmupGuard(lc, 2*time.Second)(api)

	for _, move := range []func() error{lc.Start, lc.MarkReady} {
		_ = move()
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/api/items/1", nil))
		fmt.Println(lc.Phase(), rec.Code, rec.Header().Get("Retry-After"))
	}
	// Output:
	// warming 503 2
	// ready 200
}

func ExampleServer_Run() {
	lc := probes.NewLifecycle()
	warm, _ := startup.New(lc)
	_ = warm.Task("cache", func(ctx context.Context, p *startup.Progress) error {
		p.Set(1) // load the cache here, reporting progress
		return nil
	})
	r := chi.NewRouter()
	_, _ = server.Register(r, lc)

	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	srv, _ := server.New(&http.Server{Handler: r}, lc, server.Listener(ln), server.DrainDelay(10*time.Millisecond))

	ctx, stop := context.WithCancel(context.Background())
	lc.Subscribe(func(t probes.Transition) {
		fmt.Println(t.To)
		if t.To == probes.Ready {
			stop() // in a real service: SIGTERM
		}
	})
	err := srv.Run(ctx) // runs the warm-up, serves, drains
	fmt.Println("Run:", err)
	// Output:
	// warming
	// ready
	// draining
	// stopped
	// Run: <nil>
}

// Example_quickStart is the README's quick start; it compiles but does not
// run, since it serves until SIGTERM.
func Example_quickStart() {
	var (
		ctx       = context.Background()
		loadCache = func(ctx context.Context, p *startup.Progress) error { p.Set(1); return nil }
		pool      readiness.Pinger // *pgxpool.Pool, *sql.DB, ...
		items     http.HandlerFunc
		log       = zap.NewExample()
	)
	if err := quickStart(ctx, loadCache, pool, items, log); err != nil {
		log.Fatal("exit", zap.Error(err))
	}
}

func quickStart(ctx context.Context, loadCache startup.TaskFunc, pool readiness.Pinger, items http.HandlerFunc, log *zap.Logger) error {
	lc := probes.NewLifecycle()
	warm, err := startup.New(lc, startup.Deadline(2*time.Minute))
	if err != nil {
		return err
	}
	if err := warm.Task("cache", loadCache); err != nil {
		return err
	}
	if _, err := liveness.New(lc); err != nil {
		return err
	}
	ready, err := readiness.New(lc)
	if err != nil {
		return err
	}
	db, err := readiness.Ping(pool) // or pgxcheck.New(pool), which also reports pool usage
	if err != nil {
		return err
	}
	if err := ready.Add("postgres", db, probes.Timeout(time.Second)); err != nil {
		return err
	}

	r := chi.NewRouter()
	if _, err := server.Register(r, lc); err != nil { // /startupz /livez /readyz
		return err
	}
	r.With(server.WarmupGuard(lc, time.Second)).Get("/api/items/{id}", items)
	srv, err := server.New(&http.Server{Addr: ":8080", Handler: r}, lc, server.Logger(log))
	if err != nil {
		return err
	}
	return srv.Run(ctx) // runs checks and warm-up, serves until SIGTERM, then drains
}

// A route that needs the database fails fast while the postgres check
// fails; the cache route keeps serving, readiness warns (the database is
// shared by the fleet) and the deep view fails for monitors.
func ExampleNeeds() {
	lc := probes.NewLifecycle()
	ready, _ := readiness.New(lc)
	var down atomic.Bool
	_ = ready.Add("postgres", probes.CheckFunc(func(context.Context) error {
		if down.Load() {
			return errors.New("connection refused")
		}
		return nil
	}), probes.Every(time.Minute))

	r := chi.NewRouter()
	_, _ = server.Register(r, lc)
	needsDB, _ := server.Needs(ready, "postgres")
	r.With(needsDB).Get("/api/stock/{id}", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "5 in stock") })
	r.Get("/api/items/{id}", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "item") })

	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- lc.Run(ctx) }()
	_ = lc.Start()
	_ = lc.MarkReady()
	wait := func(want probes.Status) { // until the check has said so
		for c, _ := ready.Report().Check("postgres"); c.Status != want || c.Time.IsZero(); c, _ = ready.Report().Check("postgres") {
			time.Sleep(time.Millisecond)
		}
	}
	wait(probes.Pass)
	down.Store(true)
	ready.Trigger("postgres")
	wait(probes.Fail)

	for _, path := range []string{"/api/stock/1", "/api/items/1", "/readyz", "/healthz"} {
		rec := httptest.NewRecorder()
		r.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		fmt.Print(path, " ", rec.Code, " ", rec.Body.String())
		if path == "/api/stock/1" {
			fmt.Println("Retry-After:", rec.Header().Get("Retry-After"))
		}
	}
	stop()
	<-done
	// Output:
	// /api/stock/1 503 service unavailable: this route needs postgres, which is failing
	// Retry-After: 60
	// /api/items/1 200 item
	// /readyz 200 {"status":"warn","notes":["phase: ready","warning: postgres"]}
	// /healthz 503 {"status":"fail","notes":["phase: ready","failing: readiness/postgres"]}
}

// A handler that sees Redis fail answers without it and says so: the
// redis check runs at once rather than an hour later, and the route's next
// request is refused fast. A 5xx answer or a request timeout would trigger
// the check the same way.
func ExampleFailed() {
	lc := probes.NewLifecycle()
	ready, _ := readiness.New(lc)
	var down atomic.Bool
	_ = ready.Add("redis", probes.CheckFunc(func(context.Context) error {
		if down.Load() {
			return errors.New("connection refused")
		}
		return nil
	}), probes.Every(time.Hour), probes.Recheck(10*time.Millisecond))

	needsRedis, _ := server.Needs(ready, "redis")
	visits := needsRedis(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if down.Load() { // the count failed: welcome the visitor without it
			server.Failed(w, "redis")
			fmt.Fprintln(w, "welcome")
			return
		}
		fmt.Fprintln(w, "welcome, visitor 42")
	}))

	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- lc.Run(ctx) }()
	_ = lc.Start()
	_ = lc.MarkReady()
	wait := func(want probes.Status) { // until the check has said so
		for c, _ := ready.Report().Check("redis"); c.Status != want || c.Time.IsZero(); c, _ = ready.Report().Check("redis") {
			time.Sleep(time.Millisecond)
		}
	}
	visit := func() {
		rec := httptest.NewRecorder()
		visits.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/visits", nil))
		fmt.Print(rec.Code, " ", rec.Body.String())
	}
	wait(probes.Pass)
	visit()
	down.Store(true) // Redis stops; its check would run again in an hour
	visit()
	wait(probes.Fail)
	visit()
	stop()
	<-done
	// Output:
	// 200 welcome, visitor 42
	// 200 welcome
	// 503 service unavailable: this route needs redis, which is failing
}

// A named group reports a subset of the checks for a monitor, with the
// same answers as the gates.
func ExampleMount() {
	lc := probes.NewLifecycle()
	ready, _ := readiness.New(lc)
	_ = ready.Add("postgres", probes.CheckFunc(func(context.Context) error { return nil }))
	_ = ready.Add("search", probes.CheckFunc(func(context.Context) error { return nil }), probes.NonCritical())

	db, err := probes.NewGroup(lc, "db", "postgres")
	if err != nil {
		fmt.Println(err)
		return
	}
	mux := http.NewServeMux()
	_, _ = server.Mount(mux, "/health/db", db)
	for _, path := range []string{"/health/db", "/health/db/search"} {
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		fmt.Print(path, " ", rec.Code, " ", rec.Body.String())
	}
	_, err = probes.NewGroup(lc, "db", "postgress")
	fmt.Println(err)
	// Output:
	// /health/db 503 {"status":"fail","notes":["phase: cold","failing: postgres"]}
	// /health/db/search 404 no such check
	// probes: group "db": no check or task "postgress" in any gate (have: postgres, search)
}

// A request beyond the bound is refused at once, and the Shedder, as a
// readiness check, warns.
func ExampleShedder() {
	shed, err := server.NewShedder(1)
	if err != nil {
		panic(err)
	}
	entered, release, done := make(chan struct{}), make(chan struct{}), make(chan struct{})
	report := shed.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(entered)
		<-release
	}))
	go func() {
		defer close(done)
		report.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/api/report", nil))
	}()
	<-entered // the one slot is taken

	rec := httptest.NewRecorder()
	report.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/api/report", nil))
	fmt.Print(rec.Code, " Retry-After: ", rec.Header().Get("Retry-After"), " ", rec.Body.String())
	fmt.Println("readiness warns:", errors.Is(shed.Check(context.Background()), probes.ErrWarn))
	close(release)
	<-done
	// Output:
	// 503 Retry-After: 1 service unavailable: too busy, try again
	// readiness warns: true
}

// The production layout: the API on one listener, behind a Shedder; the
// probes on another, which API load cannot starve.
func ExampleProbeListener() {
	lc := probes.NewLifecycle()
	_, _ = liveness.New(lc)
	ready, _ := readiness.New(lc)

	probeMux := http.NewServeMux()
	h, _ := server.Register(probeMux, lc)

	shed, _ := server.NewShedder(64)
	_ = ready.Add("load", shed, probes.Local())
	r := chi.NewRouter()
	r.Route("/api", func(r chi.Router) {
		r.Use(shed.Middleware, server.WarmupGuard(lc, time.Second))
		r.Get("/items/{id}", func(w http.ResponseWriter, r *http.Request) {})
	})

	apiLn, _ := net.Listen("tcp", "127.0.0.1:0")
	probeLn, _ := net.Listen("tcp", "127.0.0.1:0")
	srv, err := server.New(&http.Server{Handler: r}, lc,
		server.Listener(apiLn),
		server.ProbeListener(probeLn, probeMux),
		server.DrainUntilProbed(h.Readiness, 3, 30*time.Second))
	if err != nil {
		panic(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	fmt.Println(srv.Run(ctx)) // serves both until ctx ends, then drains (at most 30s)
}

// A program that takes the stop signals itself (a wrapper that passes them
// on after the drain, say) turns Run's own handling off and ends Run's
// context with the signal as its cause: the drain's reason, and so the
// timeline and the next instance's record, say what the signal meant.
func ExampleSignalStop() {
	lc := probes.NewLifecycle()
	_, _ = startup.New(lc) // no tasks: ready as Run starts
	r := chi.NewRouter()
	_, _ = server.Register(r, lc)
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	srv, _ := server.New(&http.Server{Handler: r}, lc, server.Listener(ln),
		server.Signals(), // none: the program handles SIGTERM itself
		server.DrainDelay(10*time.Millisecond), server.TerminationLog(""))

	ctx, stop := context.WithCancelCause(context.Background())
	lc.Subscribe(func(t probes.Transition) {
		switch t.To {
		case probes.Ready:
			stop(&server.SignalStop{Signal: syscall.SIGTERM}) // in a real program: on SIGTERM
		case probes.Draining:
			fmt.Println("draining:", t.Reason)
		}
	})
	_ = srv.Run(ctx)
	// Output:
	// draining: stopped by SIGTERM while ready and live: a stop from outside (a rolling update, a scale-in, an eviction)
}
