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
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"text/template"
	"time"

	"go.uber.org/goleak"

	"github.com/probekit/probes/internal/testenv/testutil"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// Balancer settings: HAProxy checks /readyz every inter and marks a server
// down after fall failures, up after rise passes.
const (
	inter = 100 * time.Millisecond
	fall  = 2
	rise  = 2
)

var haproxyConfig = template.Must(template.New("cfg").Parse(`
global
    stats socket {{.Socket}} mode 600 level admin
    maxconn 4096

defaults
    mode http
    timeout connect 2s
    timeout client 30s
    timeout server 30s
    # No retries and no redispatch: a request sent to a closed listener
    # must show as a failure, not be hidden by a second try.
    retries 0

frontend web
    bind {{.Front}}
    default_backend app

backend app
    balance roundrobin
    option httpchk GET {{.Path}}
    http-check expect status 200
    default-server inter {{.Inter}} fastinter {{.Inter}} downinter {{.Inter}} fall {{.Fall}} rise {{.Rise}}{{if .Weight}} weight {{.Weight}}{{end}}
{{- range .Servers}}
    server {{.Name}} {{.Addr}} check port {{.ProbePort}}{{if .AgentPort}} agent-check agent-port {{.AgentPort}} agent-inter {{$.AgentInter}}{{end}}
{{- end}}
`))

// lbServer is one server line of the HAProxy configuration; AgentPort
// empty for none.
type lbServer struct{ Name, Addr, ProbePort, AgentPort string }

// lbChecks are the health check settings of the backend: httpchk of path
// ("" for /readyz) every inter, fall and rise; weight 0 for HAProxy's
// default; agentInter for the servers with an agent port.
type lbChecks struct {
	path       string
	inter      time.Duration
	fall, rise int
	weight     int
	agentInter time.Duration
}

// runHAProxy writes the configuration, checks it with haproxy -c and
// starts HAProxy until the test ends.
func runHAProxy(t *testing.T, dir, front string, servers []lbServer, c lbChecks) *haproxy {
	t.Helper()
	h := &haproxy{socket: filepath.Join(dir, "haproxy.sock"), log: &lockedLog{}, down: map[string]time.Time{}}
	cfgPath := filepath.Join(dir, "haproxy.cfg")
	f, err := os.Create(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	ms := func(d time.Duration) string { return fmt.Sprintf("%dms", d.Milliseconds()) }
	path := c.path
	if path == "" {
		path = "/readyz"
	}
	err = haproxyConfig.Execute(f, map[string]any{
		"Socket": h.socket, "Front": front, "Servers": servers, "Path": path,
		"Inter": ms(c.inter), "Fall": c.fall, "Rise": c.rise, "Weight": c.weight, "AgentInter": ms(c.agentInter),
	})
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("haproxy", "-c", "-f", cfgPath).CombinedOutput(); err != nil {
		t.Fatalf("haproxy -c: %v\n%s", err, out)
	}
	cmd := exec.Command("haproxy", "-db", "-f", cfgPath)
	cmd.Stdout, cmd.Stderr = io.Discard, h.log
	startOwned(t, cmd)
	return h
}

func need(t *testing.T, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatalf("%s not found (CI=true: it is required; scripts/test.sh installs it)", tool)
			}
			t.Skipf("%s not found; install it (scripts/test.sh does) to run this test", tool)
		}
	}
}

// instance is one running example service.
type instance struct {
	name, addr string
	probeAddr  string // where its probes answer (-probe-addr)
	cmd        *exec.Cmd
	exited     chan struct{}
	mu         sync.Mutex
	drainOver  time.Time     // when its log said the drain was over (the listener closes right after)
	drainTook  time.Duration // the drain's length, as that log line says
}

// reDrainAfter is the drain's length in the "drain over" log line, in
// seconds (zap's production encoding of a duration).
var reDrainAfter = regexp.MustCompile(`"after":([0-9.e+-]+)`)

func startInstance(t *testing.T, bin, name, addr string, args []string, env ...string) *instance {
	t.Helper()
	return startInstanceAt(t, bin, name, addr, testutil.FreeAddr(t), args, env...)
}

// startInstanceAt is startInstance with the probes on probeAddr: for a
// restart, where the balancer knows the old one.
func startInstanceAt(t *testing.T, bin, name, addr, probeAddr string, args []string, env ...string) *instance {
	t.Helper()
	in := &instance{name: name, addr: addr, probeAddr: probeAddr, exited: make(chan struct{})}
	// No gRPC unless args ask for it: two instances would both want its
	// default port.
	in.cmd = exec.Command(bin, append([]string{"-addr", addr, "-probe-addr", in.probeAddr, "-grpc-addr="}, args...)...)
	in.cmd.Env = append(os.Environ(), env...)
	out, err := in.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := in.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		defer close(in.exited)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			line := sc.Text()
			in.mu.Lock()
			if strings.Contains(line, `"msg":"drain over`) {
				in.drainOver = time.Now()
				if m := reDrainAfter.FindStringSubmatch(line); m != nil {
					if sec, err := strconv.ParseFloat(m[1], 64); err == nil {
						in.drainTook = time.Duration(sec * float64(time.Second))
					}
				}
			}
			in.mu.Unlock()
		}
		_ = in.cmd.Wait()
	}()
	t.Cleanup(func() {
		_ = in.cmd.Process.Kill()
		<-in.exited
	})
	return in
}

// haproxy is a running HAProxy with a stats socket.
type haproxy struct {
	socket string
	log    *lockedLog // its own output: why it exited, when it did
	mu     sync.Mutex
	down   map[string]time.Time // first time each server was seen DOWN since reset
}

// terminate sends SIGTERM and waits for the instance to exit.
func (in *instance) terminate(t *testing.T) {
	t.Helper()
	if err := in.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-in.exited:
	case <-time.After(30 * time.Second):
		t.Fatalf("instance %s did not exit within 30s of SIGTERM", in.name)
	}
}

func startHAProxy(t *testing.T, dir, front string, servers []*instance) *haproxy {
	t.Helper()
	var list []lbServer
	for _, s := range servers {
		_, port, _ := net.SplitHostPort(s.probeAddr)
		list = append(list, lbServer{Name: s.name, Addr: s.addr, ProbePort: port})
	}
	return runHAProxy(t, dir, front, list, lbChecks{inter: inter, fall: fall, rise: rise})
}

// startOwned starts cmd, a server the test owns: at cleanup it gets SIGTERM,
// then SIGKILL after 10 s, and the test waits for it to exit.
func startOwned(t *testing.T, cmd *exec.Cmd) {
	t.Helper()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
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

// status returns each server's status from the stats socket ("UP", "DOWN",
// "UP 1/2", ...).
func (h *haproxy) status() (map[string]string, error) {
	st, err := showStat(h.socket)
	if err != nil {
		return nil, err
	}
	out := make(map[string]string, len(st))
	for name, s := range st {
		out[name] = s.status
	}
	return out, nil
}

func (h *haproxy) waitStatus(t *testing.T, server, want string, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		st, err := h.status()
		if err == nil && st[server] == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("HAProxy did not mark %s %s within %s (status %v, %v); its output:\n%s", server, want, within, st, err, h.log.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// serving waits until HAProxy marks each of servers UP, then checks that
// url, through it, answers 200 before any restart begins.
func (h *haproxy) serving(t *testing.T, servers []string, url string) {
	t.Helper()
	for _, name := range servers {
		h.waitStatus(t, name, "UP", 30*time.Second)
	}
	once := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 5 * time.Second}
	res, err := once.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 200 {
		t.Fatalf("%s through HAProxy before the restart: %d", url, res.StatusCode)
	}
}

// watchDown records when each server is first seen DOWN, until ctx ends.
func (h *haproxy) watchDown(ctx context.Context, done chan<- struct{}) {
	defer close(done)
	for ctx.Err() == nil {
		if st, err := h.status(); err == nil {
			h.mu.Lock()
			for name, s := range st {
				if strings.HasPrefix(s, "DOWN") || strings.HasPrefix(s, "MAINT") {
					if _, seen := h.down[name]; !seen {
						h.down[name] = time.Now()
					}
				}
			}
			h.mu.Unlock()
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func (h *haproxy) resetDown() {
	h.mu.Lock()
	h.down = map[string]time.Time{}
	h.mu.Unlock()
}

func (h *haproxy) downAt(name string) (time.Time, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	at, ok := h.down[name]
	return at, ok
}

// wrkTotals are the figures of wrk's summary.
type wrkTotals struct {
	requests, non2xx, socketErrors int
	raw                            string
}

var (
	reRequests = regexp.MustCompile(`(\d+) requests in`)
	reNon2xx   = regexp.MustCompile(`Non-2xx or 3xx responses: (\d+)`)
	reSocket   = regexp.MustCompile(`Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)`)
)

func parseWrk(out string) wrkTotals {
	w := wrkTotals{raw: out}
	if m := reRequests.FindStringSubmatch(out); m != nil {
		w.requests, _ = strconv.Atoi(m[1])
	}
	if m := reNon2xx.FindStringSubmatch(out); m != nil {
		w.non2xx, _ = strconv.Atoi(m[1])
	}
	if m := reSocket.FindStringSubmatch(out); m != nil {
		for _, s := range m[1:] {
			n, _ := strconv.Atoi(s)
			w.socketErrors += n
		}
	}
	return w
}

type outcome struct {
	wrk wrkTotals
	// downFirst[name] reports whether HAProxy marked the instance down
	// before its drain ended and its listener closed.
	downFirst map[string]bool
	// drains are the instances' drain lengths, as their logs say, in the
	// order they stopped.
	drains []time.Duration
}

// rollingRestart runs two instances behind HAProxy, drives load through it,
// and restarts the instances one after the other.
func rollingRestart(t *testing.T, bin string, args []string) outcome {
	dir := t.TempDir()
	front := testutil.FreeAddr(t)
	instances := []*instance{
		startInstance(t, bin, "a", testutil.FreeAddr(t), args),
		startInstance(t, bin, "b", testutil.FreeAddr(t), args),
	}
	lb := startHAProxy(t, dir, front, instances)
	lb.serving(t, []string{instances[0].name, instances[1].name}, "http://"+front+"/api/items/7")

	const load = 14 * time.Second
	wrk := exec.Command("wrk", "-t2", "-c16", fmt.Sprintf("-d%ds", int(load.Seconds())), "--timeout", "5s",
		"http://"+front+"/api/items/7")
	var wrkOut strings.Builder
	wrk.Stdout, wrk.Stderr = &wrkOut, &wrkOut
	if err := wrk.Start(); err != nil {
		t.Fatal(err)
	}
	wrkDone := make(chan error, 1)
	go func() { wrkDone <- wrk.Wait() }()

	watchCtx, stopWatch := context.WithCancel(context.Background())
	watched := make(chan struct{})
	go lb.watchDown(watchCtx, watched)
	began := time.Now()
	time.Sleep(time.Second) // load before the first restart; wrk runs for a fixed time anyway

	o := outcome{downFirst: map[string]bool{}}
	for i, in := range instances {
		lb.resetDown()
		in.terminate(t)
		down, seen := lb.downAt(in.name)
		in.mu.Lock()
		closed, took := in.drainOver, in.drainTook
		in.mu.Unlock()
		o.drains = append(o.drains, took)
		o.downFirst[in.name] = seen && !closed.IsZero() && down.Before(closed)
		if seen && !closed.IsZero() {
			t.Logf("%s: HAProxy marked it down %s into the run; its drain ended at %s, after %s",
				in.name, down.Sub(began).Round(time.Millisecond), closed.Sub(began).Round(time.Millisecond), took.Round(time.Millisecond))
		}
		instances[i] = startInstanceAt(t, bin, in.name, in.addr, in.probeAddr, args)
		lb.waitStatus(t, in.name, "UP", 30*time.Second)
	}
	if left := load - time.Since(began); left < time.Second {
		t.Fatalf("the rolling restart took %s of wrk's %s: lengthen the load", time.Since(began), load)
	}
	if err := <-wrkDone; err != nil {
		t.Fatalf("wrk: %v\n%s", err, wrkOut.String())
	}
	stopWatch()
	<-watched
	o.wrk = parseWrk(wrkOut.String())
	t.Logf("wrk: %d requests, %d non-2xx, %d socket errors\n%s", o.wrk.requests, o.wrk.non2xx, o.wrk.socketErrors, o.wrk.raw)
	return o
}

func buildExample(t testing.TB) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "example")
	build := exec.Command("go", "build", "-o", bin, "./example")
	build.Dir = ".." // the library's module: this one is the tests' own
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

func TestRollingRestart(t *testing.T) {
	need(t, "haproxy", "wrk")
	bin := buildExample(t)

	t.Run("with drain", func(t *testing.T) {
		// The drain ends once HAProxy has seen readiness fail one time more
		// than its fall threshold, or after 5s.
		o := rollingRestart(t, bin, []string{"-warmup", "500ms", "-drain", "5s",
			"-drain-probes", strconv.Itoa(fall + 1), "-shutdown-timeout", "5s"})
		if o.wrk.requests == 0 {
			t.Fatal("wrk made no requests")
		}
		if o.wrk.non2xx != 0 || o.wrk.socketErrors != 0 {
			t.Errorf("requests failed during the rolling restart: %d non-2xx, %d socket errors", o.wrk.non2xx, o.wrk.socketErrors)
		}
		for name, first := range o.downFirst {
			if !first {
				t.Errorf("instance %s closed its listener before HAProxy marked it down", name)
			}
		}
	})

	t.Run("without drain", func(t *testing.T) {
		// The control: closing at once drops requests, so the harness can
		// tell the difference.
		o := rollingRestart(t, bin, []string{"-warmup", "500ms", "-drain", "0", "-shutdown-timeout", "5s"})
		if o.wrk.non2xx+o.wrk.socketErrors == 0 {
			t.Errorf("no request failed without a drain (%d requests); the harness cannot tell a drain from none", o.wrk.requests)
		}
	})
}

// TestRollingRestartQuietDrain restarts behind HAProxy with a quiet drain
// (it ends once wrk's requests have stopped arriving for 250ms, after
// HAProxy's detection time inter x fall) and with a fixed delay, and logs
// both drains' lengths. Neither may fail a request.
func TestRollingRestartQuietDrain(t *testing.T) {
	need(t, "haproxy", "wrk")
	bin := buildExample(t)
	detection := inter * fall
	const fixed = 2 * time.Second
	variants := []struct {
		name string
		args []string
	}{
		{"quiet", []string{"-drain", "5s", "-drain-quiet", "250ms", "-drain-min", detection.String()}},
		{"fixed", []string{"-drain", fixed.String()}},
	}
	lengths := map[string][]time.Duration{}
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			o := rollingRestart(t, bin, append([]string{"-warmup", "500ms", "-shutdown-timeout", "5s"}, v.args...))
			if o.wrk.requests == 0 {
				t.Fatal("wrk made no requests")
			}
			if o.wrk.non2xx != 0 || o.wrk.socketErrors != 0 {
				t.Errorf("requests failed during the rolling restart: %d non-2xx, %d socket errors", o.wrk.non2xx, o.wrk.socketErrors)
			}
			for name, first := range o.downFirst {
				if !first {
					t.Errorf("instance %s closed its listener before HAProxy marked it down", name)
				}
			}
			for i, d := range o.drains {
				if d < detection {
					t.Errorf("drain %d lasted %s, less than HAProxy's detection time %s", i, d, detection)
				}
			}
			lengths[v.name] = o.drains
		})
	}
	t.Logf("drain lengths: quiet (min %s, quiet 250ms, max 5s) %v; fixed %s %v", detection, lengths["quiet"], fixed, lengths["fixed"])
}
