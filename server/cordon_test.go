package server_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/probekit/probes"
	"github.com/probekit/probes/internal/testenv/testutil"
	"github.com/probekit/probes/liveness"
	"github.com/probekit/probes/readiness"
	"github.com/probekit/probes/server"
	"github.com/probekit/probes/startup"
)

// TestCordonOverHTTP checks what each path says of a cordon: /readyz 503
// with "cordoned" and until when in its notes and text, the reason only for
// authorised readers, /livez and /startupz unchanged,
// and the deep view's verbose body with the phase, each gate's verdict,
// the cordon and each entry's gate, which probectl fleet reads.
func TestCordonOverHTTP(t *testing.T) {
	lc := probes.NewLifecycle(probes.Readers(func(r *http.Request) bool { return r.Header.Get("X-Op") == "yes" }))
	st, err := startup.New(lc)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Task("cache", func(context.Context, *startup.Progress) error { return nil }); err != nil {
		t.Fatal(err)
	}
	ready, err := readiness.New(lc)
	if err != nil {
		t.Fatal(err)
	}
	if err := ready.Add("db", probes.CheckFunc(func(context.Context) error { return nil })); err != nil {
		t.Fatal(err)
	}
	if _, err := liveness.New(lc); err != nil {
		t.Fatal(err)
	}
	r := chi.NewRouter()
	if _, err := server.Register(r, lc); err != nil {
		t.Fatal(err)
	}
	get := func(path, accept string, op ...bool) (int, string) {
		t.Helper()
		req := httptest.NewRequest(http.MethodGet, path, nil)
		req.Header.Set("Accept", accept)
		if len(op) > 0 && op[0] {
			req.Header.Set("X-Op", "yes")
		}
		w := httptest.NewRecorder()
		r.ServeHTTP(w, req)
		return w.Code, w.Body.String()
	}
	testutil.Background(t, lc.Run)
	testutil.WaitStatus(t, ready, "readiness", probes.Pass, 5*time.Second)
	if _, err := lc.Cordon("disk swap", time.Hour); err != nil {
		t.Fatal(err)
	}
	if code, body := get("/readyz", "application/health+json"); code != 503 || !strings.Contains(body, `"cordoned (until `) || strings.Contains(body, "disk swap") {
		t.Errorf("/readyz while cordoned: %d %s; want 503, cordoned, without the reason", code, body)
	}
	if code, body := get("/readyz?verbose", "text/plain"); code != 503 || !strings.Contains(body, "[+]phase ok: ready\n[-]cordoned (until ") || strings.Contains(body, "disk swap") {
		t.Errorf("/readyz?verbose text while cordoned: %d\n%s", code, body)
	}
	if code, body := get("/readyz", "application/health+json", true); code != 503 || !strings.Contains(body, "cordoned: disk swap (until ") {
		t.Errorf("/readyz while cordoned, authorised: %d %s; want 503 with the reason", code, body)
	}
	if code, body := get("/readyz?verbose", "text/plain", true); code != 503 || !strings.Contains(body, "[+]phase ok: ready\n[-]cordoned: disk swap") {
		t.Errorf("/readyz?verbose text while cordoned, authorised: %d\n%s", code, body)
	}
	for _, p := range []string{"/livez", "/startupz"} {
		if code, _ := get(p, "*/*"); code != 200 {
			t.Errorf("%s while cordoned: %d, want 200", p, code)
		}
	}
	if _, body := get("/healthz?verbose", "application/health+json"); strings.Contains(body, "disk swap") || !strings.Contains(body, `"cordon":{"since"`) {
		t.Errorf("anonymous deep view: %s; want the cordon without its reason", body)
	}
	code, body := get("/healthz?verbose", "application/health+json", true)
	var deep struct {
		Status string            `json:"status"`
		Phase  string            `json:"phase"`
		Since  time.Time         `json:"since"`
		Gates  map[string]string `json:"gates"`
		Cordon *struct {
			Reason       string
			Since, Until time.Time
		} `json:"cordon"`
		Checks map[string][]struct {
			Gate   string `json:"gate"`
			Status string `json:"status"`
		} `json:"checks"`
	}
	if err := json.Unmarshal([]byte(body), &deep); err != nil {
		t.Fatalf("%v: %s", err, body)
	}
	if code != 200 || deep.Status != "warn" || deep.Phase != "ready" || deep.Since.IsZero() {
		t.Errorf("deep view while cordoned: %d %s", code, body)
	}
	if want := map[string]string{"startup": "pass", "liveness": "pass", "readiness": "fail"}; len(deep.Gates) != 3 ||
		deep.Gates["startup"] != want["startup"] || deep.Gates["liveness"] != want["liveness"] || deep.Gates["readiness"] != want["readiness"] {
		t.Errorf("gates %v, want %v", deep.Gates, want)
	}
	if c := deep.Cordon; c == nil || c.Reason != "disk swap" || c.Until.Sub(c.Since) != time.Hour {
		t.Errorf("cordon member: %+v", c)
	}
	if g := deep.Checks["readiness/db:responseTime"]; len(g) != 1 || g[0].Gate != "readiness" {
		t.Errorf("db entry %+v, want gate readiness", g)
	}
	if g := deep.Checks["startup/cache:progress"]; len(g) != 1 || g[0].Gate != "startup" {
		t.Errorf("cache entry %+v, want gate startup", g)
	}

	if _, err := lc.Uncordon(); err != nil {
		t.Fatal(err)
	}
	if code, body := get("/readyz", "*/*"); code != 200 {
		t.Errorf("/readyz after uncordon: %d %s", code, body)
	}
	if _, body := get("/healthz?verbose", "application/health+json"); strings.Contains(body, `"cordon"`) {
		t.Errorf("deep view after uncordon still has a cordon: %s", body)
	}
	if _, body := get("/readyz?verbose", "application/health+json"); strings.Contains(body, `"gates"`) || strings.Contains(body, `"gate"`) {
		t.Errorf("the extension members belong to the deep view only: %s", body)
	}
}

// A shutdown while cordoned drains as usual, and an uncordon in the middle
// of the drain neither ends nor shortens it.
func TestDrainWhileCordoned(t *testing.T) {
	lc := probes.NewLifecycle()
	if _, err := readiness.New(lc); err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	if _, err := server.Register(mux, lc); err != nil {
		t.Fatal(err)
	}
	const drain = 300 * time.Millisecond
	srv, err := server.New(&http.Server{Handler: mux}, lc, server.Listener(testutil.Listen(t)), server.DrainDelay(drain), server.Signals())
	if err != nil {
		t.Fatal(err)
	}
	draining := make(chan struct{})
	defer lc.Subscribe(func(tr probes.Transition) {
		if tr.To == probes.Draining {
			close(draining)
		}
	})()
	testutil.Ready(t, lc)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	if _, err := lc.Cordon("before the shutdown", time.Hour); err != nil {
		t.Fatal(err)
	}
	cancel()
	<-draining
	if _, err := lc.Uncordon(); err != nil {
		t.Fatal(err)
	}
	if p := lc.Phase(); p != probes.Draining {
		t.Errorf("after an uncordon in the drain: %s, want draining", p)
	}
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	if st := srv.Stats(); st.Drain < drain {
		t.Errorf("the drain lasted %s, want the full %s", st.Drain, drain)
	}
}
