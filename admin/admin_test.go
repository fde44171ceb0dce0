package admin_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/probekit/probes"
	"github.com/probekit/probes/admin"
	"github.com/probekit/probes/internal/testenv/testutil"
	"github.com/probekit/probes/readiness"
	"github.com/probekit/probes/server"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fixture is a Ready lifecycle with a readiness gate, its admin handler on
// a real Unix socket, and the log it writes.
type fixture struct {
	lc     *probes.Lifecycle
	ready  *readiness.Gate
	socket string
	logs   *observer.ObservedLogs
}

func newFixture(t *testing.T, opts ...admin.Option) *fixture {
	t.Helper()
	lc := probes.NewLifecycle()
	ready, err := readiness.New(lc)
	if err != nil {
		t.Fatal(err)
	}
	testutil.Ready(t, lc)
	return serveAdmin(t, lc, ready, opts...)
}

// serveAdmin serves lc's admin handler on a Unix socket until the test
// ends.
func serveAdmin(t *testing.T, lc *probes.Lifecycle, ready *readiness.Gate, opts ...admin.Option) *fixture {
	t.Helper()
	f := &fixture{lc: lc, ready: ready}
	core, logs := observer.New(zap.InfoLevel)
	f.logs = logs
	h, err := admin.New(f.lc, append([]admin.Option{admin.Logger(zap.New(core))}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	f.socket = filepath.Join(t.TempDir(), "admin.sock")
	ln, err := admin.ListenUnix(f.socket)
	if err != nil {
		t.Fatal(err)
	}
	peer, err := h.Serving(ln)
	if err != nil {
		t.Fatal(err)
	}
	testutil.ServePeer(t, peer)
	return f
}

// client talks HTTP over the fixture's socket.
func (f *fixture) client() *http.Client {
	return &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", f.socket)
		},
		DisableKeepAlives: true,
	}, Timeout: 5 * time.Second}
}

func (f *fixture) send(t *testing.T, method, path, ctype, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, "http://admin"+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	res, err := f.client().Do(req)
	if err != nil {
		// The server may answer and close before a huge body is sent.
		if len(body) > admin.MaxBody && (strings.Contains(err.Error(), "broken pipe") || strings.Contains(err.Error(), "connection reset")) {
			return http.StatusRequestEntityTooLarge, fmt.Sprintf("body over %d bytes (closed while sending: %v)", admin.MaxBody, err)
		}
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

func TestCordonThroughTheSocket(t *testing.T) {
	f := newFixture(t)
	code, body := f.send(t, "POST", "/cordon", "application/json", `{"reason":"disk swap","for":"30m"}`)
	if code != 200 {
		t.Fatalf("cordon: %d %s", code, body)
	}
	var res admin.ChangeResponse
	if err := json.Unmarshal([]byte(body), &res); err != nil || res.Cordon == nil || res.Cordon.Reason != "disk swap" ||
		res.Cordon.Until.Sub(res.Cordon.Since) != 30*time.Minute || res.Was != nil {
		t.Fatalf("cordon answer %s (%v)", body, err)
	}
	if s := f.ready.Report().Status(); s != probes.Fail {
		t.Fatalf("readiness while cordoned: %s", s)
	}
	code, body = f.send(t, "GET", "/status", "", "")
	var st deepView
	// Cordoned, the deep view warns (200) and readiness fails.
	if err := json.Unmarshal([]byte(body), &st); err != nil || code != 200 || st.Status != "warn" || st.Phase != "ready" ||
		st.Cordon == nil || st.Cordon.Reason != "disk swap" || st.Gates["readiness"] != "fail" {
		t.Fatalf("status: %d %s (%v)", code, body, err)
	}
	entries := f.logs.FilterMessage("admin: cordoned").All()
	if len(entries) != 1 {
		t.Fatalf("log has %d cordon entries, want 1", len(entries))
	}
	peer, _ := entries[0].ContextMap()["peer"].(map[string]any)
	if peer["uid"] == nil || peer["pid"] == nil {
		t.Errorf("the cordon's log entry lacks the peer's uid and pid: %v", entries[0].ContextMap())
	}
	if code, body := f.send(t, "POST", "/uncordon", "application/json", `{}`); code != 200 || !strings.Contains(body, `"was":{"reason":"disk swap"`) {
		t.Fatalf("uncordon: %d %s", code, body)
	}
	if code, body := f.send(t, "POST", "/uncordon", "application/json", `{}`); code != 200 || !strings.Contains(body, `"was":null`) {
		t.Fatalf("a second uncordon: %d %s; want 200 with nothing lifted", code, body)
	}
	if s := f.ready.Report().Status(); s != probes.Pass {
		t.Fatalf("readiness after uncordon: %s", s)
	}
}

// deepView is what these tests read of the deep view's health+json
// document.
type deepView struct {
	Status string
	Phase  string
	Notes  []string
	Gates  map[string]string
	Cordon *struct{ Reason, Since, Until string }
	Checks map[string][]struct{ Gate, Status, Output string }
}

// get answers a GET of url: its status code, content type and body.
// A cordon is logged once, by admin, with the peer who asked, its reason
// and until when, when the server logs to the same logger: the server
// leaves cordons made by hand to admin, and logs one that lifts by itself.
func TestOneLinePerCordon(t *testing.T) {
	core, logs := observer.New(zap.InfoLevel)
	log := zap.New(core)
	lc := probes.NewLifecycle()
	ready, err := readiness.New(lc)
	if err != nil {
		t.Fatal(err)
	}
	h, err := admin.New(lc, admin.Logger(log))
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{lc: lc, ready: ready, socket: filepath.Join(t.TempDir(), "admin.sock"), logs: logs}
	ln, err := admin.ListenUnix(f.socket)
	if err != nil {
		t.Fatal(err)
	}
	peer, err := h.Serving(ln)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := server.New(nil, lc, server.Also("admin", peer), server.Logger(log), server.DrainDelay(0), server.Signals())
	if err != nil {
		t.Fatal(err)
	}
	testutil.Ready(t, lc)
	testutil.Background(t, srv.Run)

	for _, body := range []string{`{"reason":"disk swap","for":"30m"}`, `{"reason":"kernel update","for":"1h"}`} {
		if code, answer := f.send(t, "POST", "/cordon", "application/json", body); code != 200 {
			t.Fatalf("cordon %s: %d %s", body, code, answer)
		}
	}
	if code, answer := f.send(t, "POST", "/uncordon", "application/json", `{}`); code != 200 {
		t.Fatalf("uncordon: %d %s", code, answer)
	}
	if code, answer := f.send(t, "POST", "/cordon", "application/json", `{"reason":"brief","for":"1s"}`); code != 200 {
		t.Fatalf("cordon for 1s: %d %s", code, answer)
	}
	testutil.Eventually(t, "the lift logged", func() bool {
		for _, e := range logs.All() {
			if e.Message != "admin: cordoned" && e.ContextMap()["reason"] == "brief" {
				return true
			}
		}
		return false
	})
	lifted := "cordon lifted at its time limit: back in rotation unless the phase or a check says otherwise"

	var got []string
	for _, e := range logs.All() {
		if strings.Contains(e.Message, "cordon") {
			got = append(got, e.Message+": "+fmt.Sprint(e.ContextMap()["reason"]))
		}
	}
	want := []string{"admin: cordoned: disk swap", "admin: cordoned: kernel update", "admin: uncordoned: kernel update", "admin: cordoned: brief", lifted + ": brief"}
	if !slices.Equal(got, want) {
		t.Fatalf("logged\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	replaced := logs.FilterMessage("admin: cordoned").All()[1].ContextMap()
	peerFields, _ := replaced["peer"].(map[string]any)
	if peerFields["uid"] == nil || peerFields["pid"] == nil || replaced["until"] == nil || replaced["for"] == nil || replaced["replaced"] != "disk swap" {
		t.Errorf("the cordon's line: got %v, want the peer's uid and pid, until, for and what it replaced", replaced)
	}
}

func get(t *testing.T, c *http.Client, method, url string) (int, string, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res.StatusCode, res.Header.Get("Content-Type"), string(b)
}

// The admin status is the deep view an authorised reader reads: the same
// document as /healthz?verbose, with the reasons an anonymous reader of
// /healthz never sees (a check's error, the cordon's reason), secrets
// masked for both.
func TestStatusIsTheAuthorisedDeepView(t *testing.T) {
	const (
		checkReason  = "connection refused"
		checkSecret  = "s3cret"
		cordonReason = "disk swap on node-7"
		cordonSecret = "hunter2"
	)
	// No read policy: every HTTP reader of /healthz is anonymous.
	lc := probes.NewLifecycle()
	ready, err := readiness.New(lc)
	if err != nil {
		t.Fatal(err)
	}
	if err := ready.Add("db", probes.CheckFunc(func(context.Context) error {
		return errors.New("dial postgres://app:" + checkSecret + "@db:5432: " + checkReason)
	}), probes.Local(), probes.Every(time.Hour)); err != nil {
		t.Fatal(err)
	}
	testutil.Ready(t, lc)
	testutil.Background(t, lc.Run)
	testutil.Eventually(t, "db failed once", func() bool { c, _ := ready.Report().Check("db"); return !c.Time.IsZero() })
	if _, err := lc.Cordon(cordonReason+" password="+cordonSecret, time.Hour); err != nil {
		t.Fatal(err)
	}
	info := server.Info{ServiceID: "items-api", ReleaseID: "1.4.2"}
	mux := http.NewServeMux()
	if _, err := server.Register(mux, lc, server.Service(info)); err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(mux)
	t.Cleanup(ts.Close)
	f := serveAdmin(t, lc, ready, admin.Service(info))

	anonCode, _, anonBody := get(t, ts.Client(), "GET", ts.URL+"/healthz?verbose")
	code, ctype, body := get(t, f.client(), "GET", "http://admin/status")
	if code != anonCode || code != http.StatusServiceUnavailable {
		t.Errorf("status codes: got %d from the admin status and %d from /healthz?verbose, want both 503 (a local check fails)", code, anonCode)
	}
	if ctype != "application/health+json" {
		t.Errorf("admin status content type: got %q, want application/health+json", ctype)
	}
	for _, tt := range []struct {
		name   string
		body   string
		reason string
		want   bool
	}{
		{"admin status: the check's error", body, checkReason, true},
		{"admin status: the cordon's reason", body, cordonReason, true},
		{"admin status: the check's secret", body, checkSecret, false},
		{"admin status: the cordon's secret", body, cordonSecret, false},
		{"anonymous deep view: the check's error", anonBody, checkReason, false},
		{"anonymous deep view: the cordon's reason", anonBody, cordonReason, false},
		{"anonymous deep view: the check's secret", anonBody, checkSecret, false},
		{"anonymous deep view: the cordon's secret", anonBody, cordonSecret, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := strings.Contains(tt.body, tt.reason); got != tt.want {
				t.Errorf("%q shown: got %v, want %v, in\n%s", tt.reason, got, tt.want, tt.body)
			}
		})
	}

	// The same document: the same members and check keys, with only the
	// reasons more (in each entry and in the cordon).
	var authd, anon map[string]any
	if err := json.Unmarshal([]byte(body), &authd); err != nil {
		t.Fatalf("admin status: %v: %s", err, body)
	}
	if err := json.Unmarshal([]byte(anonBody), &anon); err != nil {
		t.Fatalf("/healthz?verbose: %v: %s", err, anonBody)
	}
	if got, want := keys(authd, ""), keys(anon, ""); !slices.Equal(got, want) {
		t.Errorf("keys but the reasons: got the admin status's\n%v\nwant /healthz?verbose's\n%v", got, want)
	}
	for _, key := range []string{"phase", "since", "gates", "cordon", "checks", "serviceId", "releaseId"} {
		if _, ok := authd[key]; !ok {
			t.Errorf("admin status: no %q member: %s", key, body)
		}
	}
	var st deepView
	if err := json.Unmarshal([]byte(body), &st); err != nil {
		t.Fatal(err)
	}
	if e := st.Checks["readiness/db:responseTime"]; len(e) != 1 || e[0].Gate != "readiness" || e[0].Status != "fail" {
		t.Errorf("admin status: the check's entry %+v, want readiness/db failing", e)
	}
}

// keys lists the paths of v's object members, below prefix, sorted,
// leaving out the reasons, which only authorised readers read.
func keys(v any, prefix string) []string {
	var out []string
	switch v := v.(type) {
	case map[string]any:
		for k, e := range v {
			if reasonOf(prefix, k) {
				continue
			}
			out = append(out, prefix+k)
			out = append(out, keys(e, prefix+k+".")...)
		}
	case []any:
		for _, e := range v {
			out = append(out, keys(e, prefix)...)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// reasonOf reports whether member k of the object at prefix is a reason:
// the cordon's, or a check entry's output or observed value (an entry is
// at "checks.<key>.").
func reasonOf(prefix, k string) bool {
	if prefix == "cordon." {
		return k == "reason"
	}
	entry := strings.HasPrefix(prefix, "checks.") && prefix != "checks."
	return entry && (k == "output" || k == "observedValue")
}

// The admin status answers with the deep view's status code, for GET and
// HEAD alike, and whatever query the peer sends.
func TestStatusCode(t *testing.T) {
	for _, tt := range []struct {
		name   string
		broken bool
		query  string
		want   int
	}{
		{"ready", false, "", http.StatusOK},
		{"ready, with a query of its own", false, "?exclude=readiness/x", http.StatusOK},
		{"broken", true, "", http.StatusServiceUnavailable},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			if tt.broken {
				if err := f.lc.MarkBroken(errors.New("out of file descriptors")); err != nil {
					t.Fatal(err)
				}
			}
			code, ctype, body := get(t, f.client(), "GET", "http://admin/status"+tt.query)
			var st deepView
			if err := json.Unmarshal([]byte(body), &st); err != nil || code != tt.want || ctype != "application/health+json" || st.Gates == nil {
				t.Errorf("GET: got %d %q %s (%v), want %d with the verbose deep view", code, ctype, body, err, tt.want)
			}
			hcode, _, hbody := get(t, f.client(), "HEAD", "http://admin/status"+tt.query)
			if hcode != tt.want || hbody != "" {
				t.Errorf("HEAD: got %d %q, want %d without a body", hcode, hbody, tt.want)
			}
		})
	}
}

// Over TCP, the service's authorizer lets the request in, and that
// authorises it to read reasons whatever the read policy says of it.
func TestStatusOverTCPIsAuthorised(t *testing.T) {
	lc := probes.NewLifecycle(probes.Readers(func(*http.Request) bool { return false }))
	testutil.Ready(t, lc)
	if _, err := lc.Cordon("disk swap", time.Hour); err != nil {
		t.Fatal(err)
	}
	h, err := admin.New(lc, admin.Authorize(func(r *http.Request) bool { return r.Header.Get("Authorization") == "Bearer s3cret" }))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	req, _ := http.NewRequest("GET", srv.URL+"/status", nil)
	req.Header.Set("Authorization", "Bearer s3cret")
	res, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var st deepView
	if err := json.NewDecoder(res.Body).Decode(&st); err != nil || st.Cordon == nil || st.Cordon.Reason != "disk swap" {
		t.Errorf("status over TCP: %d %+v (%v), want the cordon's reason", res.StatusCode, st.Cordon, err)
	}
}

// The time limit may be given in days, up to the longest cordon,
// probes.MaxCordon (seven days).
func TestCordonForDays(t *testing.T) {
	f := newFixture(t)
	for _, tt := range []struct {
		name, limit string
		want        time.Duration
	}{
		{"the longest cordon", "7d", probes.MaxCordon},
		{"days and hours", "1d12h", 36 * time.Hour},
		{"a fraction of a day", "0.5d", 12 * time.Hour},
	} {
		t.Run(tt.name, func(t *testing.T) {
			code, body := f.send(t, "POST", "/cordon", "application/json", `{"reason":"disk swap","for":"`+tt.limit+`"}`)
			var res admin.ChangeResponse
			if err := json.Unmarshal([]byte(body), &res); err != nil || code != 200 || res.Cordon == nil {
				t.Fatalf("cordon for %s: %d %s (%v)", tt.limit, code, body, err)
			}
			if got := res.Cordon.Until.Sub(res.Cordon.Since); got != tt.want {
				t.Errorf("cordon for %s: got %s, want %s", tt.limit, got, tt.want)
			}
		})
	}
}

// Every malformed or unsafe request is refused with a clear status, and
// none of them changes anything.
func TestRefusals(t *testing.T) {
	f := newFixture(t)
	huge := `{"reason":"` + strings.Repeat("x", 1<<20) + `","for":"1m"}`
	cases := []struct {
		name, method, path, ctype, body string
		want                            int
		says                            string
	}{
		{"GET changes nothing", "GET", "/cordon?reason=x&for=1m", "", "", 405, ""},
		{"a form post", "POST", "/cordon", "application/x-www-form-urlencoded", "reason=x&for=1m", 415, "application/json"},
		{"a multipart post", "POST", "/cordon", "multipart/form-data; boundary=x", "--x--", 415, "application/json"},
		{"text/plain (a no-preflight cross-site post)", "POST", "/cordon", "text/plain", `{"reason":"x","for":"1m"}`, 415, "application/json"},
		{"no content type", "POST", "/cordon", "", `{"reason":"x","for":"1m"}`, 415, "application/json"},
		{"1 MB of reason", "POST", "/cordon", "application/json", huge, 413, "4096 bytes"},
		{"a newline in the reason", "POST", "/cordon", "application/json", `{"reason":"two\nlines","for":"1m"}`, 400, "unprintable"},
		{"an escape in the reason", "POST", "/cordon", "application/json", `{"reason":"\u001b[2J","for":"1m"}`, 400, "unprintable"},
		{"an empty reason", "POST", "/cordon", "application/json", `{"reason":"","for":"1m"}`, 400, "empty"},
		{"no time limit", "POST", "/cordon", "application/json", `{"reason":"x"}`, 400, "time limit"},
		{"a bad duration", "POST", "/cordon", "application/json", `{"reason":"x","for":"soon"}`, 400, "not a duration"},
		{"a limit over the maximum", "POST", "/cordon", "application/json", `{"reason":"x","for":"1000h"}`, 400, "at most"},
		{"days over the maximum", "POST", "/cordon", "application/json", `{"reason":"x","for":"7d1s"}`, 400, "at most"},
		{"a week as a unit", "POST", "/cordon", "application/json", `{"reason":"x","for":"1w"}`, 400, "not a duration"},
		{"an unknown field", "POST", "/cordon", "application/json", `{"reason":"x","for":"1m","force":true}`, 400, "unknown field"},
		{"two JSON values", "POST", "/cordon", "application/json", `{"reason":"x","for":"1m"}{}`, 400, "more than one"},
		{"not JSON", "POST", "/cordon", "application/json", `reason=x`, 400, "body"},
		{"an unknown route", "POST", "/drain", "application/json", `{}`, 404, ""},
		{"POST on status", "POST", "/status", "application/json", `{}`, 405, ""},
	}
	for _, c := range cases {
		code, body := f.send(t, c.method, c.path, c.ctype, c.body)
		if code != c.want || !strings.Contains(body, c.says) {
			t.Errorf("%s: %d %.200s; want %d saying %q", c.name, code, body, c.want, c.says)
		}
	}
	req, _ := http.NewRequest("POST", "http://admin/cordon", strings.NewReader(`{"reason":"x","for":"1m"}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	if res, err := f.client().Do(req); err != nil || res.StatusCode != 403 {
		t.Errorf("a cross-site fetch: %v %v; want 403", res, err)
	} else {
		res.Body.Close()
	}
	if c, ok := f.lc.Cordoned(); ok {
		t.Fatalf("a refused request cordoned the service: %+v", c)
	}
	if n := f.logs.FilterMessage("admin: cordon refused").Len() + f.logs.FilterMessage("admin: request refused").Len(); n < 10 {
		t.Errorf("only %d refusals logged", n)
	}
}

// Off the Unix socket, only the service's authorizer lets a request in.
func TestTCPNeedsAnAuthorizer(t *testing.T) {
	lc := probes.NewLifecycle()
	testutil.Ready(t, lc)
	open, err := admin.New(lc)
	if err != nil {
		t.Fatal(err)
	}
	token, err := admin.New(lc, admin.Authorize(func(r *http.Request) bool { return r.Header.Get("Authorization") == "Bearer s3cret" }))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		h    http.Handler
		auth string
		want int
	}{{"no authorizer", open, "Bearer s3cret", 403}, {"a wrong token", token, "Bearer guess", 403}, {"the token", token, "Bearer s3cret", 200}} {
		srv := httptest.NewServer(tc.h)
		req, _ := http.NewRequest("POST", srv.URL+"/cordon", strings.NewReader(`{"reason":"x","for":"1m"}`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", tc.auth)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		srv.Close()
		if res.StatusCode != tc.want {
			t.Errorf("%s: %d, want %d", tc.name, res.StatusCode, tc.want)
		}
	}
	if _, ok := lc.Cordoned(); !ok {
		t.Error("the authorised request did not cordon")
	}
	if _, err := admin.New(lc, admin.Authorize(nil)); err == nil || !strings.Contains(err.Error(), "Authorize") {
		t.Errorf("Authorize(nil): %v", err)
	}
	if _, err := admin.New(nil); err == nil {
		t.Error("New(nil) accepted")
	}
}

// A thousand cordons and uncordons from many clients at once leave one
// consistent state, and no goroutine behind.
func TestToggleStorm(t *testing.T) {
	f := newFixture(t)
	before := runtime.NumGoroutine()
	const clients, each = 16, 64
	var wg sync.WaitGroup
	errs := make(chan error, clients*each)
	for i := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := f.client()
			for j := range each {
				path, body := "/uncordon", `{}`
				if (i+j)%2 == 0 {
					path, body = "/cordon", fmt.Sprintf(`{"reason":"client %d toggle %d","for":"1h"}`, i, j)
				}
				req, _ := http.NewRequest("POST", "http://admin"+path, strings.NewReader(body))
				req.Header.Set("Content-Type", "application/json")
				res, err := c.Do(req)
				if err != nil {
					errs <- err
					continue
				}
				io.Copy(io.Discard, res.Body)
				res.Body.Close()
				if res.StatusCode != 200 {
					errs <- fmt.Errorf("%s: %d", path, res.StatusCode)
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	// The state left is one the last change made, and the report agrees.
	c, cordoned := f.lc.Cordoned()
	rep := f.ready.Report()
	if cordoned != !rep.Cordon.IsZero() || cordoned && (rep.Status() != probes.Fail || rep.Cordon.Reason != c.Reason) || !cordoned && rep.Status() != probes.Pass {
		t.Fatalf("inconsistent: cordoned %v (%q), report %s with %+v", cordoned, c.Reason, rep.Status(), rep.Cordon)
	}
	if code, _ := f.send(t, "POST", "/uncordon", "application/json", `{}`); code != 200 {
		t.Fatal("final uncordon refused")
	}
	if rep := f.ready.Report(); rep.Status() != probes.Pass {
		t.Fatalf("after the storm and an uncordon: %s", rep.Status())
	}
	if n := f.logs.FilterMessage("admin: cordoned").Len(); n != clients*each/2 {
		t.Errorf("%d cordons logged, want %d", n, clients*each/2)
	}
	testutil.Eventually(t, "goroutines back to where they were", func() bool { return runtime.NumGoroutine() <= before+2 })
}

func TestListenUnix(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "a.sock")
	ln, err := admin.ListenUnix(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := admin.ListenUnix(path); err == nil || !strings.Contains(err.Error(), "in use") {
		t.Errorf("a second listener on a live socket: %v", err)
	}
	ln.Close()
	if _, err := admin.ListenUnix(filepath.Join(dir)); err == nil || !strings.Contains(err.Error(), "not a socket") {
		t.Errorf("a directory: %v", err)
	}
	if _, err := admin.ListenUnix(""); err == nil {
		t.Error("an empty path accepted")
	}
}

// At its bound of 64 connections, the socket answers a new one 503 at
// once and never cuts an operator's connection; a connection closed makes
// room again.
func TestBoundAnswersBusy(t *testing.T) {
	f := newFixture(t)
	get := func(c net.Conn) (int, error) {
		if _, err := io.WriteString(c, "GET /status HTTP/1.1\r\nHost: admin\r\n\r\n"); err != nil {
			return 0, err
		}
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		res, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			return 0, err
		}
		defer res.Body.Close()
		_, err = io.Copy(io.Discard, res.Body)
		return res.StatusCode, err
	}
	dial := func() net.Conn {
		c, err := net.Dial("unix", f.socket)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	var held []net.Conn
	for i := range 64 {
		c := dial()
		if code, err := get(c); code != 200 {
			t.Fatalf("connection %d within the bound: got %d, %v; want 200", i, code, err)
		}
		held = append(held, c) // kept alive, idle
	}
	if code, err := get(dial()); code != 503 {
		t.Fatalf("connection past the bound: got %d, %v; want 503", code, err)
	}
	for i, c := range held {
		if code, err := get(c); code != 200 {
			t.Fatalf("held connection %d after a refusal: got %d, %v; want 200 (never cut)", i, code, err)
		}
	}
	held[0].Close()
	testutil.Eventually(t, "a connection served once one closed", func() bool {
		code, _ := get(dial())
		return code == 200
	})
	if n := f.logs.FilterMessage("admin: connection refused: every connection in use").Len(); n < 1 {
		t.Errorf("busy refusals logged: got %d, want at least 1", n)
	}
}

// TestSlog: the cordon's log line, peer and all, reaches a log/slog
// handler; a nil logger is refused by name.
func TestSlog(t *testing.T) {
	if _, err := admin.New(probes.NewLifecycle(), admin.Slog(nil)); err == nil || !strings.Contains(err.Error(), "Slog(nil)") {
		t.Errorf("Slog(nil): %v, want an error naming it", err)
	}
	var mu sync.Mutex
	var buf bytes.Buffer
	h := slog.NewJSONHandler(writerFunc(func(p []byte) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		return buf.Write(p)
	}), nil)
	f := newFixture(t, admin.Slog(slog.New(h)))
	if code, body := f.send(t, "POST", "/cordon", "application/json", `{"reason":"disk swap","for":"30m"}`); code != 200 {
		t.Fatalf("cordon: %d %s", code, body)
	}
	mu.Lock()
	defer mu.Unlock()
	var rec struct {
		Msg  string `json:"msg"`
		Peer struct {
			UID *uint32 `json:"uid"`
			PID *int32  `json:"pid"`
		} `json:"peer"`
	}
	for line := range strings.SplitSeq(strings.TrimSpace(buf.String()), "\n") {
		if err := json.Unmarshal([]byte(line), &rec); err == nil && rec.Msg == "admin: cordoned" {
			break
		}
	}
	if rec.Msg != "admin: cordoned" || rec.Peer.UID == nil || rec.Peer.PID == nil {
		t.Errorf("no cordon line with the peer's uid and pid among:\n%s", buf.String())
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }
