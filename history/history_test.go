package history_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/probekit/probes"
	"github.com/probekit/probes/history"
	"github.com/probekit/probes/internal/testenv/testutil"
	"github.com/probekit/probes/readiness"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var t0 = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)

// A service's life lands in the ring in order: phase moves, the gate's
// verdict, the check's, with the reason masked.
func TestTransitions(t *testing.T) {
	lc := probes.NewLifecycle()
	ready, err := readiness.New(lc)
	if err != nil {
		t.Fatal(err)
	}
	var down atomic.Bool
	if err := ready.Add("db", probes.CheckFunc(func(context.Context) error {
		if down.Load() {
			return errors.New("dial postgres://app:s3cret@db: refused")
		}
		return nil
	}), probes.Every(time.Millisecond), probes.Local()); err != nil {
		t.Fatal(err)
	}
	h, err := history.New(lc)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	testutil.Ready(t, lc)
	testutil.Background(t, lc.Run)
	testutil.Eventually(t, "db passing", func() bool { return ready.Report().Status() == probes.Pass })
	down.Store(true)
	testutil.Eventually(t, "readiness failing", func() bool { return ready.Report().Status() == probes.Fail })
	down.Store(false)
	testutil.Eventually(t, "readiness passing again", func() bool { return ready.Report().Status() == probes.Pass })

	var seen []string
	for _, tr := range h.Transitions() {
		seen = append(seen, fmt.Sprintf("%s %s>%s", tr.Subject, tr.From, tr.To))
		if strings.Contains(tr.Reason, "s3cret") {
			t.Errorf("transition %+v holds the password", tr)
		}
	}
	got := strings.Join(seen, ", ")
	for _, want := range []string{
		"phase cold>warming, phase warming>ready",
		"readiness/db none>pass",
		"readiness/db pass>fail",
		"readiness pass>fail",
		"readiness/db fail>pass",
		"readiness fail>pass",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("transitions %q lack %q", got, want)
		}
	}
	if strings.Index(got, "readiness pass>fail") > strings.LastIndex(got, "readiness fail>pass") {
		t.Errorf("transitions out of order: %s", got)
	}
	if h.Since("readiness/db").IsZero() || h.Since("phase").IsZero() {
		t.Errorf("since: db %v, phase %v; want both set", h.Since("readiness/db"), h.Since("phase"))
	}
}

// The ring keeps the last n transitions, oldest first.
func TestRingBounded(t *testing.T) {
	lc := probes.NewLifecycle()
	h, err := history.New(lc, history.Transitions(3))
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	moves := []func() error{lc.Start, lc.MarkReady, func() error { return lc.Rewarm("a") }, lc.MarkReady,
		func() error { return lc.Rewarm("b") }, lc.MarkReady}
	for _, m := range moves {
		if err := m(); err != nil {
			t.Fatal(err)
		}
	}
	var got []string
	for _, tr := range h.Transitions() {
		got = append(got, tr.From+">"+tr.To)
	}
	if want := "warming>ready ready>warming warming>ready"; strings.Join(got, " ") != want {
		t.Errorf("a ring of 3 after 6 moves: got %v, want %s", got, want)
	}
	if tr := h.Transitions(); len(tr) == 3 && tr[1].Reason != "b" {
		t.Errorf("the middle one's reason: got %q, want the second Rewarm's", tr[1].Reason)
	}
	if _, err := history.New(lc, history.Transitions(0)); err == nil || !strings.Contains(err.Error(), "Transitions(0)") {
		t.Errorf("Transitions(0): got %v, want an error naming it", err)
	}
	if _, err := history.New(nil); err == nil {
		t.Error("New(nil) was accepted")
	}
}

// A p99 is never above the longest execution, though the latency bucket
// that holds it reaches higher (102.4 ms for 65.8 ms).
func TestP99NotAboveMax(t *testing.T) {
	for _, tt := range []struct {
		name string
		took []time.Duration
	}{
		{"one", []time.Duration{65800 * time.Microsecond}},
		{"many alike", []time.Duration{65800 * time.Microsecond, 65 * time.Millisecond, 60 * time.Millisecond}},
		{"tiny", []time.Duration{time.Microsecond}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			clock, h := newClocked(t)
			for _, d := range tt.took {
				h.RecordAt(probes.Readiness, "db", probes.Pass, d, clock.Now())
			}
			sr, _ := h.Check(probes.Readiness, "db")
			for _, bs := range [][]history.Bucket{sr.Minutes, sr.Quarters} {
				b := bs[len(bs)-1]
				if b.P99 > b.Max || b.Max != slices.Max(tt.took) {
					t.Errorf("p99 %s, max %s; want the max %s and the p99 at most that", b.P99, b.Max, slices.Max(tt.took))
				}
			}
		})
	}
}

func newClocked(t testing.TB) (*testutil.Clock, *history.History) {
	t.Helper()
	clock := testutil.NewClock(t0)
	lc := probes.NewLifecycle(probes.WithClock(clock))
	h, err := history.New(lc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Close)
	return clock, h
}

// Executions are counted by minute and by quarter hour, with a p99 bound
// and the longest; a bucket that falls out of its window is gone.
func TestRollups(t *testing.T) {
	clock, h := newClocked(t)
	now := clock.Now()
	for i := range 100 {
		d := time.Millisecond
		if i == 99 {
			d = time.Second // the one slow execution
		}
		s := probes.Pass
		switch {
		case i%10 == 0:
			s = probes.Fail
		case i%10 == 1:
			s = probes.Warn
		}
		h.RecordAt(probes.Readiness, "db", s, d, now)
	}
	sr, ok := h.Check(probes.Readiness, "db")
	if !ok {
		t.Fatal("no series for the check")
	}
	if len(sr.Minutes) != history.MinuteBuckets || len(sr.Quarters) != history.QuarterBuckets {
		t.Fatalf("buckets: %d minutes, %d quarters; want %d and %d", len(sr.Minutes), len(sr.Quarters), history.MinuteBuckets, history.QuarterBuckets)
	}
	last := sr.Minutes[len(sr.Minutes)-1]
	if last.Pass != 80 || last.Warn != 10 || last.Fail != 10 {
		t.Errorf("this minute: %d pass, %d warn, %d fail; want 80, 10, 10", last.Pass, last.Warn, last.Fail)
	}
	if last.Max != time.Second || last.P99 < time.Millisecond || last.P99 > 2*time.Millisecond {
		t.Errorf("this minute: max %s, p99 %s; want 1s and about 1ms (99 of 100 took 1ms)", last.Max, last.P99)
	}
	if q := sr.Quarters[len(sr.Quarters)-1]; q.Executions() != 100 {
		t.Errorf("this quarter hour: %d executions, want 100", q.Executions())
	}
	clock.Add(61 * time.Minute)
	sr, _ = h.Check(probes.Readiness, "db")
	var minutes, quarters uint32
	for _, b := range sr.Minutes {
		minutes += b.Executions()
	}
	for _, b := range sr.Quarters {
		quarters += b.Executions()
	}
	if minutes != 0 || quarters != 100 {
		t.Errorf("an hour later: %d in the minutes, %d in the quarters; want 0 and 100", minutes, quarters)
	}
	if _, ok := h.Check(probes.Readiness, "nope"); ok {
		t.Error("a series for a check never recorded")
	}
}

// A day of executions at 1 s intervals over 100 checks leaves the heap
// where an hour left it: once every check has its series, recording
// allocates nothing, so nothing can grow with uptime. Counting allocations
// is exact on any machine, where comparing heap sizes depends on what else
// the process is doing.
func TestMemoryBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("a simulated day")
	}
	clock, h := newClocked(t)
	names := make([]string, 100)
	for i := range names {
		names[i] = fmt.Sprintf("check-%d", i)
	}
	at := clock.Now()
	run := func(d time.Duration) {
		for end := at.Add(d); at.Before(end); at = at.Add(time.Second) {
			for _, n := range names {
				h.RecordAt(probes.Readiness, n, probes.Pass, time.Millisecond, at)
			}
		}
	}
	run(time.Hour)
	// AllocsPerRun runs the function once more before it counts: an hour,
	// then the 23 that make the day.
	if n := testing.AllocsPerRun(1, func() { run(23 * time.Hour / 2) }); n != 0 {
		t.Errorf("recording the rest of the day allocated %v times, want 0: memory grows with uptime", n)
	}
}

func BenchmarkRecord(b *testing.B) {
	clock, h := newClocked(b)
	benchRecord(b, clock, h)
}

// BenchmarkRecordStateDir is BenchmarkRecord with the files on and their
// writer running: recording costs the same, since the writer reads the
// rollups on its own time.
func BenchmarkRecordStateDir(b *testing.B) {
	clock := testutil.NewClock(t0)
	lc := probes.NewLifecycle(probes.WithClock(clock))
	h, err := history.New(lc, history.StateDir(b.TempDir()))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(h.Close)
	testutil.Background(b, lc.Run)
	benchRecord(b, clock, h)
}

func benchRecord(b *testing.B, clock *testutil.Clock, h *history.History) {
	now := clock.Now()
	h.RecordAt(probes.Readiness, "db", probes.Pass, time.Millisecond, now)
	b.ReportAllocs()
	for b.Loop() {
		h.RecordAt(probes.Readiness, "db", probes.Pass, time.Millisecond, now)
	}
}

// BenchmarkTransition records a transition: in memory; with the files on
// (what recording costs: the writer runs apart); and with the files on
// and the writer's work counted too, amortised over the transitions it
// takes at once (encoding and writing, a flush every 64, without and with
// the sync that follows each flush).
func BenchmarkTransition(b *testing.B) {
	tr := history.Transition{At: t0, Subject: "readiness/postgres", From: "pass", To: "fail", Reason: "dial tcp 10.0.0.7:5432: connection refused"}
	for _, bb := range []struct {
		name  string
		dir   bool
		flush int  // transitions a flush takes; 0: the writer runs apart
		sync  bool // the flush syncs
	}{{"memory", false, 0, false}, {"statedir", true, 0, true}, {"statedir-written", true, 64, false}, {"statedir-synced", true, 64, true}} {
		b.Run(bb.name, func(b *testing.B) {
			lc := probes.NewLifecycle(probes.WithClock(testutil.NewClock(t0)))
			var opts []history.Option
			if bb.dir {
				opts = append(opts, history.StateDir(b.TempDir()))
				if !bb.sync {
					opts = append(opts, history.NoSync())
				}
			}
			h, err := history.New(lc, opts...)
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(h.Close)
			if bb.dir && bb.flush == 0 {
				testutil.Background(b, lc.Run)
			}
			b.ReportAllocs()
			n := 0
			for b.Loop() {
				h.AddTransition(tr)
				if n++; bb.flush > 0 && n%bb.flush == 0 {
					h.Flush()
				}
			}
		})
	}
}

// The JSON answer names subjects and statuses to everyone, and reasons
// only to authorised requests.
func TestHandler(t *testing.T) {
	lc := probes.NewLifecycle(probes.Readers(func(r *http.Request) bool { return r.Header.Get("X-Op") == "yes" }))
	ready, err := readiness.New(lc)
	if err != nil {
		t.Fatal(err)
	}
	if err := ready.Add("db", probes.CheckFunc(func(context.Context) error {
		return errors.New("dial postgres://app:s3cret@db: refused")
	}), probes.Every(time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	h, err := history.New(lc)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	testutil.Ready(t, lc)
	testutil.Background(t, lc.Run)
	testutil.Eventually(t, "db failing", func() bool {
		c, _ := ready.Report().Check("db")
		return c.Status == probes.Fail && !c.Time.IsZero()
	})
	handler := h.Handler()
	get := func(op string) string {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest(http.MethodGet, "/history", nil)
		req.Header.Set("X-Op", op)
		handler.ServeHTTP(rec, req)
		if rec.Code != 200 || rec.Header().Get("Content-Type") != "application/json" {
			t.Fatalf("GET: %d %s", rec.Code, rec.Header().Get("Content-Type"))
		}
		var doc struct {
			Phase       string
			Transitions []struct{ Subject, From, To, Reason string }
			Checks      map[string]struct{ Minutes []struct{ Fail uint32 } }
		}
		if err := json.Unmarshal(rec.Body.Bytes(), &doc); err != nil {
			t.Fatal(err)
		}
		if doc.Phase != "ready" || len(doc.Checks["readiness/db"].Minutes) != history.MinuteBuckets {
			t.Errorf("document: phase %q, %d minutes of readiness/db", doc.Phase, len(doc.Checks["readiness/db"].Minutes))
		}
		return rec.Body.String()
	}
	if body := get("no"); strings.Contains(body, "refused") || !strings.Contains(body, `"subject":"readiness/db"`) {
		t.Errorf("unauthorised: %s", body)
	}
	if body := get("yes"); !strings.Contains(body, "refused") || strings.Contains(body, "s3cret") {
		t.Errorf("authorised: want the masked reason: %s", body)
	}
	rec := httptest.NewRecorder()
	handler.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/history", nil))
	if rec.Code != http.StatusMethodNotAllowed {
		t.Errorf("POST: %d, want 405", rec.Code)
	}
}

// A clock before 1970 (a fake one at the zero time) records as any other.
func TestRecordBeforeTheEpoch(t *testing.T) {
	clock := testutil.NewClock(time.Time{})
	lc := probes.NewLifecycle(probes.WithClock(clock))
	h, err := history.New(lc)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	h.RecordAt(probes.Readiness, "db", probes.Pass, time.Millisecond, clock.Now())
	sr, _ := h.Check(probes.Readiness, "db")
	if b := sr.Minutes[len(sr.Minutes)-1]; b.Pass != 1 {
		t.Errorf("this minute before 1970: %d passes, want 1", b.Pass)
	}
}

// Cordon changes land in the ring under the subject "cordon", with the
// operator's reason, and how each ended.
func TestCordonTransitions(t *testing.T) {
	lc := probes.NewLifecycle()
	h, err := history.New(lc)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	testutil.Ready(t, lc)
	if _, err := lc.Cordon("disk swap", time.Hour); err != nil {
		t.Fatal(err)
	}
	if _, err := lc.Uncordon(); err != nil {
		t.Fatal(err)
	}
	if _, err := lc.Cordon("short look", time.Millisecond); err != nil {
		t.Fatal(err)
	}
	cordons := func() []string {
		var got []string
		for _, tr := range h.Transitions() {
			if tr.Subject == "cordon" {
				got = append(got, tr.From+">"+tr.To+" "+tr.Reason)
			}
		}
		return got
	}
	// The History hears the lifting through its watcher, after the
	// lifecycle's own listeners: wait for it there.
	testutil.Eventually(t, "the 1ms cordon's lifting recorded", func() bool { return len(cordons()) == 4 })
	got := cordons()
	want := []string{"none>cordoned disk swap", "cordoned>none uncordoned (was: disk swap)",
		"none>cordoned short look", "cordoned>none lifted (was: short look)"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("cordon transitions:\n got %q\nwant %q", got, want)
	}
}
