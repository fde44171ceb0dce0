package fleet

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/probekit/probes"
	"github.com/probekit/probes/internal/look"
	"github.com/probekit/probes/internal/testenv/testutil"
)

func get(t testing.TB, h http.Handler, method, path string) *httptest.ResponseRecorder {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(method, path, nil))
	return rec
}

func TestPageContract(t *testing.T) {
	shared := map[string]error{"postgres": errDown}
	a := serveLifecycle(t, shared, probes.Fail)
	b := serveLifecycle(t, shared, probes.Fail)
	c, lc := serveLifecycleOn(t, nil, map[string]error{"postgres": errDown, "sidecar": errDown}, probes.Fail)
	by := probes.Author{UID: 1000, User: "alice", PID: 4242, Command: `probectl cordon "<i>" token=Zq7tok`}
	if _, err := lc.CordonBy(by, `swap <script>alert(1)</script>`, time.Minute); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = lc.Uncordon() })
	lc.SetPast(probes.Past{Restarts: 2, Ended: probes.EndedSilent})
	gone := testutil.FreeAddr(t)
	p := newPoller(time.Second, 8)
	defer p.close()
	r := round(context.Background(), p, static([]string{a, b, c, gone}), 0.5)
	pg := newPage("svc.fleet.test", 2*time.Second)
	if rec := get(t, pg, "GET", "/"); !strings.Contains(rec.Body.String(), "asking the instances for the first time") {
		t.Errorf("before the first round: %s", rec.Body.String())
	}
	pg.update(&r)
	rec := get(t, pg, "GET", "/")
	body := rec.Body.String()
	if rec.Code != 200 || rec.Header().Get("Content-Type") != "text/html; charset=utf-8" {
		t.Fatalf("got %d %q", rec.Code, rec.Header().Get("Content-Type"))
	}
	csp := rec.Header().Get("Content-Security-Policy")
	if !strings.Contains(csp, "default-src 'none'") || !strings.Contains(csp, "script-src 'none'") || !strings.Contains(csp, look.Hash(pageStyle)) {
		t.Errorf("CSP %q", csp)
	}
	if strings.Contains(body, "<script") || strings.Contains(body, "alert(1)</script>") || strings.Contains(body, "<i>") {
		t.Error("the cordon's reason or author reached the page unescaped")
	}
	if strings.Contains(body, "Zq7") {
		t.Error("a secret of the cordon's author reached the page")
	}
	want := []string{
		`<meta http-equiv="refresh" content="2">`,
		`data-fleet-wide="readiness/postgres"`,
		`data-local="readiness/sidecar"`,
		fmt.Sprintf(`data-instance="%s" data-phase="ready" data-reachable="true">`, a),
		fmt.Sprintf(`data-instance="%s" data-phase="ready" data-reachable="true" data-cordon="swap &lt;script&gt;alert(1)&lt;/script&gt;">`, c),
		fmt.Sprintf(`data-instance="%s" data-phase="" data-reachable="false">`, gone),
		fmt.Sprintf(`<a href="http://%s/healthz">`, a),
		`data-check="readiness/postgres" data-status="fail"`,
		`<small>lifts in `,
		`<small class="by" data-by="uid 1000 (alice), pid 4242: probectl cordon &#34;&lt;i&gt;&#34; token=xxxxx">by uid 1000 (alice), pid 4242: probectl cordon &#34;&lt;i&gt;&#34; token=xxxxx</small>`,
		`data-restarts="2" data-last-ended="without a word">2 <small class="fail">without a word</small>`,
		`data-restarts="0">0</td>`,
	}
	for _, w := range want {
		if !strings.Contains(body, w) {
			t.Errorf("the page lacks %s", w)
		}
	}
	// Each instance's checks are inside its own element.
	row := regexp.MustCompile(`(?s)<tr data-instance="` + regexp.QuoteMeta(c) + `".*?</tr>`).FindString(body)
	if !strings.Contains(row, `data-check="readiness/sidecar" data-status="fail"`) {
		t.Errorf("the row of %s lacks its sidecar check: %s", c, row)
	}
	if n := len(rec.Body.Bytes()); n > 50<<10 {
		t.Errorf("the page is %d bytes", n)
	}
	if rec := get(t, pg, "GET", "/fleet.json"); rec.Code != 200 || !strings.Contains(rec.Body.String(), `"fleetWide":["readiness/postgres"]`) {
		t.Errorf("/fleet.json: %d %s", rec.Code, rec.Body.String())
	}
	if rec := get(t, pg, "POST", "/"); rec.Code != http.StatusMethodNotAllowed {
		t.Errorf("POST: got %d, want 405", rec.Code)
	}
	if rec := get(t, pg, "GET", "/elsewhere"); rec.Code != http.StatusNotFound {
		t.Errorf("another path: got %d, want 404", rec.Code)
	}
}

// syncBuffer is a buffer written by one goroutine and read by another.
type syncBuffer struct {
	mu chan struct{}
	b  bytes.Buffer
}

func newSyncBuffer() *syncBuffer { return &syncBuffer{mu: make(chan struct{}, 1)} }

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu <- struct{}{}
	defer func() { <-s.mu }()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu <- struct{}{}
	defer func() { <-s.mu }()
	return s.b.String()
}

// Page requests are answered from the last round: a hundred of them cost
// the instances nothing.
func TestServeNoPollStorm(t *testing.T) {
	inner := serveLifecycle(t, nil, probes.Pass)
	var asked atomic.Int64
	counted := hostile(t, func(w http.ResponseWriter, r *http.Request) {
		asked.Add(1)
		res, err := http.Get("http://" + inner + r.URL.RequestURI())
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer res.Body.Close()
		w.WriteHeader(res.StatusCode)
		io.Copy(w, res.Body) //nolint:errcheck // the test reads what arrived
	})
	ctx, cancel := context.WithCancel(context.Background())
	stderr := newSyncBuffer()
	done := make(chan int)
	go func() {
		done <- Main(ctx, []string{"-serve", "127.0.0.1:0", "-every", "1h", targets(counted)}, io.Discard, stderr)
	}()
	defer func() {
		cancel()
		if code := <-done; code != 0 {
			t.Errorf("exit code after ctx ended: got %d, want 0", code)
		}
	}()
	addrRe := regexp.MustCompile(`serving the fleet page at (http://\S+/)`)
	var base string
	testutil.Eventually(t, "the page served", func() bool {
		m := addrRe.FindStringSubmatch(stderr.String())
		if m != nil {
			base = m[1]
		}
		return m != nil
	})
	page := func() string {
		res, err := http.Get(base)
		if err != nil {
			return ""
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return string(b)
	}
	testutil.Eventually(t, "the first round on the page", func() bool {
		return strings.Contains(page(), `data-reachable="true"`)
	})
	for range 100 {
		if !strings.Contains(page(), `data-instance="`+counted+`"`) {
			t.Fatal("the instance is not on the page")
		}
	}
	if n := asked.Load(); n != 1 {
		t.Errorf("the instance was asked %d times for 101 page requests in one round, want 1", n)
	}
}

// The page shows what a round kept, and counts the rest: the checks of an
// instance beyond MaxChecks, the faults beyond MaxFaults, and a warning.
func TestPageCountsWhatItDoesNotShow(t *testing.T) {
	r := Round{At: time.Now().UTC(), Reachable: 1, Faults: []Fault{{Check: "readiness/a", Scope: Local, Failing: 1, Of: 1}},
		MoreFaults: 3, MoreFleetWide: 1, Warnings: []string{"discovery: answer truncated, 1 of more instances listed"},
		Instances: []Instance{{Address: "127.0.0.2:8081", Reachable: true, Ready: true, Phase: "ready",
			Checks: []Check{{Name: "readiness/a", Status: "fail"}}, Failing: []string{"readiness/a"}, MoreChecks: 5, MoreFailing: 2}}}
	pg := newPage("svc", time.Second)
	pg.update(&r)
	body := get(t, pg, http.MethodGet, "/").Body.String()
	for _, want := range []string{
		`data-more-checks="5">and 5 more, <b class="fail">2 failing</b>`,
		`data-more-faults="3">and 3 more failing checks, 1 of them fleet-wide`,
		`<p class="warn" data-warning>discovery: answer truncated, 1 of more instances listed</p>`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("the page lacks %s", want)
		}
	}
}
