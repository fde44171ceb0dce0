// Package history keeps what happened to a service recently, and shows it
// to people.
//
// A History keeps, in memory fixed when it is built, a ring of the last
// transitions (phase moves, gate verdict changes, check verdict changes,
// cordons) and, per check, executions by status and latency over fixed
// time buckets (the last hour by minute, the last day by quarter hour),
// enough for a sparkline and a p99. Recording an execution takes constant
// time and allocates nothing. It follows the lifecycle and every gate built
// on it, before or after the History (probes.Lifecycle.Watch). Its Handler
// answers the whole of it as JSON, with reasons only for the readers the
// lifecycle's read policy authorises.
//
// With StateDir, a History keeps its transitions and rollups in bounded
// files too (256 KiB at most, written in the background), so that the
// next instance of the service on the same directory (a container
// restarted within its pod, the directory an emptyDir) lists the ones
// before it: when each began and ended, how (stopped, broken, or without
// a word when it was killed), why, and its last transitions. /history, the
// page and the deep view (probes.Lifecycle.Past) show them, causes to
// authorised readers only.
//
// A Page (NewPage) renders the lifecycle and a History for people: a
// self-contained HTML page of the phase, the warm-up, every gate and check
// (status, since when, a latency sparkline and a strip of the last hour)
// and the recent transitions, rendered on the server and kept live by a
// server-sent event stream. It is what a browser gets from the deep view
// when server.Browsers(page) is given to server.Register; curl, the
// kubelet and monitors keep their JSON and text. The page loads nothing
// from elsewhere: its style and script are inline, allowed by hash in a
// strict Content-Security-Policy, and it works with JavaScript off (it is
// simply not live then). Streams have a budget of their own (MaxStreams):
// each is taken off the listener's connection count, written with a
// deadline, and dropped when its reader stalls, so that open pages never
// cost a probe.
//
// The page's testing contract: the phase element carries
// data-phase="<phase>"; a cordon's element data-cordon="<reason>" (empty
// for anonymous readers); each check data-check="<gate>/<name>" and
// data-status="pass|warn|fail" (and data-flapping when it flaps); each
// warm-up task data-task="<name>" and data-progress="<0-100>"; each
// timeline entry data-transition with data-subject, data-from and data-to.
// With StateDir and restarts, the line under the phase data-restarts="<n>";
// each previous instance data-previous="<number>", data-ended (stopped,
// broken, closed, without a word) and data-clean when it stopped or was
// closed; each of the last one's transitions data-previous-transition with
// data-subject, data-from and data-to.
//
// The package uses only the standard library.
package history

import (
	"cmp"
	"errors"
	"fmt"
	"math/bits"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/probekit/probes"
	"github.com/probekit/probes/internal/opt"
	"github.com/probekit/probes/redact"
)

// Defaults and the shape of the rollups.
const (
	DefaultTransitions = 256
	MinuteBuckets      = 60 // the last hour, by minute
	QuarterBuckets     = 96 // the last day, by quarter hour
)

// latency buckets: upper bounds of 100 µs doubling, 18 of them (to ~13 s),
// and one for everything above.
const (
	latBase    = 100 * time.Microsecond
	latBuckets = 19
)

// Option configures a History. An invalid value makes New return an error
// that names the option.
type Option func(*config) error

type config struct {
	transitions int
	stateDir    string
	nosync      bool // tests: write the state directory without syncing it
}

// Transitions sets how many transitions the ring keeps. Default
// DefaultTransitions (256).
func Transitions(n int) Option {
	return func(c *config) error {
		if n < 1 {
			return fmt.Errorf("Transitions(%d): must be at least 1", n)
		}
		c.transitions = n
		return nil
	}
}

// Transition is one change: the phase, a gate's verdict or a check's.
type Transition struct {
	// At is when it happened, by the lifecycle's clock.
	At time.Time
	// Subject is "phase", a gate's name ("readiness") or a check's
	// ("readiness/postgres").
	Subject string
	// From and To are the phases or statuses before and after.
	From, To string
	// Reason says why, masked (package redact); empty for a gate.
	Reason string
	// By is who made a cordon's change (probes.Author.String): who set
	// it, or who lifted it; empty when not known, and for other subjects.
	By string
}

// For returns t as audience a may read it: anonymous readers get no
// reason and no author, as probes.Report.For withholds a check's reason
// and a cordon's.
func (t Transition) For(a probes.Audience) Transition {
	if a != probes.Authorized {
		t.Reason, t.By = "", ""
	}
	return t
}

// Bucket is what one time bucket saw of a check's executions.
type Bucket struct {
	// Start is when the bucket began.
	Start time.Time
	// Pass, Warn and Fail count the executions by their own outcome.
	Pass, Warn, Fail uint32
	// P99 is an upper bound of the 99th percentile of their durations
	// (within a factor of two, and never above Max); Max is the longest.
	// Zero without executions.
	P99, Max time.Duration
}

// Executions returns how many executions the bucket saw.
func (b Bucket) Executions() uint32 { return b.Pass + b.Warn + b.Fail }

// History is a bounded record of one lifecycle. Create one with New.
type History struct {
	lc     *probes.Lifecycle
	cancel func()

	mu     sync.Mutex
	gates  map[probes.Kind]*gateState // what each gate's last look saw
	ring   []Transition
	next   int // where the next transition goes
	filled bool
	since  map[string]time.Time // subject -> last change

	series atomic.Pointer[map[key]*series] // copied on write
	added  atomic.Uint64                   // transitions recorded so far: the page renders again when it moves
	addMu  sync.Mutex

	// With a state directory (StateDir): its files, and what the
	// instances before this one left there.
	files    *files
	previous []Instance
	restored map[key]*[QuarterBuckets]slot // their quarter hours, by check
}

type gateState struct {
	status probes.Status
	known  bool
	checks map[string]probes.Status
}

// New returns a History of lc and its gates. It fails when lc is nil, or
// with an error naming the option when an option is invalid. With
// StateDir, it reads the instances before this one from the directory,
// tells lc of them (probes.Lifecycle.SetPast), and hands the writing of
// the files to lc (probes.Lifecycle.Go): it fails too when the directory
// cannot be used, or when lc's Run has already returned.
func New(lc *probes.Lifecycle, opts ...Option) (*History, error) {
	if lc == nil {
		return nil, errors.New("history: New(nil): need a *probes.Lifecycle")
	}
	cfg := config{transitions: DefaultTransitions}
	if err := opt.Apply("history", &cfg, opts); err != nil {
		return nil, err
	}
	h := &History{lc: lc, ring: make([]Transition, cfg.transitions), since: map[string]time.Time{},
		gates: map[probes.Kind]*gateState{}}
	h.series.Store(&map[key]*series{})
	if cfg.stateDir != "" {
		f, r, err := openState(h, &cfg)
		if err != nil {
			return nil, err
		}
		h.files, h.previous, h.restored = f, f.previous, r.restored(f.start)
	}
	h.cancel = lc.Watch(h.changed)
	if h.files != nil {
		err := lc.Go("history files", h.files.run)
		if err != nil {
			err = fmt.Errorf("history: %w", err)
		} else {
			err = h.files.begin(cfg.stateDir)
		}
		if err != nil {
			h.cancel()
			h.files.abandon() // the writer, should Run start it, returns at once
			return nil, err
		}
		lc.SetPast(h.files.past())
	}
	for _, g := range lc.Gates() {
		h.observe(g, false)
	}
	return h, nil
}

// Close stops following the lifecycle and its gates. With StateDir, it
// writes what is left and the instance's end, and closes the files: call
// it once the service has stopped (app.App.Run does).
func (h *History) Close() {
	h.cancel()
	if h.files != nil {
		h.files.close()
	}
}

// Previous returns the instances that ran before this one with the same
// state directory (StateDir), the newest MaxPrevious, oldest first; none
// without one. Their causes and transitions' reasons are for authorised
// readers (Instance.For).
func (h *History) Previous() []Instance { return slices.Clone(h.previous) }

// Restarts returns how many instances ran before this one with the same
// state directory: as many as the container's restarts within its pod
// when the directory is an emptyDir. 0 without StateDir.
func (h *History) Restarts() int {
	if h.files == nil {
		return 0
	}
	return int(min(h.files.number, maxNumber))
}

// StateErr returns why the last writing of the state directory failed;
// nil when it succeeded, and without StateDir.
func (h *History) StateErr() error {
	if h.files == nil {
		return nil
	}
	h.files.mu.Lock()
	defer h.files.mu.Unlock()
	return h.files.err
}

// changed records one change of the lifecycle or of any of its gates,
// those built after the History included.
func (h *History) changed(c probes.Change) {
	switch c.Kind {
	case probes.Moved:
		h.moved(c.Move)
	case probes.CordonChanged:
		h.cordoned(c.Cordon)
	case probes.VerdictChanged:
		if g := h.lc.Gate(c.Gate); g != nil {
			h.observe(g, true)
		}
	case probes.Executed:
		h.executed(c.Execution)
	}
}

func (h *History) moved(t probes.Transition) {
	h.mu.Lock()
	h.addLocked(Transition{At: t.At, Subject: "phase", From: t.From.String(), To: t.To.String(), Reason: redact.String(t.Reason)})
	h.mu.Unlock()
	if h.files != nil {
		h.files.moved(t)
	}
}

// cordoned records a cordon change under the subject "cordon", from and to
// "none" or "cordoned"; the reason is the operator's, or how it ended.
func (h *History) cordoned(c probes.CordonChange) {
	state := func(c probes.Cordon) string {
		if c.IsZero() {
			return "none"
		}
		return "cordoned"
	}
	reason := c.Cordon.Reason
	if c.Cordon.IsZero() {
		reason = string(c.Cause) + " (was: " + c.Was.Reason + ")"
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.addLocked(Transition{At: c.At, Subject: "cordon", From: state(c.Was), To: state(c.Cordon), Reason: redact.String(reason), By: c.By.String()})
}

// observe records the changes of g's verdict and its checks' since the
// last look; record false only takes the first look.
func (h *History) observe(g probes.Gate, record bool) {
	// The report is taken under h.mu: two goroutines that changed two
	// checks at once must not apply an older report after a newer one.
	// The gates never call out while they hold their locks, so this
	// order cannot deadlock.
	h.mu.Lock()
	defer h.mu.Unlock()
	st := h.gates[g.Kind()]
	if st == nil {
		st = &gateState{checks: map[string]probes.Status{}}
		h.gates[g.Kind()] = st
	}
	rep := g.Report()
	at := h.lc.Clock().Now()
	gate := g.Kind().String()
	if s := rep.Status(); !st.known || s != st.status {
		if record && st.known {
			h.addLocked(Transition{At: at, Subject: gate, From: st.status.String(), To: s.String()})
		} else {
			h.since[gate] = at
		}
		st.status, st.known = s, true
	}
	for i := range rep.Checks {
		c := &rep.Checks[i]
		if c.Time.IsZero() && c.Since.IsZero() {
			continue // no result yet
		}
		old, seen := st.checks[c.Name]
		if seen && old == c.Status {
			continue
		}
		st.checks[c.Name] = c.Status
		subject := probes.CheckName(g.Kind(), c.Name)
		reason := ""
		if c.Err != nil {
			reason = c.Err.Error() // masked by the runner
		}
		from := "none"
		if seen {
			from = old.String()
		}
		h.addLocked(Transition{At: cmp.Or(c.Since, at), Subject: subject, From: from, To: c.Status.String(), Reason: reason})
	}
}

// addLocked puts t in the ring; h.mu must be held.
func (h *History) addLocked(t Transition) {
	n := h.added.Add(1)
	if h.files != nil {
		h.files.added(n)
	}
	h.ring[h.next] = t
	h.next++
	if h.next == len(h.ring) {
		h.next, h.filled = 0, true
	}
	h.since[t.Subject] = t.At
}

// Transitions returns the transitions kept, oldest first.
func (h *History) Transitions() []Transition {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.filled {
		return append([]Transition(nil), h.ring[:h.next]...)
	}
	return append(append([]Transition(nil), h.ring[h.next:]...), h.ring[:h.next]...)
}

// Since returns when subject ("phase", "readiness", "readiness/postgres")
// last changed, as far as the History has seen; zero if it has not.
func (h *History) Since(subject string) time.Time {
	if subject == "phase" {
		return h.lc.Since()
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.since[subject]
}

// series is one check's rollups. Its buckets are reused in place: a bucket
// whose epoch is not the present one is reset before it counts.
type series struct {
	mu       sync.Mutex
	minutes  [MinuteBuckets]slot
	quarters [QuarterBuckets]slot
}

type slot struct {
	epoch  int64 // bucket number since the Unix epoch; the slot is empty when it is not the present one
	counts [3]uint32
	lat    [latBuckets]uint32
	max    time.Duration
}

// key names a check's series without building a string per execution.
type key struct {
	gate  probes.Kind
	check string
}

func (h *History) executed(e probes.Execution) {
	h.record(key{e.Gate, e.Check}, e.Status, e.Duration, h.lc.Clock().Now())
}

// record counts one execution at now. The check's series is made the first
// time it is seen; after that it is a map read, a lock and a few stores.
func (h *History) record(k key, s probes.Status, d time.Duration, now time.Time) {
	sr := (*h.series.Load())[k]
	if sr == nil {
		sr = h.add(k)
	}
	lat := latIndex(d)
	i := statusIndex(s)
	ns := now.UnixNano()
	minute, quarter := ns/int64(time.Minute), ns/int64(15*time.Minute)
	sr.mu.Lock()
	count(&sr.minutes[wrap(minute, MinuteBuckets)], minute, i, lat, d)
	count(&sr.quarters[wrap(quarter, QuarterBuckets)], quarter, i, lat, d)
	sr.mu.Unlock()
}

// wrap is e's slot in a ring of n, for times before 1970 too.
func wrap(e int64, n int) int { return int(((e % int64(n)) + int64(n)) % int64(n)) }

func count(sl *slot, epoch int64, status, lat int, d time.Duration) {
	if sl.epoch != epoch {
		*sl = slot{epoch: epoch}
	}
	sl.counts[status]++
	sl.lat[lat]++
	sl.max = max(sl.max, d)
}

func (h *History) add(k key) *series {
	h.addMu.Lock()
	defer h.addMu.Unlock()
	old := *h.series.Load()
	if sr := old[k]; sr != nil {
		return sr
	}
	next := make(map[key]*series, len(old)+1)
	for k, v := range old {
		next[k] = v
	}
	sr := &series{}
	next[k] = sr
	h.series.Store(&next)
	return sr
}

func statusIndex(s probes.Status) int {
	switch s {
	case probes.Pass:
		return 0
	case probes.Warn:
		return 1
	}
	return 2
}

// latIndex is the latency bucket of d: bucket k holds durations up to
// latBase<<k.
func latIndex(d time.Duration) int {
	if d <= latBase {
		return 0
	}
	k := bits.Len64(uint64((d - 1) / latBase))
	return min(k, latBuckets-1)
}

// Series is one check's rollups, oldest bucket first; buckets without
// executions are included, so that a strip shows the gaps.
type Series struct {
	// Minutes are the last MinuteBuckets minutes, the present one last.
	Minutes []Bucket
	// Quarters are the last QuarterBuckets quarter hours, the present one
	// last.
	Quarters []Bucket
}

// Check returns the rollups of the named check of gate, as of now. With
// StateDir, its quarter hours count the executions of the instances before
// this one too.
func (h *History) Check(gate probes.Kind, name string) (Series, bool) {
	k := key{gate, name}
	sr := (*h.series.Load())[k]
	past := h.restored[k]
	if sr == nil && past == nil {
		return Series{}, false
	}
	now := h.lc.Clock().Now().UnixNano()
	var minutes [MinuteBuckets]slot
	var quarters [QuarterBuckets]slot
	if sr != nil {
		sr.mu.Lock()
		minutes, quarters = sr.minutes, sr.quarters
		sr.mu.Unlock()
	}
	// A restored quarter hour of the present day shares its slot with no
	// other of the day: the live slot there is this quarter hour's, or
	// older than a day.
	present := now / int64(15*time.Minute)
	for i := 0; past != nil && i < len(past); i++ {
		if p := &past[i]; p.counts != [3]uint32{} && p.epoch <= present && p.epoch > present-QuarterBuckets {
			merge(&quarters[i], p)
		}
	}
	return Series{
		Minutes:  buckets(minutes[:], now/int64(time.Minute), time.Minute),
		Quarters: buckets(quarters[:], now/int64(15*time.Minute), 15*time.Minute),
	}, true
}

func buckets(slots []slot, present int64, width time.Duration) []Bucket {
	n := int64(len(slots))
	out := make([]Bucket, n)
	for i := range n {
		epoch := present - n + 1 + i
		b := Bucket{Start: time.Unix(0, epoch*int64(width))}
		if sl := &slots[wrap(epoch, int(n))]; sl.epoch == epoch {
			b.Pass, b.Warn, b.Fail = sl.counts[0], sl.counts[1], sl.counts[2]
			// The bucket's bound can be twice the truth: never above
			// the longest seen (a p99 of 102.4 ms over a max of 65.8 ms).
			b.P99, b.Max = min(p99(&sl.lat, b.Executions()), sl.max), sl.max
		}
		out[i] = b
	}
	return out
}

// p99 is the upper bound of the bucket that holds the 99th percentile.
func p99(lat *[latBuckets]uint32, total uint32) time.Duration {
	if total == 0 {
		return 0
	}
	want := total - total/100 // the count at or below the 99th percentile
	var seen uint32
	for k, c := range lat {
		if seen += c; seen >= want {
			return latBase << k
		}
	}
	return latBase << (latBuckets - 1)
}
