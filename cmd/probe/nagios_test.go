package main

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"

	"github.com/probekit/probes"
	"github.com/probekit/probes/grpchealth"
	"github.com/probekit/probes/internal/testenv/testutil"
	"github.com/probekit/probes/readiness"
	"github.com/probekit/probes/server"
)

// nagiosRE is the plugin line: state, summary, and perfdata entries.
var nagiosRE = regexp.MustCompile(`^PROBES (OK|WARNING|CRITICAL|UNKNOWN) - ([^|\n]*)(?: \| ('[^']*(?:''[^']*)*'=[-0-9.e+]+(?:s|%|B|c)?)(?: '[^']*(?:''[^']*)*'=[-0-9.e+]+(?:s|%|B|c)?)*)?\n$`)

// service is a real lifecycle whose readiness has a shared database and a
// local cache check, each failing on demand, served by the library's own
// handlers over loopback.
func service(t *testing.T) (url string, db, cache chan error) {
	t.Helper()
	// The monitor is let in to read values (loopback, here), as a
	// service's Readers policy would let its monitoring in.
	lc := probes.NewLifecycle(probes.Identify(probes.Identity{Service: "shop", Release: "1.4.2"}), probes.Readers(probes.FromLoopback))
	ready, err := readiness.New(lc)
	if err != nil {
		t.Fatal(err)
	}
	db, cache = make(chan error, 1), make(chan error, 1)
	latest := func(ch chan error, last *error) probes.Checker {
		return probes.CheckFunc(func(ctx context.Context) error {
			select {
			case *last = <-ch:
			default:
			}
			probes.Observe(ctx, probes.Observation{Measurement: "connections", Value: 3})
			probes.Observe(ctx, probes.Observation{Measurement: "utilization", Value: 37.5, Unit: "%"})
			return *last
		})
	}
	var dbErr, cacheErr error
	if err := ready.Add("postgres", latest(db, &dbErr), probes.Shared(), probes.Every(5*time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	if err := ready.Add("cache", latest(cache, &cacheErr), probes.Local(), probes.Every(5*time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	if _, err := server.Register(mux, lc); err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(mux)
	t.Cleanup(ts.Close)
	testutil.Background(t, lc.Run)
	testutil.Ready(t, lc)
	return ts.URL, db, cache
}

func plugin(t *testing.T, args ...string) (int, string) {
	t.Helper()
	var out strings.Builder
	code := run(append([]string{"-format", "nagios"}, args...), &out)
	if !nagiosRE.MatchString(out.String()) {
		t.Errorf("not a plugin line: %q", out.String())
	}
	return code, out.String()
}

func TestNagiosStates(t *testing.T) {
	url, db, cache := service(t)
	deep := url + "/healthz?verbose"
	testutil.Eventually(t, "pass", func() bool { code, _ := plugin(t, deep); return code == nagiosOK })
	_, line := plugin(t, deep)
	for _, want := range []string{"PROBES OK - shop 1.4.2 pass", "'time'=", "'readiness/postgres:utilization'=37.5%", "'readiness/cache:connections'=3"} {
		if !strings.Contains(line, want) {
			t.Errorf("line lacks %q: %s", want, line)
		}
	}

	// A shared dependency down: readiness warns, the deep view fails.
	db <- errors.New("dial postgres://app:hunter2@db:5432: connection refused")
	testutil.Eventually(t, "readiness warns", func() bool { code, _ := plugin(t, url+"/readyz"); return code == nagiosWarning })
	code, line := plugin(t, deep)
	if code != nagiosCritical || !strings.Contains(line, "PROBES CRITICAL - shop 1.4.2 fail") || !strings.Contains(line, "postgres") {
		t.Errorf("deep view with the database down: %d %s", code, line)
	}
	if strings.Contains(line, "hunter2") {
		t.Errorf("the secret in the line: %s", line)
	}
	db <- nil
	cache <- errors.New("cache corrupt")
	testutil.Eventually(t, "readiness fails", func() bool { code, _ := plugin(t, url+"/readyz"); return code == nagiosCritical })
}

func TestNagiosUnknown(t *testing.T) {
	silent, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	go func() {
		for {
			c, err := silent.Accept()
			if err != nil {
				return
			}
			defer c.Close() // hold it open, answer nothing
		}
	}()
	html := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		w.Write([]byte(`<html>{"status":"pass"}</html>`))
	}))
	defer html.Close()
	notHealth := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"ok":true}`))
	}))
	defer notHealth.Close()
	closed := testutil.FreeAddr(t)
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"refused", []string{"http://" + closed + "/readyz"}, "no answer"},
		{"timeout", []string{"-timeout", "100ms", "http://" + silent.Addr().String() + "/readyz"}, "no answer"},
		{"html", []string{html.URL}, "not health+json"},
		{"json without a status", []string{notHealth.URL}, "not health+json"},
		{"not a URL", []string{"ftp://x"}, "not an http or https URL"},
		{"no URL", nil, ""},
		{"bad flag", []string{"-nosuch", "http://x/"}, ""},
		{"grpc refused", []string{"-grpc", "-timeout", "200ms", closed}, "grpc"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out strings.Builder
			code := run(append([]string{"-format", "nagios"}, tc.args...), &out)
			if code != nagiosUnknown || !strings.Contains(out.String(), tc.want) {
				t.Errorf("exit %d, %q; want 3 (UNKNOWN) saying %q", code, out.String(), tc.want)
			}
		})
	}
}

// TestNagiosBounded: whatever the server says, one line, within the bound,
// printable, no secret.
func TestNagiosBounded(t *testing.T) {
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/health+json")
		var b strings.Builder
		b.WriteString(`{"status":"fail","serviceId":"s|\n\u001b[2Jx","output":"postgres://u:hunter2@h/d ` + strings.Repeat("é", 2000) + `","checks":{`)
		for i := range 500 {
			if i > 0 {
				b.WriteString(",")
			}
			b.WriteString(`"c` + strings.Repeat("'=", 5) + string(rune('a'+i%26)) + `:v` + strings.Repeat("x", i%7) + `":[{"status":"pass","observedValue":1.5,"observedUnit":"ms"}]`)
		}
		b.WriteString(`}}`)
		w.WriteHeader(503)
		w.Write([]byte(b.String()))
	}))
	defer ts.Close()
	code, line := plugin(t, ts.URL)
	if code != nagiosCritical || len(line) > maxLine+1 || strings.Count(line, "\n") != 1 || strings.Contains(line, "hunter2") || strings.Contains(line, "\x1b") {
		t.Errorf("exit %d, %d bytes: %q", code, len(line), line)
	}
}

func TestNagiosGRPC(t *testing.T) {
	lc := probes.NewLifecycle()
	if _, err := readiness.New(lc); err != nil {
		t.Fatal(err)
	}
	h, err := grpchealth.New(lc)
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer()
	h.Register(gs)
	ln := testutil.Listen(t)
	go gs.Serve(ln)
	defer gs.Stop()
	defer h.Close()
	if code, line := plugin(t, "-grpc", "-service", "readiness", ln.Addr().String()); code != nagiosCritical || !strings.Contains(line, "NOT_SERVING") {
		t.Errorf("cold: %d %s", code, line)
	}
	testutil.Background(t, lc.Run)
	testutil.Ready(t, lc)
	if code, line := plugin(t, "-grpc", "-service", "readiness", ln.Addr().String()); code != nagiosOK || !strings.Contains(line, "SERVING") || !strings.Contains(line, "'time'=") {
		t.Errorf("ready: %d %s", code, line)
	}
}
