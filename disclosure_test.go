package probes_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/probekit/probes"
	"github.com/probekit/probes/admin"
	"github.com/probekit/probes/haproxy"
	"github.com/probekit/probes/history"
	"github.com/probekit/probes/internal/testenv/testutil"
	"github.com/probekit/probes/readiness"
	"github.com/probekit/probes/server"
	"github.com/probekit/probes/startup"
)

// Every surface, read as an anonymous and as an authorised reader, with a
// secret in a check's error and in a cordon's reason: anonymous readers
// learn that the check fails and that the service is cordoned, never why;
// authorised readers learn why; nobody ever sees a secret.
func TestDisclosureOnEverySurface(t *testing.T) {
	const (
		checkReason  = "connection refused"                        // db's error, beside its password
		checkSecret  = "s3cret"                                    // db's password
		cordonReason = "disk swap on node-7"                       // the cordon's reason, beside a password
		cordonSecret = "hunter2"                                   // the password in the cordon's reason
		observed     = `"observedValue":3,"observedUnit":"tables"` // db's observation
	)
	lc := probes.NewLifecycle(probes.Readers(func(r *http.Request) bool { return r.Header.Get("X-Op") == "yes" }))
	warm, err := startup.New(lc)
	if err != nil {
		t.Fatal(err)
	}
	if err := warm.Task("cache", func(context.Context, *startup.Progress) error { return nil }); err != nil {
		t.Fatal(err)
	}
	ready, err := readiness.New(lc)
	if err != nil {
		t.Fatal(err)
	}
	if err := ready.Add("db", probes.CheckFunc(func(ctx context.Context) error {
		probes.Observe(ctx, probes.Observation{Measurement: "tables", Value: 3, Unit: "tables"})
		return errors.New("dial postgres://app:" + checkSecret + "@db:5432: " + checkReason)
	}), probes.Local(), probes.Every(time.Hour)); err != nil {
		t.Fatal(err)
	}
	hist, err := history.New(lc)
	if err != nil {
		t.Fatal(err)
	}
	ts := servePage(t, lc, hist)
	testutil.Background(t, lc.Run)
	testutil.Eventually(t, "db failed once", func() bool { c, _ := ready.Report().Check("db"); return !c.Time.IsZero() })
	testutil.Eventually(t, "warm", func() bool { return lc.Phase() == probes.Ready })
	if _, err := lc.Cordon(cordonReason+" password="+cordonSecret, time.Hour); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = lc.Uncordon() })

	type surface struct {
		name        string
		read        func(op bool) string
		checkReason bool // the check's reason is on it for authorised readers
		cordon      bool // the cordon's reason is on it for authorised readers
		values      bool // db's observed value is on it for authorised readers
	}
	httpGet := func(path, accept string) func(bool) string { return opGet(t, ts.URL, path, accept) }
	surfaces := []surface{
		{"readyz json", httpGet("/readyz", "application/health+json"), true, true, false},
		{"readyz text", httpGet("/readyz", "text/plain"), true, true, false},
		{"readyz verbose json", httpGet("/readyz?verbose", "application/health+json"), true, true, true},
		{"readyz verbose text", httpGet("/readyz?verbose", "text/plain"), true, true, false},
		{"readyz/db json", httpGet("/readyz/db", "application/health+json"), true, false, true},
		{"readyz/db text", httpGet("/readyz/db", "text/plain"), true, false, false},
		{"healthz verbose json", httpGet("/healthz?verbose", "application/health+json"), true, true, true},
		{"healthz text", httpGet("/healthz?verbose", "text/plain"), true, true, false},
		{"page", httpGet("/healthz", "text/html"), true, true, false},
		{"page stream", func(op bool) string { return firstEvent(t, ts.URL+"/healthz?events", op) }, true, true, false},
		{"history", httpGet("/history", "application/json"), true, true, false},
	}
	for _, s := range surfaces {
		t.Run(s.name, func(t *testing.T) {
			anon, op := s.read(false), s.read(true)
			for who, body := range map[string]string{"anonymous": anon, "authorised": op} {
				if strings.Contains(body, checkSecret) || strings.Contains(body, cordonSecret) {
					t.Errorf("%s reader sees a secret:\n%s", who, body)
				}
			}
			for _, reason := range []string{checkReason, cordonReason, observed} {
				if strings.Contains(anon, reason) {
					t.Errorf("anonymous reader sees %q:\n%s", reason, anon)
				}
			}
			if !strings.Contains(anon, "db") || !strings.Contains(anon, "cordoned") && s.cordon {
				t.Errorf("anonymous reader does not hear of the failing check and the cordon:\n%s", anon)
			}
			for _, w := range []struct {
				want   bool
				reason string
			}{{s.checkReason, checkReason}, {s.cordon, cordonReason}, {s.values, observed}} {
				if w.want && !strings.Contains(op, w.reason) {
					t.Errorf("authorised reader does not see %q:\n%s", w.reason, op)
				}
			}
		})
	}

	// Surfaces with one audience of their own.
	agent, err := haproxy.New(lc)
	if err != nil {
		t.Fatal(err)
	}
	// The agent line is read by the balancer's operators: it may carry the
	// cordon's reason, masked.
	if line := agent.Reply(); line != "drain #cordoned: "+cordonReason+" password=xxxxx" {
		t.Errorf("agent line %q, want drain with the masked reason", line)
	}
	// The admin socket's readers are authorised by their credentials, over
	// TCP by the admin handler's authorizer: either way they read the deep
	// view as authorised readers do, whatever the read policy says.
	ah, err := admin.New(lc, admin.Authorize(func(r *http.Request) bool { return r.Header.Get("X-Admin") == "yes" }))
	if err != nil {
		t.Fatal(err)
	}
	req := httptest.NewRequest(http.MethodGet, "/status", nil)
	req.Header.Set("X-Admin", "yes")
	rec := httptest.NewRecorder()
	ah.ServeHTTP(rec, req)
	if s := rec.Body.String(); !strings.Contains(s, cordonReason) || !strings.Contains(s, checkReason) ||
		strings.Contains(s, cordonSecret) || strings.Contains(s, checkSecret) {
		t.Errorf("admin status: %s, want the reasons, masked", s)
	}
}

// firstEvent opens the page's event stream and returns its first event.
func firstEvent(t *testing.T, url string, op bool) string {
	t.Helper()
	host := strings.TrimPrefix(url, "http://")
	path := host[strings.Index(host, "/"):]
	host = host[:strings.Index(host, "/")]
	c, err := net.Dial("tcp", host)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	hdr := ""
	if op {
		hdr = "X-Op: yes\r\n"
	}
	fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n%s\r\n", path, hdr)
	c.SetReadDeadline(time.Now().Add(testutil.Deadline)) //nolint:errcheck // the read reports it
	br := bufio.NewReader(c)
	var b strings.Builder
	inBody, data := false, false
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("reading the stream: %v (so far %q)", err, b.String())
		}
		switch {
		case !inBody:
			inBody = line == "\r\n"
		case strings.HasPrefix(line, "data: "):
			data = true
			b.WriteString(strings.TrimPrefix(line, "data: "))
		case line == "\n" && data:
			return b.String()
		}
	}
}

// The page answers a browser with the deep view's status code, at every
// moment the JSON does: a browser-like monitor is never green through an
// outage the deep view reports.
func TestPageAnswersAsTheDeepView(t *testing.T) {
	lc := probes.NewLifecycle()
	ready, err := readiness.New(lc)
	if err != nil {
		t.Fatal(err)
	}
	var down atomic.Bool
	if err := ready.Add("db", probes.CheckFunc(func(context.Context) error {
		if down.Load() {
			return errors.New("refused")
		}
		return nil
	}), probes.Every(time.Millisecond)); err != nil { // shared: readiness only warns
		t.Fatal(err)
	}
	page, err := history.NewPage(lc, nil)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	if _, err := server.Register(mux, lc, server.Browsers(page)); err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(mux)
	t.Cleanup(func() { page.Close(); ts.Close() })
	testutil.Background(t, lc.Run)
	testutil.Ready(t, lc)
	code := func(accept string) int {
		req, _ := http.NewRequest(http.MethodGet, ts.URL+"/healthz", nil)
		req.Header.Set("Accept", accept)
		res, err := noKeepAlive.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, res.Body) //nolint:errcheck // the code is what counts
		res.Body.Close()
		return res.StatusCode
	}
	const browser = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
	testutil.Eventually(t, "passing", func() bool { return code("application/json") == 200 })
	if got := code(browser); got != 200 {
		t.Errorf("page while passing: %d, want 200", got)
	}
	down.Store(true)
	testutil.Eventually(t, "the deep view fails", func() bool { return code("application/json") == 503 })
	if got := code(browser); got != 503 {
		t.Errorf("page while the deep view fails: %d, want 503", got)
	}
	if got := code("text/html;q=0, application/json"); got != 503 {
		t.Errorf("text/html;q=0: %d", got)
	}
	// ?exclude= changes the verdict: a browser gets the JSON's answer.
	req, _ := http.NewRequest(http.MethodGet, ts.URL+"/healthz?exclude=readiness/db", nil)
	req.Header.Set("Accept", browser)
	res, err := noKeepAlive.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, res.Body) //nolint:errcheck // the code is what counts
	res.Body.Close()
	if res.StatusCode != 200 || !strings.HasPrefix(res.Header.Get("Content-Type"), "application/health+json") {
		t.Errorf("a browser's ?exclude=readiness/db: %d %s, want the JSON's 200", res.StatusCode, res.Header.Get("Content-Type"))
	}
}

// Why the previous instance ended (its cause, its transitions' reasons),
// read on every surface: anonymous readers learn that it ended and how
// (broken), authorised readers why, and nobody the secret in it.
func TestPastOnEverySurface(t *testing.T) {
	const (
		cause  = "connection refused"
		secret = "s3cret"
	)
	dir := t.TempDir()
	first := probes.NewLifecycle()
	h1, err := history.New(first, history.StateDir(dir))
	if err != nil {
		t.Fatal(err)
	}
	testutil.Ready(t, first)
	if err := first.MarkBroken(errors.New("dial postgres://app:" + secret + "@db: " + cause)); err != nil {
		t.Fatal(err)
	}
	h1.Close()

	lc := probes.NewLifecycle(probes.Readers(func(r *http.Request) bool { return r.Header.Get("X-Op") == "yes" }))
	hist, err := history.New(lc, history.StateDir(dir))
	if err != nil {
		t.Fatal(err)
	}
	ts := servePage(t, lc, hist)
	ah, err := admin.New(lc, admin.Authorize(func(r *http.Request) bool { return true }))
	if err != nil {
		t.Fatal(err)
	}
	get := func(path, accept string) func(bool) string { return opGet(t, ts.URL, path, accept) }
	for _, s := range []struct {
		name, public string // what anonymous readers see of the end ("": the surface has none)
		read         func(op bool) string
	}{
		{"healthz verbose json", `"restarts":1,"lastEnd":{"ended":"broken"`, get("/healthz?verbose", "application/health+json")},
		{"page", `data-restarts="1"`, get("/healthz", "text/html")},
		{"page stream", `data-previous="0" data-ended="broken"`, func(op bool) string { return firstEvent(t, ts.URL+"/healthz?events", op) }},
		{"history", `"restarts":1,"previous":[{"number":0`, get("/history", "application/json")},
		{"admin status", "", func(bool) string { // its peers are authorised by their credentials
			rec := httptest.NewRecorder()
			ah.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/status", nil))
			return rec.Body.String()
		}},
	} {
		t.Run(s.name, func(t *testing.T) {
			op := s.read(true)
			if s.public != "" {
				anon := s.read(false)
				if strings.Contains(anon, secret) || strings.Contains(anon, cause) || !strings.Contains(anon, s.public) {
					t.Errorf("anonymous reader: want %s without the cause:\n%s", s.public, anon)
				}
			}
			if strings.Contains(op, secret) {
				t.Errorf("authorised reader sees the secret:\n%s", op)
			}
			if !strings.Contains(op, cause) || !strings.Contains(op, "xxxxx") {
				t.Errorf("authorised reader: want the cause, masked:\n%s", op)
			}
		})
	}
}

// servePage serves lc's probes, its deep view with the page for browsers
// and hist's /history over loopback until the test ends, and closes hist
// then.
func servePage(t *testing.T, lc *probes.Lifecycle, hist *history.History) *httptest.Server {
	t.Helper()
	t.Cleanup(hist.Close)
	page, err := history.NewPage(lc, hist, history.Refresh(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	if _, err := server.Register(mux, lc, server.Browsers(page)); err != nil {
		t.Fatal(err)
	}
	mux.Handle("/history", hist.Handler())
	ts := httptest.NewServer(mux)
	t.Cleanup(func() { page.Close(); ts.Close() })
	return ts
}

// opGet returns a reader of base+path with accept: as an operator (the
// test policy's X-Op header) when given true, anonymously otherwise.
func opGet(t *testing.T, base, path, accept string) func(op bool) string {
	return func(op bool) string {
		req, _ := http.NewRequest(http.MethodGet, base+path, nil)
		req.Header.Set("Accept", accept)
		if op {
			req.Header.Set("X-Op", "yes")
		}
		res, err := noKeepAlive.Do(req)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return string(b)
	}
}
