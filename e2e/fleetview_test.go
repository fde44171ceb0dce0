//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"

	"github.com/probekit/probes/internal/fleet"
	"github.com/probekit/probes/internal/testenv/dnstest"
	"github.com/probekit/probes/internal/testenv/pgtest"
	"github.com/probekit/probes/internal/testenv/proctest"
	"github.com/probekit/probes/internal/testenv/testutil"
)

// fleetName is the name the DNS server gives the three instances, as a
// headless Service's name gives its pods.
const fleetName = "probes-example.fleet.test"

// portOnAll returns a port free on every one of hosts now.
func portOnAll(t *testing.T, hosts ...string) int {
	t.Helper()
	for range 50 {
		first, err := net.Listen("tcp", net.JoinHostPort(hosts[0], "0"))
		if err != nil {
			t.Fatal(err)
		}
		port := first.Addr().(*net.TCPAddr).Port
		lns := []net.Listener{first}
		for _, h := range hosts[1:] {
			if ln, err := net.Listen("tcp", net.JoinHostPort(h, strconv.Itoa(port))); err == nil {
				lns = append(lns, ln)
			}
		}
		for _, ln := range lns {
			ln.Close()
		}
		if len(lns) == len(hosts) {
			return port
		}
	}
	t.Fatalf("no port free on all of %v", hosts)
	return 0
}

// fleetRound runs the probectl binary ctl as `probectl fleet -json` and
// returns its exit code, its round and how long it took.
func fleetRound(t *testing.T, ctl string, args ...string) (int, fleet.Round, time.Duration) {
	t.Helper()
	var out, errOut bytes.Buffer
	cmd := exec.Command(ctl, append([]string{"fleet", "-json"}, args...)...)
	cmd.Stdout, cmd.Stderr = &out, &errOut
	began := time.Now()
	err := cmd.Run()
	took := time.Since(began)
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("probectl fleet: %v", err)
	}
	var r fleet.Round
	if code != 2 {
		if err := json.Unmarshal(out.Bytes(), &r); err != nil {
			t.Fatalf("fleet -json: %v\n%s%s", err, out.String(), errOut.String())
		}
	}
	return code, r, took
}

// fleetUntil runs rounds until cond holds of one, and returns it.
func fleetUntil(t *testing.T, ctl, what string, args []string, cond func(code int, r fleet.Round) bool) fleet.Round {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		code, r, _ := fleetRound(t, ctl, args...)
		if cond(code, r) {
			return r
		}
		if time.Now().After(deadline) {
			t.Fatalf("not within 30s: %s; last round (exit %d): %+v", what, code, r)
		}
		time.Sleep(100 * time.Millisecond) // polling a fleet whose checks run on their own intervals
	}
}

func byAddress(r fleet.Round) map[string]fleet.Instance {
	m := map[string]fleet.Instance{}
	for _, in := range r.Instances {
		m[in.Address] = in
	}
	return m
}

// Three example instances behind one DNS name (dnsmasq), one PostgreSQL:
// the fleet view through the whole story, and its page in chromium.
func TestFleetView(t *testing.T) {
	need(t, "chromium")
	bin, ctl := buildExample(t), buildProbectl(t)
	pg := pgtest.Start(t)
	sockets := t.TempDir()
	hosts := []string{"127.0.0.2", "127.0.0.3", "127.0.0.4"}
	probePort := portOnAll(t, hosts...)
	dns := dnstest.Start(t, dnstest.Zone("fleet.test"), dnstest.Host(fleetName, hosts...))
	var ins []*instance
	var addrs, socks []string
	for i, h := range hosts {
		api := net.JoinHostPort(h, strconv.Itoa(portOnAll(t, h)))
		probe := net.JoinHostPort(h, strconv.Itoa(probePort))
		sock := filepath.Join(sockets, fmt.Sprintf("i%d.sock", i))
		ins = append(ins, startInstanceAt(t, bin, fmt.Sprintf("i%d", i), api, probe,
			[]string{"-warmup", "200ms", "-metrics=false", "-admin-socket", sock}, "DATABASE_URL="+pg.URL("hunter2")))
		addrs, socks = append(addrs, probe), append(socks, sock)
	}
	args := []string{"-resolver", dns.Addr(), "-port", strconv.Itoa(probePort), fleetName}

	// All ready: exit 0, the three found through DNS.
	r := fleetUntil(t, ctl, "all three ready", args, func(code int, r fleet.Round) bool { return code == 0 })
	if len(r.Instances) != 3 {
		t.Fatalf("instances: got %d, want 3: %+v", len(r.Instances), r)
	}
	for i, in := range r.Instances {
		if in.Address != addrs[i] || in.Phase != "ready" || !in.Ready {
			t.Errorf("instance %d: %+v", i, in)
		}
	}
	t.Logf("all ready: a round took %.1f ms", r.Took)

	// The fleet page, served while the rest goes on.
	ctx, cancel := context.WithCancel(context.Background())
	stderr := &lockedLog{}
	served := make(chan int)
	go func() {
		served <- fleet.Main(ctx, append([]string{"-serve", "127.0.0.1:0", "-every", "500ms"}, args...), &bytes.Buffer{}, stderr)
	}()
	defer func() {
		cancel()
		if code := <-served; code != 0 {
			t.Errorf("fleet -serve: exit %d after its context ended: %s", code, stderr.String())
		}
	}()
	var base string
	addrRe := regexp.MustCompile(`serving the fleet page at (http://\S+/)`)
	testutil.Eventually(t, "the fleet page served", func() bool {
		if m := addrRe.FindStringSubmatch(stderr.String()); m != nil {
			base = m[1]
		}
		return base != ""
	})
	browserCtx, consoleErrors := browser(t)
	if err := chromedp.Run(browserCtx, chromedp.Navigate(base)); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, "the three instances on the page", func() bool {
		_ = chromedp.Run(browserCtx, chromedp.Reload())
		for _, a := range addrs {
			if attr(t, browserCtx, `[data-instance="`+a+`"]`, "data-reachable") != "true" {
				return false
			}
		}
		return true
	})
	for _, a := range addrs {
		if p := attr(t, browserCtx, `[data-instance="`+a+`"]`, "data-phase"); p != "ready" {
			t.Errorf("%s on the page: phase %q", a, p)
		}
		sel := `[data-instance="` + a + `"] [data-check="readiness/postgres"]`
		if s := attr(t, browserCtx, sel, "data-status"); s != "pass" {
			t.Errorf("%s on the page: postgres %q", a, s)
		}
		if href := attr(t, browserCtx, `[data-instance="`+a+`"] a`, "href"); href != "http://"+a+"/healthz" {
			t.Errorf("%s links to %q", a, href)
		}
	}

	// One instance cordoned: shown cordoned, out of rotation. The fleet
	// reads the deep views as an anonymous reader (the example authorises
	// nobody), so the reason stays with the instance's operators: the
	// admin socket shows it, the fleet says "cordoned" and until when.
	cordoned := addrs[2]
	probectl(t, ctl, socks[2], "cordon", "-reason", "disk swap", "-for", "1m")
	r = fleetUntil(t, ctl, "the cordon shown", args, func(code int, r fleet.Round) bool {
		return code == 1 && byAddress(r)[cordoned].Cordon == "cordoned"
	})
	if out := probectl(t, ctl, socks[2], "status"); !strings.Contains(out, "disk swap") {
		t.Errorf("probectl status on the admin socket lacks the cordon's reason:\n%s", out)
	}
	if in := byAddress(r)[cordoned]; in.Ready || in.Phase != "ready" || in.CordonUntil == "" {
		t.Errorf("the cordoned instance: ready %v, phase %q, until %q; want out of rotation, still ready in phase", in.Ready, in.Phase, in.CordonUntil)
	}
	for _, a := range addrs[:2] {
		if in := byAddress(r)[a]; in.Cordon != "" || !in.Ready {
			t.Errorf("%s beside the cordoned one: %+v", a, in)
		}
	}
	testutil.Eventually(t, "the cordon on the page", func() bool {
		_ = chromedp.Run(browserCtx, chromedp.Reload())
		return attr(t, browserCtx, `[data-instance="`+cordoned+`"]`, "data-cordon") == "cordoned"
	})

	// PostgreSQL stopped: postgres fleet-wide, failing on all three;
	// readiness only warns (a shared dependency), so all but the cordoned
	// one stay ready; exit 1.
	pg.Stop()
	// Each instance runs its check on its own interval: the first two to
	// notice make the fault fleet-wide already; the round that counts
	// three is awaited.
	r = fleetUntil(t, ctl, "postgres fleet-wide, failing on all three", args, func(code int, r fleet.Round) bool {
		return code == 1 && len(r.Faults) > 0 && r.Faults[0].Failing == 3
	})
	if f := r.Faults[0]; f.Check != "readiness/postgres" || f.Of != 3 || f.Scope != fleet.FleetWide || len(r.Faults) != 1 {
		t.Errorf("the faults: %+v, want readiness/postgres fleet-wide, failing on 3 of 3, alone", r.Faults)
	}
	for _, a := range addrs[:2] {
		if in := byAddress(r)[a]; !in.Ready || in.Readiness != "warn" || in.Phase != "ready" {
			t.Errorf("%s during the outage: ready %v (readiness %q), phase %q; want readiness to warn, not fail", a, in.Ready, in.Readiness, in.Phase)
		}
	}
	var text, asJSON bytes.Buffer
	sample := func(w *bytes.Buffer, extra ...string) {
		cmd := exec.Command(ctl, append(append([]string{"fleet"}, extra...), args...)...)
		cmd.Stdout = w
		_ = cmd.Run() // exit 1 during the outage
	}
	sample(&text)
	sample(&asJSON, "-json")
	t.Logf("during the outage:\n%s\n%s", text.String(), asJSON.String())
	testutil.Eventually(t, "the outage on the page", func() bool {
		_ = chromedp.Run(browserCtx, chromedp.Reload())
		return attr(t, browserCtx, `[data-fleet-wide="readiness/postgres"]`, "data-fleet-wide") == "readiness/postgres"
	})
	for _, a := range addrs {
		sel := `[data-instance="` + a + `"] [data-check="readiness/postgres"]`
		if s := attr(t, browserCtx, sel, "data-status"); s != "fail" {
			t.Errorf("%s on the page during the outage: postgres %q", a, s)
		}
	}
	screenshot(t, browserCtx, "fleet-page")

	// With JavaScript off, the same page.
	plain, cancelPlain := chromedp.NewContext(browserCtx)
	if err := chromedp.Run(plain, emulation.SetScriptExecutionDisabled(true), chromedp.Navigate(base)); err != nil {
		t.Fatal(err)
	}
	if v := attr(t, plain, `[data-fleet-wide="readiness/postgres"]`, "data-fleet-wide"); v != "readiness/postgres" {
		t.Errorf("without JavaScript: the fleet-wide fault %q", v)
	}
	for _, a := range addrs {
		if v := attr(t, plain, `[data-instance="`+a+`"]`, "data-reachable"); v != "true" {
			t.Errorf("without JavaScript: %s reachable %q", a, v)
		}
	}
	cancelPlain()

	// Uncordoned and PostgreSQL restarted: exit 0 again.
	probectl(t, ctl, socks[2], "uncordon")
	pg.StartAgain()
	fleetUntil(t, ctl, "all well after PostgreSQL is back", args, func(code int, r fleet.Round) bool { return code == 0 })

	// One instance frozen: unreachable within the timeout, the other two
	// listed as before.
	frozen := ins[1]
	pid := frozen.cmd.Process.Pid
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = syscall.Kill(pid, syscall.SIGCONT) })
	testutil.Eventually(t, "the instance stopped", func() bool { return proctest.Stopped(pid) })
	const timeout = 500 * time.Millisecond
	pausedArgs := append([]string{"-timeout", timeout.String()}, args...)
	code, r, took := fleetRound(t, ctl, pausedArgs...)
	if code != 1 {
		t.Errorf("with one instance frozen: exit %d, want 1", code)
	}
	// The behaviour: the round ends although an instance never answers.
	// How close to the timeout it ends is a benchmark's to say
	// (internal/fleet's BenchmarkStalled); a loaded machine may take a while.
	if took > 20*timeout {
		t.Errorf("with one instance frozen the round took %s: it waited on the frozen one (timeout %s)", took, timeout)
	}
	t.Logf("one instance frozen: the command took %s (timeout %s)", took.Round(time.Millisecond), timeout)
	got := byAddress(r)
	if in := got[addrs[1]]; in.Reachable || !strings.Contains(in.Error, "no answer within") {
		t.Errorf("the frozen instance: %+v", in)
	}
	for _, a := range []string{addrs[0], addrs[2]} {
		if in := got[a]; !in.Reachable || !in.Ready {
			t.Errorf("%s beside the frozen one: %+v", a, in)
		}
	}
	testutil.Eventually(t, "the frozen instance unreachable on the page", func() bool {
		_ = chromedp.Run(browserCtx, chromedp.Reload())
		return attr(t, browserCtx, `[data-instance="`+addrs[1]+`"]`, "data-reachable") == "false"
	})
	if v := attr(t, browserCtx, `[data-instance="`+addrs[0]+`"]`, "data-reachable"); v != "true" {
		t.Errorf("beside the frozen one, on the page: %s reachable %q", addrs[0], v)
	}
	if err := syscall.Kill(pid, syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	fleetUntil(t, ctl, "all well after the instance thaws", args, func(code int, r fleet.Round) bool { return code == 0 })

	if errs := consoleErrors(); len(errs) > 0 {
		t.Errorf("console errors: %v", errs)
	}
}
