//go:build e2e

package e2e

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/probekit/probes/internal/testenv/testutil"
)

// seedDrain is the wrapped instances' -drain: well past HAProxy's
// detection time, inter x fall.
const seedDrain = time.Second

// seedProc is one running instance of the seed's app: uvicorn, bare or
// under probe run.
type seedProc struct {
	name      string
	appAddr   string // where uvicorn listens
	checkAddr string // where HAProxy checks it: the wrapper's probes, or uvicorn itself
	cmd       *exec.Cmd
	exited    chan struct{}
	err       error // Wait's, once exited is closed
	log       *lockedLog
}

// reChildPID is the child's pid in probe run's "child started" line.
var reChildPID = regexp.MustCompile(`msg="child started" pid=(\d+)`)

// startSeed starts the seed's app on appAddr in dir (which holds seed.py):
// with probe non-empty, under probe run with its probes on probeAddr and a
// -ready check of /health; with probe empty, bare uvicorn. At cleanup it
// gets SIGTERM, and SIGKILL (with uvicorn's process group) if it has not
// exited 20 s later.
func startSeed(t *testing.T, dir, py, probe, name, appAddr, probeAddr string) *seedProc {
	t.Helper()
	host, port, _ := net.SplitHostPort(appAddr)
	// No access log: one line a request would cost the machine wrk needs.
	uvicorn := []string{py, "-m", "uvicorn", "seed:app", "--host", host, "--port", port, "--no-access-log"}
	s := &seedProc{name: name, appAddr: appAddr, checkAddr: appAddr, exited: make(chan struct{}), log: &lockedLog{}}
	if probe != "" {
		s.checkAddr = probeAddr
		s.cmd = exec.Command(probe, append([]string{"run", "-name", "seed-" + name, "-probe-addr", probeAddr,
			"-ready", "http://" + appAddr + "/health", "-warmup-deadline", "1m",
			"-drain", seedDrain.String(), "-stop-timeout", "10s", "--"}, uvicorn...)...)
	} else {
		s.cmd = exec.Command(uvicorn[0], uvicorn[1:]...)
	}
	s.cmd.Dir = dir
	s.cmd.Stdout, s.cmd.Stderr = s.log, s.log
	// A process group of its own, so that the cleanup's SIGKILL reaches all
	// of it; probe run puts uvicorn in another one, whose pid its log says.
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	// uvicorn holds the output pipe too: a wrapper killed without it must
	// not keep Wait waiting.
	s.cmd.WaitDelay = 2 * time.Second
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		defer close(s.exited)
		s.err = s.cmd.Wait()
	}()
	t.Cleanup(func() {
		select {
		case <-s.exited:
			return
		default:
		}
		_ = s.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-s.exited:
			return
		case <-time.After(20 * time.Second):
		}
		t.Errorf("%s did not exit within 20s of SIGTERM at cleanup; killing it", name)
		_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
		if m := reChildPID.FindStringSubmatch(s.log.String()); m != nil {
			if pid, err := strconv.Atoi(m[1]); err == nil {
				_ = syscall.Kill(-pid, syscall.SIGKILL)
			}
		}
		<-s.exited
	})
	return s
}

// stop sends SIGTERM and waits for the instance to exit, returning its
// exit code.
func (s *seedProc) stop(t *testing.T) int {
	t.Helper()
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-s.exited:
	case <-time.After(30 * time.Second):
		t.Fatalf("%s did not exit within 30s of SIGTERM\n%s", s.name, s.log.String())
	}
	var exit *exec.ExitError
	switch {
	case s.err == nil:
		return 0
	case errors.As(s.err, &exit):
		return exit.ExitCode() // -1 when a signal killed it
	}
	t.Fatalf("%s: %v", s.name, s.err)
	return 0
}

// seedRoll is what a rolling restart of the seed's app measured.
type seedRoll struct {
	wrk       wrkTotals
	restarts  int             // the instances stopped and seen UP again
	exitCodes []int           // the stopped instances' exit codes, in order
	stopTook  []time.Duration // from each SIGTERM to the exit
	toDown    []time.Duration // from each SIGTERM to HAProxy's DOWN; -1 when not seen
	logs      []string        // each stopped instance's output
}

// rollSeed runs two instances of the seed's app behind HAProxy, which
// checks GET path on each one's checkAddr; drives wrk's load through it to
// /health; and restarts the instances in turn on the same ports, each
// time waiting until HAProxy sees it UP again. With probe non-empty each
// instance is uvicorn under probe run, checked on the wrapper's /readyz;
// with probe empty, bare uvicorn, checked on its own /health. Both have
// runHAProxy's configuration as it is: no retries and no redispatch, so
// that a request sent to a closed port fails rather than being tried
// again, and HAProxy's default reuse of idle keep-alive connections to
// uvicorn (http-reuse safe).
func rollSeed(t *testing.T, dir, py, probe, path string) seedRoll {
	t.Helper()
	front := testutil.FreeAddr(t)
	type addrs struct{ app, probe string }
	var at []addrs
	var insts []*seedProc
	for _, name := range []string{"a", "b"} {
		a := addrs{testutil.FreeAddr(t), testutil.FreeAddr(t)}
		at = append(at, a)
		insts = append(insts, startSeed(t, dir, py, probe, name, a.app, a.probe))
	}
	var servers []lbServer
	for _, s := range insts {
		_, port, _ := net.SplitHostPort(s.checkAddr)
		servers = append(servers, lbServer{Name: s.name, Addr: s.appAddr, ProbePort: port})
	}
	lb := runHAProxy(t, t.TempDir(), front, servers, lbChecks{path: path, inter: inter, fall: fall, rise: rise})
	lb.serving(t, []string{insts[0].name, insts[1].name}, "http://"+front+"/health")

	// wrk runs until it is interrupted, once both restarts are over: it
	// prints its summary on SIGINT.
	wrk := exec.Command("wrk", "-t2", "-c16", "-d5m", "--timeout", "5s", "http://"+front+"/health")
	var wrkOut lockedLog
	wrk.Stdout, wrk.Stderr = &wrkOut, &wrkOut
	if err := wrk.Start(); err != nil {
		t.Fatal(err)
	}
	wrkDone := make(chan error, 1)
	go func() { wrkDone <- wrk.Wait() }()
	wrkStopped := false
	defer func() {
		if !wrkStopped {
			_ = wrk.Process.Kill()
			<-wrkDone
		}
	}()

	watchCtx, stopWatch := context.WithCancel(context.Background())
	watched := make(chan struct{})
	go lb.watchDown(watchCtx, watched)
	defer func() {
		stopWatch()
		<-watched
	}()

	// Load on both before the first restart: each has answered 200
	// requests through HAProxy.
	waitServed(t, lb, map[string]int{"a": 200, "b": 200})

	var r seedRoll
	for i, s := range insts {
		lb.resetDown()
		sent := time.Now()
		code := s.stop(t)
		r.stopTook = append(r.stopTook, time.Since(sent).Round(time.Millisecond))
		r.exitCodes = append(r.exitCodes, code)
		r.logs = append(r.logs, s.log.String())
		if down, ok := lb.downAt(s.name); ok {
			r.toDown = append(r.toDown, down.Sub(sent).Round(time.Millisecond))
		} else {
			r.toDown = append(r.toDown, -1)
		}
		insts[i] = startSeed(t, dir, py, probe, s.name, at[i].app, at[i].probe)
		lb.waitStatus(t, s.name, "UP", 30*time.Second)
		r.restarts++
		// Back in the rotation: it answers 200 more before the next one
		// stops (the counts are HAProxy's, which kept the old one's).
		st, err := showStat(lb.socket)
		if err != nil {
			t.Fatal(err)
		}
		waitServed(t, lb, map[string]int{s.name: st[s.name].ok2xx + 200})
	}

	if err := wrk.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	wrkStopped = true
	select {
	case err := <-wrkDone:
		if err != nil {
			t.Fatalf("wrk: %v\n%s", err, wrkOut.String())
		}
	case <-time.After(10 * time.Second):
		_ = wrk.Process.Kill()
		<-wrkDone
		t.Fatal("wrk did not stop within 10s of SIGINT")
	}
	r.wrk = parseWrk(wrkOut.String())
	return r
}

// waitServed waits until each server named in want has given at least
// that many 2xx responses through HAProxy.
func waitServed(t *testing.T, lb *haproxy, want map[string]int) {
	t.Helper()
	deadline := time.Now().Add(testutil.Deadline)
	for {
		st, err := showStat(lb.socket)
		done := err == nil
		for name, n := range want {
			done = done && st[name].ok2xx >= n
		}
		if done {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("HAProxy's servers did not give %v 2xx responses within %s (%v, %v)", want, testutil.Deadline, st, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestProbeRunRollingRestart restarts two instances of the seed's FastAPI
// app in turn behind a real HAProxy under wrk's load, each uvicorn under
// probe run with HAProxy checking the wrapper's /readyz: no request fails.
// The control is the same with bare uvicorn, HAProxy checking its /health:
// uvicorn stops listening at SIGTERM, before HAProxy has seen it go, and
// the requests sent to it in between fail. The control's failures are
// reported, not asserted: only that it ran.
func TestProbeRunRollingRestart(t *testing.T) {
	need(t, "haproxy", "wrk")
	py := fastAPIPython(t)
	dir := t.TempDir()
	probe := buildProbe(t, dir)
	if err := os.WriteFile(filepath.Join(dir, "seed.py"), []byte(seedApp), 0o644); err != nil {
		t.Fatal(err)
	}
	line := func(r seedRoll) string {
		return fmt.Sprintf("%d requests, %d failed (%d non-2xx, %d socket errors); %d restarts, exit codes %v, stopped in %v, HAProxy's DOWN %v after SIGTERM",
			r.wrk.requests, r.wrk.non2xx+r.wrk.socketErrors, r.wrk.non2xx, r.wrk.socketErrors, r.restarts, r.exitCodes, r.stopTook, r.toDown)
	}
	const plausible = 1000 // requests: wrk runs for over ten seconds

	t.Run("probe run", func(t *testing.T) {
		r := rollSeed(t, dir, py, probe, "/readyz")
		t.Logf("probe run: %s", line(r))
		if r.wrk.requests < plausible {
			t.Errorf("wrk made %d requests, want %d at least\n%s", r.wrk.requests, plausible, r.wrk.raw)
		}
		if r.wrk.non2xx != 0 || r.wrk.socketErrors != 0 {
			t.Errorf("requests failed under probe run: %d non-2xx, %d socket errors\n%s\nthe stopped instances' output:\n%s",
				r.wrk.non2xx, r.wrk.socketErrors, r.wrk.raw, strings.Join(r.logs, "\n"))
		}
		for i, code := range r.exitCodes {
			if code != 0 {
				t.Errorf("probe run exited %d on SIGTERM, want 0, uvicorn's own\n%s", code, r.logs[i])
			}
			// uvicorn hears of the stop only after the drain: HAProxy must
			// have taken the instance out by then.
			if d := r.toDown[i]; d < 0 || d >= seedDrain {
				t.Errorf("HAProxy marked instance %d DOWN %v after SIGTERM, want it within the %s drain (-1: not seen)", i, d, seedDrain)
			}
		}
	})
	t.Run("bare uvicorn", func(t *testing.T) {
		// Checked on the app's own route: / is none (FastAPI answers 404).
		r := rollSeed(t, dir, py, "", "/health")
		t.Logf("bare uvicorn: %s", line(r))
		if r.wrk.requests < plausible || r.restarts != 2 {
			t.Errorf("the control did not run: %d requests, %d restarts\n%s", r.wrk.requests, r.restarts, r.wrk.raw)
		}
	})
}
