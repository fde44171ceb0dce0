//go:build e2e

package e2e

import (
	"encoding/csv"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/probekit/probes/internal/testenv/testutil"
)

const agentInter = 200 * time.Millisecond

// stat is one server's row of HAProxy's show stat (backend app).
type stat struct {
	status string
	weight int
	ok2xx  int // the 2xx responses it has given
}

// showStat reads each server's status, weight and 2xx responses from
// HAProxy's stats socket.
func showStat(socket string) (map[string]stat, error) {
	conn, err := net.DialTimeout("unix", socket, time.Second)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := io.WriteString(conn, "show stat\n"); err != nil {
		return nil, err
	}
	b, err := io.ReadAll(conn)
	if err != nil {
		return nil, err
	}
	r := csv.NewReader(strings.NewReader(strings.TrimPrefix(string(b), "# ")))
	r.FieldsPerRecord = -1
	rows, err := r.ReadAll()
	if err != nil || len(rows) < 2 {
		return nil, fmt.Errorf("show stat: %v: %q", err, b)
	}
	col := map[string]int{}
	for i, name := range rows[0] {
		col[name] = i
	}
	out := map[string]stat{}
	for _, row := range rows[1:] {
		if len(row) > max(col["weight"], col["hrsp_2xx"]) && row[col["pxname"]] == "app" && row[col["svname"]] != "BACKEND" {
			w, _ := strconv.Atoi(row[col["weight"]])
			ok, _ := strconv.Atoi(row[col["hrsp_2xx"]])
			out[row[col["svname"]]] = stat{status: row[col["status"]], weight: w, ok2xx: ok}
		}
	}
	return out, nil
}

// watcher samples HAProxy's view of each server and keeps the changes.
type watcher struct {
	socket string
	mu     sync.Mutex
	seen   []seenStat
	stop   chan struct{}
	done   chan struct{}
}

type seenStat struct {
	at     time.Time
	server string
	stat
}

func watchStats(socket string) *watcher {
	w := &watcher{socket: socket, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		last := map[string]string{}
		for {
			select {
			case <-w.stop:
				return
			default:
			}
			if st, err := showStat(socket); err == nil {
				now := time.Now()
				w.mu.Lock()
				for name, s := range st {
					if last[name] != s.status {
						last[name] = s.status
						w.seen = append(w.seen, seenStat{now, name, s})
					}
				}
				w.mu.Unlock()
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()
	return w
}

func (w *watcher) close() { close(w.stop); <-w.done }

// first returns when server was first seen with a status that starts with
// prefix, at or after since.
func (w *watcher) first(server, prefix string, since time.Time) (time.Time, string, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, s := range w.seen {
		if s.server == server && !s.at.Before(since) && strings.HasPrefix(s.status, prefix) {
			return s.at, s.status, true
		}
	}
	return time.Time{}, "", false
}

// after lists the statuses server went through from since on.
func (w *watcher) after(server string, since time.Time) []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []string
	for _, s := range w.seen {
		if s.server == server && !s.at.Before(since) {
			out = append(out, s.status)
		}
	}
	return out
}

func buildProbectl(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "probectl")
	build := exec.Command("go", "build", "-o", bin, "./cmd/probectl")
	build.Dir = ".." // the library's module: this one is the tests' own
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build probectl: %v\n%s", err, out)
	}
	return bin
}

func probectl(t *testing.T, bin, socket string, args ...string) string {
	t.Helper()
	out, err := exec.Command(bin, append([]string{"-socket", socket}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("probectl %v: %v\n%s", args, err, out)
	}
	return string(out)
}

// TestCordonBehindHAProxy: two instances behind HAProxy with the agent
// check and httpchk, under wrk's load. probectl cordons one: HAProxy
// drains it within a second; uncordon brings it back; a cordon for 2s lifts
// by itself; not one request fails. Then load on one instance's CPU-heavy
// route lowers its agent weight below the other's.
func TestCordonBehindHAProxy(t *testing.T) {
	need(t, "haproxy", "wrk")
	bin, ctl := buildExample(t), buildProbectl(t)
	dir := t.TempDir()
	front := testutil.FreeAddr(t)
	type node struct {
		*instance
		socket, agent string
	}
	var nodes []node
	for _, name := range []string{"a", "b"} {
		n := node{socket: filepath.Join(dir, name+".sock"), agent: testutil.FreeAddr(t)}
		n.instance = startInstance(t, bin, name, testutil.FreeAddr(t),
			[]string{"-warmup", "1s", "-admin-socket", n.socket, "-agent-addr", n.agent, "-report-cost", "20ms", "-report-inflight", "4"})
		nodes = append(nodes, n)
	}
	var list []lbServer
	for _, n := range nodes {
		_, pp, _ := net.SplitHostPort(n.probeAddr)
		_, ap, _ := net.SplitHostPort(n.agent)
		list = append(list, lbServer{Name: n.name, Addr: n.addr, ProbePort: pp, AgentPort: ap})
	}
	// Both checks: httpchk on /readyz, and the agent check on -agent-addr;
	// weight 100, so that the agent's percentages scale it.
	socket := runHAProxy(t, dir, front, list, lbChecks{inter: 500 * time.Millisecond, fall: 2, rise: 2, weight: 100, agentInter: agentInter}).socket
	up := func(name string) {
		t.Helper()
		testutil.Eventually(t, name+" UP in HAProxy", func() bool {
			st, err := showStat(socket)
			return err == nil && st[name].status == "UP"
		})
	}
	up("a")
	up("b")
	w := watchStats(socket)
	defer w.close()

	const load = 12 * time.Second
	wrk := exec.Command("wrk", "-t2", "-c16", fmt.Sprintf("-d%ds", int(load.Seconds())), "--timeout", "5s", "http://"+front+"/api/items/7")
	var wrkOut strings.Builder
	wrk.Stdout, wrk.Stderr = &wrkOut, &wrkOut
	if err := wrk.Start(); err != nil {
		t.Fatal(err)
	}
	began := time.Now()

	// Cordon a: HAProxy drains it within a second.
	a := nodes[0]
	out := probectl(t, ctl, a.socket, "cordon", "-reason", "disk swap", "-for", "10m")
	cordoned := time.Now()
	t.Logf("probectl: %s", strings.TrimSpace(out))
	testutil.Eventually(t, "a out of rotation", func() bool { _, _, ok := w.first("a", "DRAIN", cordoned); return ok })
	drainAt, drainStatus, _ := w.first("a", "DRAIN", cordoned)
	took := drainAt.Sub(cordoned)
	t.Logf("cordon: HAProxy showed a %q %s after probectl returned", drainStatus, took.Round(time.Millisecond))
	if took > time.Second {
		t.Errorf("HAProxy took %s to drain the cordoned instance, want within 1s", took)
	}
	if first := w.after("a", cordoned); len(first) == 0 || !strings.HasPrefix(first[0], "DRAIN") {
		t.Errorf("a's first status after the cordon: %v, want DRAIN first (the agent before httpchk)", first)
	}
	// Its application routes keep serving stragglers.
	res, err := http.Get("http://" + a.addr + "/api/items/7")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 200 {
		t.Errorf("a's API while cordoned: %d, want 200", res.StatusCode)
	}
	status := probectl(t, ctl, a.socket, "status")
	if !strings.Contains(status, "cordon  disk swap (until ") {
		t.Errorf("probectl status while cordoned:\n%s", status)
	}
	time.Sleep(time.Second) // traffic on b alone for a while

	t.Logf("a's statuses in HAProxy since the cordon: %v", w.after("a", cordoned))

	// Uncordon: back in rotation.
	probectl(t, ctl, a.socket, "uncordon")
	uncordoned := time.Now()
	testutil.Eventually(t, "a back UP", func() bool { _, _, ok := w.first("a", "UP", uncordoned); return ok })
	upAt, _, _ := w.first("a", "UP", uncordoned)
	t.Logf("uncordon: HAProxy showed a UP %s after probectl returned", upAt.Sub(uncordoned).Round(time.Millisecond))

	// A cordon for 2s lifts by itself.
	probectl(t, ctl, a.socket, "cordon", "-reason", "short look", "-for", "2s")
	short := time.Now()
	testutil.Eventually(t, "a drained by the short cordon", func() bool { _, _, ok := w.first("a", "DRAIN", short); return ok })
	testutil.Eventually(t, "a back UP when the cordon lifts", func() bool {
		at, _, ok := w.first("a", "UP", short)
		return ok && at.Sub(short) > 2*time.Second
	})
	liftedAt, _, _ := w.first("a", "UP", short.Add(2*time.Second))
	t.Logf("a 2s cordon: a back UP %s after probectl returned", liftedAt.Sub(short).Round(time.Millisecond))

	if err := wrk.Wait(); err != nil {
		t.Fatalf("wrk: %v\n%s", err, wrkOut.String())
	}
	if time.Since(began) < load {
		t.Fatal("wrk ended early")
	}
	totals := parseWrk(wrkOut.String())
	t.Logf("wrk through HAProxy: %d requests, %d non-2xx, %d socket errors", totals.requests, totals.non2xx, totals.socketErrors)
	if totals.requests == 0 || totals.non2xx != 0 || totals.socketErrors != 0 {
		t.Errorf("requests failed through the cordons:\n%s", totals.raw)
	}
	hist, err := http.Get("http://" + a.probeAddr + "/history")
	if err != nil {
		t.Fatal(err)
	}
	hb, _ := io.ReadAll(hist.Body)
	hist.Body.Close()
	if n := strings.Count(string(hb), `"subject":"cordon"`); n != 4 {
		t.Errorf("a's history holds %d cordon transitions, want 4 (two cordons, an uncordon, a lift)", n)
	}

	// Capacity: load on a's CPU-heavy route lowers its agent weight.
	heavy := exec.Command("wrk", "-t2", "-c8", "-d6s", "--timeout", "5s", "http://"+a.addr+"/api/report")
	heavy.Stdout, heavy.Stderr = io.Discard, io.Discard
	if err := heavy.Start(); err != nil {
		t.Fatal(err)
	}
	defer heavy.Wait()
	var wa, wb int
	testutil.Eventually(t, "a's weight under half of b's", func() bool {
		st, err := showStat(socket)
		wa, wb = st["a"].weight, st["b"].weight
		return err == nil && wa <= wb/2 && st["a"].status == "UP"
	})
	t.Logf("under load on a's /api/report: HAProxy weight a=%d, b=%d", wa, wb)
}
