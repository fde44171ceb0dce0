//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/probekit/probes/internal/testenv/pgtest"
	"github.com/probekit/probes/internal/testenv/testutil"
)

// browser starts Debian's chromium, headless, and returns a tab's context
// and the console errors it has seen.
func browser(t *testing.T) (context.Context, func() []string) {
	t.Helper()
	path, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatal(err)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path), chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true), chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true), chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1000, 900))
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelB := chromedp.NewContext(actx)
	t.Cleanup(func() { cancelB(); cancelA() })
	var mu sync.Mutex
	var errs []string
	chromedp.ListenTarget(ctx, func(ev any) {
		mu.Lock()
		defer mu.Unlock()
		switch ev := ev.(type) {
		case *runtime.EventConsoleAPICalled:
			if ev.Type == runtime.APITypeError {
				errs = append(errs, fmt.Sprint(ev.Args))
			}
		case *runtime.EventExceptionThrown:
			errs = append(errs, ev.ExceptionDetails.Error())
		}
	})
	if err := chromedp.Run(ctx); err != nil {
		t.Fatalf("starting chromium: %v", err)
	}
	return ctx, func() []string { mu.Lock(); defer mu.Unlock(); return append([]string(nil), errs...) }
}

// attr reads an attribute of the first element sel matches, "" if none.
func attr(t *testing.T, ctx context.Context, sel, name string) string {
	t.Helper()
	var v string
	var ok bool
	var nodes int
	qctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	err := chromedp.Run(qctx,
		chromedp.Evaluate(fmt.Sprintf(`document.querySelectorAll(%q).length`, sel), &nodes))
	if err != nil || nodes == 0 {
		return ""
	}
	if err := chromedp.Run(qctx, chromedp.AttributeValue(sel, name, &v, &ok, chromedp.ByQuery)); err != nil || !ok {
		return ""
	}
	return v
}

// screenshot saves the page as name.png in the artifacts directory
// (PAGE_SCREENSHOTS, or the test's temporary directory).
func screenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	dir := os.Getenv("PAGE_SCREENSHOTS")
	if dir == "" {
		dir = t.TempDir()
	}
	var png []byte
	if err := chromedp.Run(ctx, chromedp.FullScreenshot(&png, 100)); err != nil {
		t.Errorf("screenshot %s: %v", name, err)
		return
	}
	file := filepath.Join(dir, name+".png")
	if err := os.WriteFile(file, png, 0o644); err != nil {
		t.Error(err)
	}
	t.Logf("screenshot: %s", file)
}

// firstTimes polls until both conditions have held once and returns when
// each first did.
func firstTimes(t *testing.T, what string, endpoint, page func() bool) (time.Time, time.Time) {
	t.Helper()
	var e, p time.Time
	deadline := time.Now().Add(30 * time.Second)
	for e.IsZero() || p.IsZero() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not seen within 30s (endpoint %v, page %v)", what, !e.IsZero(), !p.IsZero())
		}
		if e.IsZero() && endpoint() {
			e = time.Now()
		}
		if p.IsZero() && page() {
			p = time.Now()
		}
	}
	return e, p
}

// The status page in a real browser, through the example's whole life with
// a real PostgreSQL: warm-up progress, Ready, a database outage and its
// end, SIGTERM; the timeline in order; no console error; no password; and
// the same statuses with JavaScript off.
func TestStatusPageInABrowser(t *testing.T) {
	need(t, "chromium")
	bin := buildExample(t)
	pg := pgtest.Start(t)
	addr, probeAddr := testutil.FreeAddr(t), testutil.FreeAddr(t)
	in := startInstanceAt(t, bin, "page", addr, probeAddr, []string{"-warmup", "10s", "-drain", "3s", "-shutdown-timeout", "2s"},
		"DATABASE_URL="+pg.URL("hunter2"))
	base := "http://" + probeAddr
	waitOK(t, base+"/livez")
	ctx, consoleErrors := browser(t)
	if err := chromedp.Run(ctx, chromedp.Navigate(base+"/healthz")); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, "the page live", func() bool {
		var s string
		return chromedp.Run(ctx, chromedp.Text("#conn", &s, chromedp.ByQuery)) == nil && s == "live"
	})

	// Warming: the progress advances.
	if p := attr(t, ctx, "[data-phase]", "data-phase"); p != "warming" {
		t.Fatalf("phase on the page during warm-up: %q", p)
	}
	progress := func() int {
		n, err := strconv.Atoi(attr(t, ctx, `[data-task="cache"]`, "data-progress"))
		if err != nil {
			return -1
		}
		return n
	}
	first := progress()
	if first < 0 || first >= 100 {
		t.Fatalf("the cache's progress on the page: %d", first)
	}
	testutil.Eventually(t, "the cache's progress advancing on the page", func() bool { p := progress(); return p > first && p < 100 })
	screenshot(t, ctx, "status-page-warming")
	testutil.Eventually(t, "ready on the page", func() bool { return attr(t, ctx, "[data-phase]", "data-phase") == "ready" })
	testutil.Eventually(t, "postgres passing on the page", func() bool {
		return attr(t, ctx, `[data-check="readiness/postgres"]`, "data-status") == "pass"
	})
	screenshot(t, ctx, "status-page-ready")

	// With JavaScript off, the same statuses are there.
	plain, cancel := chromedp.NewContext(ctx)
	if err := chromedp.Run(plain, emulation.SetScriptExecutionDisabled(true), chromedp.Navigate(base+"/healthz")); err != nil {
		t.Fatal(err)
	}
	for _, sel := range []string{`[data-check="readiness/postgres"]`, `[data-check="liveness/refresher"]`, `[data-gate="readiness"]`} {
		if a, b := attr(t, ctx, sel, "data-status"), attr(t, plain, sel, "data-status"); a == "" || a != b {
			t.Errorf("%s: %q with JavaScript, %q without", sel, a, b)
		}
	}
	var conn string
	if err := chromedp.Run(plain, chromedp.Text("#conn", &conn, chromedp.ByQuery)); err != nil || conn != "live updates need JavaScript" {
		t.Errorf("without JavaScript the page says %q (%v)", conn, err)
	}
	cancel()

	// The database goes away, then comes back: the page follows the
	// probe endpoint within the check's interval plus 100 ms.
	status := func(path string) int {
		res, err := http.Get(base + path)
		if err != nil {
			return 0
		}
		res.Body.Close()
		return res.StatusCode
	}
	const interval = 5 * time.Second
	pg.Stop()
	e, p := firstTimes(t, "postgres failing", func() bool { return status("/readyz/postgres") == 503 },
		func() bool { return attr(t, ctx, `[data-check="readiness/postgres"]`, "data-status") == "fail" })
	if d := p.Sub(e); d > interval+100*time.Millisecond {
		t.Errorf("the page showed the failure %s after the endpoint", d)
	} else {
		t.Logf("failure: page %s after the endpoint", d.Round(time.Millisecond))
	}
	if g := attr(t, ctx, `[data-gate="readiness"]`, "data-status"); g != "warn" {
		t.Errorf("readiness on the page during the outage: %q, want warn (a shared database)", g)
	}
	screenshot(t, ctx, "status-page-outage")
	pg.StartAgain()
	e, p = firstTimes(t, "postgres passing again", func() bool { return status("/readyz/postgres") == 200 },
		func() bool { return attr(t, ctx, `[data-check="readiness/postgres"]`, "data-status") == "pass" })
	if d := p.Sub(e); d > interval+100*time.Millisecond {
		t.Errorf("the page showed the recovery %s after the endpoint", d)
	} else {
		t.Logf("recovery: page %s after the endpoint", d.Round(time.Millisecond))
	}

	// SIGTERM: the page says draining while the listener still serves.
	if err := in.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, "draining on the page", func() bool { return attr(t, ctx, "[data-phase]", "data-phase") == "draining" })
	screenshot(t, ctx, "status-page-draining")
	var html string
	if err := chromedp.Run(ctx, chromedp.OuterHTML("html", &html, chromedp.ByQuery)); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(html, "hunter2") || strings.Contains(html, "postgres://") {
		t.Error("the page holds the database's password or address")
	}
	var timeline []string
	if err := chromedp.Run(ctx, chromedp.Evaluate(`Array.from(document.querySelectorAll("[data-transition]")).reverse().map(e => e.dataset.subject+" "+e.dataset.from+">"+e.dataset.to)`, &timeline)); err != nil {
		t.Fatal(err)
	}
	joined := strings.Join(timeline, ", ")
	last := -1
	for _, want := range []string{"phase warming>ready", "readiness/postgres pass>fail", "readiness/postgres fail>pass", "phase ready>draining"} {
		i := strings.Index(joined, want)
		if i < 0 || i < last {
			t.Errorf("timeline %q: %q missing or out of order", joined, want)
		}
		last = i
	}
	if errs := consoleErrors(); len(errs) > 0 {
		t.Errorf("console errors: %v", errs)
	}
	<-in.exited
}
