//go:build e2e

package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/probekit/probes/internal/testenv/testutil"
)

// secret is in the cordon's reason; no surface may ever show it.
const secret = "Zq7hunter2"

// getBody returns the body of a GET of url, failing the test on an error.
func getBody(t *testing.T, url string) string {
	t.Helper()
	res, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// stateHeld waits until the state directory's files hold something: the
// instance's start, written within history.FlushInterval.
func stateHeld(t *testing.T, dir string) {
	t.Helper()
	testutil.Eventually(t, "the state directory written", func() bool {
		entries, err := os.ReadDir(dir)
		if err != nil {
			return false
		}
		for _, e := range entries {
			if info, err := e.Info(); err == nil && info.Mode().IsRegular() && info.Size() > 0 {
				return true
			}
		}
		return false
	})
}

// TestRestartForensics: the example on one state directory and one
// termination-message file, as a container restarted in its pod has them.
// The first instance is killed outright (SIGKILL); the second is cordoned
// over the admin socket with a secret in the reason, then stopped by
// SIGTERM; the third lists both before it, and how and why each ended, on
// every surface: the deep view, /history, the page in a real browser,
// probectl status, the fleet view and the metrics (how, not why). The termination message the second
// left names the cause and who cordoned it. No surface shows the secret.
func TestRestartForensics(t *testing.T) {
	need(t, "chromium")
	bin, ctl := buildExample(t), buildProbectl(t)
	dir := t.TempDir()
	state := filepath.Join(dir, "state")
	if err := os.Mkdir(state, 0o755); err != nil {
		t.Fatal(err)
	}
	termLog := filepath.Join(dir, "termination-log")
	sock := filepath.Join(dir, "admin.sock")
	addr, probeAddr := testutil.FreeAddr(t), testutil.FreeAddr(t)
	args := []string{"-warmup", "200ms", "-drain", "300ms", "-shutdown-timeout", "2s",
		"-admin-socket", sock, "-state-dir", state, "-termination-log", termLog, "-readers", "loopback"}
	base := "http://" + probeAddr

	// The first: ready, its start on disk, then killed without a word.
	first := startInstanceAt(t, bin, "first", addr, probeAddr, args)
	waitOK(t, base+"/readyz")
	stateHeld(t, state)
	if err := first.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-first.exited

	// The second: cordoned by hand with a secret in the reason, then
	// stopped as a rolling update stops it.
	second := startInstanceAt(t, bin, "second", addr, probeAddr, args)
	waitOK(t, base+"/readyz")
	probectl(t, ctl, sock, "cordon", "-reason", "disk swap password="+secret, "-for", "1h")
	second.terminate(t)
	msg, err := os.ReadFile(termLog)
	if err != nil {
		t.Fatal(err)
	}
	cause, _, _ := strings.Cut(string(msg), "\n")
	if !strings.HasPrefix(cause, "stopped by SIGTERM while ready and live") {
		t.Errorf("the termination message's first line: %q, want the stop by SIGTERM", cause)
	}
	for _, want := range []string{"cordoned until ", "disk swap password=xxxxx (by uid ", "probectl"} {
		if !strings.Contains(string(msg), want) {
			t.Errorf("the termination message lacks %q:\n%s", want, msg)
		}
	}

	// The third: both before it, on every surface.
	third := startInstanceAt(t, bin, "third", addr, probeAddr, args)
	t.Cleanup(func() { third.terminate(t) })
	waitOK(t, base+"/livez")
	shown := map[string]string{"termination message": string(msg)}

	deepBody := getBody(t, base+"/healthz?verbose")
	shown["deep view"] = deepBody
	var deep struct {
		Restarts int `json:"restarts"`
		LastEnd  struct {
			Ended, Cause string
		} `json:"lastEnd"`
	}
	if err := json.Unmarshal([]byte(deepBody), &deep); err != nil {
		t.Fatalf("the deep view: %v\n%s", err, deepBody)
	}
	if deep.Restarts != 2 || deep.LastEnd.Ended != "stopped" || !strings.HasPrefix(deep.LastEnd.Cause, "stopped by SIGTERM") {
		t.Errorf("the deep view: restarts %d, last end %+v; want 2, stopped by SIGTERM", deep.Restarts, deep.LastEnd)
	}

	histBody := getBody(t, base+"/history")
	shown["/history"] = histBody
	var hist struct {
		Restarts int `json:"restarts"`
		Previous []struct {
			Ended, Cause string
			Clean        bool
			Transitions  []struct{ Subject, From, To, Reason, By string }
		} `json:"previous"`
	}
	if err := json.Unmarshal([]byte(histBody), &hist); err != nil {
		t.Fatalf("/history: %v\n%.2000s", err, histBody)
	}
	if len(hist.Previous) != 2 || hist.Restarts != 2 {
		t.Fatalf("/history: restarts %d, %d previous instances; want 2 and 2", hist.Restarts, len(hist.Previous))
	}
	if p := hist.Previous[0]; p.Ended != "without a word" || p.Clean || p.Cause != "" {
		t.Errorf("/history's first instance: ended %q, clean %v, cause %q; want without a word", p.Ended, p.Clean, p.Cause)
	}
	p := hist.Previous[1]
	if p.Ended != "stopped" || !p.Clean || !strings.HasPrefix(p.Cause, "stopped by SIGTERM") {
		t.Errorf("/history's second instance: ended %q, clean %v, cause %q; want stopped by SIGTERM", p.Ended, p.Clean, p.Cause)
	}
	cordoned := false
	for _, tr := range p.Transitions {
		if tr.Subject == "cordon" && tr.To == "cordoned" {
			cordoned = strings.Contains(tr.Reason, "disk swap") && strings.HasPrefix(tr.By, "uid ")
		}
	}
	if !cordoned {
		t.Errorf("/history's second instance lacks its cordon with reason and author: %+v", p.Transitions)
	}

	status := probectl(t, ctl, sock, "status")
	shown["probectl status"] = status
	if !strings.Contains(status, "restarts  2: the last stopped at ") || !strings.Contains(status, "stopped by SIGTERM") {
		t.Errorf("probectl status does not list the restarts and the last cause:\n%s", status)
	}

	_, round, _ := fleetRound(t, ctl, "-targets="+probeAddr)
	shown["fleet view"] = fmt.Sprintf("%+v", round)
	if len(round.Instances) != 1 {
		t.Fatalf("the fleet view: %+v", round)
	}
	if in := round.Instances[0]; in.Restarts != 2 || in.LastEnded != "stopped" || !strings.HasPrefix(in.LastCause, "stopped by SIGTERM") {
		t.Errorf("the fleet view: restarts %d, last %q: %q; want 2, stopped by SIGTERM", in.Restarts, in.LastEnded, in.LastCause)
	}

	metricsBody := getBody(t, base+"/metrics")
	shown["metrics"] = metricsBody
	for _, want := range []string{"\nprobes_restarts 2\n", "\nprobes_last_end{ended=\"stopped\"} 1\n", "\nprobes_last_end_timestamp_seconds "} {
		if !strings.Contains(metricsBody, want) {
			t.Errorf("/metrics lacks %q", strings.TrimSpace(want))
		}
	}

	// The page, in chromium.
	ctx, consoleErrors := browser(t)
	if err := chromedp.Run(ctx, chromedp.Navigate(base+"/healthz")); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, "the page lists the previous instances", func() bool {
		return attr(t, ctx, `[data-previous="1"]`, "data-ended") == "stopped"
	})
	if got := attr(t, ctx, "[data-restarts]", "data-restarts"); got != "2" {
		t.Errorf("the page's restarts: %q, want 2", got)
	}
	if got := attr(t, ctx, `[data-previous="0"]`, "data-ended"); got != "without a word" {
		t.Errorf("the page's first previous instance: ended %q, want without a word", got)
	}
	var text string
	if err := chromedp.Run(ctx, chromedp.Text(`[data-previous="1"]`, &text, chromedp.ByQuery)); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"stopped by SIGTERM while ready and live", "disk swap password=xxxxx", "by uid "} {
		if !strings.Contains(text, want) {
			t.Errorf("the page's second previous instance lacks %q:\n%s", want, text)
		}
	}
	if got := attr(t, ctx, `[data-previous-transition][data-subject="cordon"]`, "data-to"); got != "cordoned" {
		t.Errorf("the page's previous transitions lack the cordon: %q", got)
	}
	screenshot(t, ctx, "status-page-previous-instances")
	var html string
	if err := chromedp.Run(ctx, chromedp.OuterHTML("html", &html, chromedp.ByQuery)); err != nil {
		t.Fatal(err)
	}
	shown["page"] = html
	if errs := consoleErrors(); len(errs) > 0 {
		t.Errorf("console errors: %v", errs)
	}

	for surface, body := range shown {
		if strings.Contains(body, secret) {
			t.Errorf("the %s shows the secret of the cordon's reason", surface)
		}
	}
}
