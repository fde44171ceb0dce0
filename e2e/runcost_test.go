//go:build e2e

package e2e

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/probekit/probes/internal/testenv/testutil"
)

// The test binary, re-executed with lateAddrEnv set, is a child that
// becomes ready late: it waits lateDelayEnv, listens on lateAddrEnv,
// writes the wall-clock time it began accepting (Unix nanoseconds) to
// lateFileEnv, and answers every request 200 "ok".
const (
	lateAddrEnv  = "PROBES_E2E_LATE_ADDR"
	lateDelayEnv = "PROBES_E2E_LATE_DELAY"
	lateFileEnv  = "PROBES_E2E_LATE_FILE"
)

// restWindowEnv sets the window over which BenchmarkProbeRunAtRest
// measures CPU (a Go duration); default defaultRestWindow, short enough
// for CI's single run.
const (
	restWindowEnv     = "PROBES_E2E_REST_WINDOW"
	defaultRestWindow = 2 * time.Second
)

func init() {
	addr := os.Getenv(lateAddrEnv)
	if addr == "" {
		return
	}
	delay, err := time.ParseDuration(os.Getenv(lateDelayEnv))
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", lateDelayEnv, err)
		os.Exit(2)
	}
	time.Sleep(delay)
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	// Connections are accepted into the backlog from here on.
	at := time.Now().UnixNano()
	if err := os.WriteFile(os.Getenv(lateFileEnv), []byte(strconv.FormatInt(at, 10)), 0o644); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("ok")) //nolint:errcheck
	})
	err = http.Serve(ln, h) //nolint:gosec // a benchmark's child, on loopback
	fmt.Fprintln(os.Stderr, err)
	os.Exit(1)
}

// buildBareProbes builds the yardstick of BenchmarkProbeRunAtRest
// (internal/bareprobes) into dir, static as probe is.
func buildBareProbes(t testing.TB, dir string) string {
	t.Helper()
	bin := filepath.Join(dir, "bareprobes")
	build := exec.Command("go", "build", "-o", bin, "./internal/bareprobes")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build bareprobes: %v\n%s", err, out)
	}
	return bin
}

// startProcess starts cmd and, when the benchmark ends, stops it: SIGTERM,
// and SIGKILL if it has not exited within 10 s. probe run passes the
// SIGTERM on to its child's group, so nothing is left behind.
func startProcess(t testing.TB, cmd *exec.Cmd) {
	t.Helper()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
	})
}

// kubelet is a client that probes as the kubelet does: a new connection
// for each probe, its user agent and Accept header, no compression, at
// most 10 KiB of the body read. Its scrape asks /metrics as Prometheus
// does, gzip accepted.
type kubelet struct{ c *http.Client }

func newKubelet() kubelet {
	return kubelet{&http.Client{Timeout: time.Second, Transport: &http.Transport{DisableKeepAlives: true, DisableCompression: true}}}
}

// get returns the status of a probe of url; 0 when it could not be had.
func (k kubelet) get(url string) int {
	return k.do(url, 10<<10, "User-Agent", "kube-probe/1.33", "Accept", "*/*")
}

// scrape returns the status of a scrape of url; 0 when it could not be had.
func (k kubelet) scrape(url string) int {
	return k.do(url, 1<<20, "User-Agent", "Prometheus/3.5.0", "Accept", "text/plain;version=0.0.4;q=0.5,*/*;q=0.1", "Accept-Encoding", "gzip")
}

func (k kubelet) do(url string, limit int64, header ...string) int {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return 0
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	res, err := k.c.Do(req)
	if err != nil {
		return 0
	}
	defer res.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(res.Body, limit))
	return res.StatusCode
}

// procUsage is what /proc says of a process at one moment.
type procUsage struct {
	rss, hwm   int64         // VmRSS, VmHWM in KiB
	anon, file int64         // RssAnon, RssFile in KiB: the process's own, the binary's pages
	ticks      int64         // utime+stime, in clock ticks
	onCPU      time.Duration // the sum of its threads' time on a CPU (schedstat)
}

// readUsage reads pid's procUsage.
func readUsage(pid int) (procUsage, error) {
	var u procUsage
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return u, err
	}
	sc := bufio.NewScanner(bytes.NewReader(status))
	for sc.Scan() {
		key, val, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		dst := map[string]*int64{"VmRSS": &u.rss, "VmHWM": &u.hwm, "RssAnon": &u.anon, "RssFile": &u.file}[key]
		if dst != nil {
			*dst, _ = strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(val), " kB"), 10, 64)
		}
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return u, err
	}
	// The fields after the command's name, which is in parentheses:
	// the state is field 3, utime 14 and stime 15.
	i := bytes.LastIndexByte(stat, ')')
	f := strings.Fields(string(stat[i+1:]))
	if len(f) < 13 {
		return u, fmt.Errorf("/proc/%d/stat: %q", pid, stat)
	}
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	u.ticks = utime + stime
	tasks, err := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/schedstat", pid))
	if err != nil {
		return u, err
	}
	for _, t := range tasks {
		b, err := os.ReadFile(t)
		if err != nil {
			continue // a thread that has just exited
		}
		ns, _ := strconv.ParseInt(strings.Fields(string(b))[0], 10, 64)
		u.onCPU += time.Duration(ns)
	}
	return u, nil
}

// restWindow is the window of BenchmarkProbeRunAtRest.
func restWindow(b *testing.B) time.Duration {
	s := os.Getenv(restWindowEnv)
	if s == "" {
		return defaultRestWindow
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < time.Second {
		b.Fatalf("%s=%q: want a duration of at least 1s", restWindowEnv, s)
	}
	return d
}

// clockTick is the length of one of /proc's clock ticks (USER_HZ, 100 on
// Linux).
const clockTick = 10 * time.Millisecond

// BenchmarkProbeRunAtRest compares the resident memory and CPU of the
// probe run wrapper (not its child) at rest with those of a bare Go server
// serving the same endpoints (internal/bareprobes): both ready, probed as a
// kubelet does, and nothing else. Once a second each gets /startupz,
// /livez and /readyz (periodSeconds: 1, a new connection each), and every
// 10 s a /metrics scrape, from the window's start. Both are warmed first:
// every path once, then a second of rest. The CPU is their threads' time
// on a CPU over the window (/proc/PID/task/*/schedstat; the clock ticks
// of /proc/PID/stat, reported as *-tick-cpu-ms/s, are too coarse for a
// few milliseconds a second), the memory VmRSS, VmHWM, and VmRSS's parts
// RssAnon (the process's own: heap, stacks) and RssFile (the executable's
// pages) at its end. The window is PROBES_E2E_REST_WINDOW (default 2s,
// where a figure means little); for the figure, longer windows and the
// median of a few runs (docs/any-process.md, "What it costs"):
//
//	cd e2e && PROBES_E2E_REST_WINDOW=20s go test -tags e2e -run '^$' -bench ProbeRunAtRest -benchtime 1x -count 5 .
//
// The wrapper's child answers its -ready check, polled every 5 s at rest
// (-interval), as the wrapper's liveness self-check runs every second: the
// function the figure includes.
func BenchmarkProbeRunAtRest(b *testing.B) {
	window := restWindow(b)
	dir := b.TempDir()
	probe, bare := buildProbe(b, dir), buildBareProbes(b, dir)
	childAddr, wrapperAddr, bareAddr := testutil.FreeAddr(b), testutil.FreeAddr(b), testutil.FreeAddr(b)

	child := os.Args[0]
	wrapper := exec.Command(probe, "run", "-probe-addr", wrapperAddr, "-ready", "http://"+childAddr+"/", "-drain", "0", "-stop-timeout", "5s", "--", child)
	wrapper.Env = append(os.Environ(), bareAddrEnv+"="+childAddr)
	var logs lockedLog
	wrapper.Stdout, wrapper.Stderr = &logs, &logs
	startProcess(b, wrapper)
	yardstick := exec.Command(bare, bareAddr)
	yardstick.Stderr = os.Stderr
	startProcess(b, yardstick)

	k := newKubelet()
	paths := []string{"/startupz", "/livez", "/readyz"}
	targets := []struct {
		name, addr string
		pid        int
	}{{"wrapper", wrapperAddr, wrapper.Process.Pid}, {"bare", bareAddr, yardstick.Process.Pid}}
	for _, t := range targets {
		testutil.Eventually(b, t.name+" ready", func() bool { return k.get("http://"+t.addr+"/readyz") == 200 })
		for _, p := range append(paths, "/healthz") {
			if code := k.get("http://" + t.addr + p); code != 200 {
				b.Fatalf("%s %s: %d\n%s", t.name, p, code, logs.String())
			}
		}
		if code := k.scrape("http://" + t.addr + "/metrics"); code != 200 {
			b.Fatalf("%s /metrics: %d\n%s", t.name, code, logs.String())
		}
	}
	time.Sleep(time.Second)

	var cpu, ticks [2]time.Duration
	var last [2]procUsage
	windows := 0
	for b.Loop() {
		var before [2]procUsage
		for i, t := range targets {
			u, err := readUsage(t.pid)
			if err != nil {
				b.Fatal(err)
			}
			before[i] = u
		}
		start := time.Now()
		for s := 0; time.Duration(s)*time.Second < window; s++ {
			time.Sleep(time.Until(start.Add(time.Duration(s) * time.Second)))
			for _, t := range targets {
				for _, p := range paths {
					if code := k.get("http://" + t.addr + p); code != 200 {
						b.Fatalf("%s %s: %d\n%s", t.name, p, code, logs.String())
					}
				}
				if s%10 == 0 {
					if code := k.scrape("http://" + t.addr + "/metrics"); code != 200 {
						b.Fatalf("%s /metrics: %d", t.name, code)
					}
				}
			}
		}
		time.Sleep(time.Until(start.Add(window)))
		elapsed := time.Since(start)
		for i, t := range targets {
			u, err := readUsage(t.pid)
			if err != nil {
				b.Fatal(err)
			}
			// Per second of the window, added up over the windows.
			cpu[i] += (u.onCPU - before[i].onCPU) * time.Second / elapsed
			ticks[i] += time.Duration(u.ticks-before[i].ticks) * clockTick * time.Second / elapsed
			last[i] = u
		}
		windows++
	}
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) / float64(windows) }
	for i, t := range targets {
		b.ReportMetric(float64(last[i].rss), t.name+"-rss-KiB")
		b.ReportMetric(float64(last[i].hwm), t.name+"-hwm-KiB")
		b.ReportMetric(float64(last[i].anon), t.name+"-anon-KiB")
		b.ReportMetric(float64(last[i].file), t.name+"-file-KiB")
		b.ReportMetric(ms(cpu[i]), t.name+"-cpu-ms/s")
		b.ReportMetric(ms(ticks[i]), t.name+"-tick-cpu-ms/s")
	}
	b.ReportMetric(float64(last[0].rss)/float64(last[1].rss), "rss-ratio")
	b.ReportMetric(float64(last[0].anon)/float64(last[1].anon), "anon-ratio")
	if cpu[1] > 0 {
		b.ReportMetric(float64(cpu[0])/float64(cpu[1]), "cpu-ratio")
	}
}

// BenchmarkProbeRunReadyDelay measures the delay probe run adds to a
// child's readiness: each op starts the wrapper with -ready http://... and
// the default -every (100 ms) in front of a child that begins to accept
// after a random 50 to 300 ms and records that moment, and takes the time
// of the wrapper's READY=1 on a NOTIFY_SOCKET the benchmark listens on,
// and of the first 200 of its /readyz (polled every millisecond). ns/op is
// the mean delay to READY=1; delay-max-ms its largest, readyz-*-ms the
// same for /readyz. The target is at most one poll interval (every-ms).
// For the figure, more ops:
//
//	cd e2e && go test -tags e2e -run '^$' -bench ProbeRunReadyDelay -benchtime 40x .
func BenchmarkProbeRunReadyDelay(b *testing.B) {
	const every = 100 * time.Millisecond // probe run's default -every
	dir := b.TempDir()
	probe := buildProbe(b, dir)
	notify := filepath.Join(dir, "notify.sock")
	sock, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: notify, Net: "unixgram"})
	if err != nil {
		b.Fatal(err)
	}
	readyAt := make(chan time.Time, 16)
	reading := make(chan struct{})
	go func() {
		defer close(reading)
		buf := make([]byte, 4096)
		for {
			n, err := sock.Read(buf)
			if err != nil {
				return
			}
			if strings.Contains(string(buf[:n]), "READY=1") {
				readyAt <- time.Now()
			}
		}
	}()
	b.Cleanup(func() {
		sock.Close()
		<-reading
	})
	poll := &http.Client{Timeout: time.Second}
	b.Cleanup(poll.CloseIdleConnections)

	var sum, sumReadyz, worst, worstReadyz time.Duration
	op := 0
	for b.Loop() {
		op++
		delay := 50*time.Millisecond + rand.N(250*time.Millisecond)
		childAddr, probeAddr := testutil.FreeAddr(b), testutil.FreeAddr(b)
		file := filepath.Join(dir, fmt.Sprintf("ready-%d", op))
		cmd := exec.Command(probe, "run", "-probe-addr", probeAddr, "-ready", "http://"+childAddr+"/",
			"-drain", "0", "-stop-timeout", "5s", "--", os.Args[0])
		cmd.Env = append(os.Environ(), "NOTIFY_SOCKET="+notify,
			lateAddrEnv+"="+childAddr, lateDelayEnv+"="+delay.String(), lateFileEnv+"="+file)
		var logs lockedLog
		cmd.Stdout, cmd.Stderr = &logs, &logs
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		readyz := firstReadyz(poll, "http://"+probeAddr+"/readyz")
		var notified time.Time
		select {
		case notified = <-readyAt:
		case <-time.After(testutil.Deadline):
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			b.Fatalf("no READY=1 within %s\n%s", testutil.Deadline, logs.String())
		}
		readyzAt, err := readyz()
		_ = cmd.Process.Signal(syscall.SIGTERM)
		// The child dies of the SIGTERM passed on to it: probe run
		// exits 143, as its child.
		var exit *exec.ExitError
		if werr := cmd.Wait(); werr != nil && (!errors.As(werr, &exit) || exit.ExitCode() != 128+int(syscall.SIGTERM)) && err == nil {
			err = fmt.Errorf("probe run: %w", werr)
		}
		if err != nil {
			b.Fatalf("%v\n%s", err, logs.String())
		}
		text, err := os.ReadFile(file)
		if err != nil {
			b.Fatal(err)
		}
		ns, err := strconv.ParseInt(string(text), 10, 64)
		if err != nil {
			b.Fatal(err)
		}
		childReady := time.Unix(0, ns)
		d, dr := notified.Sub(childReady), readyzAt.Sub(childReady)
		sum, sumReadyz = sum+d, sumReadyz+dr
		worst, worstReadyz = max(worst, d), max(worstReadyz, dr)
	}
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	b.ReportMetric(float64(sum.Nanoseconds())/float64(op), "ns/op")
	b.ReportMetric(ms(sum)/float64(op), "delay-mean-ms")
	b.ReportMetric(ms(worst), "delay-max-ms")
	b.ReportMetric(ms(sumReadyz)/float64(op), "readyz-mean-ms")
	b.ReportMetric(ms(worstReadyz), "readyz-max-ms")
	b.ReportMetric(ms(every), "every-ms")
}

// firstReadyz polls url every millisecond, from now on, until it answers
// 200; the function it returns waits for that and returns when it was.
func firstReadyz(c *http.Client, url string) func() (time.Time, error) {
	ctx, cancel := context.WithTimeout(context.Background(), testutil.Deadline)
	done := make(chan time.Time, 1)
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
			if res, err := c.Do(req); err == nil {
				_, _ = io.Copy(io.Discard, res.Body)
				res.Body.Close()
				if res.StatusCode == 200 {
					done <- time.Now()
					return
				}
			}
			time.Sleep(time.Millisecond)
		}
	}()
	return func() (time.Time, error) {
		defer cancel()
		at, ok := <-done
		if !ok {
			return at, errors.New(url + " never answered 200")
		}
		return at, nil
	}
}
