package probes

import (
	"errors"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/probekit/probes/internal/broadcast"
	"github.com/probekit/probes/redact"
)

// Phase is where the service is in its life. See Lifecycle for the transitions.
type Phase uint8

const (
	// Cold is the phase before warm-up has started.
	Cold Phase = iota
	// Warming means warm-up tasks (cache loading, migrations, ...) are running.
	Warming
	// Ready means warm-up is done and the service can serve.
	Ready
	// Draining means shutdown has begun: readiness fails so that balancers stop
	// routing, while requests are still served.
	Draining
	// Stopped means the server has closed.
	Stopped
	// Broken is terminal: the process cannot recover and must be restarted.
	Broken
)

var phaseNames = [...]string{"cold", "warming", "ready", "draining", "stopped", "broken"}

// String returns the lower-case name of the phase, such as "warming".
func (p Phase) String() string {
	if int(p) < len(phaseNames) {
		return phaseNames[p]
	}
	return fmt.Sprintf("Phase(%d)", uint8(p))
}

// from is a set of phases, as a bit mask.
func from(ps ...Phase) uint8 {
	var m uint8
	for _, p := range ps {
		m |= 1 << p
	}
	return m
}

// The phases each move may start from. Moves are checked by their source, not
// only their target: Start and Rewarm both lead to Warming, from different places.
var (
	fromStart     = from(Cold)
	fromMarkReady = from(Warming)
	fromRewarm    = from(Ready)
	fromDrain     = from(Cold, Warming, Ready)
	fromStop      = from(Draining)
	fromBroken    = from(Cold, Warming, Ready, Draining, Stopped)
)

// moves pairs every move's sources with its target.
var moves = [...]struct {
	from uint8
	to   Phase
}{{fromStart, Warming}, {fromMarkReady, Ready}, {fromRewarm, Warming}, {fromDrain, Draining}, {fromStop, Stopped}, {fromBroken, Broken}}

// CanMove reports whether a Lifecycle in phase from can move to phase to:
// the edges of the state machine drawn at Lifecycle. Surfaces that count
// transitions (package metrics) list them with it.
func CanMove(from, to Phase) bool {
	for _, m := range moves {
		if m.to == to && m.from&(1<<from) != 0 {
			return true
		}
	}
	return false
}

// ErrIllegalTransition is wrapped by the error a Lifecycle returns for a
// transition its current phase does not allow.
var ErrIllegalTransition = errors.New("illegal transition")

// Transition describes one change of phase, as listeners receive it.
type Transition struct {
	// From and To are the phases before and after the move.
	From, To Phase
	// Reason is a short human-readable cause, such as "warm-up done" or "SIGTERM".
	Reason string
	// At is when the transition happened, by the lifecycle's clock.
	At time.Time
	// Err is the cause of a move to Broken, nil otherwise.
	Err error
}

// Clock tells the time. Inject one with WithClock to make tests deterministic.
type Clock interface {
	Now() time.Time
}

type systemClock struct{}

func (systemClock) Now() time.Time { return time.Now() }

// LifecycleOption configures a Lifecycle.
type LifecycleOption func(*Lifecycle)

// WithClock makes the lifecycle, and every gate built on it, read time from c.
// The default is the system clock; nil keeps the default.
func WithClock(c Clock) LifecycleOption {
	return func(l *Lifecycle) {
		if c != nil {
			l.clock = c
		}
	}
}

// The lifecycle's state word: the phase in the low byte, startedBit above
// it, and from seqShift up the number of moves so far, so that one atomic
// load tells both where the lifecycle is and whether anything moved.
const (
	startedBit = 1 << 8
	seqShift   = 16
)

// Lifecycle is the state machine that says where the service is:
//
//	Cold ──Start──▶ Warming ──MarkReady──▶ Ready ──Rewarm──▶ Warming
//	Cold, Warming, Ready ──Drain──▶ Draining ──Stop──▶ Stopped
//	any phase but Broken ──MarkBroken──▶ Broken (terminal)
//
// An illegal transition returns an error wrapping ErrIllegalTransition and
// changes nothing. Reading the phase is a single atomic load, and a move is
// visible to every reader (Phase, Version, the gates' reports) when it
// returns. Listeners added with Subscribe receive every transition in order,
// outside any lock, so a listener may read the lifecycle or even move it.
//
// A Lifecycle also owns the background work of everything built on it: the
// gates' checks and warm-up, and work added with Go. Run runs it all.
//
// A Lifecycle is safe for concurrent use. Create one with NewLifecycle.
type Lifecycle struct {
	state atomic.Uint64 // see seqShift
	clock Clock
	since atomic.Int64         // Unix ns of the last move; 0 before the first
	warm  atomic.Pointer[span] // the last warm-up; nil before any

	listeners broadcast.List[func(Transition)]
	cordoners broadcast.List[func(CordonChange)]
	watchers  broadcast.List[func(Change)] // see Watch
	cordon    atomic.Pointer[Cordon]       // nil: not cordoned

	mu         sync.Mutex
	queue      []event
	delivering bool
	lift       *time.Timer // the present cordon's time limit

	readers  func(*http.Request) bool // the read policy; see Readers
	identity Identity                 // see Identify
	past     atomic.Pointer[Past]     // see SetPast

	work workGroup
}

// NewLifecycle returns a Lifecycle in phase Cold.
func NewLifecycle(opts ...LifecycleOption) *Lifecycle {
	l := &Lifecycle{clock: systemClock{}}
	for _, o := range opts {
		if o != nil {
			o(l)
		}
	}
	l.work.lc = l
	return l
}

// Phase returns the current phase.
func (l *Lifecycle) Phase() Phase { return Phase(l.state.Load() & 0xff) }

// Since returns when the lifecycle last moved, by its clock: the start of
// the present phase. It is zero while the lifecycle has not moved.
func (l *Lifecycle) Since() time.Time {
	if ns := l.since.Load(); ns != 0 {
		return time.Unix(0, ns)
	}
	return time.Time{}
}

// span is a stretch of the lifecycle's time; ended is zero while it lasts.
type span struct{ began, ended time.Time }

// Warmup returns when the last warm-up began, and when it ended: entering
// Ready, or a drain or Broken that cut it short; ended is zero while it
// goes on, and both are zero before the first. A Rewarm starts a new one.
func (l *Lifecycle) Warmup() (began, ended time.Time) {
	if w := l.warm.Load(); w != nil {
		return w.began, w.ended
	}
	return time.Time{}, time.Time{}
}

// WarmupLength is how long the last warm-up lasted, or has lasted so far
// by the lifecycle's clock; 0 before the first.
func (l *Lifecycle) WarmupLength() time.Duration {
	began, ended := l.Warmup()
	if began.IsZero() {
		return 0
	}
	if ended.IsZero() {
		ended = l.clock.Now()
	}
	return max(ended.Sub(began), 0)
}

// Started reports whether the lifecycle has reached Ready at least once. The
// startup gate latches on it: after a Rewarm it stays true.
func (l *Lifecycle) Started() bool { return l.state.Load()&startedBit != 0 }

// Version counts the transitions, cordon changes and gates built so far. Renderers
// compare it with the version they rendered to know whether anything that
// changes a verdict has happened since.
func (l *Lifecycle) Version() uint64 { return l.state.Load() >> seqShift }

// Clock returns the clock the lifecycle and its gates use.
func (l *Lifecycle) Clock() Clock { return l.clock }

// Start moves Cold to Warming.
func (l *Lifecycle) Start() error { return l.move(fromStart, Warming, "warm-up started", nil) }

// MarkReady moves Warming to Ready: warm-up is done.
func (l *Lifecycle) MarkReady() error { return l.move(fromMarkReady, Ready, "warm-up done", nil) }

// Rewarm moves Ready back to Warming, for example while a cache reloads.
// Readiness fails until MarkReady, which the caller owes; startup stays
// passed. startup.Gate.Rewarm does both and re-runs the warm-up tasks.
func (l *Lifecycle) Rewarm(reason string) error { return l.move(fromRewarm, Warming, reason, nil) }

// Drain moves Cold, Warming or Ready to Draining: shutdown has begun and
// readiness fails at once.
func (l *Lifecycle) Drain(reason string) error { return l.move(fromDrain, Draining, reason, nil) }

// Stop moves Draining to Stopped: the server has closed.
func (l *Lifecycle) Stop() error { return l.move(fromStop, Stopped, "server closed", nil) }

// MarkBroken moves any phase but Broken itself to Broken, which is terminal:
// every gate fails so that the platform restarts the process. err says why.
func (l *Lifecycle) MarkBroken(err error) error {
	reason := "broken"
	if err != nil {
		err = redact.Error(err) // listeners and logs see the masked text
		reason = err.Error()
	}
	return l.move(fromBroken, Broken, reason, err)
}

// Subscribe adds fn to the listeners and returns a function that removes it.
// fn receives every later transition, in order, outside the lifecycle's lock,
// and may itself move the lifecycle. It runs on the goroutine that made the
// transition, so it should be quick; when two goroutines move the lifecycle
// at once, the second move is delivered by the first goroutine, right after
// the first move's listeners. Readers never depend on delivery: a move is
// visible through Phase and Version as soon as it returns.
func (l *Lifecycle) Subscribe(fn func(Transition)) (cancel func()) {
	return l.listeners.Add(fn)
}

func (l *Lifecycle) move(allowed uint8, to Phase, reason string, cause error) error {
	l.mu.Lock()
	s := l.state.Load()
	was := Phase(s & 0xff)
	if allowed&(1<<was) == 0 {
		l.mu.Unlock()
		return fmt.Errorf("probes: %w from %s to %s", ErrIllegalTransition, was, to)
	}
	next := s&^0xff + 1<<seqShift | uint64(to)
	if to == Ready {
		next |= startedBit
	}
	at := l.clock.Now()
	l.since.Store(at.UnixNano())
	l.state.Store(next)
	switch {
	case to == Warming:
		l.warm.Store(&span{began: at})
	case was == Warming:
		l.warm.Store(&span{began: l.warm.Load().began, ended: at})
	}
	if (to == Stopped || to == Broken) && l.lift != nil {
		// The service is over: its cordon stays as it was, and its time
		// limit has nobody left to tell.
		l.lift.Stop()
		l.lift = nil
	}
	l.enqueue(event{move: Transition{From: was, To: to, Reason: reason, At: at, Err: cause}})
	return nil
}

// event is one thing listeners hear of: a move, or a cordon change.
type event struct {
	move     Transition
	change   CordonChange
	isCordon bool
}

// enqueue is called with l.mu held and returns with it released. It queues
// e and delivers the queue, unless another call is delivering: that one
// delivers e after its own, which keeps the order even when a listener
// moves the lifecycle.
func (l *Lifecycle) enqueue(e event) {
	l.queue = append(l.queue, e)
	if l.delivering {
		l.mu.Unlock()
		return
	}
	l.delivering = true
	defer func() {
		// Stay consistent even when a listener panics.
		l.delivering = false
		l.mu.Unlock()
	}()
	for len(l.queue) > 0 {
		e := l.queue[0]
		l.queue = l.queue[1:]
		var moves []func(Transition)
		var cordons []func(CordonChange)
		if e.isCordon {
			cordons = l.cordoners.Snapshot()
		} else {
			moves = l.listeners.Snapshot()
		}
		l.mu.Unlock()
		func() {
			defer l.mu.Lock()
			for _, fn := range moves {
				fn(e.move)
			}
			for _, fn := range cordons {
				fn(e.change)
			}
			if e.isCordon {
				l.tell(Change{Kind: CordonChanged, Cordon: e.change})
			} else {
				l.tell(Change{Kind: Moved, Move: e.move})
			}
		}()
	}
	l.queue = nil
}
