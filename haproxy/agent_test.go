package haproxy_test

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"go.uber.org/goleak"

	"github.com/probekit/probes"
	"github.com/probekit/probes/haproxy"
	"github.com/probekit/probes/internal/testenv/testutil"
	"github.com/probekit/probes/readiness"
	"github.com/probekit/probes/server"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// serve answers a on a loopback port until the test ends and returns the
// address.
func serve(t *testing.T, a *haproxy.Agent) string {
	t.Helper()
	ln := testutil.Listen(t)
	p, err := a.Serving(ln)
	if err != nil {
		t.Fatal(err)
	}
	testutil.ServePeer(t, p)
	return ln.Addr().String()
}

// ask connects as HAProxy does and returns the line it reads.
func ask(t *testing.T, addr string) string {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		t.Fatalf("reading the agent's line: %v (got %q)", err, line)
	}
	return strings.TrimSuffix(line, "\n")
}

// Every state says what HAProxy must do: warming and failing are down, a
// cordon and a drain are drain, ready is "ready up".
func TestReplies(t *testing.T) {
	lc := probes.NewLifecycle()
	ready, err := readiness.New(lc)
	if err != nil {
		t.Fatal(err)
	}
	var dbDown, cacheDown atomic.Bool
	check := func(b *atomic.Bool) probes.Checker {
		return probes.CheckFunc(func(context.Context) error {
			if b.Load() {
				return errors.New("refused")
			}
			return nil
		})
	}
	if err := ready.Add("db", check(&dbDown), probes.Every(5*time.Millisecond), probes.Local()); err != nil {
		t.Fatal(err)
	}
	if err := ready.Add("cache", check(&cacheDown), probes.Every(5*time.Millisecond), probes.Shared()); err != nil {
		t.Fatal(err)
	}
	a, err := haproxy.New(lc)
	if err != nil {
		t.Fatal(err)
	}
	addr := serve(t, a)
	if got := ask(t, addr); got != "down #phase: cold; warm-up has not started" {
		t.Errorf("cold: %q", got)
	}
	testutil.Background(t, lc.Run)
	testutil.Ready(t, lc)
	testutil.WaitStatus(t, ready, "readiness", probes.Pass, 5*time.Second)
	steps := []struct {
		name string
		do   func()
		want string
	}{
		{"ready", func() {}, "ready up"},
		{"a shared dependency down (readiness warns)", func() {
			cacheDown.Store(true)
			testutil.WaitStatus(t, ready, "readiness", probes.Warn, 5*time.Second)
		}, "ready up"},
		{"a local dependency down", func() {
			cacheDown.Store(false)
			dbDown.Store(true)
			testutil.WaitStatus(t, ready, "readiness", probes.Fail, 5*time.Second)
		}, "down #failing: db"},
		{"back", func() {
			dbDown.Store(false)
			testutil.WaitStatus(t, ready, "readiness", probes.Pass, 5*time.Second)
		}, "ready up"},
		{"cordoned", func() { _, _ = lc.Cordon("disk swap", time.Hour) }, "drain #cordoned: disk swap"},
		{"uncordoned", func() { _, _ = lc.Uncordon() }, "ready up"},
		{"cordoned by a named user", func() {
			_, _ = lc.CordonBy(probes.Author{UID: 1000, User: "alice", PID: 42, Command: "probectl cordon -reason swap"}, "disk swap", time.Hour)
		}, "drain #cordoned: disk swap (by alice)"},
		{"cordoned by a uid without a name", func() {
			_, _ = lc.UncordonBy(probes.Author{})
			_, _ = lc.CordonBy(probes.Author{UID: 4242, PID: 42}, "kernel", time.Hour)
		}, "drain #cordoned: kernel (by uid 4242)"},
		{"uncordoned again", func() { _, _ = lc.Uncordon() }, "ready up"},
		{"rewarming and cordoned", func() { _ = lc.Rewarm("reload"); _, _ = lc.Cordon("look", time.Hour) },
			"down #phase: warming; not ready until warm-up is done; cordoned: look (until "},
		{"warm again, still cordoned", func() { _ = lc.MarkReady() }, "drain #cordoned: look"},
		{"draining", func() { _ = lc.Drain("SIGTERM") }, "drain #draining: shutting down"},
		{"draining, uncordoned", func() { _, _ = lc.Uncordon() }, "drain #draining: shutting down"},
		{"stopped", func() { _ = lc.Stop() }, "down #phase: stopped"},
	}
	for _, s := range steps {
		s.do()
		if got := ask(t, addr); !strings.HasPrefix(got, s.want) {
			t.Errorf("%s: %q, want %q", s.name, got, s.want)
		}
	}
}

// Under load on a shedder's route the weight sinks to the floor, and it
// comes back when the load goes; it is smoothed, so one sample does not
// swing it.
func TestCapacityWeight(t *testing.T) {
	lc := probes.NewLifecycle()
	testutil.Ready(t, lc)
	shed, err := server.NewShedder(4)
	if err != nil {
		t.Fatal(err)
	}
	a, err := haproxy.New(lc, haproxy.Capacity(shed), haproxy.Floor(20), haproxy.Smoothing(300*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	addr := serve(t, a)
	weight := func() int {
		got := ask(t, addr)
		n, err := strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(got, "ready up "), "%"))
		if err != nil {
			t.Fatalf("line %q has no weight", got)
		}
		return n
	}
	if w := weight(); w != 100 {
		t.Fatalf("idle weight %d, want 100", w)
	}
	release := make(chan struct{})
	var entered sync.WaitGroup
	app := httptest.NewServer(shed.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		entered.Done()
		<-release
	})))
	defer app.Close()
	var clients sync.WaitGroup
	entered.Add(4)
	for range 4 {
		clients.Add(1)
		go func() {
			defer clients.Done()
			if res, err := http.Get(app.URL); err == nil {
				res.Body.Close()
			}
		}()
	}
	entered.Wait()
	first := weight()
	testutil.Eventually(t, "the weight at the floor", func() bool { return weight() == 20 })
	if first <= 20 {
		t.Errorf("the weight fell to %d at the first look: not smoothed", first)
	}
	close(release)
	clients.Wait()
	testutil.Eventually(t, "the weight back near 100", func() bool { return weight() >= 95 })
}

// A flood of agent connections is held to MaxConns: beyond it a
// connection is closed unanswered, and a place freed is a place answered
// again. With the bound gone, the connection past it would get a line.
func TestBoundRefusesBeyondMaxConns(t *testing.T) {
	lc := probes.NewLifecycle()
	if _, err := readiness.New(lc); err != nil {
		t.Fatal(err)
	}
	testutil.Ready(t, lc)
	const bound = 8
	a, err := haproxy.New(lc, haproxy.MaxConns(bound), haproxy.Linger(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	addr := serve(t, a)

	held := make([]net.Conn, 0, bound)
	defer func() {
		for _, c := range held {
			c.Close()
		}
	}()
	for range bound {
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, c)
		if got := readLine(t, c); got != "ready up\n" {
			t.Fatalf("connection %d within the bound: %q, want a line", len(held), got)
		}
	}
	// Every place is held (the agent lingers on each): the next is refused.
	if got := askRaw(t, addr); got != "" {
		t.Fatalf("connection past MaxConns(%d) read %q, want it closed unanswered", bound, got)
	}
	// One place freed: a new connection is answered again.
	held[0].Close()
	held = held[1:]
	// The agent frees the place when it reads the close.
	testutil.Eventually(t, "a connection answered after a place was freed", func() bool { return askRaw(t, addr) == "ready up\n" })
}

// readLine reads what c sends until it closes or ends a line.
func readLine(t *testing.T, c net.Conn) string {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		t.Fatalf("reading the agent: %v (got %q)", err, line)
	}
	return line
}

// askRaw dials addr and returns all it reads before the agent closes: a
// line, or "" for a connection closed unanswered.
func askRaw(t *testing.T, addr string) string {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return readLine(t, c)
}

// A thousand agent connections at once leave the probes answering, and
// the agent answering once the flood is gone. How fast the probes answer
// meanwhile is BenchmarkProbeDuringAgentFlood's to say.
func TestFloodLeavesTheProbesAnswering(t *testing.T) {
	lc := probes.NewLifecycle()
	ready, err := readiness.New(lc)
	if err != nil {
		t.Fatal(err)
	}
	testutil.Ready(t, lc)
	a, err := haproxy.New(lc, haproxy.MaxConns(64))
	if err != nil {
		t.Fatal(err)
	}
	addr := serve(t, a)
	mux := http.NewServeMux()
	if _, err := server.Mount(mux, "/readyz", ready); err != nil {
		t.Fatal(err)
	}
	probe := httptest.NewServer(mux)
	defer probe.Close()

	const flood = 1000
	conns := floodAgent(addr, flood)
	for i := 0; i < 50; i++ {
		res, err := http.Get(probe.URL + "/readyz")
		if err != nil {
			t.Fatalf("probe %d during the flood: %v", i, err)
		}
		res.Body.Close()
		if res.StatusCode != 200 {
			t.Fatalf("probe %d during the flood: %d", i, res.StatusCode)
		}
	}
	n := closeAll(conns)
	if n < flood/2 {
		t.Errorf("only %d of %d flood connections opened", n, flood)
	}
	if got := ask(t, addr); got != "ready up" {
		t.Errorf("after the flood: %q", got)
	}
}

// floodAgent opens n connections to addr from 8 goroutines and returns
// them once all are dialled.
func floodAgent(addr string, n int) chan net.Conn {
	conns := make(chan net.Conn, n)
	var dialers sync.WaitGroup
	for range 8 {
		dialers.Add(1)
		go func() {
			defer dialers.Done()
			for range n / 8 {
				if c, err := net.Dial("tcp", addr); err == nil {
					conns <- c
				}
			}
		}()
	}
	dialers.Wait()
	close(conns)
	return conns
}

func closeAll(conns chan net.Conn) int {
	n := 0
	for c := range conns {
		n++
		c.Close()
	}
	return n
}

// The agent finds the readiness gate whenever it is built, and a long
// reason is cut between characters.
func TestGateBuiltAfterTheAgent(t *testing.T) {
	lc := probes.NewLifecycle()
	a, err := haproxy.New(lc)
	if err != nil {
		t.Fatal(err)
	}
	ready, err := readiness.New(lc)
	if err != nil {
		t.Fatal(err)
	}
	if err := ready.Add("db", probes.CheckFunc(func(context.Context) error { return errors.New("refused") }),
		probes.Every(time.Millisecond), probes.Local()); err != nil {
		t.Fatal(err)
	}
	testutil.Background(t, lc.Run)
	testutil.Ready(t, lc)
	testutil.WaitStatus(t, ready, "readiness", probes.Fail, 5*time.Second)
	if got := a.Reply(); got != "down #failing: db" {
		t.Errorf("with the gate built after the agent: %q, want down", got)
	}
	// Warming and cordoned with 99 two-byte characters: the notes run
	// past 200 bytes, and the cut must fall between characters.
	if err := lc.Rewarm("reload"); err != nil {
		t.Fatal(err)
	}
	if _, err := lc.Cordon(strings.Repeat("é", 99), time.Hour); err != nil {
		t.Fatal(err)
	}
	// Ready and cordoned with a long reason by a named user: the reason is
	// cut, never who.
	if err := lc.MarkReady(); err != nil {
		t.Fatal(err)
	}
	if _, err := lc.CordonBy(probes.Author{UID: 1000, User: strings.Repeat("b", 40), PID: 7}, strings.Repeat("é", 95), time.Hour); err != nil {
		t.Fatal(err)
	}
	cut := a.Reply()
	if why := strings.TrimPrefix(cut, "drain #"); len(why) > 200 || !utf8.ValidString(cut) || !strings.HasSuffix(cut, "... (by "+strings.Repeat("b", 40)+")") {
		t.Errorf("a long reason with its author: %d bytes, valid UTF-8 %v: %q", len(why), utf8.ValidString(cut), cut)
	}
	if err := lc.Rewarm("reload again"); err != nil {
		t.Fatal(err)
	}
	got := a.Reply()
	if why := strings.TrimPrefix(got, "down #"); len(why) > 200 || !utf8.ValidString(got) || !strings.HasPrefix(got, "down #phase: warming") {
		t.Errorf("a long line: %d bytes, valid UTF-8 %v: %q", len(why), utf8.ValidString(got), got)
	}
}

func TestNewRejectsBadOptions(t *testing.T) {
	lc := probes.NewLifecycle()
	for _, c := range []struct {
		opt  haproxy.Option
		says string
	}{
		{haproxy.Floor(0), "Floor(0)"}, {haproxy.Floor(101), "Floor(101)"}, {haproxy.MaxConns(0), "MaxConns(0)"},
		{haproxy.Capacity(), "Capacity()"}, {haproxy.Capacity(nil), "nil"}, {haproxy.Smoothing(time.Millisecond), "Smoothing(1ms)"},
	} {
		if _, err := haproxy.New(lc, c.opt); err == nil || !strings.Contains(err.Error(), c.says) {
			t.Errorf("%s: %v", c.says, err)
		}
	}
	if _, err := haproxy.New(nil); err == nil {
		t.Error("New(nil) accepted")
	}
}
