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
	"github.com/probekit/probes/internal/opt"
	"github.com/probekit/probes/internal/safe"
	"github.com/probekit/probes/redact"
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
	onDrain         []hook
	afterClose      []hook
	maxConns        int
	probeLn         net.Listener
	probeHandler    http.Handler
	also            []also
}

type also struct {
	name string
	svc  Peer
}

// Peer is another server that Run serves beside the HTTP server, through
// the same lifecycle and the same drain: a gRPC server, say (package
// grpchealth adapts one).
type Peer interface {
	// Serve serves until Shutdown or Close, then returns nil (or the
	// error that stopped it).
	Serve() error
	// Shutdown stops taking new work and waits for the work in flight to
	// finish, until ctx is done; then it returns ctx's error.
	Shutdown(ctx context.Context) error
	// Close stops at once, cutting the work in flight.
	Close() error
}

// Also makes Run serve svc beside the HTTP server, from the start: through
// the drain it serves as before (its health reads the lifecycle, so it
// reports the drain at once), then Run shuts it down with the HTTP server,
// bounded by the same shutdown timeout, and closes it past the timeout.
// With Also, New accepts a nil *http.Server, for a service with no HTTP.
func Also(name string, svc Peer) Option {
	return func(c *config) error {
		switch {
		case name == "":
			return errors.New("Also(\"\", svc): need a name")
		case svc == nil:
			return fmt.Errorf("Also(%q, nil): need a service", name)
		}
		c.also = append(c.also, also{name, svc})
		return nil
	}
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
		c.drainQuiet = d
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
	conns  conns        // of hs; bounded by MaxConns
	probe  *http.Server // on the probe listener; nil without one
	pconns conns
	late   lateRequests
	stats  shutdownStats
}

// New returns a Server for hs and lc. It fails when lc is nil, when hs is
// nil and no Also service is given, or with an error naming the option when
// an option is invalid.
//
// New sets the connection settings of hs that are zero to safe defaults:
// ReadHeaderTimeout (DefaultReadHeaderTimeout), ReadTimeout
// (DefaultReadTimeout), IdleTimeout (DefaultIdleTimeout) and MaxHeaderBytes
// (DefaultMaxHeaderBytes). Set a field to keep your own value; a negative
// timeout means none. WriteTimeout is left alone, since it would cut
// streaming responses.
func New(hs *http.Server, lc *probes.Lifecycle, opts ...Option) (*Server, error) {
	if lc == nil {
		return nil, errors.New("server: New needs a *probes.Lifecycle")
	}
	cfg := config{
		log:             zap.NewNop(),
		drainDelay:      DefaultDrainDelay,
		drainQuiet:      DefaultDrainQuiet,
		shutdownTimeout: DefaultShutdownTimeout,
		signals:         []os.Signal{syscall.SIGTERM, os.Interrupt},
		maxConns:        defaultMaxConns(fdLimit()),
	}
	if err := opt.Apply("server", &cfg, opts); err != nil {
		return nil, err
	}
	if hs == nil && len(cfg.also) == 0 {
		return nil, errors.New("server: New needs an *http.Server, or a service given with Also")
	}
	if hs != nil {
		secure(hs)
	}
	s := &Server{hs: hs, lc: lc, cfg: cfg}
	s.conns.max = int64(cfg.maxConns)
	if cfg.probeLn != nil {
		s.probe = &http.Server{
			Handler:           cfg.probeHandler,
			ReadHeaderTimeout: probeReadTimeout,
			ReadTimeout:       probeReadTimeout,
			IdleTimeout:       probeIdleTimeout,
			MaxHeaderBytes:    probeMaxHeaderBytes,
		}
		s.pconns.max = DefaultProbeMaxConns
	}
	return s, nil
}

// Stats is what a Server has seen of its connections and its shutdown.
type Stats struct {
	// RefusedConns counts connections closed at once because the
	// application listener held MaxConns.
	RefusedConns uint64
	// DrainBegan is when readiness began failing for the shutdown; zero
	// before.
	DrainBegan time.Time
	// Drain is how long the drain lasted; zero until it is over.
	Drain time.Duration
	// LateRequests counts application requests that arrived after the
	// drain began: the balancers had not noticed yet. Many of them, or
	// any AfterProbed, say the drain is too short for the balancers.
	LateRequests uint64
	// AfterProbed counts the late requests that arrived after a
	// probe-aware drain had seen readiness fail as often as it wanted: a
	// client that does not follow the probes (or a prober that does not
	// matter was counted).
	AfterProbed uint64
	// CutRequests counts requests the shutdown timeout cut off.
	CutRequests int64
}

// Stats returns what the Server has seen so far. It may be called at any
// time, from any goroutine.
func (s *Server) Stats() Stats {
	st := Stats{
		RefusedConns: s.conns.refused.Load(),
		LateRequests: s.late.n.Load(),
		AfterProbed:  s.late.afterProbed.Load(),
		CutRequests:  s.stats.cut.Load(),
		Drain:        time.Duration(s.stats.drain.Load()),
	}
	if ns := s.late.began.Load(); ns != 0 {
		st.DrainBegan = time.Unix(0, ns)
	}
	return st
}

type shutdownStats struct {
	drain atomic.Int64 // nanoseconds
	cut   atomic.Int64
}

// Run serves and runs the lifecycle's background work (probes.Lifecycle.Run:
// every gate's checks and warm-up, and work added with Lifecycle.Go) until
// ctx is done, a signal arrives, or the lifecycle goes Broken (a missed
// warm-up deadline, background work that failed, MarkBroken). With
// ProbeListener it serves the probe listener too, from the start. Then it
// shuts down gracefully, in this order:
//
//  1. the lifecycle goes Draining (unless Broken): readiness fails at once,
//     warm-up tasks still running are cancelled, and responses carry
//     Connection: close (Run wraps hs.Handler for that);
//  2. OnDrain hooks run, and the server keeps serving for the drain delay,
//     or with DrainUntilProbed until the balancers have seen readiness fail
//     and application requests have stopped (a second signal cuts it
//     short);
//  3. http.Server.Shutdown, bounded by the shutdown timeout;
//  4. background work is cancelled and awaited, at most the shutdown
//     timeout;
//  5. AfterClose hooks run, then the lifecycle goes Stopped;
//  6. the probe listener, if any, closes.
//
// Run returns nil after a clean shutdown; otherwise an error that says why:
// serving failed, background work failed or the lifecycle broke, or the
// shutdown timeout cut requests off (saying how many). Connections that
// never completed a request (a body that never arrived, headers half sent)
// are closed at the timeout without failing Run.
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
	served := make(chan error, 1)
	if s.hs != nil {
		s.hs.Handler = s.track(s.hs.Handler)
		go func() {
			ln := s.cfg.listener
			if ln == nil {
				var err error
				if ln, err = listen(s.hs.Addr); err != nil {
					served <- err
					return
				}
			}
			served <- s.hs.Serve(s.conns.limit(s.hs, ln))
		}()
	}
	probeServed := make(chan error, 1)
	if s.probe != nil {
		go func() { probeServed <- s.probe.Serve(s.pconns.limit(s.probe, s.cfg.probeLn)) }()
	}
	others := make([]chan error, len(s.cfg.also))
	othersFailed := make(chan int, len(s.cfg.also))
	for i, a := range s.cfg.also {
		others[i] = make(chan error, 1)
		go func() {
			err := a.svc.Serve()
			others[i] <- err
			othersFailed <- i
		}()
	}

	var reason string
	var failure error
	select {
	case err := <-served:
		return errors.Join(fmt.Errorf("server: %w", err), s.closeOthers(others), s.closeProbes(probeServed), bg.stop(s))
	case i := <-othersFailed:
		a := s.cfg.also[i]
		err := <-others[i]
		if err == nil {
			err = errors.New("its Serve returned")
		}
		failure = fmt.Errorf("server: %s stopped serving: %w", a.name, err)
		others[i] <- nil // reported here, not again by the shutdown
		reason = a.name + " failed"
	case err := <-probeServed:
		probeServed <- http.ErrServerClosed // reported here, not again by closeProbes
		failure = fmt.Errorf("server: probe listener: %w", err)
		reason = "probe listener failed"
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
	err := s.shutdown(reason, failure, sigs, served, others, bg)
	return errors.Join(err, s.closeProbes(probeServed))
}

// closeOthers closes the Also services at once, after the HTTP server
// failed, and waits for their Serve to return.
func (s *Server) closeOthers(others []chan error) error {
	var errs []error
	for i, a := range s.cfg.also {
		a.svc.Close() //nolint:errcheck // the failure that brought us here is the one to report
		if err := <-others[i]; err != nil {
			errs = append(errs, fmt.Errorf("server: %s: %w", a.name, err))
		}
	}
	return errors.Join(errs...)
}

// listen listens on addr as http.Server.ListenAndServe does.
func listen(addr string) (net.Listener, error) {
	if addr == "" {
		addr = ":http"
	}
	return net.Listen("tcp", addr)
}

// closeProbes closes the probe listener's server, last of all, giving
// probes in flight a moment.
func (s *Server) closeProbes(served <-chan error) error {
	if s.probe == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := s.probe.Shutdown(ctx); err != nil {
		s.probe.Close() //nolint:errcheck // probes only; nothing to cut
	}
	if err := <-served; !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("server: probe listener: %w", err)
	}
	return nil
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

func (s *Server) shutdown(reason string, failure error, sigs <-chan os.Signal, served <-chan error, others []chan error, bg *background) error {
	log := s.cfg.log
	began := time.Now()
	s.late.began.Store(began.UnixNano())
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
	s.stats.drain.Store(int64(max(time.Since(began), 1)))

	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.shutdownTimeout)
	defer cancel()
	otherCuts := s.shutdownOthers(ctx, others)
	var cut error
	if s.hs != nil {
		cut = s.shutdownHTTP(ctx, served)
	}
	cut = errors.Join(cut, <-otherCuts)
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
	st := s.Stats()
	log.Info("server closed", zap.String("reason", reason), zap.Duration("shutdown", time.Since(began)),
		zap.Uint64("late_requests", st.LateRequests), zap.Uint64("after_probed", st.AfterProbed),
		zap.Error(redact.Error(err)))
	return err
}

// shutdownHTTP shuts the HTTP server down, bounded by ctx, and returns
// the error of requests it had to cut.
func (s *Server) shutdownHTTP(ctx context.Context, served <-chan error) error {
	var cut error
	if err := s.hs.Shutdown(ctx); err != nil {
		n := s.active.Load()
		s.hs.Close() //nolint:errcheck // the timeout is the error worth reporting
		if n > 0 {
			s.stats.cut.Store(n)
			cut = fmt.Errorf("server: shutdown timeout %s: %d requests cut: %w", s.cfg.shutdownTimeout, n, err)
			s.awaitHandlers(s.cfg.log)
		} else {
			s.cfg.log.Warn("closed connections that never completed a request at the shutdown timeout",
				zap.Duration("timeout", s.cfg.shutdownTimeout))
		}
	}
	if err := <-served; !errors.Is(err, http.ErrServerClosed) {
		cut = errors.Join(cut, fmt.Errorf("server: %w", err))
	}
	return cut
}

// shutdownOthers shuts the Also services down beside the HTTP server,
// bounded by ctx, closing any still busy at the end; the channel gets what
// went wrong once all have returned.
func (s *Server) shutdownOthers(ctx context.Context, others []chan error) <-chan error {
	done := make(chan error, 1)
	go func() {
		errs := make([]error, len(s.cfg.also))
		var wg sync.WaitGroup
		for i, a := range s.cfg.also {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := a.svc.Shutdown(ctx); err != nil {
					a.svc.Close() //nolint:errcheck // the timeout is the error worth reporting
					errs[i] = fmt.Errorf("server: %s: shutdown timeout %s: work in flight cut: %w", a.name, s.cfg.shutdownTimeout, err)
				}
				if err := <-others[i]; err != nil {
					errs[i] = errors.Join(errs[i], fmt.Errorf("server: %s: %w", a.name, err))
				}
			}()
		}
		wg.Wait()
		done <- errors.Join(errs...)
	}()
	return done
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
// DrainUntilProbed enough failing readiness answers and then a quiet period
// without application requests (bounded by its max), whichever strategy is
// set; a second signal cuts it short.
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
	deadline := began.Add(wait)
	t := time.NewTimer(time.Until(deadline))
	defer t.Stop()
	var answered <-chan struct{}
	if h != nil {
		answered = h.failed
	}
	for {
		if h != nil {
			if next, over := s.probedOver(h, began, deadline); over {
				return
			} else if !next.IsZero() {
				t.Reset(time.Until(next))
			}
		}
		select {
		case <-answered:
		case <-t.C:
			if time.Now().Before(deadline) {
				continue // a quiet period to look at again
			}
			if h != nil {
				log.Warn("drain over: probe-aware drain reached its maximum", zap.Duration("after", time.Since(began)),
					zap.Uint64("fail_answers", h.fails.Load()), zap.Int("wanted", s.cfg.probedN),
					zap.Uint64("late_requests", s.late.n.Load()))
				return
			}
			log.Info("drain over: delay passed", zap.Duration("after", time.Since(began)),
				zap.Uint64("late_requests", s.late.n.Load()))
			return
		case sig := <-sigs:
			log.Warn("drain cut short", zap.Stringer("signal", sig), zap.Duration("after", time.Since(began)))
			return
		}
	}
}

// probedOver says whether a probe-aware drain is over: the probers have
// seen readiness fail often enough, and since then (or since the last
// application request, if later) a quiet period has passed with no
// application request in flight that arrived during the drain. Otherwise it
// returns when to look again, if a timer should wake the drain before the
// next failing answer or its deadline.
func (s *Server) probedOver(h *Handler, began, deadline time.Time) (next time.Time, over bool) {
	n := h.fails.Load()
	if n < uint64(s.cfg.probedN) {
		return time.Time{}, false
	}
	now := time.Now()
	if s.late.probedAt.CompareAndSwap(0, now.UnixNano()) {
		s.cfg.log.Info("readiness seen failing", zap.Uint64("times", n), zap.Duration("after", now.Sub(began)))
	}
	since := time.Unix(0, max(s.late.last.Load(), s.late.probedAt.Load()))
	if s.late.pending.Load() > 0 {
		return earlier(now.Add(max(s.cfg.drainQuiet/10, time.Millisecond)), deadline), false
	}
	if quietEnd := since.Add(s.cfg.drainQuiet); now.Before(quietEnd) {
		return earlier(quietEnd, deadline), false
	}
	s.cfg.log.Info("drain over: readiness seen failing and application requests stopped",
		zap.Uint64("times", n), zap.Duration("after", now.Sub(began)),
		zap.Uint64("late_requests", s.late.n.Load()), zap.Uint64("after_probed", s.late.afterProbed.Load()))
	return time.Time{}, true
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

// lateRequests follows the requests that arrive during the drain.
type lateRequests struct {
	began       atomic.Int64  // when the drain began, Unix ns; 0 before
	probedAt    atomic.Int64  // when the probers had seen readiness fail often enough
	last        atomic.Int64  // arrival of the last late application request
	pending     atomic.Int64  // late requests in flight, probes or not
	n           atomic.Uint64 // late application requests
	afterProbed atomic.Uint64 // of them, those after probedAt
}

// probeMark is how a probe handler tells track that a request was a probe:
// track puts one in the context of each request during the drain.
type probeMark struct{ probe bool }

type probeMarkKey struct{}

// markProbe tells track, during a drain, that r is a probe, not an
// application request.
func markProbe(r *http.Request) {
	if m, ok := r.Context().Value(probeMarkKey{}).(*probeMark); ok {
		m.probe = true
	}
}

// track counts requests in flight (to report how many a shutdown timeout
// cuts) and asks clients to close their connection after each response once
// the service no longer serves as ready (Draining, Stopped, Broken), so that
// kept-alive clients and balancers reconnect elsewhere. Idle connections are
// left alone until Shutdown: closing them at once would race a balancer
// reusing them. During the drain it counts the application requests that
// still arrive, telling them from probes by a mark the probe handlers set.
func (s *Server) track(next http.Handler) http.Handler {
	if next == nil {
		next = http.DefaultServeMux
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.active.Add(1)
		defer s.active.Add(-1)
		if s.lc.Phase() >= probes.Draining {
			w.Header()["Connection"] = hdrClose
			if s.late.began.Load() != 0 {
				s.serveLate(w, r, next)
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// serveLate serves a request that arrived during the drain and counts it
// unless it was a probe.
func (s *Server) serveLate(w http.ResponseWriter, r *http.Request, next http.Handler) {
	arrived := time.Now().UnixNano()
	m := new(probeMark)
	s.late.pending.Add(1)
	defer func() {
		if !m.probe {
			s.late.n.Add(1)
			if p := s.late.probedAt.Load(); p != 0 && arrived >= p {
				s.late.afterProbed.Add(1)
			}
			storeMax(&s.late.last, arrived)
		}
		s.late.pending.Add(-1)
	}()
	next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), probeMarkKey{}, m)))
}

// storeMax stores v in a unless a holds more.
func storeMax(a *atomic.Int64, v int64) {
	for old := a.Load(); old < v; old = a.Load() {
		if a.CompareAndSwap(old, v) {
			return
		}
	}
}

func earlier(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}
