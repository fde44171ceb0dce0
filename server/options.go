package server

// The options of a Server.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/probekit/probes/internal/logs"
)

// Defaults of the Server options.
const (
	DefaultDrainDelay      = 5 * time.Second
	DefaultShutdownTimeout = 15 * time.Second
	DefaultDrainQuiet      = time.Second
)

// Option configures a Server. An invalid value makes New return an error
// that names the option.
type Option func(*config) error

type config struct {
	log             *zap.Logger
	drainDelay      time.Duration
	shutdownTimeout time.Duration
	listener        net.Listener
	signals         []os.Signal
	probed          *Handler // probe-aware drain when not nil
	probedN         int
	probedMax       time.Duration
	drainQuiet      time.Duration
	drainQuietSet   bool        // DrainQuiet was given
	quiet           *quietDrain // quiet drain when not nil
	onDrain         []hook
	afterClose      []hook
	maxConns        int
	probeLn         net.Listener
	probeAddr       string // ProbeAddr's: bound by Run
	probeHandler    http.Handler
	also            []also
	termLog         string // TerminationLog's path
	termLogSet      bool   // TerminationLog was given
}

// Logger sets the logger for phase transitions, verdict changes, a
// cordon that lifts by itself at its time limit, and the shutdown
// sequence. A cordon set or lifted by hand is logged by whoever did it,
// since only the caller knows who asked: package admin logs it with the
// peer. Default (and nil): no logs.
func Logger(l *zap.Logger) Option {
	return func(c *config) error {
		if l != nil {
			c.log = l
		}
		return nil
	}
}

// Slog is Logger for a service that logs through log/slog: the same lines,
// with their levels and fields as slog attributes, go to l's handler.
// Default (and nil): no logs. The last of Logger and Slog wins.
func Slog(l *slog.Logger) Option {
	return func(c *config) error {
		if l != nil {
			c.log = logs.FromSlog(l)
		}
		return nil
	}
}

// DrainDelay sets how long the server keeps serving after readiness has
// started failing, so that load balancers and endpoint controllers notice
// before the listener closes. Default DefaultDrainDelay (5s); 0 disables it.
func DrainDelay(d time.Duration) Option {
	return func(c *config) error {
		if d < 0 {
			return fmt.Errorf("DrainDelay(%s): the delay must not be negative", d)
		}
		c.drainDelay = d
		return nil
	}
}

// ShutdownTimeout bounds http.Server.Shutdown after the drain: in-flight
// requests get this long to finish before their connections are closed. It
// bounds the wait for background work to return, too. Default
// DefaultShutdownTimeout (15s).
func ShutdownTimeout(d time.Duration) Option {
	return func(c *config) error {
		if d <= 0 {
			return fmt.Errorf("ShutdownTimeout(%s): the timeout must be positive", d)
		}
		c.shutdownTimeout = d
		return nil
	}
}

// Listener makes Run serve on ln instead of listening on the http.Server's
// Addr. Binding early lets probes answer from the first moment.
func Listener(ln net.Listener) Option {
	return func(c *config) error {
		if ln == nil {
			return errors.New("Listener(nil): need a listener")
		}
		c.listener = ln
		return nil
	}
}

// DrainUntilProbed makes the drain probe-aware: it ends once h, the
// readiness handler the balancers poll, has answered fail n times since the
// drain began and no application request has arrived for a quiet period
// (DrainQuiet, DefaultDrainQuiet by default), and after max at the latest.
// It takes the place of DrainDelay, whatever the order of the options.
//
// Only answers to what a prober sends are counted: GET or HEAD of the
// aggregate path, with no query string and no body; /readyz?verbose, a
// check's own path and anything else a person or a script may send are
// not. With one balancer, n one above its fall threshold means it has
// marked the instance down. Other probers of the same endpoint (the
// kubelet, a second balancer) add to the count; raise n by what they send
// during a fall period. Nobody can end the drain early by asking: while
// application requests keep arriving, it runs on, to max if need be.
func DrainUntilProbed(h *Handler, n int, max time.Duration) Option {
	return func(c *config) error {
		switch {
		case h == nil:
			return fmt.Errorf("DrainUntilProbed(nil, %d, %s): need the readiness handler", n, max)
		case n < 1:
			return fmt.Errorf("DrainUntilProbed(h, %d, %s): n must be at least 1", n, max)
		case max <= 0:
			return fmt.Errorf("DrainUntilProbed(h, %d, %s): max must be positive", n, max)
		}
		c.probed, c.probedN, c.probedMax = h, n, max
		return nil
	}
}

// quietDrain is DrainUntilQuiet's policy.
type quietDrain struct {
	quiet, min, max time.Duration
}

// DrainUntilQuiet makes the drain end once no new application request has
// arrived for quiet, and none that arrived during the drain is still in
// flight, but not before min has passed since the drain began and never
// after max. Set min to the time the balancer in front takes to notice a
// failing readiness (its check interval times its unhealthy threshold):
// until then it may still send traffic the drain has not seen yet. quiet
// is then the gap in arrivals taken to mean the balancer has stopped:
// several times the longest gap between requests under normal load. The
// quiet period counts from the later of the drain's start and the last
// application request's arrival, so with no traffic at all the drain
// lasts the longer of min and quiet. It has no default; it takes the
// place of DrainDelay, whatever the order of the options.
//
// Only application requests on the HTTP server's listener count: requests
// on the probe listener (ProbeListener), probe paths served on the
// application listener (Register's handlers, the status page they hand to
// browsers), handlers wrapped in Monitoring (/metrics), and traffic of
// Also peers neither hold the drain nor restart the quiet period. A
// request still in flight that arrived before the drain does not hold it
// either: the shutdown lets it finish.
//
// New fails when quiet is not positive, min is negative, max is less than
// min or than quiet (the drain could never see a quiet period), or when
// DrainUntilProbed or DrainQuiet is also given: they say how to end the
// drain, too, and one policy must decide.
func DrainUntilQuiet(quiet, min, max time.Duration) Option {
	return func(c *config) error {
		switch {
		case quiet <= 0:
			return fmt.Errorf("DrainUntilQuiet(%s, %s, %s): quiet must be positive", quiet, min, max)
		case min < 0:
			return fmt.Errorf("DrainUntilQuiet(%s, %s, %s): min must not be negative", quiet, min, max)
		case max < min:
			return fmt.Errorf("DrainUntilQuiet(%s, %s, %s): max must not be less than min", quiet, min, max)
		case max < quiet:
			return fmt.Errorf("DrainUntilQuiet(%s, %s, %s): max must not be less than quiet", quiet, min, max)
		}
		c.quiet = &quietDrain{quiet, min, max}
		return nil
	}
}

// drainPolicy checks that the options chose one way to end the drain.
func (c *config) drainPolicy() error {
	if c.quiet == nil {
		return nil
	}
	switch {
	case c.probed != nil:
		return errors.New("DrainUntilQuiet and DrainUntilProbed: give one of them, not both")
	case c.drainQuietSet:
		return errors.New("DrainUntilQuiet and DrainQuiet: DrainQuiet is DrainUntilProbed's; DrainUntilQuiet takes its own quiet period")
	}
	return nil
}

// DrainQuiet sets how long a probe-aware drain (DrainUntilProbed) waits,
// once the probers have seen readiness fail, for no new application request
// to arrive before it ends; an application request still in flight that
// arrived during the drain holds it too. Default DefaultDrainQuiet (1s); 0
// ends the drain on the probers' count alone.
func DrainQuiet(d time.Duration) Option {
	return func(c *config) error {
		if d < 0 {
			return fmt.Errorf("DrainQuiet(%s): must not be negative", d)
		}
		c.drainQuiet, c.drainQuietSet = d, true
		return nil
	}
}

// OnDrain adds a hook that runs as the drain begins, once readiness is
// already failing: deregistering from service discovery, say. Hooks run in
// the order given, each bounded by its timeout; an error, a panic or a
// timeout is logged and the shutdown goes on. The drain lasts at least as
// long as the hooks.
func OnDrain(name string, timeout time.Duration, fn func(ctx context.Context) error) Option {
	return hookOption("OnDrain", name, timeout, fn, func(c *config, h hook) { c.onDrain = append(c.onDrain, h) })
}

// AfterClose adds a hook that runs once the server has closed, in-flight
// requests have finished and background work (checks, warm-up, work added
// with Lifecycle.Go) has returned, before the lifecycle goes Stopped:
// flushing buffers or closing a database pool, say. Bounded and logged as
// OnDrain. When the shutdown timeout cut requests off, the hooks run after
// their handlers have returned, or one second after the cut, whichever is
// first.
func AfterClose(name string, timeout time.Duration, fn func(ctx context.Context) error) Option {
	return hookOption("AfterClose", name, timeout, fn, func(c *config, h hook) { c.afterClose = append(c.afterClose, h) })
}

type hook struct {
	stage, name string
	timeout     time.Duration
	fn          func(context.Context) error
}

func hookOption(stage, name string, timeout time.Duration, fn func(context.Context) error, add func(*config, hook)) Option {
	return func(c *config) error {
		switch {
		case name == "":
			return fmt.Errorf("%s(%q, %s, fn): need a name", stage, name, timeout)
		case timeout <= 0:
			return fmt.Errorf("%s(%q, %s, fn): the timeout must be positive", stage, name, timeout)
		case fn == nil:
			return fmt.Errorf("%s(%q, %s, nil): need a function", stage, name, timeout)
		}
		add(c, hook{stage, name, timeout, fn})
		return nil
	}
}

// Signals sets the signals that start a graceful shutdown; a second one cuts
// the drain short. Default SIGTERM and SIGINT; no arguments means none (stop
// through the context only).
func Signals(sig ...os.Signal) Option {
	return func(c *config) error { c.signals = sig; return nil }
}

// TerminationLog sets the file Run writes the termination message to: the
// cause of the stop on the first line (a stop from outside, the kubelet's
// restart for a failing liveness check, the warm-up deadline, background
// work that failed or panicked, a listener's Serve that failed, the
// context's end), then the last transitions (phase moves, changes of the
// checks' verdicts with their errors, cordons), newest first. It is at
// most 4096 bytes, what the kubelet keeps, of printable text with secrets
// masked (package redact). Run writes it when the stop begins, so that a
// SIGKILL at the grace period still leaves the cause, and again when it
// returns, over the file in place (no rename: the path is a bind mount).
// A failure to write it is logged, never fatal. The file is created when
// missing.
//
// A panic is a cause only where something can still write: background
// work that panicked (Lifecycle.Go, a gate's work), which the lifecycle
// recovers into Broken, is named as such; a panic on Run's own goroutine
// (the lifecycle's listeners run on the goroutine that moves it, Run's
// during the stop) is written before it goes on taking the process down.
// A panic on any other goroutine ends the process before any code can
// write: Go prints it to stderr, and a container whose
// terminationMessagePolicy is FallbackToLogsOnError shows the end of that
// log instead of an empty message. A panicking check fails with the panic
// as its error, a warm-up task's panic is a failed attempt (retried, then
// named at the warm-up deadline), and net/http recovers a handler's.
//
// Default DefaultTerminationLog ("/dev/termination-log") when it is a
// regular file this process can write, as in a Kubernetes container, and
// nothing elsewhere; "" for none. Set it to the container's
// terminationMessagePath when that is not the default.
func TerminationLog(path string) Option {
	return func(c *config) error {
		if strings.ContainsRune(path, 0) {
			return fmt.Errorf("TerminationLog(%q): the path holds a NUL byte", path)
		}
		c.termLog, c.termLogSet = path, true
		return nil
	}
}
