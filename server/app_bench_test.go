package server_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/probekit/probes"
	"github.com/probekit/probes/internal/testenv/testutil"
	"github.com/probekit/probes/readiness"
	"github.com/probekit/probes/server"
)

// BenchmarkAppRequest times an application request over real HTTP on
// loopback, with keep-alive clients in parallel. "chi" is a chi router with
// one JSON route on a plain http.Server: the floor. "framework" is the same
// router and route behind what the framework adds to every application
// request: Server.Run's drain tracking, connection bound and connection
// defaults, WarmupGuard, a Needs guard and a Shedder. The target (DESIGN
// section 10) is at least 0.97x the floor's requests per second, that is
// at most 1/0.97 of its ns/op.
func BenchmarkAppRequest(b *testing.B) {
	route := func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"id":7,"name":"item 7"}`+"\n") //nolint:errcheck
	}
	bare := func(newServer func() *http.Server) func(b *testing.B) {
		return func(b *testing.B) {
			r := chi.NewRouter()
			r.Get("/api/items/{id}", route)
			hs := newServer()
			hs.Handler = r
			ln := testutil.Listen(b)
			go hs.Serve(ln) //nolint:errcheck // closed below
			defer hs.Close()
			hammer(b, "http://"+ln.Addr().String()+"/api/items/7")
		}
	}
	// The same connection settings as New gives the framework's server.
	b.Run("chi", bare(func() *http.Server {
		return &http.Server{ReadHeaderTimeout: server.DefaultReadHeaderTimeout, ReadTimeout: server.DefaultReadTimeout,
			IdleTimeout: server.DefaultIdleTimeout, MaxHeaderBytes: server.DefaultMaxHeaderBytes}
	}))
	// net/http's zero settings, which leave a server open to slow clients.
	b.Run("chi-no-timeouts", bare(func() *http.Server { return &http.Server{} }))
	b.Run("framework", func(b *testing.B) {
		lc, _, r := guardedRoute(b, route)
		ln := testutil.Listen(b)
		srv, err := server.New(&http.Server{Handler: r}, lc, server.Listener(ln), server.DrainDelay(0), server.Signals())
		if err != nil {
			b.Fatal(err)
		}
		testutil.Ready(b, lc)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- srv.Run(ctx) }()
		defer func() {
			cancel()
			if err := <-done; err != nil {
				b.Error(err)
			}
		}()
		hammer(b, "http://"+ln.Addr().String()+"/api/items/7")
	})
}

// hammer GETs url from parallel keep-alive clients, b.N times in all.
func hammer(b *testing.B, url string) {
	tr := &http.Transport{MaxIdleConnsPerHost: 64}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}
	get := func() error {
		res, err := client.Get(url)
		if err != nil {
			return err
		}
		io.Copy(io.Discard, res.Body) //nolint:errcheck
		res.Body.Close()
		if res.StatusCode != http.StatusOK {
			return &statusError{res.StatusCode}
		}
		return nil
	}
	// The server is up and the route answers (the guard's check has run).
	deadline := time.Now().Add(10 * time.Second)
	for err := get(); err != nil; err = get() {
		if time.Now().After(deadline) {
			b.Fatal(err)
		}
		time.Sleep(time.Millisecond)
	}
	b.ReportAllocs()
	b.SetParallelism(4)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := get(); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

type statusError struct{ code int }

func (e *statusError) Error() string { return http.StatusText(e.code) }

// BenchmarkAppHandler is BenchmarkAppRequest without the network: the same
// route through a chi router alone ("chi") and behind what the framework
// adds to it ("framework": Run's request tracking, a Shedder, WarmupGuard
// and a Needs guard), into a discarding writer. The difference is the
// framework's cost per application request, free of loopback noise.
func BenchmarkAppHandler(b *testing.B) {
	route := func(w http.ResponseWriter, r *http.Request) {
		w.Header()["Content-Type"] = []string{"application/json"}
		io.WriteString(w, `{"id":7,"name":"item 7"}`+"\n") //nolint:errcheck
	}
	req := httptest.NewRequest(http.MethodGet, "/api/items/7", nil)
	b.Run("chi", func(b *testing.B) {
		r := chi.NewRouter()
		r.Get("/api/items/{id}", route)
		serve(b, "discard", r, req)
	})
	b.Run("framework", func(b *testing.B) {
		lc, ready, r := guardedRoute(b, route)
		srv, err := server.New(&http.Server{}, lc)
		if err != nil {
			b.Fatal(err)
		}
		testutil.Ready(b, lc)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		go lc.Run(ctx) //nolint:errcheck // cancelled below
		testutil.Eventually(b, "db checked", func() bool {
			rep := ready.Report()
			c, _ := rep.Check("db")
			return c.Status == probes.Pass
		})
		serve(b, "discard", server.Track(srv, r), req)
	})
}

// guardedRoute returns a ready lifecycle and a chi router serving route
// behind a Shedder, WarmupGuard and a Needs guard on a readiness check
// "db" that passes.
func guardedRoute(b *testing.B, route http.HandlerFunc) (*probes.Lifecycle, *readiness.Gate, chi.Router) {
	lc := probes.NewLifecycle()
	ready, err := readiness.New(lc)
	if err != nil {
		b.Fatal(err)
	}
	if err := ready.Add("db", probes.CheckFunc(func(context.Context) error { return nil })); err != nil {
		b.Fatal(err)
	}
	needs, err := server.Needs(ready, "db")
	if err != nil {
		b.Fatal(err)
	}
	shed, err := server.NewShedder(1 << 20)
	if err != nil {
		b.Fatal(err)
	}
	r := chi.NewRouter()
	r.With(shed.Middleware, server.WarmupGuard(lc, time.Second), needs).Get("/api/items/{id}", route)
	return lc, ready, r
}
