package server

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"go.uber.org/zap"

	"github.com/probekit/probes"
)

// Defaults of the Server options.
const (
	DefaultDrainDelay      = 5 * time.Second
	DefaultShutdownTimeout = 15 * time.Second
)

// Option configures a Server. Invalid values make New return an error that
// names the option.
type Option interface {
	apply(*config)
}

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

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
	err             error
}

func (c *config) fail(format string, args ...any) {
	if c.err == nil {
		c.err = fmt.Errorf("server: "+format, args...)
	}
}

// Logger sets the logger for phase transitions, verdict changes and the
// shutdown sequence. Default (and nil): no logs.
func Logger(l *zap.Logger) Option {
	return optionFunc(func(c *config) {
		if l != nil {
			c.log = l
		}
	})
}

// DrainDelay sets how long the server keeps serving after readiness has
// started failing, so that load balancers and endpoint controllers notice
// before the listener closes. Default DefaultDrainDelay (5s); 0 disables it.
func DrainDelay(d time.Duration) Option {
	return optionFunc(func(c *config) {
		if d < 0 {
			c.fail("DrainDelay(%s): the delay must not be negative", d)
		}
		c.drainDelay = d
	})
}

// ShutdownTimeout bounds http.Server.Shutdown after the drain: in-flight
// requests get this long to finish before their connections are closed.
// Default DefaultShutdownTimeout (15s).
func ShutdownTimeout(d time.Duration) Option {
	return optionFunc(func(c *config) {
		if d <= 0 {
			c.fail("ShutdownTimeout(%s): the timeout must be positive", d)
		}
		c.shutdownTimeout = d
	})
}

// Listener makes Run serve on ln instead of listening on the http.Server's
// Addr. Binding early lets probes answer from the first moment.
func Listener(ln net.Listener) Option {
	return optionFunc(func(c *config) {
		if ln == nil {
			c.fail("Listener(nil): need a listener")
		}
		c.listener = ln
	})
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
	return optionFunc(func(c *config) {
		switch {
		case h == nil:
			c.fail("DrainUntilProbed(nil, %d, %s): need the readiness handler", n, max)
		case n < 1:
			c.fail("DrainUntilProbed(h, %d, %s): n must be at least 1", n, max)
		case max <= 0:
			c.fail("DrainUntilProbed(h, %d, %s): max must be positive", n, max)
		}
		c.probed, c.probedN, c.probedMax = h, n, max
	})
}

// OnDrain adds a hook that runs as the drain begins, once readiness is
// already failing: deregistering from service discovery, say. Hooks run in
// the order given, each bounded by its timeout; an error or a timeout is
// logged and the shutdown goes on. The drain lasts at least as long as the
// hooks.
func OnDrain(name string, timeout time.Duration, fn func(ctx context.Context) error) Option {
	return hookOption("OnDrain", name, timeout, fn, func(c *config, h hook) { c.onDrain = append(c.onDrain, h) })
}

// AfterClose adds a hook that runs after the server has closed and in-flight
// requests have finished, before the lifecycle goes Stopped: flushing
// buffers or closing a database pool, say. Bounded and logged as OnDrain.
// When the shutdown timeout cut requests off, the hooks run after their
// handlers have returned, or one second after the cut, whichever is first.
func AfterClose(name string, timeout time.Duration, fn func(ctx context.Context) error) Option {
	return hookOption("AfterClose", name, timeout, fn, func(c *config, h hook) { c.afterClose = append(c.afterClose, h) })
}

type hook struct {
	stage, name string
	timeout     time.Duration
	fn          func(context.Context) error
}

func hookOption(stage, name string, timeout time.Duration, fn func(context.Context) error, add func(*config, hook)) Option {
	return optionFunc(func(c *config) {
		switch {
		case name == "":
			c.fail("%s(%q, %s, fn): need a name", stage, name, timeout)
		case timeout <= 0:
			c.fail("%s(%q, %s, fn): the timeout must be positive", stage, name, timeout)
		case fn == nil:
			c.fail("%s(%q, %s, nil): need a function", stage, name, timeout)
		}
		add(c, hook{stage, name, timeout, fn})
	})
}

// Signals sets the signals that start a graceful shutdown; a second one cuts
// the drain short. Default SIGTERM and SIGINT; no arguments means none (stop
// through the context only).
func Signals(sig ...os.Signal) Option {
	return optionFunc(func(c *config) { c.signals = sig })
}

// Server runs an *http.Server with a graceful, probe-aware shutdown. Create
// one with New and start it with Run.
type Server struct {
	hs     *http.Server
	lc     *probes.Lifecycle
	cfg    config
	active atomic.Int64 // requests in flight
}

// Runner is work that runs alongside the server until its context ends, such
// as a gate's checks or warm-up.
type Runner interface {
	Run(ctx context.Context) error
}

// New returns a Server for hs and lc. It returns an error naming the option
// when an option is invalid.
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
	for _, o := range opts {
		if o != nil {
			o.apply(&cfg)
		}
	}
	if cfg.err != nil {
		return nil, cfg.err
	}
	return &Server{hs: hs, lc: lc, cfg: cfg}, nil
}

// Run serves until ctx is done or a signal arrives, running each of
// background (such as the gates) alongside; gates among them get their
// transitions and verdict changes logged. Then it shuts down gracefully:
//
//  1. the lifecycle goes Draining: readiness fails at once, and responses
//     carry Connection: close (Run wraps hs.Handler for that);
//  2. OnDrain hooks run, and the server keeps serving for the drain delay,
//     or with DrainUntilProbed until the balancers have seen readiness fail
//     (a second signal cuts it short);
//  3. http.Server.Shutdown, bounded by the shutdown timeout;
//  4. AfterClose hooks run, the lifecycle goes Stopped, and background work
//     is cancelled and
//     awaited, at most the shutdown timeout.
//
// Run returns nil after a clean shutdown, an error if serving fails or the
// shutdown timeout cut requests off (saying how many).
func (s *Server) Run(ctx context.Context, background ...Runner) error {
	log := s.cfg.log
	defer s.lc.Subscribe(func(t probes.Transition) { logTransition(log, t) })()
	for _, b := range background {
		if g, ok := b.(Gate); ok {
			defer watch(log, g)()
		}
	}

	sigs := make(chan os.Signal, 2)
	if len(s.cfg.signals) > 0 {
		signal.Notify(sigs, s.cfg.signals...)
		defer signal.Stop(sigs)
	}

	bgCtx, bgCancel := context.WithCancel(context.WithoutCancel(ctx))
	var wg sync.WaitGroup
	defer func() {
		bgCancel()
		s.await(&wg)
	}()
	for _, b := range background {
		wg.Go(func() {
			if err := b.Run(bgCtx); err != nil && !errors.Is(err, context.Canceled) {
				log.Error("background work ended", zap.Error(probes.RedactError(err)))
			}
		})
	}

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
	select {
	case err := <-served:
		return fmt.Errorf("server: %w", err)
	case <-ctx.Done():
		reason = "context done"
	case sig := <-sigs:
		reason = "signal " + sig.String()
	}
	return s.shutdown(reason, sigs, served)
}

func (s *Server) shutdown(reason string, sigs <-chan os.Signal, served <-chan error) error {
	log := s.cfg.log
	began := time.Now()
	var probedFrom uint64
	if s.cfg.probed != nil {
		probedFrom = s.cfg.probed.fails.Load()
	}
	if err := s.lc.Drain(reason); err != nil {
		log.Warn("cannot drain", zap.Error(err))
	}
	runHooks(log, s.cfg.onDrain)
	s.drain(began, probedFrom, sigs)

	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.shutdownTimeout)
	defer cancel()
	s.hs.SetKeepAlivesEnabled(false)
	var err error
	if serr := s.hs.Shutdown(ctx); serr != nil {
		cut := s.active.Load()
		s.hs.Close() //nolint:errcheck // the timeout is the error worth reporting
		err = fmt.Errorf("server: shutdown timeout %s: %d requests cut: %w", s.cfg.shutdownTimeout, cut, serr)
		s.awaitHandlers(log)
	}
	if serr := <-served; !errors.Is(serr, http.ErrServerClosed) {
		err = errors.Join(err, fmt.Errorf("server: %w", serr))
	}
	runHooks(log, s.cfg.afterClose)
	if serr := s.lc.Stop(); serr != nil {
		log.Warn("cannot stop", zap.Error(serr))
	}
	log.Info("server closed", zap.Duration("shutdown", time.Since(began)), zap.Error(err))
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
func (s *Server) drain(began time.Time, probedFrom uint64, sigs <-chan os.Signal) {
	log := s.cfg.log
	wait := s.cfg.drainDelay
	if s.cfg.probed != nil {
		wait = s.cfg.probedMax
	}
	if wait <= 0 {
		return
	}
	t := time.NewTimer(wait - time.Since(began))
	defer t.Stop()
	var answered <-chan struct{}
	if h := s.cfg.probed; h != nil {
		answered = h.failed
	}
	for {
		if h := s.cfg.probed; h != nil {
			if n := h.fails.Load() - probedFrom; n >= uint64(s.cfg.probedN) {
				log.Info("drain over: readiness answered fail", zap.Uint64("times", n), zap.Duration("after", time.Since(began)))
				return
			}
		}
		select {
		case <-answered:
		case <-t.C:
			if s.cfg.probed != nil {
				log.Warn("drain over: probe-aware drain reached its maximum", zap.Duration("after", time.Since(began)),
					zap.Uint64("fail_answers", s.cfg.probed.fails.Load()-probedFrom), zap.Int("wanted", s.cfg.probedN))
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
		go func() {
			defer func() {
				if v := recover(); v != nil {
					done <- fmt.Errorf("panic: %v", v)
				}
			}()
			done <- h.fn(ctx)
		}()
		var err error
		select {
		case err = <-done:
		case <-ctx.Done():
			err = fmt.Errorf("timed out after %s: %w", h.timeout, ctx.Err())
		}
		cancel()
		fields := []zap.Field{zap.String("stage", h.stage), zap.String("hook", h.name), zap.Duration("took", time.Since(began))}
		if err != nil {
			log.Error("shutdown hook failed", append(fields, zap.Error(probes.RedactError(err)))...)
			continue
		}
		log.Info("shutdown hook done", fields...)
	}
}

var hdrClose = []string{"close"}

// track counts requests in flight (to report how many a shutdown timeout
// cuts) and asks clients to close their connection after each response while
// the lifecycle is Draining, so that kept-alive clients and balancers
// reconnect elsewhere. Idle connections are left alone until Shutdown:
// closing them at once would race a balancer reusing them.
func (s *Server) track(next http.Handler) http.Handler {
	if next == nil {
		next = http.DefaultServeMux
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.active.Add(1)
		defer s.active.Add(-1)
		if s.lc.Phase() == probes.Draining {
			w.Header()["Connection"] = hdrClose
		}
		next.ServeHTTP(w, r)
	})
}

// await waits for background work to return after its context was
// cancelled, at most the shutdown timeout: work that ignores its context must
// not keep the process from exiting.
func (s *Server) await(wg *sync.WaitGroup) {
	done := make(chan struct{})
	go func() {
		wg.Wait()
		close(done)
	}()
	t := time.NewTimer(s.cfg.shutdownTimeout)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
		s.cfg.log.Error("background work still running after the shutdown timeout; leaving it behind",
			zap.Duration("timeout", s.cfg.shutdownTimeout))
	}
}

func logTransition(log *zap.Logger, t probes.Transition) {
	fields := []zap.Field{
		zap.Stringer("from", t.From), zap.Stringer("to", t.To),
		zap.String("reason", probes.Redact(t.Reason)), zap.Time("at", t.At),
	}
	if t.To == probes.Broken {
		log.Error("phase changed", append(fields, zap.Error(probes.RedactError(t.Err)))...)
		return
	}
	log.Info("phase changed", fields...)
}

// watch logs every change of g's verdict, of a check's verdict, and of a
// warm-up task's state, by comparing each report with the one before.
func watch(log *zap.Logger, g Gate) (cancel func()) {
	var mu sync.Mutex
	prev := g.Report()
	return g.Subscribe(func() {
		mu.Lock()
		defer mu.Unlock()
		cur := g.Report()
		logDiff(log, &prev, &cur)
		prev = cur
	})
}

func logDiff(log *zap.Logger, prev, cur *probes.Report) {
	gate := zap.String("gate", cur.Gate)
	if a, b := prev.Status(), cur.Status(); a != b {
		log.Info("gate verdict changed", gate, zap.Stringer("from", a), zap.Stringer("to", b), zap.Strings("notes", cur.Notes))
	}
	for _, c := range cur.Checks {
		old, ok := prev.Check(c.Name)
		if c.Time.IsZero() || ok && old.Status == c.Status && !old.Time.IsZero() {
			continue // no result yet, or no change
		}
		fields := []zap.Field{gate, zap.String("check", c.Name), zap.Stringer("to", c.Status),
			zap.Duration("duration", c.Duration), zap.Int("consecutive_failures", c.ConsecutiveFailures)}
		if ok {
			fields = append(fields, zap.Stringer("from", old.Status))
		}
		if c.Err != nil {
			fields = append(fields, zap.Error(c.Err))
		}
		if c.Status == probes.Pass {
			log.Info("check verdict changed", fields...)
		} else {
			log.Warn("check verdict changed", fields...)
		}
	}
	for _, t := range cur.Tasks {
		old, _ := findTask(prev, t.Name)
		switch {
		case t.Done && !old.Done:
			log.Info("warm-up task done", gate, zap.String("task", t.Name), zap.Int("attempts", t.Attempts))
		case t.Failures != old.Failures:
			log.Warn("warm-up task attempt failed", gate, zap.String("task", t.Name), zap.Int("failures", t.Failures), zap.Error(t.Err))
		case int(t.Fraction*10) != int(old.Fraction*10):
			log.Info("warm-up progress", gate, zap.String("task", t.Name), zap.Int("percent", int(t.Fraction*100)))
		}
	}
}
