//go:build e2e

package e2e

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/probekit/probes/internal/testenv/testutil"
)

// probeResult is one probe of a kubeletProber.
type probeResult struct {
	ok   bool
	took time.Duration
	err  string
}

// kubeletProber probes url as the kubelet does: a new connection every
// period, a timeout for the whole request, success on 200-399. It runs
// until ctx is done and returns every result.
func kubeletProber(ctx context.Context, url string, period, timeout time.Duration) []probeResult {
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: timeout}
	var (
		mu      sync.Mutex
		results []probeResult
		wg      sync.WaitGroup
	)
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			wg.Wait()
			return results
		case <-t.C:
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			began := time.Now()
			r := probeResult{}
			req, _ := http.NewRequest(http.MethodGet, url, nil)
			req.Header.Set("User-Agent", "kube-probe/1.31")
			res, err := client.Do(req)
			if err == nil {
				io.Copy(io.Discard, res.Body) //nolint:errcheck
				res.Body.Close()
				r.ok = res.StatusCode >= 200 && res.StatusCode < 400
				if !r.ok {
					r.err = res.Status
				}
			} else {
				r.err = err.Error()
			}
			r.took = time.Since(began)
			mu.Lock()
			results = append(results, r)
			mu.Unlock()
		}()
	}
}

// probeSummary is the failures and latency percentiles of probe results.
type probeSummary struct {
	n, failed     int
	p50, p99, max time.Duration
	firstError    string
}

func summarise(results []probeResult) probeSummary {
	s := probeSummary{n: len(results)}
	var took []time.Duration
	for _, r := range results {
		took = append(took, r.took)
		if !r.ok {
			s.failed++
			if s.firstError == "" {
				s.firstError = r.err
			}
		}
	}
	if len(took) == 0 {
		return s
	}
	slices.Sort(took)
	s.p50, s.p99, s.max = took[len(took)/2], took[len(took)*99/100], took[len(took)-1]
	return s
}

func (s probeSummary) String() string {
	return fmt.Sprintf("%d probes, %d failed, p50 %s, p99 %s, max %s", s.n, s.failed,
		s.p50.Round(100*time.Microsecond), s.p99.Round(100*time.Microsecond), s.max.Round(100*time.Microsecond))
}

// wrkLoad runs wrk with conns connections on url for d, with the file
// limit raised for that many connections, and returns its totals.
func wrkLoad(t *testing.T, url string, conns int, d time.Duration) wrkTotals {
	t.Helper()
	cmd := exec.Command("sh", "-c", `ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"; exec wrk "$@"`, "wrk",
		"-t2", fmt.Sprintf("-c%d", conns), fmt.Sprintf("-d%ds", int(d.Seconds())), "--timeout", "5s", url)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("wrk: %v\n%s", err, out)
	}
	return parseWrk(string(out))
}

// cpuOverload runs the example with the given in-flight bounds under 1,000
// connections on GET /api/report (20 ms of CPU each) while a kubelet-like
// prober asks /livez on the probe listener, and returns what both saw.
func cpuOverload(t *testing.T, bin string, bounds []string, d time.Duration) (probeSummary, wrkTotals) {
	in := startInstance(t, bin, "a", testutil.FreeAddr(t), append([]string{"-warmup", "0", "-drain", "0"}, bounds...))
	waitOK(t, "http://"+in.probeAddr+"/readyz")
	ctx, cancel := context.WithCancel(context.Background())
	probed := make(chan []probeResult, 1)
	go func() {
		probed <- kubeletProber(ctx, "http://"+in.probeAddr+"/livez", 100*time.Millisecond, time.Second)
	}()
	w := wrkLoad(t, "http://"+in.addr+"/api/report", 1000, d)
	cancel()
	return summarise(<-probed), w
}

func waitOK(t *testing.T, url string) {
	t.Helper()
	testutil.Eventually(t, url+" answering 200", func() bool {
		res, err := http.Get(url)
		if err != nil {
			return false
		}
		res.Body.Close()
		return res.StatusCode == 200
	})
}

// Under 1,000 connections burning CPU, a kubelet-like liveness prober on
// the probe listener never fails while the API sheds what it cannot take.
// Without the bound, the figures are logged for comparison.
func TestLivenessUnderCPUOverload(t *testing.T) {
	need(t, "wrk")
	bin := buildExample(t)
	const d = 10 * time.Second
	shed, shedWrk := cpuOverload(t, bin, nil, d) // the example's bounds
	t.Logf("with shedding (the report route bounded at 2 per core): liveness %s; API %.0f requests/s, %d of %d answered 503",
		shed, float64(shedWrk.requests)/d.Seconds(), shedWrk.non2xx, shedWrk.requests)
	unbounded, freeWrk := cpuOverload(t, bin, []string{"-max-inflight", "0", "-report-inflight", "0"}, d)
	t.Logf("without shedding: liveness %s; API %.0f requests/s, %d non-2xx, %d socket errors",
		unbounded, float64(freeWrk.requests)/d.Seconds(), freeWrk.non2xx, freeWrk.socketErrors)
	if shed.n < int(d/(100*time.Millisecond))*8/10 {
		t.Fatalf("the prober made only %d probes in %s", shed.n, d)
	}
	if shed.failed != 0 {
		t.Errorf("liveness failed %d of %d probes under load with shedding (first: %s)", shed.failed, shed.n, shed.firstError)
	}
	if shedWrk.requests == 0 || shedWrk.non2xx == 0 {
		t.Errorf("the API shed nothing under 1,000 connections: %+v", shedWrk)
	}
}

// raiseFileLimit lets the test process hold n connections.
func raiseFileLimit(t *testing.T, n uint64) {
	var l syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
		t.Fatal(err)
	}
	if l.Cur >= n {
		return
	}
	l.Cur = max(l.Cur, n)
	l.Max = max(l.Max, n)
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
		t.Fatalf("need %d open files for the test: %v", n, err)
	}
}

// With the service limited to 8,192 file descriptors and 12,000 idle
// keep-alive connections opened to its API, liveness on the probe listener
// still answers every time: the API listener refuses connections beyond its
// bound instead of taking the last descriptors.
func TestLivenessAtTheFileLimit(t *testing.T) {
	const idle = 12000
	raiseFileLimit(t, idle+4096)
	bin := buildExample(t)
	limited := filepath.Join(t.TempDir(), "limited")
	script := "#!/bin/sh\nulimit -n 8192 || exit 1\nexec '" + bin + "' \"$@\"\n"
	if err := os.WriteFile(limited, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	in := startInstance(t, limited, "a", testutil.FreeAddr(t), []string{"-warmup", "0", "-drain", "0"})
	waitOK(t, "http://"+in.probeAddr+"/readyz")

	ctx, cancel := context.WithCancel(context.Background())
	probed := make(chan []probeResult, 1)
	go func() {
		probed <- kubeletProber(ctx, "http://"+in.probeAddr+"/livez", 20*time.Millisecond, time.Second)
	}()

	var (
		mu      sync.Mutex
		held    []net.Conn
		refused int
		wg      sync.WaitGroup
	)
	const workers = 50
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range idle / workers {
				conn, err := keepAlive(in.addr)
				mu.Lock()
				if err != nil {
					refused++
				} else {
					held = append(held, conn)
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	t.Logf("%d idle keep-alive connections held, %d refused", len(held), refused)
	defer func() {
		for _, c := range held {
			c.Close()
		}
	}()
	// 200 probes more with every connection held.
	time.Sleep(4 * time.Second)
	cancel()
	results := <-probed
	s := summarise(results)
	t.Logf("liveness while the connections were opened and held: %s", s)
	if s.failed != 0 {
		t.Errorf("liveness failed %d of %d probes at the file limit (first: %s)", s.failed, s.n, s.firstError)
	}
	if len(held) < 4000 || refused == 0 {
		t.Errorf("held %d, refused %d: want the bound (8192 less an eighth) to hold thousands and refuse the rest", len(held), refused)
	}
	if s.n < 200 {
		t.Errorf("only %d probes", s.n)
	}
}

// keepAlive opens a connection to addr, completes one request on it and
// leaves it open and idle.
func keepAlive(addr string) (net.Conn, error) {
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return nil, err
	}
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(conn, "GET /api/items/1 HTTP/1.1\r\nHost: x\r\n\r\n")
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		conn.Close()
		return nil, err
	}
	io.Copy(io.Discard, res.Body) //nolint:errcheck
	res.Body.Close()
	if res.StatusCode != 200 || res.Close {
		conn.Close()
		return nil, fmt.Errorf("status %d, close %v", res.StatusCode, res.Close)
	}
	return conn, nil
}

// A connection with a body half sent, then SIGTERM: the probe is answered
// at once, and the service exits 0 within drain plus shutdown timeout.
func TestHalfSentBodyThenSIGTERM(t *testing.T) {
	bin := buildExample(t)
	in := startInstance(t, bin, "a", testutil.FreeAddr(t), []string{"-warmup", "0", "-drain", "500ms", "-shutdown-timeout", "2s"})
	waitOK(t, "http://"+in.probeAddr+"/readyz")
	for _, addr := range []string{in.probeAddr + " /livez", in.addr + " /api/items/1"} {
		host, path, _ := strings.Cut(addr, " ")
		conn, err := net.Dial("tcp", host)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		fmt.Fprintf(conn, "POST %s HTTP/1.1\r\nHost: x\r\nContent-Length: 10000\r\n\r\nhalf", path)
		if strings.HasSuffix(path, "livez") {
			conn.SetReadDeadline(time.Now().Add(2 * time.Second))
			res, err := http.ReadResponse(bufio.NewReader(conn), nil)
			if err != nil {
				t.Fatalf("a probe with a body half sent got no answer: %v", err)
			}
			res.Body.Close()
		}
	}
	began := time.Now()
	if err := in.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-in.exited:
	case <-time.After(10 * time.Second):
		t.Fatal("no exit within 10s of SIGTERM")
	}
	if code := in.cmd.ProcessState.ExitCode(); code != 0 {
		t.Errorf("exit code %d after SIGTERM with a half-sent body, want 0", code)
	}
	if took := time.Since(began); took > 500*time.Millisecond+2*time.Second+time.Second {
		t.Errorf("exit took %s, more than drain plus shutdown timeout", took)
	}
}

// Queries on /readyz, however many, do not end a probe-aware drain: it
// runs to its maximum.
func TestReadyzFloodDuringProbeAwareDrain(t *testing.T) {
	bin := buildExample(t)
	const max = 3 * time.Second
	in := startInstance(t, bin, "a", testutil.FreeAddr(t), []string{"-warmup", "0", "-drain", max.String(), "-drain-probes", "3", "-shutdown-timeout", "2s"})
	waitOK(t, "http://"+in.probeAddr+"/readyz")
	began := time.Now()
	if err := in.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	client := &http.Client{Timeout: time.Second}
	flooded := 0
	for time.Since(began) < max-500*time.Millisecond {
		for _, q := range []string{"?foo", "?verbose", "?exclude=dns"} {
			if res, err := client.Get("http://" + in.probeAddr + "/readyz" + q); err == nil {
				io.Copy(io.Discard, res.Body) //nolint:errcheck
				res.Body.Close()
				flooded++
			}
		}
	}
	select {
	case <-in.exited:
		t.Fatalf("the service exited %s after SIGTERM, during a flood of %d queries; the drain's maximum is %s", time.Since(began), flooded, max)
	default:
	}
	select {
	case <-in.exited:
	case <-time.After(10 * time.Second):
		t.Fatal("no exit within 10s of the drain's maximum")
	}
	in.mu.Lock()
	over := in.drainOver.Sub(began)
	in.mu.Unlock()
	if over < max-100*time.Millisecond {
		t.Errorf("the drain ended %s after SIGTERM, before its maximum %s", over, max)
	}
	t.Logf("%d queries of /readyz during the drain; it ended %s after SIGTERM", flooded, over.Round(time.Millisecond))
}
