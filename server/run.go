package server

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"
	"time"

	"go.uber.org/zap"

	"github.com/probekit/probes"
	"github.com/probekit/probes/internal/opt"
	"github.com/probekit/probes/internal/safe"
	"github.com/probekit/probes/redact"
)

// Defaults of the Server options.
const (
	DefaultDrainDelay      = 5 * time.Second
	DefaultShutdownTimeout = 15 * time.Second
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
	onDrain         []hook
	afterClose      []hook
}

// Logger sets the logger for phase transitions, verdict changes and the
// shutdown sequence. Default (and nil): no logs.
func Logger(l *zap.Logger) Option {
	return func(c *config) error {
		if l != nil {
			c.log = l
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
// drain began, and after max at the latest. It takes the place of
// DrainDelay, whatever the order of the options.
//
// The count is of all failing answers, whoever asked: with one balancer, n
// one above its fall threshold means it has marked the instance down. Other
// probers of the same endpoint (the kubelet, a second balancer, a monitor)
// add to the count; raise n by what they send during a fall period.
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

// Server runs an *http.Server and the background work of a lifecycle, with
// a graceful, probe-aware shutdown. Create one with New and start it with
// Run.
type Server struct {
	hs     *http.Server
	lc     *probes.Lifecycle
	cfg    config
	active atomic.Int64 // requests in flight
}

// New returns a Server for hs and lc. It fails when either is nil, or with
// an error naming the option when an option is invalid.
func New(hs *http.Server, lc *probes.Lifecycle, opts ...Option) (*Server, error) {
	if hs == nil || lc == nil {
		return nil, errors.New("server: New needs an *http.Server and a *probes.Lifecycle")
	}
	cfg := config{
		log:             zap.NewNop(),
		drainDelay:      DefaultDrainDelay,
		shutdownTimeout: DefaultShutdownTimeout,
		signals:         []os.Signal{syscall.SIGTERM, os.Interrupt},
	}
	if err := opt.Apply("server", &cfg, opts); err != nil {
		return nil, err
	}
	return &Server{hs: hs, lc: lc, cfg: cfg}, nil
}

// Run serves and runs the lifecycle's background work (probes.Lifecycle.Run:
// every gate's checks and warm-up, and work added with Lifecycle.Go) until
// ctx is done, a signal arrives, or the lifecycle goes Broken (a missed
// warm-up deadline, background work that failed, MarkBroken). Then it shuts
// down gracefully, in this order:
//
//  1. the lifecycle goes Draining (unless Broken): readiness fails at once,
//     warm-up tasks still running are cancelled, and responses carry
//     Connection: close (Run wraps hs.Handler for that);
//  2. OnDrain hooks run, and the server keeps serving for the drain delay,
//     or with DrainUntilProbed until the balancers have seen readiness fail
//     (a second signal cuts it short);
//  3. http.Server.Shutdown, bounded by the shutdown timeout;
//  4. background work is cancelled and awaited, at most the shutdown
//     timeout;
//  5. AfterClose hooks run, then the lifecycle goes Stopped.
//
// Run returns nil after a clean shutdown; otherwise an error that says why:
// serving failed, background work failed or the lifecycle broke, or the
// shutdown timeout cut requests off (saying how many).
func (s *Server) Run(ctx context.Context) error {
	log := s.cfg.log
	defer s.lc.Subscribe(func(t probes.Transition) { logTransition(log, t) })()
	for _, g := range s.lc.Gates() {
		defer watch(log, g)()
	}
	broke := make(chan error, 1)
	defer s.lc.Subscribe(func(t probes.Transition) {
		if t.To == probes.Broken {
			broke <- t.Err
		}
	})()
	if s.lc.Phase() == probes.Broken {
		broke <- errors.New("broken before Run")
	}

	sigs := make(chan os.Signal, 2)
	if len(s.cfg.signals) > 0 {
		signal.Notify(sigs, s.cfg.signals...)
		defer signal.Stop(sigs)
	}

	bg := s.startBackground(ctx)
	s.hs.Handler = s.track(s.hs.Handler)
	served := make(chan error, 1)
	go func() {
		if s.cfg.listener != nil {
			served <- s.hs.Serve(s.cfg.listener)
		} else {
			served <- s.hs.ListenAndServe()
		}
	}()

	var reason string
	var failure error
	select {
	case err := <-served:
		return errors.Join(fmt.Errorf("server: %w", err), bg.stop(s))
	case <-ctx.Done():
		reason = "context done"
	case sig := <-sigs:
		reason = "signal " + sig.String()
	case err := <-bg.done:
		bg.finished, failure = true, fmt.Errorf("server: background work: %w", err)
		reason = "background work failed"
	case err := <-broke:
		failure = fmt.Errorf("server: lifecycle broken: %w", err)
		reason = "lifecycle broken"
	}
	return s.shutdown(reason, failure, sigs, served, bg)
}

// background is the lifecycle's Run, owned by Server.Run.
type background struct {
	cancel   context.CancelFunc
	done     chan error
	finished bool
}

func (s *Server) startBackground(ctx context.Context) *background {
	bgCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	bg := &background{cancel: cancel, done: make(chan error, 1)}
	go func() { bg.done <- s.lc.Run(bgCtx) }()
	return bg
}

// stop cancels the background work and waits for it, at most the shutdown
// timeout: work that ignores its context must not keep the process from
// exiting. It returns the work's failure, if any.
func (bg *background) stop(s *Server) error {
	bg.cancel()
	if bg.finished {
		return nil
	}
	t := time.NewTimer(s.cfg.shutdownTimeout)
	defer t.Stop()
	select {
	case err := <-bg.done:
		bg.finished = true
		if errors.Is(err, context.Canceled) {
			return nil
		}
		return fmt.Errorf("server: background work: %w", err)
	case <-t.C:
		s.cfg.log.Error("background work still running after the shutdown timeout; leaving it behind",
			zap.Duration("timeout", s.cfg.shutdownTimeout))
		return nil
	}
}

func (s *Server) shutdown(reason string, failure error, sigs <-chan os.Signal, served <-chan error, bg *background) error {
	log := s.cfg.log
	began := time.Now()
	if h := s.cfg.probed; h != nil {
		h.fails.Store(0)
		h.armed.Store(true)
		defer h.armed.Store(false)
	}
	if s.lc.Phase() != probes.Broken {
		if err := s.lc.Drain(reason); err != nil {
			log.Warn("cannot drain", zap.Error(err))
		}
	}
	runHooks(log, s.cfg.onDrain)
	s.drain(began, sigs)

	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.shutdownTimeout)
	defer cancel()
	var cut error
	if err := s.hs.Shutdown(ctx); err != nil {
		n := s.active.Load()
		s.hs.Close() //nolint:errcheck // the timeout is the error worth reporting
		cut = fmt.Errorf("server: shutdown timeout %s: %d requests cut: %w", s.cfg.shutdownTimeout, n, err)
		s.awaitHandlers(log)
	}
	if err := <-served; !errors.Is(err, http.ErrServerClosed) {
		cut = errors.Join(cut, fmt.Errorf("server: %w", err))
	}
	if err := bg.stop(s); err != nil && failure == nil {
		failure = err
	}
	runHooks(log, s.cfg.afterClose)
	if s.lc.Phase() == probes.Draining {
		if err := s.lc.Stop(); err != nil {
			log.Warn("cannot stop", zap.Error(err))
		}
	}
	err := errors.Join(failure, cut)
	log.Info("server closed", zap.String("reason", reason), zap.Duration("shutdown", time.Since(began)), zap.Error(redact.Error(err)))
	return err
}

// awaitHandlers gives the handlers of requests a shutdown timeout cut, whose
// contexts Close has cancelled, a moment to return before the AfterClose
// hooks run (closing a pool under a running handler would block).
func (s *Server) awaitHandlers(log *zap.Logger) {
	deadline := time.Now().Add(time.Second)
	for s.active.Load() > 0 {
		if time.Now().After(deadline) {
			log.Warn("handlers of cut requests still running", zap.Int64("requests", s.active.Load()))
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// drain keeps serving until the drain is over: the fixed delay, or with
// DrainUntilProbed enough failing readiness answers (bounded by its max),
// whichever strategy is set; a second signal cuts it short.
func (s *Server) drain(began time.Time, sigs <-chan os.Signal) {
	log := s.cfg.log
	h := s.cfg.probed
	wait := s.cfg.drainDelay
	if h != nil {
		wait = s.cfg.probedMax
	}
	if wait <= 0 {
		return
	}
	t := time.NewTimer(wait - time.Since(began))
	defer t.Stop()
	var answered <-chan struct{}
	if h != nil {
		answered = h.failed
	}
	for {
		if h != nil {
			if n := h.fails.Load(); n >= uint64(s.cfg.probedN) {
				log.Info("drain over: readiness answered fail", zap.Uint64("times", n), zap.Duration("after", time.Since(began)))
				return
			}
		}
		select {
		case <-answered:
		case <-t.C:
			if h != nil {
				log.Warn("drain over: probe-aware drain reached its maximum", zap.Duration("after", time.Since(began)),
					zap.Uint64("fail_answers", h.fails.Load()), zap.Int("wanted", s.cfg.probedN))
				return
			}
			log.Info("drain over: delay passed", zap.Duration("after", time.Since(began)))
			return
		case sig := <-sigs:
			log.Warn("drain cut short", zap.Stringer("signal", sig), zap.Duration("after", time.Since(began)))
			return
		}
	}
}

// runHooks runs hooks in order, each bounded by its timeout. A hook that
// ignores its context is left behind at the timeout.
func runHooks(log *zap.Logger, hooks []hook) {
	for _, h := range hooks {
		ctx, cancel := context.WithTimeout(context.Background(), h.timeout)
		done := make(chan error, 1)
		began := time.Now()
		go func() { done <- safe.Call(func() error { return h.fn(ctx) }) }()
		var err error
		select {
		case err = <-done:
		case <-ctx.Done():
			err = fmt.Errorf("timed out after %s: %w", h.timeout, ctx.Err())
		}
		cancel()
		fields := []zap.Field{zap.String("stage", h.stage), zap.String("hook", h.name), zap.Duration("took", time.Since(began))}
		if err != nil {
			log.Error("shutdown hook failed", append(fields, zap.Error(redact.Error(err)))...)
			continue
		}
		log.Info("shutdown hook done", fields...)
	}
}

var hdrClose = []string{"close"}

// track counts requests in flight (to report how many a shutdown timeout
// cuts) and asks clients to close their connection after each response once
// the service no longer serves as ready (Draining, Stopped, Broken), so that
// kept-alive clients and balancers reconnect elsewhere. Idle connections are
// left alone until Shutdown: closing them at once would race a balancer
// reusing them.
func (s *Server) track(next http.Handler) http.Handler {
	if next == nil {
		next = http.DefaultServeMux
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.active.Add(1)
		defer s.active.Add(-1)
		if s.lc.Phase() >= probes.Draining {
			w.Header()["Connection"] = hdrClose
		}
		next.ServeHTTP(w, r)
	})
}
