package server_test

import (
	"encoding/json"
	"errors"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"
	"go.uber.org/goleak"

	"github.com/probekit/probes"
	"github.com/probekit/probes/internal/broadcast"
	"github.com/probekit/probes/readiness"
	"github.com/probekit/probes/server"
)

func TestMain(m *testing.M) {
	if mode := os.Getenv(childEnv); mode != "" {
		os.Exit(child(mode)) // the test binary as a child process: see termination_test.go
	}
	goleak.VerifyTestMain(m)
}

// stubGate is a gate whose report the test sets.
type stubGate struct {
	lc      *probes.Lifecycle // nil: anonymous readers only
	mu      sync.Mutex
	rep     probes.Report
	changes broadcast.B
	quiet   atomic.Uint64 // changes that are not announced
}

func (g *stubGate) Kind() probes.Kind { return g.Report().Gate }

func (g *stubGate) Lifecycle() *probes.Lifecycle { return g.lc }

func (g *stubGate) Report() probes.Report {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.rep
}

func (g *stubGate) Version() uint64 { return g.changes.Version() }

func (g *stubGate) Revision() uint64 { return g.changes.Version() + g.quiet.Load() }

func (g *stubGate) Subscribe(fn func()) func() { return g.changes.Subscribe(fn) }

func (g *stubGate) set(r probes.Report) {
	g.mu.Lock()
	g.rep = r
	g.mu.Unlock()
	g.changes.Notify()
}

// setQuietly changes the report as a result that changes no verdict does:
// the revision grows, nobody is told.
func (g *stubGate) setQuietly(r probes.Report) {
	g.mu.Lock()
	g.rep = r
	g.quiet.Add(1)
	g.mu.Unlock()
}

const secret = "connection refused by 10.0.0.7"

var when = time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)

// failingReadiness: Ready, a critical check failing, a non-critical one
// failing, one passing.
func failingReadiness() probes.Report {
	return probes.Report{
		Gate: probes.Readiness, Phase: probes.Ready, Base: probes.Pass, Notes: []string{"phase: ready"},
		Checks: []probes.Result{
			{Name: "cache", ComponentType: "component", Status: probes.Fail, Err: errors.New("evicted"), Time: when, Duration: 2 * time.Millisecond},
			{Name: "db", ComponentType: "datastore", Critical: true, Status: probes.Fail, Err: errors.New(secret), Time: when, Duration: 1500 * time.Microsecond},
			{Name: "queue", ComponentType: "component", Critical: true, Status: probes.Pass, Time: when},
			{Name: "readyz-db", ComponentType: "datastore", Critical: true, Status: probes.Pass, Time: when},
		},
	}
}

// newMux mounts g's handler as Register would, on a ServeMux.
func newMux(g probes.Gate, opts ...server.HandlerOption) http.Handler {
	mux := http.NewServeMux()
	mount(mux, newHandler(g, opts...))
	return mux
}

func mount(m server.Mux, h *server.Handler) {
	m.Handle("/readyz", h)
	m.Handle("/readyz/{check}", h)
}

func newHandler(g probes.Gate, opts ...server.HandlerOption) *server.Handler {
	h, err := server.NewHandler(g, opts...)
	if err != nil {
		panic(err)
	}
	return h
}

func authorizeHeader(r *http.Request) bool { return r.Header.Get("X-Debug") == "yes" }

// debugReaders is a lifecycle whose read policy authorises X-Debug: yes.
func debugReaders() *probes.Lifecycle { return probes.NewLifecycle(probes.Readers(authorizeHeader)) }

// Detailed answers are rendered once per revision and read after that, yet
// show a new result that changed no verdict at the very next request.
func TestDetailsFollowEveryResult(t *testing.T) {
	g := &stubGate{rep: failingReadiness(), lc: debugReaders()}
	h := newMux(g)
	get := func(target string, debug bool) string {
		req := httptest.NewRequest(http.MethodGet, target, nil)
		if debug {
			req.Header.Set("X-Debug", "yes")
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec.Body.String()
	}
	targets := []string{"/readyz?verbose", "/readyz/db", "/readyz?verbose&exclude=queue"}
	for _, target := range targets {
		if first, again := get(target, false), get(target, false); first != again {
			t.Fatalf("%s: two reads of one revision differ:\n%s\n%s", target, first, again)
		}
	}

	rep := failingReadiness()
	rep.Checks[1].Duration = 7 * time.Millisecond
	rep.Checks[1].Err = errors.New("timeout from 10.0.0.8")
	g.setQuietly(rep)
	for _, target := range targets {
		if body := get(target, false); !strings.Contains(body, `"observedValue":7,`) {
			t.Errorf("%s after a quiet result: %s, want the new observed value", target, body)
		}
		if body := get(target, true); !strings.Contains(body, "timeout from 10.0.0.8") || strings.Contains(body, secret) {
			t.Errorf("%s authorised after a quiet result: %s, want the new error only", target, body)
		}
	}
	if body := get("/readyz", true); !strings.Contains(body, "timeout from 10.0.0.8") {
		t.Errorf("/readyz authorised after a quiet result: %s, want the new error", body)
	}
}

func TestHTTPContract(t *testing.T) {
	g := &stubGate{rep: failingReadiness(), lc: debugReaders()}
	h := newMux(g, server.Service(server.Info{Version: "1", ServiceID: "items"}))
	tests := []struct {
		name, method, target, accept string
		debug, direct                bool
		code                         int
		ctype                        string
		has, lacks                   []string
	}{
		{name: "aggregate fails", target: "/readyz", code: 503, ctype: "application/health+json",
			has: []string{`"status":"fail"`, `"version":"1"`, `"serviceId":"items"`, `"notes":["phase: ready","failing: db","warning: cache"]`}, lacks: []string{"checks", secret, "output"}},
		{name: "authorised aggregate says why, once", target: "/readyz", debug: true, code: 503,
			has: []string{`"output":"cache: evicted; db: ` + secret + `"`}, lacks: []string{"checks"}},
		{name: "json when asked", target: "/readyz", accept: "application/json, text/plain", code: 503, ctype: "application/health+json"},
		{name: "verbose lists checks without reasons", target: "/readyz?verbose", code: 503, ctype: "application/health+json",
			has:   []string{`"db:responseTime":[{"componentType":"datastore","observedValue":1.5,"observedUnit":"ms","status":"fail","time":"2026-11-21T12:00:00Z"}]`, `"queue:responseTime"`},
			lacks: []string{secret, "evicted", "output"}},
		{name: "authorised verbose shows reasons", target: "/readyz?verbose", debug: true, code: 503,
			has: []string{`"output":"` + secret + `"`, `"output":"evicted"`}},
		{name: "exclude the critical failure: warn", target: "/readyz?exclude=db", code: 200, has: []string{`"status":"warn"`}},
		{name: "exclude unknown: warning note", target: "/readyz?exclude=nope&exclude=db", code: 200,
			has: []string{`no matches for \"nope\"`}, lacks: []string{`\"db\"`}},
		{name: "text form", target: "/readyz", accept: "text/plain", code: 503, ctype: "text/plain; charset=utf-8",
			has: []string{"[+]phase ok: ready\n", "[-]db failed: reason withheld\n", "[+]queue ok\n", "readyz check failed\n"}, lacks: []string{secret}},
		{name: "text verbose exclude", target: "/readyz?verbose&exclude=db", accept: "text/plain", code: 200,
			has: []string{"[+]db excluded: ok\n", "[+]cache warn: failing, not critical: reason withheld\n", "readyz check passed\n"}, lacks: []string{"[-]cache"}},
		{name: "text authorised", target: "/readyz?verbose", accept: "text/plain", debug: true, code: 503,
			has: []string{"[-]db failed: " + secret + "\n"}},
		{name: "one check passing", target: "/readyz/queue", code: 200, has: []string{`"status":"pass"`, `"queue:responseTime"`}},
		{name: "one check failing", target: "/readyz/db", code: 503, has: []string{`"status":"fail"`}, lacks: []string{secret}},
		{name: "one check text", target: "/readyz/db", accept: "text/plain", code: 503, has: []string{"db failed: reason withheld"}},
		{name: "non-critical check alone answers its own verdict", target: "/readyz/cache", code: 503, has: []string{`"status":"fail"`}},
		{name: "one check authorised", target: "/readyz/db", debug: true, code: 503, has: []string{`"output":"` + secret + `"`}},
		{name: "one check text authorised", target: "/readyz/db", accept: "text/plain", debug: true, code: 503, has: []string{"db failed: " + secret}},
		{name: "text form authorised without verbose", target: "/readyz", accept: "text/plain", debug: true, code: 503,
			has: []string{"[-]db failed: " + secret + "\n"}},
		{name: "text/* asks for text", target: "/readyz", accept: "text/*", code: 503, ctype: "text/plain; charset=utf-8"},
		{name: "media types are case-insensitive", target: "/readyz", accept: "Text/Plain", code: 503, ctype: "text/plain; charset=utf-8"},
		{name: "specific range beats wildcard", target: "/readyz", accept: "text/*;q=0.1, text/plain;q=0.9, */*;q=0.5", code: 503, ctype: "text/plain; charset=utf-8"},
		{name: "wildcard tie goes to json", target: "/readyz", accept: "*/*", code: 503, ctype: "application/health+json"},
		{name: "malformed pair keeps the valid exclude", target: "/readyz?exclude=db&utm=%zz", code: 200, has: []string{`"status":"warn"`}},
		{name: "unknown check", target: "/readyz/nope", code: 404},
		{name: "too deep", target: "/readyz/db/x", code: 404},
		{name: "a check named after the gate", target: "/readyz/readyz-db", code: 200},
		{name: "handler without routes answers for the gate", target: "/readyz/db", direct: true, code: 503, has: []string{`"notes"`}},
		{name: "text preferred by q-value", target: "/readyz", accept: "application/json;q=0.5, text/plain", code: 503, ctype: "text/plain; charset=utf-8"},
		{name: "json preferred by q-value", target: "/readyz", accept: "text/plain;q=0.2, application/health+json", code: 503, ctype: "application/health+json"},
		{name: "text refused by q=0", target: "/readyz", accept: "text/plain;q=0", code: 503, ctype: "application/health+json"},
		{name: "HEAD", method: http.MethodHead, target: "/readyz", code: 503, ctype: "application/health+json"},
		{name: "POST refused", method: http.MethodPost, target: "/readyz", code: 405},
		{name: "PUT on a check refused", method: http.MethodPut, target: "/readyz/db", code: 405},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			method := tt.method
			if method == "" {
				method = http.MethodGet
			}
			req := httptest.NewRequest(method, tt.target, strings.NewReader("ignored body"))
			if tt.accept != "" {
				req.Header.Set("Accept", tt.accept)
			}
			if tt.debug {
				req.Header.Set("X-Debug", "yes")
			}
			rec := httptest.NewRecorder()
			if tt.direct {
				newHandler(g).ServeHTTP(rec, req)
			} else {
				h.ServeHTTP(rec, req)
			}
			res := rec.Result()
			body, _ := io.ReadAll(res.Body)
			if res.StatusCode != tt.code {
				t.Fatalf("code: got %d, want %d; body %s", res.StatusCode, tt.code, body)
			}
			if tt.ctype != "" && res.Header.Get("Content-Type") != tt.ctype {
				t.Errorf("Content-Type: got %q, want %q", res.Header.Get("Content-Type"), tt.ctype)
			}
			if got := res.Header.Get("Cache-Control"); got != "no-store" && string(body) != "404 page not found\n" {
				t.Errorf("Cache-Control: got %q, want no-store", got)
			}
			switch {
			case tt.code == 405:
				if got := res.Header.Get("Allow"); got != "GET, HEAD" {
					t.Errorf("Allow: got %q, want %q", got, "GET, HEAD")
				}
			case method == http.MethodHead:
				if len(body) != 0 {
					t.Errorf("HEAD body: got %q, want none", body)
				}
				if n, _ := strconv.Atoi(res.Header.Get("Content-Length")); n == 0 {
					t.Errorf("HEAD Content-Length: got %q, want the GET body's length", res.Header.Get("Content-Length"))
				}
			case strings.HasPrefix(res.Header.Get("Content-Type"), "application/health+json"):
				checkSchema(t, body)
			}
			for _, s := range tt.has {
				if !strings.Contains(string(body), s) {
					t.Errorf("body %s: missing %q", body, s)
				}
			}
			for _, s := range tt.lacks {
				if strings.Contains(string(body), s) {
					t.Errorf("body %s: holds %q", body, s)
				}
			}
		})
	}
}

// checkSchema decodes a health+json body and checks its fields against the draft.
func checkSchema(t *testing.T, body []byte) {
	t.Helper()
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(body, &doc); err != nil {
		t.Fatalf("body is not JSON: %v: %s", err, body)
	}
	allowed := map[string]bool{"status": true, "version": true, "releaseId": true, "serviceId": true,
		"description": true, "notes": true, "output": true, "checks": true}
	for k := range doc {
		if !allowed[k] {
			t.Errorf("unexpected top-level field %q", k)
		}
	}
	var status string
	if err := json.Unmarshal(doc["status"], &status); err != nil || (status != "pass" && status != "warn" && status != "fail") {
		t.Errorf("status: got %s, want pass, warn or fail", doc["status"])
	}
	if raw, ok := doc["checks"]; ok {
		var checks map[string][]map[string]any
		if err := json.Unmarshal(raw, &checks); err != nil {
			t.Fatalf("checks: %v", err)
		}
		for key, entries := range checks {
			if !strings.Contains(key, ":") {
				t.Errorf("check key %q is not component:measurement", key)
			}
			for _, e := range entries {
				if _, ok := e["status"].(string); !ok {
					t.Errorf("check %q entry without status: %v", key, e)
				}
			}
		}
	}
	if len(body) > 10<<10 {
		t.Errorf("body is %d bytes, over the 10 KiB the kubelet reads", len(body))
	}
}

func TestPassingGate(t *testing.T) {
	g := &stubGate{rep: probes.Report{Gate: probes.Liveness, Phase: probes.Cold, Base: probes.Pass}}
	mux := http.NewServeMux()
	mux.Handle("/livez", newHandler(g))
	for _, tt := range []struct{ accept, body string }{
		{"text/plain", "ok\n"},
		{"*/*", `{"status":"pass"}` + "\n"},
	} {
		req := httptest.NewRequest(http.MethodGet, "/livez", nil)
		req.Header.Set("Accept", tt.accept)
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, req)
		if rec.Code != 200 || rec.Body.String() != tt.body {
			t.Errorf("Accept %s: got %d %q, want 200 %q", tt.accept, rec.Code, rec.Body, tt.body)
		}
	}
}

func TestVerdictPushedToNextResponse(t *testing.T) {
	g := &stubGate{rep: probes.Report{Gate: probes.Readiness, Phase: probes.Ready, Base: probes.Pass}}
	h := newMux(g)
	get := func() int {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil))
		return rec.Code
	}
	if got := get(); got != 200 {
		t.Fatalf("ready: got %d, want 200", got)
	}
	g.set(probes.Report{Gate: probes.Readiness, Phase: probes.Draining, Base: probes.Fail})
	if got := get(); got != 503 {
		t.Errorf("the response right after the change: got %d, want 503", got)
	}
}

func TestMountUnderPrefix(t *testing.T) {
	g := &stubGate{rep: failingReadiness()}
	r := chi.NewRouter()
	r.Route("/internal", func(r chi.Router) { mount(r, newHandler(g)) })
	mux := http.NewServeMux()
	mux.Handle("/ops/", http.StripPrefix("/ops", newMux(g)))
	sub := chi.NewRouter()
	mount(sub, newHandler(g))
	mounted := chi.NewRouter()
	mounted.Mount("/", sub)
	custom := http.NewServeMux()
	own := newHandler(g)
	custom.Handle("/health/ready", own)
	custom.Handle("/health/ready/{check}", own)
	tests := []struct {
		name   string
		h      http.Handler
		target string
		code   int
	}{
		{"chi route group", r, "/internal/readyz", 503},
		{"chi route group check", r, "/internal/readyz/queue", 200},
		{"ServeMux prefix", mux, "/ops/readyz", 503},
		{"ServeMux prefix check", mux, "/ops/readyz/queue", 200},
		{"chi Mount", mounted, "/readyz/queue", 200},
		{"chi Mount missing gate", mounted, "/livez", 404},
		{"own path", custom, "/health/ready", 503},
		{"own path check", custom, "/health/ready/queue", 200},
		{"own path unknown check", custom, "/health/ready/nope", 404},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			tt.h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, tt.target, nil))
			if rec.Code != tt.code {
				t.Errorf("GET %s: got %d, want %d", tt.target, rec.Code, tt.code)
			}
		})
	}
}

func TestWarmupGuard(t *testing.T) {
	tests := []struct {
		name  string
		moves []func(*probes.Lifecycle) error
		code  int
	}{
		{"cold", nil, 503},
		{"warming", []func(*probes.Lifecycle) error{(*probes.Lifecycle).Start}, 503},
		{"ready", []func(*probes.Lifecycle) error{(*probes.Lifecycle).Start, (*probes.Lifecycle).MarkReady}, 200},
		{"rewarming", []func(*probes.Lifecycle) error{(*probes.Lifecycle).Start, (*probes.Lifecycle).MarkReady,
			func(lc *probes.Lifecycle) error { return lc.Rewarm("reload") }}, 503},
		{"draining still serves", []func(*probes.Lifecycle) error{(*probes.Lifecycle).Start, (*probes.Lifecycle).MarkReady,
			func(lc *probes.Lifecycle) error { return lc.Drain("bye") }}, 200},
		{"draining during warm-up never serves", []func(*probes.Lifecycle) error{(*probes.Lifecycle).Start,
			func(lc *probes.Lifecycle) error { return lc.Drain("bye") }}, 503},
		{"stopped before warm", []func(*probes.Lifecycle) error{(*probes.Lifecycle).Start,
			func(lc *probes.Lifecycle) error { return lc.Drain("bye") }, (*probes.Lifecycle).Stop}, 503},
		{"broken", []func(*probes.Lifecycle) error{func(lc *probes.Lifecycle) error { return lc.MarkBroken(nil) }}, 503},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lc := probes.NewLifecycle()
			for _, m := range tt.moves {
				if err := m(lc); err != nil {
					t.Fatal(err)
				}
			}
			app := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "item") })
			rec := httptest.NewRecorder()
			server.WarmupGuard(lc, 1500*time.Millisecond)(app).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/api/items/1", nil))
			if rec.Code != tt.code {
				t.Fatalf("got %d, want %d", rec.Code, tt.code)
			}
			if ra := rec.Header().Get("Retry-After"); (tt.code == 503) != (ra == "2") {
				t.Errorf("Retry-After: got %q with %d; want \"2\" exactly on 503", ra, rec.Code)
			}
		})
	}
}

func FuzzHandler(f *testing.F) {
	f.Add("GET", "/readyz", "verbose&exclude=db", "text/plain")
	f.Add("HEAD", "/readyz/db", "", "")
	f.Add("GET", "/readyz/%2e%2e", "exclude=%zz", "application/json")
	f.Add("DELETE", "/readyz", "", "*/*")
	g := &stubGate{rep: failingReadiness()}
	h := newMux(g)
	f.Fuzz(func(t *testing.T, method, path, query, accept string) {
		req, err := http.NewRequest(method, "http://x/readyz", nil)
		if err != nil {
			return
		}
		req.URL.Path, req.URL.RawQuery = "/readyz"+path, query
		req.Header.Set("Accept", accept)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		switch rec.Code {
		case 200, 503, 405, 404, 301, 307, 308:
			// ServeMux itself redirects paths it cleans; our handler never does.
		default:
			t.Fatalf("%s %s?%s: code %d", method, req.URL.Path, query, rec.Code)
		}
		if strings.Contains(rec.Body.String(), secret) {
			t.Fatalf("%s %s?%s leaked the error text without authorisation", method, req.URL.Path, query)
		}
	})
}

// Observations that JSON cannot hold (NaN, ±Inf) are rendered as null for
// authorised readers, anonymous readers get what was measured without its
// value, and every answer stays whole: never a 500 or a dropped connection.
func TestNonFiniteObservations(t *testing.T) {
	rep := failingReadiness()
	rep.Checks[2].Observations = []probes.Observation{
		{Measurement: "lag", Value: math.NaN(), Unit: "s"},
		{Measurement: "rate", Value: math.Inf(1), Unit: "1/s"},
		{Measurement: "huge", Value: math.MaxFloat64, Unit: "B"},
	}
	h := newMux(&stubGate{rep: rep, lc: debugReaders()})
	for _, target := range []string{"/readyz?verbose", "/readyz/queue", "/readyz?verbose&exclude=db"} {
		for _, debug := range []bool{true, false} {
			rec := httptest.NewRecorder()
			req := httptest.NewRequest(http.MethodGet, target, nil)
			if debug {
				req.Header.Set("X-Debug", "yes")
			}
			h.ServeHTTP(rec, req)
			if rec.Code != 503 && rec.Code != 200 {
				t.Fatalf("%s: got %d", target, rec.Code)
			}
			checkSchema(t, rec.Body.Bytes())
			want := `"queue:lag":[{"componentType":"component","observedValue":null,"observedUnit":"s"`
			if !debug {
				want = `"queue:lag":[{"componentType":"component","observedUnit":"s","status":"pass"`
			}
			if !strings.Contains(rec.Body.String(), want) {
				t.Errorf("%s (authorised %v): %s, want %s", target, debug, rec.Body, want)
			}
		}
	}
}

// A heartbeat-like check reports what it observed, not a response time.
func TestUntimedCheck(t *testing.T) {
	rep := probes.Report{Gate: probes.Liveness, Phase: probes.Ready, Base: probes.Pass, Checks: []probes.Result{{
		Name: "worker", ComponentType: "system", Critical: true, Untimed: true, Status: probes.Pass, Time: when,
		Observations: []probes.Observation{{Measurement: "age", Value: 1.5, Unit: "s"}},
	}}}
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodGet, "/livez?verbose", nil)
	req.Header.Set("X-Debug", "yes")
	newHandler(&stubGate{rep: rep, lc: debugReaders()}).ServeHTTP(rec, req)
	if body := rec.Body.String(); strings.Contains(body, "responseTime") || !strings.Contains(body, `"worker:age":[{"componentType":"system","observedValue":1.5,"observedUnit":"s"`) {
		t.Errorf("verbose body: %s; want worker:age and no responseTime", body)
	}
}

// ?exclude= echoes a bounded number of unknown names, each cut short.
func TestExcludeEchoIsBounded(t *testing.T) {
	h := newMux(&stubGate{rep: failingReadiness()})
	q := make([]string, 10000)
	for i := range q {
		q[i] = "exclude=" + strings.Repeat("n", 200) + strconv.Itoa(i)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/readyz?"+strings.Join(q, "&"), nil))
	if n := rec.Body.Len(); n > 4<<10 {
		t.Errorf("body of %d bytes for 10,000 unknown excludes; want under 4 KiB", n)
	}
	if !strings.Contains(rec.Body.String(), "more excluded names match no check") {
		t.Errorf("body does not say names were left out: %s", rec.Body)
	}
}

// The zero Status fails closed.
func TestZeroStatusFails(t *testing.T) {
	var s probes.Status
	if s.OK() || s != probes.Fail {
		t.Errorf("zero Status: %s, OK %v; want fail", s, s.OK())
	}
	rec := httptest.NewRecorder()
	newHandler(&stubGate{rep: probes.Report{Gate: probes.Readiness}}).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil))
	if rec.Code != 503 {
		t.Errorf("a report nobody filled in: got %d, want 503", rec.Code)
	}
}

// An option that only Register reads is refused where it would be ignored.
func TestDeepViewOnlyForRegister(t *testing.T) {
	g := &stubGate{rep: failingReadiness()}
	if _, err := server.NewHandler(g, server.DeepView("/deep")); err == nil || !strings.Contains(err.Error(), "DeepView") {
		t.Errorf("NewHandler with DeepView: got %v, want an error naming DeepView", err)
	}
	if _, err := server.Mount(http.NewServeMux(), "/x", g, server.DeepView("")); err == nil || !strings.Contains(err.Error(), "DeepView") {
		t.Errorf("Mount with DeepView: got %v, want an error naming DeepView", err)
	}
}

// Browsers hands the deep view's browser requests to the page, and only
// the deep view's; everyone else keeps JSON and text.
func TestBrowsers(t *testing.T) {
	lc := probes.NewLifecycle()
	if _, err := readiness.New(lc); err != nil {
		t.Fatal(err)
	}
	page := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "<p>page</p>") })
	mux := http.NewServeMux()
	if _, err := server.Register(mux, lc, server.Browsers(page)); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		path, accept string
		page         bool
	}{
		{"/healthz", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", true},
		{"/healthz?events", "text/event-stream", true},
		{"/healthz", "*/*", false},
		{"/healthz", "application/json", false},
		{"/healthz", "text/plain", false},
		{"/readyz", "text/html", false},
	} {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest(http.MethodGet, tt.path, nil)
		req.Header.Set("Accept", tt.accept)
		mux.ServeHTTP(rec, req)
		if got := rec.Body.String() == "<p>page</p>"; got != tt.page {
			t.Errorf("%s with Accept %q: page %v, want %v (%d %s)", tt.path, tt.accept, got, tt.page, rec.Code, rec.Body)
		}
	}
	// A browser's POST gets the contract's 405, not the page.
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodPost, "/healthz", strings.NewReader("x=1"))
	req.Header.Set("Accept", "text/html")
	mux.ServeHTTP(rec, req)
	if rec.Code != http.StatusMethodNotAllowed || rec.Body.String() == "<p>page</p>" {
		t.Errorf("POST /healthz with Accept text/html: %d %q, want 405", rec.Code, rec.Body)
	}
	g := &stubGate{rep: failingReadiness()}
	if _, err := server.NewHandler(g, server.Browsers(page)); err == nil {
		t.Error("NewHandler with Browsers accepted")
	}
	if _, err := server.NewHandler(g, server.Browsers(nil)); err == nil {
		t.Error("Browsers(nil) accepted")
	}
}

// A flapping check is named in the gate's notes and marked in its entry.
func TestFlappingShown(t *testing.T) {
	rep := failingReadiness()
	for i := range rep.Checks {
		if rep.Checks[i].Name == "queue" {
			rep.Checks[i].Flapping = true
			rep.Checks[i].Since = time.Date(2026, 11, 21, 11, 59, 0, 0, time.UTC)
		}
	}
	h := newMux(&stubGate{rep: rep})
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/readyz?verbose", nil))
	for _, want := range []string{`"flapping: queue"`, `"since":"2026-11-21T11:59:00Z","flapping":true`} {
		if !strings.Contains(rec.Body.String(), want) {
			t.Errorf("verbose body lacks %s: %s", want, rec.Body)
		}
	}
}

// The text form gives a check or a task one line, whatever its error
// holds: lines of their own (pgconn's, errors.Join's), a text wrapped with
// itself.
func TestTextFormOneLinePerCheck(t *testing.T) {
	pgconn := "failed to connect to `user=app database=items`:\n\t127.0.0.1:5432 (db): connect: connection refused\n\t127.0.0.1:5432 (db): connect: connection refused"
	rep := probes.Report{
		Gate: probes.Readiness, Phase: probes.Warming, Base: probes.Fail,
		Checks: []probes.Result{
			{Name: "db", Critical: true, Status: probes.Fail, Err: errors.New(pgconn), Time: when},
			{Name: "both", Critical: true, Status: probes.Fail, Err: errors.Join(errors.New("first"), errors.New("second")), Time: when},
			{Name: "twice", Critical: true, Status: probes.Fail, Err: errors.New("ping: refused: refused"), Time: when},
		},
		Tasks: []probes.TaskState{{Name: "cache", Failures: 2, Err: errors.New("load:\r\nEOF\r\n")}},
	}
	h := newMux(&stubGate{rep: rep, lc: debugReaders()})
	tests := []struct{ target, want string }{
		{"/readyz?verbose", "[-]phase failed: warming\n" +
			"[-]db failed: failed to connect to `user=app database=items`: 127.0.0.1:5432 (db): connect: connection refused\n" +
			"[-]both failed: first; second\n" +
			"[-]twice failed: ping: refused\n" +
			"[-]cache 0%, retrying after 2 failed attempts: load: EOF\n" +
			"readyz check failed\n"},
		{"/readyz/db", "db failed: failed to connect to `user=app database=items`: 127.0.0.1:5432 (db): connect: connection refused\n"},
		{"/readyz/cache", "cache failed: load: EOF\n"},
	}
	for _, tt := range tests {
		t.Run(tt.target, func(t *testing.T) {
			req := httptest.NewRequest(http.MethodGet, tt.target, nil)
			req.Header.Set("Accept", "text/plain")
			req.Header.Set("X-Debug", "yes")
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if got := rec.Body.String(); got != tt.want {
				t.Errorf("got\n%s\nwant\n%s", got, tt.want)
			}
		})
	}
}
