package admin_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/probekit/probes"
	"github.com/probekit/probes/admin"
	"github.com/probekit/probes/internal/testutil"
	"github.com/probekit/probes/readiness"
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
	f := &fixture{lc: probes.NewLifecycle()}
	var err error
	if f.ready, err = readiness.New(f.lc); err != nil {
		t.Fatal(err)
	}
	testutil.Ready(t, f.lc)
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
	var st admin.Status
	if err := json.Unmarshal([]byte(body), &st); err != nil || code != 200 || st.Phase != "ready" || st.Cordon == nil ||
		st.Cordon.Left <= 29*60 || len(st.Gates) != 1 || st.Gates[0].Status != "fail" {
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
