package server_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/probekit/probes"
	"github.com/probekit/probes/server"
)

// The deep view's verbose body says how many restarts there were and how
// the last instance ended; why, to authorised readers only. The other
// bodies say nothing of it: the probes stay as they were.
func TestDeepViewPast(t *testing.T) {
	lc := probes.NewLifecycle(probes.Readers(func(r *http.Request) bool { return r.Header.Get("X-Op") == "yes" }))
	mux := http.NewServeMux()
	if _, err := server.Register(mux, lc); err != nil {
		t.Fatal(err)
	}
	get := func(path string, op bool) string {
		t.Helper()
		req := httptest.NewRequest(http.MethodGet, path, nil)
		req.Header.Set("Accept", "application/health+json")
		if op {
			req.Header.Set("X-Op", "yes")
		}
		w := httptest.NewRecorder()
		mux.ServeHTTP(w, req)
		return w.Body.String()
	}
	if body := get("/healthz?verbose", true); strings.Contains(body, "restarts") || strings.Contains(body, "lastEnd") {
		t.Errorf("no past, yet the deep view says: %s", body)
	}
	end := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	lc.SetPast(probes.Past{Restarts: 2, Ended: probes.EndedBroken, End: end, Cause: "warm-up deadline 2m0s missed"})
	for _, tt := range []struct {
		path, want string
		op         bool
	}{
		{"/healthz?verbose", `"restarts":2,"lastEnd":{"ended":"broken","at":"2026-12-01T12:00:00Z"}`, false},
		{"/healthz?verbose", `"restarts":2,"lastEnd":{"ended":"broken","at":"2026-12-01T12:00:00Z","cause":"warm-up deadline 2m0s missed"}`, true},
		{"/healthz", "", true},
		{"/readyz?verbose", "", true},
	} {
		body := get(tt.path, tt.op)
		if tt.want == "" {
			if strings.Contains(body, "restarts") || strings.Contains(body, "missed") {
				t.Errorf("%s (op %v) speaks of the past: %s", tt.path, tt.op, body)
			}
			continue
		}
		if !strings.Contains(body, tt.want) {
			t.Errorf("%s (op %v): %s\nwant %s", tt.path, tt.op, body, tt.want)
		}
		if !tt.op && strings.Contains(body, "missed") {
			t.Errorf("%s: anonymous readers see the cause: %s", tt.path, body)
		}
	}
	lc.SetPast(probes.Past{Restarts: 1, Ended: probes.EndedSilent})
	if body := get("/healthz?verbose", true); !strings.Contains(body, `"restarts":1,"lastEnd":{"ended":"without a word"}`) {
		t.Errorf("after a kill: %s", body)
	}
}
