package history_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/probekit/probes"
	"github.com/probekit/probes/history"
	"github.com/probekit/probes/internal/testenv/testutil"
)

var shop = probes.Identity{Service: "shop", Release: "1.4.2", Instance: "shop-7d9f-abcde", Node: "node-1"}

// instance is one run of the service on dir, as a restarted container
// is: a lifecycle of its own over the same state directory.
func instance(t testing.TB, dir string, opts ...history.Option) (*probes.Lifecycle, *history.History) {
	t.Helper()
	lc := probes.NewLifecycle(probes.Identify(shop))
	h, err := history.New(lc, append([]history.Option{history.StateDir(dir)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return lc, h
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// StateDir refuses what cannot be a state directory, naming itself.
func TestStateDirRefuses(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	must(t, os.WriteFile(file, nil, 0o600))
	locked := filepath.Join(dir, "locked")
	must(t, os.MkdirAll(filepath.Join(locked, "history.lock"), 0o700)) // the lock cannot be opened
	for _, tt := range []struct {
		name, dir, want string
	}{
		{"empty", "", `StateDir(""): need a directory`},
		{"missing", filepath.Join(dir, "nope"), "no such file or directory"},
		{"a file", file, "not a directory"},
		{"not writable", locked, "not writable"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := history.New(probes.NewLifecycle(), history.StateDir(tt.dir))
			if err == nil || !strings.Contains(err.Error(), "StateDir(") || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %v, want an error naming StateDir and saying %q", err, tt.want)
			}
		})
	}
	t.Run("in use", func(t *testing.T) {
		d := t.TempDir()
		_, h := instance(t, d)
		defer h.Close()
		_, err := history.New(probes.NewLifecycle(), history.StateDir(d))
		if err == nil || !strings.Contains(err.Error(), "in use by another process") {
			t.Errorf("a second History on the same directory: got %v, want it refused", err)
		}
	})
	t.Run("after Run", func(t *testing.T) {
		lc := probes.NewLifecycle()
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		_ = lc.Run(ctx)
		d := t.TempDir()
		_, err := history.New(lc, history.StateDir(d))
		if !errors.Is(err, probes.ErrLifecycleRan) {
			t.Errorf("after Run: got %v, want ErrLifecycleRan", err)
		}
		if n, _, err := history.ReadState(d); n != 0 || err != nil {
			t.Errorf("after Run: %d instances on record (%v), want none: this one never ran", n, err)
		}
		if _, h := instance(t, d); h.Restarts() != 0 { // and the directory is free again
			t.Errorf("the next: %d restarts", h.Restarts())
		} else {
			h.Close()
		}
	})
}

// Two consecutive instances on one directory: the second lists the first,
// with how it ended and why, and counts the restarts.
func TestPreviousInstance(t *testing.T) {
	const secret = "s3cret"
	for _, tt := range []struct {
		name  string
		end   func(t *testing.T, lc *probes.Lifecycle, h *history.History)
		ended string
		cause string
	}{
		{"stopped", func(t *testing.T, lc *probes.Lifecycle, h *history.History) {
			must(t, lc.Drain("signal terminated"))
			must(t, lc.Stop())
			h.Close()
		}, probes.EndedStopped, "signal terminated"},
		{"broken", func(t *testing.T, lc *probes.Lifecycle, h *history.History) {
			must(t, lc.MarkBroken(errors.New("dial postgres://app:"+secret+"@db: refused")))
			h.Close()
		}, probes.EndedBroken, "dial postgres://app:xxxxx@db: refused"},
		{"closed", func(t *testing.T, lc *probes.Lifecycle, h *history.History) {
			h.Close()
		}, probes.EndedClosed, "history closed while ready"},
		{"killed", func(t *testing.T, lc *probes.Lifecycle, h *history.History) {
			h.Flush() // what the writer does every second
			h.Abandon()
		}, probes.EndedSilent, ""},
		{"killed at once", func(t *testing.T, lc *probes.Lifecycle, h *history.History) {
			h.Abandon() // before the writer wrote anything: the start is there
		}, probes.EndedSilent, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			lc, h := instance(t, dir)
			if h.Restarts() != 0 || len(h.Previous()) != 0 || !lc.Past().IsZero() {
				t.Fatalf("first instance: %d restarts, %v, %+v; want none", h.Restarts(), h.Previous(), lc.Past())
			}
			testutil.Ready(t, lc)
			tt.end(t, lc, h)

			lc2, h2 := instance(t, dir)
			defer h2.Close()
			prev := h2.Previous()
			if h2.Restarts() != 1 || len(prev) != 1 {
				t.Fatalf("second instance: %d restarts, %d previous; want 1 and 1", h2.Restarts(), len(prev))
			}
			p := prev[0]
			if p.Number != 0 || p.Identity != shop || p.Start.IsZero() || p.Ended != tt.ended || p.Cause != tt.cause {
				t.Errorf("previous: %+v; want number 0, %+v, a start, ended %q because %q", p, shop, tt.ended, tt.cause)
			}
			if (tt.ended == probes.EndedSilent) != p.End.IsZero() {
				t.Errorf("previous ended %q at %v", p.Ended, p.End)
			}
			if p.Clean() != (tt.ended == probes.EndedStopped || tt.ended == probes.EndedClosed) {
				t.Errorf("previous ended %q: Clean() is %v", p.Ended, p.Clean())
			}
			if tt.name != "killed at once" {
				var moves []string
				for _, tr := range p.Transitions {
					moves = append(moves, tr.Subject+" "+tr.From+">"+tr.To)
				}
				if got := strings.Join(moves, ", "); !strings.HasPrefix(got, "phase cold>warming, phase warming>ready") {
					t.Errorf("previous transitions: %s; want its moves", got)
				}
			}
			past := lc2.Past()
			if past.Restarts != 1 || past.Ended != tt.ended || past.Cause != tt.cause || !past.End.Equal(p.End) {
				t.Errorf("the lifecycle's past: %+v; want 1 restart, ended %q because %q", past, tt.ended, tt.cause)
			}
			if pub := p.For(probes.Anonymous); pub.Cause != "" || strings.Contains(fmt.Sprint(pub), secret) {
				t.Errorf("previous for anonymous readers: %+v", pub)
			}
			for _, tr := range p.Transitions {
				if strings.Contains(tr.Reason, secret) {
					t.Errorf("a transition holds the secret: %+v", tr)
				}
			}
		})
	}
}

// A crash loop: every instance counts the ones before it, and lists the
// newest MaxPrevious.
func TestRestartsCounted(t *testing.T) {
	dir := t.TempDir()
	const runs = history.MaxPrevious + 4
	for i := range runs {
		lc, h := instance(t, dir, history.NoSync())
		if h.Restarts() != i || lc.Past().Restarts != i {
			t.Fatalf("instance %d: Restarts %d, Past %+v", i, h.Restarts(), lc.Past())
		}
		must(t, lc.MarkBroken(fmt.Errorf("crash %d", i)))
		h.Close()
	}
	_, h := instance(t, dir)
	defer h.Close()
	prev := h.Previous()
	if h.Restarts() != runs || len(prev) != history.MaxPrevious {
		t.Fatalf("%d restarts, %d listed; want %d and %d", h.Restarts(), len(prev), runs, history.MaxPrevious)
	}
	for i, p := range prev {
		want := runs - history.MaxPrevious + i
		if p.Number != want || p.Cause != fmt.Sprintf("crash %d", want) {
			t.Errorf("listed %d: number %d, cause %q; want %d", i, p.Number, p.Cause, want)
		}
	}
}

// copyState copies the state directory's files from src to dst, the
// events segment 0 replaced by seg.
func copyState(t *testing.T, src, dst string, seg []byte) {
	t.Helper()
	for _, name := range []string{"history-events.1", "history-rollups.0", "history-rollups.1"} {
		b, err := os.ReadFile(filepath.Join(src, name))
		must(t, err)
		must(t, os.WriteFile(filepath.Join(dst, name), b, 0o600))
	}
	must(t, os.WriteFile(filepath.Join(dst, "history-events.0"), seg, 0o600))
}

// A segment cut at any byte is read up to its last whole record: cut in
// its last record (the end), the instance is there with everything else
// it wrote, and ended without a word; and the next instance appends after
// the cut, not after the torn bytes.
func TestTornTail(t *testing.T) {
	src := t.TempDir()
	lc, h := instance(t, src, history.NoSync())
	testutil.Ready(t, lc)
	if _, err := lc.Cordon("disk swap", time.Hour); err != nil {
		t.Fatal(err)
	}
	must(t, lc.Drain("signal terminated"))
	must(t, lc.Stop())
	h.Close()
	seg, err := os.ReadFile(filepath.Join(src, "history-events.0"))
	must(t, err)
	ends := history.RecordEnds(seg)
	if len(ends) < 4 || ends[len(ends)-1] != len(seg) {
		t.Fatalf("segment of %d bytes: records end at %v", len(seg), ends)
	}
	_, whole, err := history.ReadState(src)
	must(t, err)
	want := whole[0].Transitions
	last := ends[len(ends)-2] // the end record's first byte
	dst := t.TempDir()
	for cut := range len(seg) {
		copyState(t, src, dst, seg[:cut])
		n, prev, err := history.ReadState(dst)
		must(t, err)
		if cut < ends[1] { // not even the start: nothing
			if n != 0 || len(prev) != 0 {
				t.Errorf("cut at %d, before the start: %d restarts, %v", cut, n, prev)
			}
			continue
		}
		if n != 1 || len(prev) != 1 || prev[0].Ended != probes.EndedSilent {
			t.Fatalf("cut at %d: %d restarts, %+v; want the instance, ended without a word", cut, n, prev)
		}
		if cut < last {
			continue
		}
		if got := prev[0].Transitions; fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("cut at %d, in the end record: transitions\n%v\nwant\n%v", cut, got, want)
		}
		// The next instance cuts the torn bytes off before it appends.
		_, next := instance(t, dst, history.NoSync())
		next.Close()
		n, prev, err = history.ReadState(dst)
		must(t, err)
		if n != 2 || len(prev) != 2 || prev[0].Ended != probes.EndedSilent || prev[1].Ended != probes.EndedClosed {
			t.Errorf("cut at %d, then another instance: %d restarts, %+v", cut, n, prev)
		}
	}
}

// A week of executions and transitions, recorded and written as the
// writer does, leaves the files within their bound, and the next instance
// finds the newest of it: the last transitions, and the quarter hours of
// the last hours.
func TestStateBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("a simulated week")
	}
	dir := t.TempDir()
	clock := testutil.NewClock(t0)
	lc := probes.NewLifecycle(probes.WithClock(clock), probes.Identify(shop))
	h, err := history.New(lc, history.StateDir(dir), history.NoSync())
	must(t, err)
	checks := make([]string, 20)
	for i := range checks {
		checks[i] = fmt.Sprintf("check-%02d", i)
	}
	var n int
	for end := t0.Add(7 * 24 * time.Hour); clock.Now().Before(end); clock.Add(time.Minute) {
		now := clock.Now()
		for _, c := range checks {
			h.RecordAt(probes.Readiness, c, probes.Pass, time.Millisecond, now)
		}
		if now.Minute()%5 == 0 {
			n++
			h.AddTransition(history.Transition{At: now, Subject: "readiness/" + checks[n%len(checks)], From: "pass", To: "fail",
				Reason: fmt.Sprintf("transition %d: %s", n, strings.Repeat("x", 100))})
		}
		h.Flush()
	}
	h.Close()
	var total int64
	for _, name := range []string{"history-events.0", "history-events.1", "history-rollups.0", "history-rollups.1"} {
		fi, err := os.Stat(filepath.Join(dir, name))
		must(t, err)
		if fi.Size() > history.SegmentSize {
			t.Errorf("%s: %d bytes, over the %d of a segment", name, fi.Size(), history.SegmentSize)
		}
		total += fi.Size()
	}
	if total > history.MaxStateSize {
		t.Errorf("%d bytes in all, over MaxStateSize %d", total, history.MaxStateSize)
	}

	lc2 := probes.NewLifecycle(probes.WithClock(clock), probes.Identify(shop))
	h2, err := history.New(lc2, history.StateDir(dir), history.NoSync())
	must(t, err)
	defer h2.Close()
	prev := h2.Previous()
	if len(prev) != 1 || len(prev[0].Transitions) == 0 || len(prev[0].Transitions) > history.MaxPreviousTransitions {
		t.Fatalf("after a week: %+v", prev)
	}
	tr := prev[0].Transitions
	if got := tr[len(tr)-1].Reason; !strings.HasPrefix(got, fmt.Sprintf("transition %d:", n)) {
		t.Errorf("the newest transition kept: %q, want transition %d", got, n)
	}
	for _, c := range checks {
		sr, ok := h2.Check(probes.Readiness, c)
		if !ok {
			t.Fatalf("%s: no rollups taken back", c)
		}
		// The last four hours: every quarter hour whole (15 executions).
		for _, q := range sr.Quarters[history.QuarterBuckets-16 : history.QuarterBuckets-1] {
			if q.Pass != 15 {
				t.Fatalf("%s: quarter hour %s taken back with %d passes, want 15", c, q.Start, q.Pass)
			}
		}
	}
}

// childEnv names the state directory of the instance TestKilled runs as a
// process of its own.
const childEnv = "HISTORY_TEST_CHILD_DIR"

// An instance killed outright (SIGKILL) is listed by the next, as having
// ended without a word, with what its writer wrote on its own: nobody
// flushed or closed anything.
func TestKilled(t *testing.T) {
	if dir := os.Getenv(childEnv); dir != "" {
		killedChild(dir)
		return
	}
	if testing.Short() {
		t.Skip("runs the test binary")
	}
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestKilled$")
	cmd.Env = append(os.Environ(), childEnv+"="+dir)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	must(t, err)
	must(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || line != "cordoned\n" {
		t.Fatalf("the child said %q (%v)", line, err)
	}
	testutil.Eventually(t, "the child's writer wrote its cordon", func() bool {
		_, prev, err := history.ReadState(dir)
		if err != nil || len(prev) != 1 {
			return false
		}
		for _, tr := range prev[0].Transitions {
			if tr.Subject == "cordon" && tr.Reason == "disk swap" {
				return true
			}
		}
		return false
	})
	must(t, cmd.Process.Kill())
	_ = cmd.Wait()

	lc, h := instance(t, dir)
	defer h.Close()
	prev := h.Previous()
	if h.Restarts() != 1 || len(prev) != 1 || prev[0].Ended != probes.EndedSilent || !prev[0].End.IsZero() || prev[0].Cause != "" {
		t.Fatalf("after a SIGKILL: %d restarts, %+v; want one, ended without a word", h.Restarts(), prev)
	}
	if past := lc.Past(); past.Restarts != 1 || past.Ended != probes.EndedSilent || past.Clean() {
		t.Errorf("the lifecycle's past: %+v", past)
	}
	if prev[0].Seen.Before(prev[0].Start) {
		t.Errorf("last heard of at %v, before it began at %v", prev[0].Seen, prev[0].Start)
	}
}

// killedChild is the instance TestKilled kills: it runs its lifecycle,
// cordons itself, says so, and waits to be killed.
func killedChild(dir string) {
	lc := probes.NewLifecycle(probes.Identify(shop))
	if _, err := history.New(lc, history.StateDir(dir)); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	go func() { _ = lc.Run(context.Background()) }()
	_ = lc.Start()
	_ = lc.MarkReady()
	if _, err := lc.Cordon("disk swap", time.Hour); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	fmt.Println("cordoned")
	select {}
}

// Recording from many goroutines while the writer writes: no race, and
// the newest transition reaches the files.
func TestStateConcurrent(t *testing.T) {
	dir := t.TempDir()
	lc, h := instance(t, dir, history.NoSync())
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan error, 1)
	go func() { ran <- lc.Run(ctx) }()
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 2000 {
				now := time.Now()
				h.RecordAt(probes.Readiness, fmt.Sprintf("check-%d", i%10), probes.Pass, time.Millisecond, now)
				if i%10 == 0 {
					h.AddTransition(history.Transition{At: now, Subject: fmt.Sprintf("readiness/check-%d", g), From: "pass", To: "fail"})
				}
			}
		})
	}
	wg.Go(func() {
		for range 50 {
			_, _ = lc.Cordon("look", time.Hour)
			_, _ = lc.Uncordon()
		}
	})
	wg.Wait()
	h.AddTransition(history.Transition{At: time.Now(), Subject: "phase", From: "ready", To: "ready", Reason: "the last"})
	cancel()
	<-ran
	h.Close()
	if err := h.StateErr(); err != nil {
		t.Errorf("StateErr: %v", err)
	}
	_, prev, err := history.ReadState(dir)
	must(t, err)
	if len(prev) != 1 || len(prev[0].Transitions) == 0 || prev[0].Transitions[len(prev[0].Transitions)-1].Reason != "the last" {
		t.Fatalf("after concurrent recording: %+v", prev)
	}
}

// The quarter hours of the instances before this one count in its own:
// the same quarter hour, before and after a restart, is one bucket.
func TestRollupsTakenBack(t *testing.T) {
	dir := t.TempDir()
	clock := testutil.NewClock(t0)
	run := func(fails int) *history.History {
		lc := probes.NewLifecycle(probes.WithClock(clock))
		h, err := history.New(lc, history.StateDir(dir), history.NoSync())
		must(t, err)
		for range 3 {
			h.RecordAt(probes.Readiness, "db", probes.Pass, time.Millisecond, clock.Now())
		}
		for range fails {
			h.RecordAt(probes.Readiness, "db", probes.Fail, time.Second, clock.Now())
		}
		return h
	}
	run(1).Close()
	clock.Add(time.Minute) // the same quarter hour
	h := run(2)
	defer h.Close()
	sr, _ := h.Check(probes.Readiness, "db")
	q := sr.Quarters[len(sr.Quarters)-1]
	if q.Pass != 6 || q.Fail != 3 || q.Max != time.Second {
		t.Errorf("this quarter hour, across a restart: %d pass, %d fail, max %s; want 6, 3 and 1s", q.Pass, q.Fail, q.Max)
	}
	if m := sr.Minutes[len(sr.Minutes)-1]; m.Pass != 3 || m.Fail != 2 {
		t.Errorf("this minute: %d pass, %d fail; want this instance's own, 3 and 2", m.Pass, m.Fail)
	}
	clock.Add(25 * time.Hour)
	sr, _ = h.Check(probes.Readiness, "db")
	var n uint32
	for _, q := range sr.Quarters {
		n += q.Executions()
	}
	if n != 0 {
		t.Errorf("a day later: %d executions in the quarter hours, want none", n)
	}
}

// /history and the page list the instances before this one: to anyone,
// when each ran and how it ended; the cause and the reasons of its
// transitions to authorised readers only, masked.
func TestPreviousShown(t *testing.T) {
	dir := t.TempDir()
	lc, h := instance(t, dir, history.NoSync())
	testutil.Ready(t, lc)
	if _, err := lc.Cordon("disk swap on node-7", time.Hour); err != nil {
		t.Fatal(err)
	}
	must(t, lc.MarkBroken(errors.New("dial postgres://app:s3cret@db: connection refused")))
	h.Close()

	lc2 := probes.NewLifecycle(probes.Identify(shop), probes.Readers(isOp))
	h2, err := history.New(lc2, history.StateDir(dir), history.NoSync())
	must(t, err)
	defer h2.Close()
	page, err := history.NewPage(lc2, h2)
	must(t, err)
	defer page.Close()
	read := func(handler http.Handler, op bool) string {
		req := httptest.NewRequest(http.MethodGet, "/", nil)
		req.Header.Set("Accept", "text/html")
		if op {
			req.Header.Set("X-Op", "yes")
		}
		rec := httptest.NewRecorder()
		handler.ServeHTTP(rec, req)
		return rec.Body.String()
	}
	type previous struct {
		Number            int
		Release, Instance string
		Start, End, Ended string
		Clean             bool
		Cause             string
		Transitions       []struct{ Subject, Reason string }
	}
	for _, op := range []bool{false, true} {
		body := read(h2.Handler(), op)
		var doc struct {
			Restarts *int
			Previous []previous
		}
		must(t, json.Unmarshal([]byte(body), &doc))
		if doc.Restarts == nil || *doc.Restarts != 1 || len(doc.Previous) != 1 {
			t.Fatalf("op %v: /history: %s", op, body)
		}
		p := doc.Previous[0]
		if p.Number != 0 || p.Release != shop.Release || p.Instance != shop.Instance || p.Start == "" || p.End == "" ||
			p.Ended != probes.EndedBroken || p.Clean {
			t.Errorf("op %v: previous %+v", op, p)
		}
		var cordon string
		for _, tr := range p.Transitions {
			if tr.Subject == "cordon" {
				cordon = tr.Reason
			}
		}
		html := read(page, op)
		for _, want := range []string{`data-restarts="1"`, `data-previous="0" data-ended="broken"`, "Previous instance", "broke",
			`data-previous-transition data-subject="cordon"`} {
			if !strings.Contains(html, want) {
				t.Errorf("op %v: the page lacks %s", op, want)
			}
		}
		for _, s := range []string{body, html} {
			if strings.Contains(s, "s3cret") {
				t.Errorf("op %v: a secret shows: %s", op, s)
			}
			if got := strings.Contains(s, "connection refused"); got != op {
				t.Errorf("op %v: the cause shows: %v", op, got)
			}
			if got := strings.Contains(s, "disk swap"); got != op {
				t.Errorf("op %v: the cordon's reason shows: %v", op, got)
			}
		}
		if want := map[bool]string{false: "", true: "disk swap on node-7"}[op]; cordon != want || !op && p.Cause != "" {
			t.Errorf("op %v: cause %q, cordon's reason %q", op, p.Cause, cordon)
		}
	}

	// Without a state directory, /history says nothing of restarts.
	plain, err := history.New(probes.NewLifecycle())
	must(t, err)
	defer plain.Close()
	if body := read(plain.Handler(), true); strings.Contains(body, "restarts") || strings.Contains(body, "previous") {
		t.Errorf("/history without a state directory: %s", body)
	}
}
