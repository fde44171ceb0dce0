package server_test

import (
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/probekit/probes"
	"github.com/probekit/probes/internal/testenv/testutil"
	"github.com/probekit/probes/readiness"
	"github.com/probekit/probes/server"
)

// deps is a readiness gate whose checks' health the test sets and whose
// executions it counts; the checks run every hour and are rechecked after
// a wait the test chooses, so that only a trigger runs them again soon.
type deps struct {
	ready *readiness.Gate
	gate  *counted
	down  map[string]*atomic.Bool
	runs  map[string]*atomic.Int64
}

// counted is a readiness gate that counts the triggers it gets.
type counted struct {
	*readiness.Gate
	mu        sync.Mutex
	triggered map[string]int
}

func (c *counted) Trigger(name string) {
	c.mu.Lock()
	c.triggered[name]++
	c.mu.Unlock()
	c.Gate.Trigger(name)
}

func (c *counted) triggers(name string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.triggered[name]
}

// newDeps returns a running, Ready lifecycle's readiness gate with the
// named checks, each run once and passing.
func newDeps(t *testing.T, recheck time.Duration, names ...string) *deps {
	t.Helper()
	lc := probes.NewLifecycle()
	ready, err := readiness.New(lc)
	if err != nil {
		t.Fatal(err)
	}
	d := &deps{ready: ready, gate: &counted{Gate: ready, triggered: map[string]int{}},
		down: map[string]*atomic.Bool{}, runs: map[string]*atomic.Int64{}}
	for _, name := range names {
		down, runs := new(atomic.Bool), new(atomic.Int64)
		d.down[name], d.runs[name] = down, runs
		check := probes.CheckFunc(func(context.Context) error {
			runs.Add(1)
			if down.Load() {
				return errors.New("connection refused")
			}
			return nil
		})
		if err := ready.Add(name, check, probes.Every(time.Hour), probes.Recheck(recheck)); err != nil {
			t.Fatal(err)
		}
	}
	testutil.Ready(t, lc)
	testutil.Background(t, lc.Run)
	for _, name := range names {
		testutil.Eventually(t, name+" checked", func() bool { return d.status(name) == probes.Pass && d.runs[name].Load() == 1 })
	}
	return d
}

func (d *deps) status(name string) probes.Status {
	c, _ := d.ready.Report().Check(name)
	return c.Status
}

// needs is server.Needs on d's counting gate, failing the test on error.
func (d *deps) needs(t *testing.T, checks ...string) func(http.Handler) http.Handler {
	t.Helper()
	mw, err := server.Needs(d.gate, checks...)
	if err != nil {
		t.Fatal(err)
	}
	return mw
}

// guarded is h behind a guard on a loopback HTTP server.
type guarded struct {
	url     string
	entered chan struct{} // receives as a request reaches the guard
	served  chan struct{} // receives once the guard has returned
}

// serveGuarded serves h behind guard on a loopback HTTP server, with outer
// (if not nil) around them.
func serveGuarded(t *testing.T, guard, outer func(http.Handler) http.Handler, h http.Handler) *guarded {
	t.Helper()
	g := &guarded{entered: make(chan struct{}, 1024), served: make(chan struct{}, 1024)}
	inner := guard(h)
	var root http.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		g.entered <- struct{}{}
		defer func() { g.served <- struct{}{} }()
		inner.ServeHTTP(w, r)
	})
	if outer != nil {
		root = outer(root)
	}
	ts := httptest.NewServer(root)
	t.Cleanup(ts.Close)
	g.url = ts.URL
	return g
}

// fetch requests url and returns the status and the body, or -1 and the
// error when there is no answer.
func fetch(ctx context.Context, c *http.Client, url string) (int, string) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return -1, err.Error()
	}
	res, err := c.Do(req)
	if err != nil {
		return -1, err.Error()
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		return -1, err.Error()
	}
	return res.StatusCode, string(body)
}

// deadline gives the request a context that ends after d, as a server's
// request timeout does.
func deadline(d time.Duration) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			ctx, cancel := context.WithTimeout(r.Context(), d)
			defer cancel()
			next.ServeHTTP(w, r.WithContext(ctx))
		})
	}
}

// answer answers code with a short body.
func answer(code int) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(code)
		io.WriteString(w, http.StatusText(code)) //nolint:errcheck
	}
}

// untilDone blocks until the request's context ends, then answers code, as
// a handler whose query ended with the context does.
func untilDone(code int) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done()
		w.WriteHeader(code)
	}
}

// The guard's next request is refused once a handler has answered 502:
// the check ran at once, not an hour later at its interval.
func TestNeedsTriggersOnFailedAnswer(t *testing.T) {
	d := newDeps(t, 10*time.Millisecond, "db")
	var failOnce atomic.Bool
	failOnce.Store(true)
	srv := serveGuarded(t, d.needs(t, "db"), nil, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if failOnce.CompareAndSwap(true, false) {
			http.Error(w, "bad gateway: the database did not answer", http.StatusBadGateway)
			return
		}
		io.WriteString(w, "ok") //nolint:errcheck
	}))
	d.down["db"].Store(true) // the check has not seen it: it would run again in an hour

	if code, body := fetch(t.Context(), http.DefaultClient, srv.url); code != http.StatusBadGateway {
		t.Fatalf("first request: got %d %q, want 502 from the handler", code, body)
	}
	testutil.Eventually(t, "the guard refuses", func() bool {
		code, body := fetch(t.Context(), http.DefaultClient, srv.url)
		return code == http.StatusServiceUnavailable && strings.Contains(body, "needs db")
	})
	if got := d.gate.triggers("db"); got != 1 {
		t.Errorf("triggers: got %d, want 1 (the 502; the guard's own 503s trigger nothing)", got)
	}
}

// What triggers the needed checks and what does not, each on a gate of
// its own: the guard's triggers are counted when it returns.
func TestNeedsTriggers(t *testing.T) {
	shortly := 20 * time.Millisecond
	for _, tt := range []struct {
		name    string
		handler http.Handler
		outer   func(http.Handler) http.Handler
		cancel  bool // the client goes away once the request reaches the guard
		want    int  // triggers of "db"
	}{
		{name: "200", handler: answer(http.StatusOK)},
		{name: "204", handler: answer(http.StatusNoContent)},
		{name: "no status written", handler: http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})},
		{name: "early hints then 200", handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusEarlyHints)
			w.WriteHeader(http.StatusOK)
		})},
		{name: "200 then a superfluous 500", handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, "ok")                       //nolint:errcheck
			w.WriteHeader(http.StatusInternalServerError) // ignored by net/http: the answer is 200
		})},
		{name: "404", handler: answer(http.StatusNotFound)},
		{name: "429", handler: answer(http.StatusTooManyRequests)},
		{name: "client went away", handler: untilDone(http.StatusServiceUnavailable), cancel: true},
		{name: "cancelled before the handler", handler: answer(http.StatusInternalServerError),
			outer: func(next http.Handler) http.Handler {
				return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					ctx, cancel := context.WithCancel(r.Context())
					cancel()
					next.ServeHTTP(w, r.WithContext(ctx))
				})
			}},
		{name: "500", handler: answer(http.StatusInternalServerError), want: 1},
		{name: "502", handler: answer(http.StatusBadGateway), want: 1},
		{name: "503 of the handler", handler: answer(http.StatusServiceUnavailable), want: 1},
		{name: "504", handler: answer(http.StatusGatewayTimeout), want: 1},
		{name: "deadline while the handler runs", handler: untilDone(http.StatusOK), outer: deadline(shortly), want: 1},
		{name: "deadline, nothing written", handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() }),
			outer: deadline(shortly), want: 1},
		{name: "TimeoutHandler outside", handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() }),
			outer: func(next http.Handler) http.Handler { return http.TimeoutHandler(next, shortly, "timeout") }, want: 1},
		{name: "TimeoutHandler inside", handler: http.TimeoutHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			<-r.Context().Done()
		}), shortly, "timeout"), want: 1},
		{name: "Failed, then 200", handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			server.Failed(w, "db")
			io.WriteString(w, "from the cache") //nolint:errcheck
		}), want: 1},
		{name: "Failed on a goroutine", handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			var wg sync.WaitGroup
			wg.Go(func() { server.Failed(w, "db") })
			wg.Wait()
		}), want: 1},
		{name: "Failed through a wrapper that unwraps", handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			server.Failed(&unwrapper{w}, "db")
		}), want: 1},
		{name: "Failed for a check the guard does not need", handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			server.Failed(w, "cache")
		})},
		{name: "Failed and 500", handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			server.Failed(w, "db")
			w.WriteHeader(http.StatusInternalServerError)
		}), want: 2},
	} {
		t.Run(tt.name, func(t *testing.T) {
			d := newDeps(t, time.Millisecond, "db", "cache")
			srv := serveGuarded(t, d.needs(t, "db"), tt.outer, tt.handler)
			ctx := t.Context()
			if tt.cancel {
				var cancel context.CancelFunc
				ctx, cancel = context.WithCancel(ctx)
				go func() {
					<-srv.entered
					cancel()
				}()
			}
			code, body := fetch(ctx, http.DefaultClient, srv.url)
			<-srv.served
			if got := d.gate.triggers("db"); got != tt.want {
				t.Errorf("triggers of db after %d %q: got %d, want %d", code, body, got, tt.want)
			}
			if got := d.gate.triggers("cache"); got != 0 {
				t.Errorf("triggers of cache, which the guard does not need: got %d, want 0", got)
			}
			if tt.want > 0 {
				testutil.Eventually(t, "the triggered execution", func() bool { return d.runs["db"].Load() >= 2 })
			} else if got := d.runs["db"].Load(); got != 1 {
				t.Errorf("executions of db: got %d, want 1", got)
			}
		})
	}
}

// unwrapper is a handler's own writer around the guard's, such as a
// logging middleware's, with the Unwrap that http.ResponseController uses.
type unwrapper struct{ http.ResponseWriter }

func (u *unwrapper) Unwrap() http.ResponseWriter { return u.ResponseWriter }

// A 503 that a guard or a Shedder inside answers on its own says nothing
// of the outer guard's dependency.
func TestNeedsIgnoresRefusalsInside(t *testing.T) {
	t.Run("guard", func(t *testing.T) {
		d := newDeps(t, time.Millisecond, "db", "cache")
		d.down["cache"].Store(true)
		d.ready.Trigger("cache")
		testutil.Eventually(t, "cache failing", func() bool { return d.status("cache") == probes.Fail })
		inner := d.needs(t, "cache")
		srv := serveGuarded(t, d.needs(t, "db"), nil, inner(answer(http.StatusOK)))
		if code, body := fetch(t.Context(), http.DefaultClient, srv.url); code != http.StatusServiceUnavailable || !strings.Contains(body, "needs cache") {
			t.Fatalf("got %d %q, want the inner guard's 503", code, body)
		}
		<-srv.served
		if got := d.gate.triggers("db"); got != 0 {
			t.Errorf("triggers of db: got %d, want 0", got)
		}
	})
	t.Run("Shedder", func(t *testing.T) {
		d := newDeps(t, time.Millisecond, "db")
		shed, err := server.NewShedder(1)
		if err != nil {
			t.Fatal(err)
		}
		entered, release := make(chan struct{}), make(chan struct{})
		srv := serveGuarded(t, d.needs(t, "db"), nil, shed.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			close(entered)
			<-release
		})))
		first := make(chan int, 1)
		go func() {
			code, _ := fetch(t.Context(), http.DefaultClient, srv.url)
			first <- code
		}()
		<-entered
		if code, body := fetch(t.Context(), http.DefaultClient, srv.url); code != http.StatusServiceUnavailable {
			t.Fatalf("second request: got %d %q, want the Shedder's 503", code, body)
		}
		<-srv.served
		if got := d.gate.triggers("db"); got != 0 {
			t.Errorf("triggers of db: got %d, want 0", got)
		}
		close(release)
		if code := <-first; code != http.StatusOK {
			t.Errorf("first request: got %d, want 200", code)
		}
	})
}

// A flood of failing requests runs the check at most once per Recheck
// wait, with no goroutine or queue per request.
func TestNeedsFloodIsBounded(t *testing.T) {
	const gap = 20 * time.Millisecond
	d := newDeps(t, gap, "db")
	srv := serveGuarded(t, d.needs(t, "db"), nil, answer(http.StatusInternalServerError))
	tr := &http.Transport{MaxIdleConnsPerHost: 1000}
	t.Cleanup(tr.CloseIdleConnections)
	keepAlive := &http.Client{Transport: tr}

	began := time.Now()
	var wg sync.WaitGroup
	var answered atomic.Int64
	for range 1000 {
		wg.Go(func() {
			if code, body := fetch(t.Context(), keepAlive, srv.url); code != http.StatusInternalServerError {
				t.Errorf("got %d %q, want the handler's 500 (the check passes)", code, body)
				return
			}
			answered.Add(1)
		})
	}
	wg.Wait()
	elapsed := time.Since(began)
	if answered.Load() != 1000 {
		t.Fatalf("%d of 1000 requests answered", answered.Load())
	}
	// The first execution, one per gap since the flood began, one pending.
	most := 1 + int64(elapsed/gap) + 2
	if n := d.runs["db"].Load(); n > most {
		t.Errorf("1000 failing requests over %s ran the check %d times; want at most %d (one per %s)", elapsed, n, most, gap)
	}
	if n := d.gate.triggers("db"); n != 1000 {
		t.Errorf("triggers: got %d, want 1000 (bounded by the gate, not dropped by the guard)", n)
	}
}

// Requests of every kind race the check's verdict flipping and triggers
// of their own; every answer is the handler's or the guard's.
func TestNeedsRace(t *testing.T) {
	d := newDeps(t, time.Millisecond, "db")
	srv := serveGuarded(t, d.needs(t, "db"), deadline(time.Second), http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Query().Get("do") {
		case "fail":
			w.WriteHeader(http.StatusInternalServerError)
		case "report":
			var wg sync.WaitGroup
			for range 2 {
				wg.Go(func() { server.Failed(w, "db") })
			}
			wg.Wait()
		case "stream":
			io.WriteString(w, "a") //nolint:errcheck
			http.NewResponseController(w).Flush()
		}
	}))
	tr := &http.Transport{MaxIdleConnsPerHost: 8}
	t.Cleanup(tr.CloseIdleConnections)
	keepAlive := &http.Client{Transport: tr}

	stop := make(chan struct{})
	var flipper sync.WaitGroup
	flipper.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
				d.down["db"].Store(rand.IntN(2) == 0)
				d.ready.Trigger("db")
				time.Sleep(time.Duration(rand.IntN(2)) * time.Millisecond)
			}
		}
	})
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for i := range 150 {
				do := []string{"ok", "fail", "report", "stream"}[i%4]
				code, body := fetch(t.Context(), keepAlive, srv.url+"?do="+do)
				switch {
				case code == http.StatusServiceUnavailable && strings.Contains(body, "needs db"):
				case code == http.StatusInternalServerError && do == "fail":
				case code == http.StatusOK && do != "fail":
				default:
					t.Errorf("%s: got %d %q", do, code, body)
				}
			}
		})
	}
	wg.Wait()
	close(stop)
	flipper.Wait()
}

// What handlers look for on a ResponseWriter works behind the guard, and
// http.ResponseController reaches the server's writer.
func TestNeedsKeepsWriterInterfaces(t *testing.T) {
	for _, tt := range []struct {
		name    string
		handler http.HandlerFunc
		want    string
	}{
		{"Flusher", func(w http.ResponseWriter, r *http.Request) {
			f, ok := w.(http.Flusher)
			if !ok {
				http.Error(w, "not a Flusher", http.StatusTeapot)
				return
			}
			io.WriteString(w, "a") //nolint:errcheck
			f.Flush()
			if err := http.NewResponseController(w).Flush(); err != nil {
				http.Error(w, err.Error(), http.StatusTeapot)
				return
			}
			io.WriteString(w, "b") //nolint:errcheck
		}, "ab"},
		{"ReaderFrom", func(w http.ResponseWriter, r *http.Request) {
			rf, ok := w.(io.ReaderFrom)
			if !ok {
				http.Error(w, "not a ReaderFrom", http.StatusTeapot)
				return
			}
			rf.ReadFrom(strings.NewReader("copied")) //nolint:errcheck
		}, "copied"},
		{"Hijacker", func(w http.ResponseWriter, r *http.Request) {
			h, ok := w.(http.Hijacker)
			if !ok {
				http.Error(w, "not a Hijacker", http.StatusTeapot)
				return
			}
			conn, buf, err := h.Hijack()
			if err != nil {
				http.Error(w, err.Error(), http.StatusTeapot)
				return
			}
			defer conn.Close()
			buf.WriteString("HTTP/1.1 200 OK\r\nContent-Length: 8\r\nConnection: close\r\n\r\nhijacked") //nolint:errcheck
			buf.Flush()                                                                                  //nolint:errcheck
		}, "hijacked"},
		{"ResponseController", func(w http.ResponseWriter, r *http.Request) {
			rc := http.NewResponseController(w)
			for _, err := range []error{rc.SetWriteDeadline(time.Now().Add(time.Minute)), rc.SetReadDeadline(time.Time{}), rc.EnableFullDuplex()} {
				if err != nil {
					http.Error(w, err.Error(), http.StatusTeapot)
					return
				}
			}
			io.WriteString(w, "controlled") //nolint:errcheck
		}, "controlled"},
		{"Pusher on HTTP/1", func(w http.ResponseWriter, r *http.Request) {
			p, ok := w.(http.Pusher)
			if !ok {
				http.Error(w, "not a Pusher", http.StatusTeapot)
				return
			}
			if err := p.Push("/style.css", nil); !errors.Is(err, http.ErrNotSupported) {
				http.Error(w, "push: "+errString(err), http.StatusTeapot)
				return
			}
			io.WriteString(w, "not pushed") //nolint:errcheck
		}, "not pushed"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			d := newDeps(t, time.Millisecond, "db")
			srv := serveGuarded(t, d.needs(t, "db"), nil, tt.handler)
			if code, body := fetch(t.Context(), http.DefaultClient, srv.url); code != http.StatusOK || body != tt.want {
				t.Errorf("got %d %q, want 200 %q", code, body, tt.want)
			}
			<-srv.served
			if got := d.gate.triggers("db"); got != 0 {
				t.Errorf("triggers: got %d, want 0", got)
			}
		})
	}
}

func errString(err error) string {
	if err == nil {
		return "<nil>"
	}
	return err.Error()
}

// A gate that cannot run a check on demand is not triggered, and its
// guard hands the handler the server's own writer.
func TestNeedsWithoutTrigger(t *testing.T) {
	d := newDeps(t, time.Millisecond, "db")
	g := struct{ probes.Gate }{d.gate} // Trigger is not in probes.Gate
	needs, err := server.Needs(g, "db")
	if err != nil {
		t.Fatal(err)
	}
	srv := serveGuarded(t, needs, nil, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, ok := w.(interface{ Unwrap() http.ResponseWriter }); ok {
			http.Error(w, "wrapped", http.StatusTeapot)
			return
		}
		server.Failed(w, "db")
		w.WriteHeader(http.StatusInternalServerError)
	}))
	if code, body := fetch(t.Context(), http.DefaultClient, srv.url); code != http.StatusInternalServerError {
		t.Fatalf("got %d %q, want 500", code, body)
	}
	<-srv.served
	if got := d.gate.triggers("db"); got != 0 {
		t.Errorf("triggers: got %d, want 0", got)
	}
}

// Failed with no guard on the path does nothing and allocates nothing.
func TestFailedWithoutGuard(t *testing.T) {
	for _, tt := range []struct {
		name string
		w    http.ResponseWriter
	}{
		{"recorder", httptest.NewRecorder()},
		{"wrapper", &unwrapper{httptest.NewRecorder()}},
		{"nil", nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if n := testing.AllocsPerRun(100, func() { server.Failed(tt.w, "db") }); n != 0 {
				t.Errorf("allocations: got %v, want 0", n)
			}
		})
	}
}
