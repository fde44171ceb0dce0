package fleet

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/probekit/probes"
	"github.com/probekit/probes/internal/testenv/testutil"
	"github.com/probekit/probes/liveness"
	"github.com/probekit/probes/readiness"
	"github.com/probekit/probes/server"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var errDown = errors.New("connection refused")

// serveLifecycle serves a new lifecycle's probes, with the readiness
// checks given (nil error: passing), on a loopback port, Ready and running
// until the test ends; it returns the address once readiness says want.
func serveLifecycle(t testing.TB, checks map[string]error, want probes.Status) string {
	t.Helper()
	addr, _ := serveLifecycleOn(t, nil, checks, want)
	return addr
}

// serveLifecycleOn is serveLifecycle on ln (nil: a new loopback port),
// and on each of more too (a pod with more than one address). Its read
// policy authorises loopback peers, as an operator's probectl on the node
// (or through port-forward) is: the fleet reads reasons.
func serveLifecycleOn(t testing.TB, ln net.Listener, checks map[string]error, want probes.Status, more ...net.Listener) (string, *probes.Lifecycle) {
	t.Helper()
	lc := probes.NewLifecycle(probes.Readers(probes.FromLoopback))
	return serveThe(t, lc, ln, checks, want, more...), lc
}

// serveThe is serveLifecycleOn with lc, and its read policy.
func serveThe(t testing.TB, lc *probes.Lifecycle, ln net.Listener, checks map[string]error, want probes.Status, more ...net.Listener) string {
	t.Helper()
	if _, err := liveness.New(lc); err != nil {
		t.Fatal(err)
	}
	ready, err := readiness.New(lc)
	if err != nil {
		t.Fatal(err)
	}
	for name, e := range checks {
		if err := ready.Add(name, probes.CheckFunc(func(context.Context) error { return e }), probes.Every(time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
	mux := http.NewServeMux()
	if _, err := server.Register(mux, lc); err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewUnstartedServer(mux)
	if ln != nil {
		ts.Listener.Close()
		ts.Listener = ln
	}
	ts.Start()
	t.Cleanup(ts.Close)
	for _, l := range more {
		also := httptest.NewUnstartedServer(mux)
		also.Listener.Close()
		also.Listener = l
		also.Start()
		t.Cleanup(also.Close)
	}
	testutil.Ready(t, lc)
	testutil.Background(t, lc.Run)
	// Every check has run once: before that, a check counts as failing.
	testutil.Eventually(t, "every check of a test instance run", func() bool {
		for _, c := range ready.Report().Checks {
			if c.Time.IsZero() {
				return false
			}
		}
		return true
	})
	testutil.WaitStatus(t, ready, "a test instance", want, 5*time.Second)
	return ts.Listener.Addr().String()
}

// stalled is a listener that accepts connections and never answers.
func stalled(t testing.TB) string {
	t.Helper()
	ln := testutil.Listen(t)
	var mu sync.Mutex
	var conns []net.Conn
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		<-done
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return ln.Addr().String()
}

// run runs Main and returns its exit code, stdout and stderr.
func run(t testing.TB, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := Main(context.Background(), args, &out, &errOut)
	return code, out.String(), errOut.String()
}

// runJSON runs Main with -json and decodes its round.
func runJSON(t testing.TB, args ...string) (int, Round) {
	t.Helper()
	code, out, errOut := run(t, append([]string{"-json"}, args...)...)
	var r Round
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("-json output %q (stderr %q): %v", out, errOut, err)
	}
	return code, r
}

func targets(addrs ...string) string { return "-targets=" + strings.Join(addrs, ",") }

func TestAllReady(t *testing.T) {
	var addrs []string
	for range 3 {
		addrs = append(addrs, serveLifecycle(t, map[string]error{"postgres": nil}, probes.Pass))
	}
	code, out, errOut := run(t, targets(addrs...))
	if code != 0 {
		t.Fatalf("exit code: got %d, want 0\n%s%s", code, out, errOut)
	}
	for _, a := range addrs {
		if !strings.Contains(out, a+" ") {
			t.Errorf("no row for %s in\n%s", a, out)
		}
	}
	if !strings.Contains(out, "3 instances: 3 reachable, 3 ready, 0 cordoned") {
		t.Errorf("summary missing in\n%s", out)
	}
	if strings.Contains(out, "fleet-wide") || strings.Contains(out, "local") {
		t.Errorf("faults reported for a healthy fleet:\n%s", out)
	}
}

func TestSharedFailureIsFleetWide(t *testing.T) {
	var addrs []string
	for range 3 {
		addrs = append(addrs, serveLifecycle(t, map[string]error{"postgres": errDown, "cache": nil}, probes.Fail))
	}
	code, r := runJSON(t, targets(addrs...))
	if code != 1 {
		t.Errorf("exit code: got %d, want 1", code)
	}
	const want = "readiness/postgres"
	if len(r.FleetWide) != 1 || r.FleetWide[0] != want || len(r.Local) != 0 {
		t.Fatalf("fleetWide %q, local %q: want [%s] and none", r.FleetWide, r.Local, want)
	}
	if f := r.Faults[0]; f.Failing != 3 || f.Of != 3 || f.Scope != FleetWide {
		t.Errorf("fault: got %+v, want failing on 3 of 3, fleet-wide", f)
	}
	for _, in := range r.Instances {
		if !in.Reachable || len(in.Failing) != 1 || in.Failing[0] != want {
			t.Errorf("%s: reachable %v failing %q, want [%s]", in.Address, in.Reachable, in.Failing, want)
		}
	}
	_, text, _ := run(t, targets(addrs...))
	if !strings.Contains(text, want+"  fleet-wide  failing on 3 of 3") {
		t.Errorf("text form lacks the fleet-wide line:\n%s", text)
	}
}

func TestOneOfThreeIsLocal(t *testing.T) {
	addrs := []string{
		serveLifecycle(t, map[string]error{"postgres": nil, "sidecar": nil}, probes.Pass),
		serveLifecycle(t, map[string]error{"postgres": nil, "sidecar": errDown}, probes.Fail),
		serveLifecycle(t, map[string]error{"postgres": nil, "sidecar": nil}, probes.Pass),
	}
	code, r := runJSON(t, targets(addrs...))
	if code != 1 {
		t.Errorf("exit code: got %d, want 1", code)
	}
	const want = "readiness/sidecar"
	if len(r.Local) != 1 || r.Local[0] != want || len(r.FleetWide) != 0 {
		t.Fatalf("local %q, fleetWide %q: want [%s] and none", r.Local, r.FleetWide, want)
	}
	if f := r.Faults[0]; f.Failing != 1 || f.Of != 3 {
		t.Errorf("fault: got %+v, want failing on 1 of 3", f)
	}
}

// A cordoned instance is out of rotation; its reason and who set it are in
// its row (the command line, masked, in the JSON form and the page only).
func TestCordoned(t *testing.T) {
	a := serveLifecycle(t, nil, probes.Pass)
	b, lc := serveLifecycleOn(t, nil, nil, probes.Pass)
	alice := probes.Author{UID: 1000, User: "alice", PID: 4242, Command: "probectl cordon -reason disk swap password=Zq7hunter2"}
	if _, err := lc.CordonBy(alice, "disk swap", time.Minute); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = lc.Uncordon() })
	code, r := runJSON(t, targets(a, b))
	if code != 1 {
		t.Errorf("exit code: got %d, want 1 (one instance out of rotation)", code)
	}
	for _, in := range r.Instances {
		switch in.Address {
		case a:
			if in.Cordon != "" || !in.Ready {
				t.Errorf("the other instance: cordon %q, ready %v", in.Cordon, in.Ready)
			}
		case b:
			if in.Cordon != "disk swap" || in.Ready || in.Phase != "ready" || in.CordonUntil == "" {
				t.Errorf("the cordoned instance: cordon %q until %q, ready %v, phase %q", in.Cordon, in.CordonUntil, in.Ready, in.Phase)
			}
			if want := "uid 1000 (alice), pid 4242: probectl cordon -reason disk swap password=xxxxx"; in.CordonBy != want {
				t.Errorf("the cordon's author: %q, want %q", in.CordonBy, want)
			}
		}
	}
	_, text, _ := run(t, targets(a, b))
	if !strings.Contains(text, "disk swap (by uid 1000 (alice), pid 4242)") || !strings.Contains(text, "1 cordoned") {
		t.Errorf("the text form does not show the cordon and its author:\n%s", text)
	}
	if strings.Contains(text, "Zq7") {
		t.Errorf("a secret of the author's command line reached the text form:\n%s", text)
	}
}

// An instance that does not let the fleet view read its reasons still
// says it is cordoned, but neither why nor by whom.
func TestCordonedAnonymously(t *testing.T) {
	lc := probes.NewLifecycle() // no read policy: every HTTP reader is anonymous
	addr := serveThe(t, lc, nil, nil, probes.Pass)
	if _, err := lc.CordonBy(probes.Author{UID: 1000, User: "alice", PID: 4242, Command: "probectl cordon"}, "disk swap", time.Minute); err != nil {
		t.Fatal(err)
	}
	_, r := runJSON(t, targets(addr))
	if len(r.Instances) != 1 {
		t.Fatalf("got %+v", r)
	}
	if in := r.Instances[0]; in.Cordon != "cordoned" || in.CordonBy != "" || in.Ready {
		t.Errorf("anonymously: cordon %q by %q, ready %v; want \"cordoned\", nobody, false", in.Cordon, in.CordonBy, in.Ready)
	}
	_, text, _ := run(t, targets(addr))
	if strings.Contains(text, "alice") || strings.Contains(text, "disk swap") {
		t.Errorf("the text form shows what an anonymous reader may not see:\n%s", text)
	}
}

// An instance from before the deep view said its phase, gates and the
// gate of each entry.
func TestOlderInstance(t *testing.T) {
	old := hostile(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/health+json")
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprint(w, `{"status":"fail","notes":["phase: ready","failing: postgres"],`+
			`"checks":{"postgres:responseTime":[{"status":"fail"}],"cache:progress":[{"status":"pass"}]}}`)
	})
	code, r := runJSON(t, targets(old))
	if code != 1 || len(r.Instances) != 1 {
		t.Fatalf("exit %d, %+v", code, r)
	}
	in := r.Instances[0]
	if !in.Reachable || in.Phase != "ready" || in.Ready || fmt.Sprint(in.Failing) != "[health/postgres]" {
		t.Errorf("got reachable %v phase %q ready %v failing %q; want true, ready, false, [health/postgres]",
			in.Reachable, in.Phase, in.Ready, in.Failing)
	}
}

func TestClassify(t *testing.T) {
	inst := func(reachable bool, failing ...string) Instance {
		return Instance{Reachable: reachable, Failing: failing}
	}
	for _, tc := range []struct {
		name       string
		share      float64
		instances  []Instance
		wide, loca []string
	}{
		{"none failing", 0.5, []Instance{inst(true), inst(true)}, nil, nil},
		{"one instance alone is never fleet-wide", 0.5, []Instance{inst(true, "r/a")}, nil, []string{"r/a"}},
		{"two of two", 0.5, []Instance{inst(true, "r/a"), inst(true, "r/a")}, []string{"r/a"}, nil},
		{"two of four at half", 0.5, []Instance{inst(true, "r/a"), inst(true, "r/a"), inst(true), inst(true)}, []string{"r/a"}, nil},
		{"two of five at half", 0.5, []Instance{inst(true, "r/a"), inst(true, "r/a"), inst(true), inst(true), inst(true)}, nil, []string{"r/a"}},
		{"unreachable ones do not count", 0.5, []Instance{inst(true, "r/a"), inst(true, "r/a"), inst(false), inst(false), inst(false)}, []string{"r/a"}, nil},
		{"share one needs all", 1, []Instance{inst(true, "r/a"), inst(true, "r/a", "r/b"), inst(true, "r/b")}, nil, []string{"r/a", "r/b"}},
		{"wide first, then by count", 0.5, []Instance{inst(true, "r/b", "r/c"), inst(true, "r/b"), inst(true, "r/b"), inst(true)}, []string{"r/b"}, []string{"r/c"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := Round{Instances: tc.instances}
			classify(&r, tc.share)
			if fmt.Sprint(r.FleetWide) != fmt.Sprint(orEmpty(tc.wide)) || fmt.Sprint(r.Local) != fmt.Sprint(orEmpty(tc.loca)) {
				t.Errorf("got fleet-wide %q local %q, want %q %q", r.FleetWide, r.Local, tc.wide, tc.loca)
			}
		})
	}
}

func TestOK(t *testing.T) {
	well := Instance{Reachable: true, Ready: true}
	for _, tc := range []struct {
		name string
		r    Round
		want bool
	}{
		{"all well", Round{Instances: []Instance{well, well}}, true},
		{"no instances", Round{}, false},
		{"one unreachable", Round{Instances: []Instance{well, {}}}, false},
		{"one failing check", Round{Instances: []Instance{well, {Reachable: true, Ready: true, Failing: []string{"r/a"}}}}, false},
		{"discovery failed", Round{Instances: []Instance{well}, Error: "no answer"}, false},
		{"discovery cut short: more instances than asked", Round{Instances: []Instance{well}, Truncated: true}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.r.OK(); got != tc.want {
				t.Errorf("got OK %v, want %v", got, tc.want)
			}
		})
	}
}

func orEmpty(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// A stalled instance (it accepts and never answers) and a closed port are
// listed unreachable with their reasons, and the round ends: within the
// timeout, which BenchmarkStalled measures; here only that it ends.
func TestUnreachable(t *testing.T) {
	const timeout = 2 * time.Second // enough for the good one on a loaded machine
	good := serveLifecycle(t, nil, probes.Pass)
	hung, closed := stalled(t), testutil.FreeAddr(t)
	type result struct {
		code      int
		out, errs string
	}
	done := make(chan result, 1)
	go func() {
		var out, errOut bytes.Buffer
		code := Main(context.Background(), []string{"-json", "-timeout", timeout.String(), targets(hung, good, closed)}, &out, &errOut)
		done <- result{code, out.String(), errOut.String()}
	}()
	var res result
	select {
	case res = <-done:
	case <-time.After(generous):
		t.Fatalf("the round has not ended after %s", generous)
	}
	if res.code != 1 {
		t.Errorf("exit code: got %d, want 1", res.code)
	}
	var r Round
	if err := json.Unmarshal([]byte(res.out), &r); err != nil {
		t.Fatalf("-json output %q (stderr %q): %v", res.out, res.errs, err)
	}
	byAddr := map[string]Instance{}
	for _, in := range r.Instances {
		byAddr[in.Address] = in
	}
	if in := byAddr[good]; !in.Reachable || !in.Ready || in.Phase != "ready" {
		t.Errorf("the good instance: %+v", in)
	}
	if in := byAddr[hung]; in.Reachable || !strings.Contains(in.Error, "no answer within 2s") {
		t.Errorf("the stalled instance: got reachable %v, error %q; want false, no answer within 2s", in.Reachable, in.Error)
	}
	if in := byAddr[closed]; in.Reachable || !strings.Contains(in.Error, "refused") {
		t.Errorf("the closed port: got reachable %v, error %q; want false, refused", in.Reachable, in.Error)
	}
	var text strings.Builder
	if err := writeText(&text, &r); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(text.String(), hung+"  unreachable") || !strings.Contains(text.String(), closed+"  unreachable") {
		t.Errorf("text form does not say unreachable:\n%s", text.String())
	}
}

// hostile answers with what a compromised or broken instance might send.
func hostile(t testing.TB, h http.HandlerFunc) string {
	t.Helper()
	ts := httptest.NewServer(h)
	t.Cleanup(ts.Close)
	return ts.Listener.Addr().String()
}

func TestHostileInstances(t *testing.T) {
	escapes := hostile(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/health+json")
		fmt.Fprint(w, `{"status":"fail","phase":"ready\u001b[2J\u001b]0;owned\u0007","since":"\u202enow",`+
			`"gates":{"readiness":"fail"},"cordon":{"reason":"a\r\nb\u001b[31m"},`+
			`"checks":{"evil\u001b[1m:responseTime":[{"status":"fail","gate":"readiness\u0000"}]}}`)
	})
	huge := hostile(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/health+json")
		fmt.Fprint(w, `{"status":"pass","notes":["`)
		chunk := bytes.Repeat([]byte("x"), 64<<10)
		for range 64 { // 4 MiB, more than is read
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
		fmt.Fprint(w, `"]}`)
	})
	long := hostile(t, func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, `{"status":"pass","phase":"%s"}`, strings.Repeat("p", 5000))
	})
	notJSON := hostile(t, func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "<html>hello</html>") })
	wrongCode := hostile(t, func(w http.ResponseWriter, r *http.Request) { http.Error(w, "\x1b[2Jgone", http.StatusNotFound) })
	all := targets(escapes, huge, long, notJSON, wrongCode)
	code, text, _ := run(t, all)
	if code != 1 {
		t.Errorf("exit code: got %d, want 1", code)
	}
	for _, bad := range []string{"\x1b", "\u202e", "\a", "\r", "\x00"} {
		if strings.Contains(text, bad) {
			t.Errorf("the text form holds %q:\n%q", bad, text)
		}
	}
	_, r := runJSON(t, all)
	by := map[string]Instance{}
	for _, in := range r.Instances {
		by[in.Address] = in
	}
	if in := by[escapes]; in.Phase != `ready\x1b[2J\x1b]0;owned\a` || in.Cordon != `a\r\nb\x1b[31m` || fmt.Sprint(in.Failing) != `[readiness\x00/evil\x1b[1m]` {
		t.Errorf("escapes not escaped: phase %q cordon %q failing %q", in.Phase, in.Cordon, in.Failing)
	}
	if in := by[huge]; in.Reachable || !strings.Contains(in.Error, "larger than 1024 KiB") {
		t.Errorf("a 4 MiB body: reachable %v, error %q", in.Reachable, in.Error)
	}
	if in := by[long]; len(in.Phase) > maxText+3 || !strings.HasSuffix(in.Phase, "...") {
		t.Errorf("a 5000-byte phase kept as %d bytes", len(in.Phase))
	}
	if in := by[notJSON]; in.Reachable || !strings.Contains(in.Error, "not a health+json deep view") {
		t.Errorf("an HTML answer: reachable %v, error %q", in.Reachable, in.Error)
	}
	if in := by[wrongCode]; in.Reachable || in.Error != "HTTP 404: not a deep view" {
		t.Errorf("a 404: reachable %v, error %q", in.Reachable, in.Error)
	}
}

func TestJSONShape(t *testing.T) {
	a := serveLifecycle(t, map[string]error{"postgres": nil}, probes.Pass)
	_, out, _ := run(t, "-json", targets(a))
	var doc map[string]any
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"instances", "fleetWide", "local", "faults", "at", "reachable", "tookMs", "truncated", "warnings"} {
		if _, ok := doc[k]; !ok {
			t.Errorf("no %q in %s", k, out)
		}
	}
	for _, k := range []string{"fleetWide", "local", "faults", "warnings"} {
		if _, ok := doc[k].([]any); !ok {
			t.Errorf("%q is %T, want a list (never null)", k, doc[k])
		}
	}
	ins, _ := doc["instances"].([]any)
	if len(ins) != 1 {
		t.Fatalf("instances: %v", doc["instances"])
	}
	in := ins[0].(map[string]any)
	want := map[string]any{"address": a, "reachable": true, "phase": "ready", "ready": true, "cordon": "", "error": "", "status": "pass"}
	for k, v := range want {
		if in[k] != v {
			t.Errorf("instance %q: got %v, want %v", k, in[k], v)
		}
	}
	for _, k := range []string{"failing", "checks"} {
		if _, ok := in[k].([]any); !ok {
			t.Errorf("instance %q is %T, want a list", k, in[k])
		}
	}
	if _, ok := in["since"].(string); !ok {
		t.Errorf("instance since is %T, want a string", in["since"])
	}
}

func TestUsage(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		says string
	}{
		{"nothing to ask", nil, "no instances"},
		{"unknown flag", []string{"-nope", "x"}, "-nope"},
		{"zero timeout", []string{"-timeout", "0s", "x"}, "-timeout"},
		{"no parallelism", []string{"-parallel", "0", "x"}, "-parallel"},
		{"share above one", []string{"-share", "1.5", "x"}, "-share"},
		{"share zero", []string{"-share", "0", "x"}, "-share"},
		{"port out of range", []string{"-port", "70000", "x"}, "-port"},
		{"every zero", []string{"-every", "0s", "-watch", "x"}, "-every"},
		{"name and targets", []string{"-targets", "127.0.0.1:1", "x"}, "-targets"},
		{"two names", []string{"x", "y"}, "one NAME"},
		{"bad target", []string{"-targets", "a:b:c"}, "-targets"},
		{"bad resolver", []string{"-resolver", "127.0.0.1:99999", "x"}, "-resolver"},
		{"srv and targets", []string{"-srv", "-targets", "127.0.0.1:1"}, "-srv"},
		{"watch and serve", []string{"-watch", "-serve", "127.0.0.1:0", "x"}, "-serve"},
		{"a -serve address that cannot be listened on", []string{"-targets", "127.0.0.1:1", "-serve", "nonsense"}, "-serve"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := run(t, tc.args...)
			if code != 2 {
				t.Errorf("exit code: got %d, want 2", code)
			}
			if !strings.Contains(errOut, tc.says) {
				t.Errorf("stderr %q does not mention %q", errOut, tc.says)
			}
			if out != "" {
				t.Errorf("stdout: got %q, want nothing", out)
			}
		})
	}
}

func TestFlagsAfterTheName(t *testing.T) {
	o, err := parseFlags([]string{"_probes._tcp.svc", "-port", "9000", "-json"}, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if o.src.name != "_probes._tcp.svc" || !o.src.srv || o.src.port != 9000 || !o.json {
		t.Errorf("got name %q srv %v port %d json %v", o.src.name, o.src.srv, o.src.port, o.json)
	}
}

func TestSortedByAddress(t *testing.T) {
	ins := []Instance{{Address: "127.0.0.10:8081"}, {Address: "web-1:8081"}, {Address: "127.0.0.9:8081"},
		{Address: "[::1]:8081"}, {Address: "127.0.0.9:80"}, {Address: "10-0-0-7.svc:8081"}}
	sortInstances(ins)
	var got []string
	for _, in := range ins {
		got = append(got, in.Address)
	}
	if want := "[127.0.0.9:80 127.0.0.9:8081 127.0.0.10:8081 [::1]:8081 10-0-0-7.svc:8081 web-1:8081]"; fmt.Sprint(got) != want {
		t.Errorf("got %v, want %s", got, want)
	}
}

func TestTargetsWithoutPort(t *testing.T) {
	got, err := parseTargets(" 10.0.0.7 , 10.0.0.8:9000,::1,[fe80::1]:80,10.0.0.7", 8081)
	if err != nil {
		t.Fatal(err)
	}
	if want := "[10.0.0.7:8081 10.0.0.8:9000 [::1]:8081 [fe80::1]:80]"; fmt.Sprint(got) != want {
		t.Errorf("got %v, want %s", got, want)
	}
	if _, err := parseTargets(strings.Repeat("10.0.0.1:1,", 0)+",,", 1); err == nil {
		t.Error("an empty list: no error")
	}
}

func TestTooManyTargets(t *testing.T) {
	var b strings.Builder
	for i := range MaxInstances + 1 {
		fmt.Fprintf(&b, "10.%d.%d.%d:8081,", i>>16, (i>>8)&255, i&255)
	}
	code, _, errOut := run(t, "-targets", b.String())
	if code != 2 || !strings.Contains(errOut, "more than 10000") {
		t.Errorf("exit %d, stderr %q: want 2 and a word about the bound", code, errOut)
	}
}

func TestWatchPrintsEachRound(t *testing.T) {
	a := serveLifecycle(t, nil, probes.Pass)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	w := &lines{seen: make(chan struct{}, 100)}
	done := make(chan int)
	go func() {
		done <- Main(ctx, []string{"-watch", "-json", "-every", "10ms", targets(a)}, w, &bytes.Buffer{})
	}()
	for range 3 {
		select {
		case <-w.seen:
		case <-time.After(testutil.Deadline):
			t.Fatal("no round printed")
		}
	}
	cancel()
	if code := <-done; code != 0 {
		t.Errorf("exit code: got %d, want 0 (the last round was healthy)", code)
	}
	if out := w.String(); strings.Contains(out, clearScreen) {
		t.Error("the screen cleared on a non-terminal")
	}
}

// lines is a writer that tells of each write.
type lines struct {
	mu   sync.Mutex
	b    bytes.Buffer
	seen chan struct{}
}

func (l *lines) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	select {
	case l.seen <- struct{}{}:
	default:
	}
	return l.b.Write(p)
}

func (l *lines) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// An instance's restarts and how the last instance before it ended are in
// its row, and why when the instance tells the fleet view (the test
// instances authorise loopback readers); a restarts member that is no
// count makes the deep view unreadable, as any member of the wrong type.
func TestRestarts(t *testing.T) {
	a := serveLifecycle(t, nil, probes.Pass)
	b, lc := serveLifecycleOn(t, nil, nil, probes.Pass)
	lc.SetPast(probes.Past{Restarts: 3, Ended: probes.EndedBroken, End: time.Now(), Cause: "warm-up deadline missed"})
	bad := hostile(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/health+json")
		fmt.Fprint(w, `{"status":"pass","phase":"ready","restarts":-1}`)
	})
	_, r := runJSON(t, targets(a, b, bad))
	for _, in := range r.Instances {
		switch in.Address {
		case a:
			if in.Restarts != 0 || in.LastEnded != "" || in.LastCause != "" {
				t.Errorf("an instance without restarts: %d, %q, %q", in.Restarts, in.LastEnded, in.LastCause)
			}
		case b:
			if in.Restarts != 3 || in.LastEnded != "broken" || in.LastCause != "warm-up deadline missed" {
				t.Errorf("the restarted instance: %d, %q, %q", in.Restarts, in.LastEnded, in.LastCause)
			}
		case bad:
			if in.Reachable || !strings.Contains(in.Error, "restarts") {
				t.Errorf("restarts -1: reachable %v, error %q", in.Reachable, in.Error)
			}
		}
	}
	_, text, _ := run(t, targets(a, b))
	if !strings.Contains(text, "RESTARTS") || !strings.Contains(text, "3 (broken: warm-up deadline missed)") {
		t.Errorf("the text form does not show the restarts:\n%s", text)
	}
}
