package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/probekit/probes"
	"github.com/probekit/probes/liveness"
	"github.com/probekit/probes/server"
	"github.com/probekit/probes/startup"
)

// DefaultCloseTimeout bounds the closing of a client a check owns.
const DefaultCloseTimeout = 5 * time.Second

// Task is a Part that adds a warm-up task to the startup gate
// (startup.Gate.Task): startup passes, and readiness may, once every task
// has finished.
func Task(name string, fn startup.TaskFunc) Part {
	return NewPart(fmt.Sprintf("app.Task(%q)", name), func(a *App) error { return a.Startup.Task(name, fn) })
}

// Check is a Part that adds a check of a dependency to the readiness gate
// (readiness.Gate.Add). When c owns its client (it has a Close method and,
// if it has an Owned method, Owned answers true, as for the checkers built
// with their Owned option: pgxcheck.Owned, redischeck.Owned), the client
// is closed after the server has stopped, within DefaultCloseTimeout (5s).
func Check(name string, c probes.Checker, opts ...probes.CheckOption) Part {
	return NewPart(fmt.Sprintf("app.Check(%q)", name), func(a *App) error {
		if err := a.Readiness.Add(name, c, opts...); err != nil {
			return err
		}
		a.closes(name, c)
		return nil
	})
}

// SelfCheck is a Part that adds a check of the process itself to the
// liveness gate (liveness.Gate.Add): never a dependency, or every instance
// restarts when it blips.
func SelfCheck(name string, c probes.Checker, opts ...probes.CheckOption) Part {
	return NewPart(fmt.Sprintf("app.SelfCheck(%q)", name), func(a *App) error {
		if err := a.Liveness.Add(name, c, opts...); err != nil {
			return err
		}
		a.closes(name, c)
		return nil
	})
}

// closes closes c after the server has stopped when c has a Close method,
// unless it says it owns nothing (an Owned method that answers false).
func (a *App) closes(name string, c probes.Checker) {
	if o, ok := c.(interface{ Owned() bool }); ok && !o.Owned() {
		return
	}
	var close func() error
	switch cl := c.(type) {
	case io.Closer:
		close = cl.Close
	case interface{ Close() }:
		close = func() error { cl.Close(); return nil }
	default:
		return
	}
	a.Option(server.AfterClose(name+" client", DefaultCloseTimeout, func(context.Context) error { return close() }))
}

// Worker is a Part that runs fn as background work of the lifecycle
// (probes.Lifecycle.Go) with a heartbeat that liveness watches: fn calls
// beat.Tick in its loop, at least every within, and liveness fails when it
// stops ticking (liveness.Gate.Heartbeat), so a wedged loop restarts the
// process. fn runs from Run until the shutdown cancels ctx; an error it
// returns (other than ctx's) stops the service.
func Worker(name string, within time.Duration, fn func(ctx context.Context, beat *liveness.Heartbeat) error) Part {
	return NewPart(fmt.Sprintf("app.Worker(%q)", name), func(a *App) error {
		if fn == nil {
			return fmt.Errorf("Worker(%q): fn is nil", name)
		}
		if within <= 0 {
			return fmt.Errorf("Worker(%q): within is %s; it must be positive", name, within)
		}
		if !probes.ValidName(name) {
			return fmt.Errorf("Worker(%q): not a valid name (probes.ValidName)", name)
		}
		return a.Lifecycle.Go(name, func(ctx context.Context) error {
			// Made as the goroutine starts, so that its limit does not
			// run through the warm-up.
			beat, err := a.Liveness.Heartbeat(name, within)
			if err != nil {
				return err
			}
			err = fn(ctx, beat)
			if errors.Is(err, ctx.Err()) {
				return nil
			}
			return err
		})
	})
}
