package probes

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/probekit/probes/internal/safe"
	"github.com/probekit/probes/redact"
)

// Gate is what every surface (HTTP, gRPC, systemd, metrics, logs) reads of a
// gate. *startup.Gate, *liveness.Gate and *readiness.Gate implement it.
type Gate interface {
	// Kind says which gate this is.
	Kind() Kind
	// Lifecycle is the lifecycle the gate is built on: its phase, cordon
	// and read policy (see Readers) are the gate's too.
	Lifecycle() *Lifecycle
	// Report returns the gate's state now.
	Report() Report
	// Version grows with every change of the gate's state, phase moves
	// included; a move or a result is counted before it is announced.
	Version() uint64
	// Revision grows with Version and with every other change of what
	// Report returns (an observed value, an error text, a result's time),
	// which is not announced. Renderers cache detailed answers by it.
	Revision() uint64
	// Subscribe registers fn to be called after every change, on the
	// goroutine that made it, and returns a function that removes it.
	Subscribe(fn func()) (cancel func())
}

// ErrLifecycleRan is returned when work is added to, or run on, a lifecycle
// whose Run has already returned.
var ErrLifecycleRan = errors.New("probes: the lifecycle's Run has returned")

// Attach makes g the lifecycle's gate of its kind, with run as its
// background work (nil for none). Gate packages call it from their
// constructors; services use Go for work of their own. It fails when the
// lifecycle already has a gate of that kind.
func (l *Lifecycle) Attach(g Gate, run func(ctx context.Context) error) error {
	k := g.Kind()
	l.work.mu.Lock()
	if l.work.state == 2 {
		// Refused before it is added: a gate whose checks would never
		// run must not be served, nor block a later attempt.
		l.work.mu.Unlock()
		return fmt.Errorf("%w: cannot add the %s gate", ErrLifecycleRan, k)
	}
	have := l.gatesNow()
	for _, other := range have {
		if other.Kind() == k {
			l.work.mu.Unlock()
			return fmt.Errorf("probes: the lifecycle has a %s gate already", k)
		}
	}
	if run != nil {
		// Under the same lock as the check above: Run cannot end in
		// between and leave a gate attached whose checks never run.
		if err := l.work.addLocked(k.String(), run); err != nil {
			l.work.mu.Unlock()
			return err
		}
	}
	next := append(append(make([]Gate, 0, len(have)+1), have...), g) // copied: readers hold the old one
	l.work.gates.Store(&next)
	l.work.mu.Unlock()
	l.watchGate(g)
	return nil
}

// Gate returns the lifecycle's gate of kind k, or nil if none was built.
// It is an atomic load and a scan of at most three gates: the probe
// routes' views (View) call it on every request.
func (l *Lifecycle) Gate(k Kind) Gate {
	for _, g := range l.gatesNow() {
		if g.Kind() == k {
			return g
		}
	}
	return nil
}

// Gates returns the gates built on the lifecycle, in the order they were
// built.
func (l *Lifecycle) Gates() []Gate { return append([]Gate(nil), l.gatesNow()...) }

// gatesNow returns the gates built so far, without copying: the slice is
// replaced, never changed, when a gate is added, so it must not be
// written to.
func (l *Lifecycle) gatesNow() []Gate {
	if p := l.work.gates.Load(); p != nil {
		return *p
	}
	return nil
}

// Go adds background work named name: Run starts it (at once if Run is
// already running) and cancels its context when Run ends. Work that returns
// an error before then, or panics, fails the service: the lifecycle goes
// Broken and Run returns the error. Work that returns nil is simply done.
// Go fails with ErrLifecycleRan after Run has returned.
func (l *Lifecycle) Go(name string, run func(ctx context.Context) error) error {
	if run == nil {
		return fmt.Errorf("probes: Go(%q, nil): need a function", name)
	}
	return l.work.add(name, run)
}

// Run runs the lifecycle's background work until ctx is done or a piece of
// it fails, then cancels the rest and waits for every piece to return. It
// returns ctx.Err() after ctx ended, the failure otherwise (after moving the
// lifecycle to Broken). Work that ignores its context keeps Run waiting;
// server.Server bounds that wait. Run may be called once.
func (l *Lifecycle) Run(ctx context.Context) error { return l.work.run(ctx) }

type workGroup struct {
	lc *Lifecycle

	mu      sync.Mutex
	gates   atomic.Pointer[[]Gate] // written under mu; see gatesNow
	pending []namedWork
	state   uint8 // 0 before Run, 1 while running, 2 after
	ctx     context.Context
	wg      sync.WaitGroup
	failed  chan error // capacity 1: the first failure
}

type namedWork struct {
	name string
	run  func(context.Context) error
}

func (w *workGroup) add(name string, run func(context.Context) error) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.addLocked(name, run)
}

// addLocked is add with w.mu held.
func (w *workGroup) addLocked(name string, run func(context.Context) error) error {
	switch w.state {
	case 0:
		w.pending = append(w.pending, namedWork{name, run})
	case 1:
		w.start(namedWork{name, run})
	default:
		return fmt.Errorf("%w: cannot add %q", ErrLifecycleRan, name)
	}
	return nil
}

// start runs one piece of work; w.mu must be held.
func (w *workGroup) start(nw namedWork) {
	ctx := w.ctx
	w.wg.Go(func() {
		err := safe.Call(func() error { return nw.run(ctx) })
		if err == nil || ctx.Err() != nil { // done, or cut short by the end of Run
			return
		}
		select {
		case w.failed <- redact.Error(&safe.WorkError{Name: nw.name, Err: err}): // masked where it enters
		default:
		}
	})
}

func (w *workGroup) run(parent context.Context) error {
	ctx, cancel := context.WithCancel(parent)
	defer cancel()
	w.mu.Lock()
	if w.state != 0 {
		w.mu.Unlock()
		return errors.New("probes: Lifecycle.Run called more than once")
	}
	w.state, w.ctx, w.failed = 1, ctx, make(chan error, 1)
	for _, nw := range w.pending {
		w.start(nw)
	}
	w.pending = nil
	w.mu.Unlock()

	var err error
	select {
	case <-ctx.Done():
		err = ctx.Err()
	case err = <-w.failed:
		_ = w.lc.MarkBroken(err)
	}
	cancel()
	w.mu.Lock()
	w.state = 2
	w.mu.Unlock()
	w.wg.Wait()
	return err
}
