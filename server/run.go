package server

import (
	"cmp"
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
	"github.com/probekit/probes/internal/fds"
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
	hs      *http.Server
	lc      *probes.Lifecycle
	cfg     config
	active  atomic.Int64 // requests in flight
	conns   conns        // of hs; bounded by MaxConns
	probe   *http.Server // on the probe listener; nil without one
	pconns  evicting
	drained drainState
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
		maxConns:        defaultMaxConns(fds.Limit()),
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
			Handler:           canonical(cfg.probeHandler),
			ReadHeaderTimeout: probeReadTimeout,
			ReadTimeout:       probeReadTimeout,
			IdleTimeout:       probeIdleTimeout,
			MaxHeaderBytes:    probeMaxHeaderBytes,
		}
		s.pconns.max = DefaultProbeMaxConns
	}
	return s, nil
}

// backgroundGrace is the least time background work gets to return once
// cancelled, even when the HTTP shutdown used up the shutdown timeout;
// cutHandlersGrace bounds the wait for handlers of cut requests, and
// probeCloseGrace the close of the probe listener.
const (
	backgroundGrace  = time.Second
	cutHandlersGrace = time.Second
	probeCloseGrace  = time.Second
)

// Timings is what a Server's configuration says about how long it takes to
// stop: what the platform's kill timeout (terminationGracePeriodSeconds,
// systemd's TimeoutStopSec) and readiness probe must fit. Package deployspec
// turns it into probe specs.
type Timings struct {
	// Drain is the fixed drain (DrainDelay), or DrainUntilProbed's maximum.
	Drain time.Duration
	// DrainProbes is DrainUntilProbed's count of failing readiness
	// answers; 0 for a fixed drain.
	DrainProbes int
	// DrainQuiet is how long a probe-aware drain waits without application
	// requests once the probers have seen readiness fail.
	DrainQuiet time.Duration
	// ShutdownTimeout bounds the HTTP (and peer) shutdown and the wait for
	// background work together.
	ShutdownTimeout time.Duration
	// OnDrain and AfterClose are the sums of the hooks' timeouts.
	OnDrain, AfterClose time.Duration
}

// Stop is the longest a shutdown can take, from the signal to Run's
// return: the drain (the OnDrain hooks run inside it, so the longer of the
// two), the shutdown timeout, the AfterClose hooks, and the three
// one-second bounds (the handlers of cut requests, background work that
// ignores its context, the probe listener).
func (t Timings) Stop() time.Duration {
	return max(t.OnDrain, t.Drain) + t.ShutdownTimeout + t.AfterClose + cutHandlersGrace + backgroundGrace + probeCloseGrace
}

// Timings returns what the Server's options say about how long it takes to
// stop.
func (s *Server) Timings() Timings {
	t := Timings{Drain: s.cfg.drainDelay, ShutdownTimeout: s.cfg.shutdownTimeout}
	if s.cfg.probed != nil {
		t.Drain, t.DrainProbes, t.DrainQuiet = s.cfg.probedMax, s.cfg.probedN, s.cfg.drainQuiet
	}
	for _, h := range s.cfg.onDrain {
		t.OnDrain += h.timeout
	}
	for _, h := range s.cfg.afterClose {
		t.AfterClose += h.timeout
	}
	return t
}

// Stats is what a Server has seen of its connections and its shutdown.
type Stats struct {
	// RefusedConns counts connections closed at once because the
	// application listener held MaxConns.
	RefusedConns uint64
	// DrainBegan is when readiness began failing for the shutdown; zero
	// before, and for a shutdown of a service that was never ready, which
	// skips the drain.
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
		LateRequests: s.drained.n.Load(),
		AfterProbed:  s.drained.afterProbed.Load(),
		CutRequests:  s.drained.cut.Load(),
		Drain:        time.Duration(s.drained.took.Load()),
	}
	if ns := s.drained.began.Load(); ns != 0 {
		st.DrainBegan = time.Unix(0, ns)
	}
	return st
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
//     short); a service that was never ready skips the drain, since no
//     balancer sends it traffic;
//  3. http.Server.Shutdown, bounded by the shutdown timeout;
//  4. background work is cancelled and awaited until the same shutdown
//     timeout ends (at least 1 s), so the timeout bounds steps 3 and 4
//     together;
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

	served := make(chan error, 1)
	if s.hs != nil {
		ln := s.cfg.listener
		if ln == nil {
			var err error
			if ln, err = listen(s.hs.Addr); err != nil {
				return redact.Error(fmt.Errorf("server: %w", err)) // nothing has started yet
			}
		}
		s.hs.Handler = s.track(s.hs.Handler)
		go func() { served <- s.hs.Serve(s.conns.limit(s.hs, ln)) }()
	}
	bg := s.startBackground(ctx)
	probeServed := make(chan error, 1)
	if s.probe != nil {
		go func() { probeServed <- s.probe.Serve(s.pconns.limit(s.probe, s.cfg.probeLn)) }()
	}
	peers := s.startPeers()

	var reason string
	var failure error
	select {
	case err := <-served:
		served = nil // its Serve has returned: reported here, nothing for the shutdown to wait for
		failure = fmt.Errorf("server: %w", err)
		reason = "serving failed"
	case r := <-peers.done:
		peers.pending--
		failure = fmt.Errorf("server: %s stopped serving: %w", r.name, cmp.Or(r.err, errors.New("its Serve returned")))
		reason = r.name + " failed"
	case err := <-probeServed:
		probeServed = nil // its Serve has returned: reported here, nothing for closeProbes to wait for
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
	err := s.shutdown(reason, failure, sigs, served, peers, bg)
	// Masked here too, not only in the log: callers log what Run returns.
	return redact.Error(errors.Join(err, s.closeProbes(probeServed)))
}

// listen listens on addr as http.Server.ListenAndServe does.
func listen(addr string) (net.Listener, error) {
	if addr == "" {
		addr = ":http"
	}
	return net.Listen("tcp", addr)
}

// closeProbes closes the probe listener's server, last of all, giving
// probes in flight a moment, and waits for its Serve unless served is nil
// (it has returned already).
func (s *Server) closeProbes(served <-chan error) error {
	if s.probe == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), probeCloseGrace)
	defer cancel()
	if err := s.probe.Shutdown(ctx); err != nil {
		s.probe.Close() //nolint:errcheck // probes only; nothing to cut
	}
	if served == nil {
		return nil
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

// stop cancels the background work and waits for it until deadline, or at
// least backgroundGrace: work that ignores its context must not keep the
// process from exiting. It returns the work's failure, if any.
func (bg *background) stop(s *Server, deadline time.Time) error {
	bg.cancel()
	if bg.finished {
		return nil
	}
	t := time.NewTimer(max(time.Until(deadline), backgroundGrace))
	defer t.Stop()
	select {
	case err := <-bg.done:
		bg.finished = true
		if errors.Is(err, context.Canceled) {
			return nil
		}
		return fmt.Errorf("server: background work: %w", err)
	case <-t.C:
		s.cfg.log.Error("background work still running at the end of the shutdown timeout; leaving it behind",
			zap.Duration("timeout", s.cfg.shutdownTimeout))
		return nil
	}
}

func (s *Server) shutdown(reason string, failure error, sigs <-chan os.Signal, served <-chan error, peers *peers, bg *background) error {
	log := s.cfg.log
	began := time.Now()
	// A service that was never ready was never in rotation: no balancer
	// has to notice it leave, so it skips the drain, and the requests the
	// warm-up refuses meanwhile are not late ones.
	inRotation := s.lc.Started()
	if inRotation {
		s.drained.began.Store(began.UnixNano())
		if h := s.cfg.probed; h != nil {
			h.fails.Store(0)
			h.armed.Store(true)
			defer h.armed.Store(false)
		}
	}
	if s.lc.Phase() != probes.Broken {
		if err := s.lc.Drain(reason); err != nil {
			log.Warn("cannot drain", zap.Error(err))
		}
	}
	runHooks(log, s.cfg.onDrain)
	if inRotation {
		s.drain(began, sigs)
		s.drained.took.Store(int64(max(time.Since(began), 1)))
	} else {
		log.Info("drain skipped: the service was never ready, so no balancer sends it traffic")
	}

	deadline := time.Now().Add(s.cfg.shutdownTimeout)
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	peerCuts := peers.shutdown(ctx, s.cfg.shutdownTimeout)
	var cut error
	if s.hs != nil {
		cut = s.shutdownHTTP(ctx, served)
	}
	cut = errors.Join(cut, <-peerCuts)
	if err := bg.stop(s, deadline); err != nil && failure == nil {
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
			s.drained.cut.Store(n)
			cut = fmt.Errorf("server: shutdown timeout %s: %d requests cut: %w", s.cfg.shutdownTimeout, n, err)
			s.awaitHandlers(s.cfg.log)
		} else {
			s.cfg.log.Warn("closed connections that never completed a request at the shutdown timeout",
				zap.Duration("timeout", s.cfg.shutdownTimeout))
		}
	}
	if served == nil {
		return cut
	}
	if err := <-served; !errors.Is(err, http.ErrServerClosed) {
		cut = errors.Join(cut, fmt.Errorf("server: %w", err))
	}
	return cut
}

// awaitHandlers gives the handlers of requests a shutdown timeout cut, whose
// contexts Close has cancelled, a moment to return before the AfterClose
// hooks run (closing a pool under a running handler would block).
func (s *Server) awaitHandlers(log *zap.Logger) {
	deadline := time.Now().Add(cutHandlersGrace)
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
					zap.Uint64("late_requests", s.drained.n.Load()))
				return
			}
			log.Info("drain over: delay passed", zap.Duration("after", time.Since(began)),
				zap.Uint64("late_requests", s.drained.n.Load()))
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
	if s.drained.probedAt.CompareAndSwap(0, now.UnixNano()) {
		s.cfg.log.Info("readiness seen failing", zap.Uint64("times", n), zap.Duration("after", now.Sub(began)))
	}
	since := time.Unix(0, max(s.drained.last.Load(), s.drained.probedAt.Load()))
	if s.drained.pending.Load() > 0 {
		return earlier(now.Add(max(s.cfg.drainQuiet/10, time.Millisecond)), deadline), false
	}
	if quietEnd := since.Add(s.cfg.drainQuiet); now.Before(quietEnd) {
		return earlier(quietEnd, deadline), false
	}
	s.cfg.log.Info("drain over: readiness seen failing and application requests stopped",
		zap.Uint64("times", n), zap.Duration("after", now.Sub(began)),
		zap.Uint64("late_requests", s.drained.n.Load()), zap.Uint64("after_probed", s.drained.afterProbed.Load()))
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

// drainState is what Stats reports of the shutdown: the drain, the requests
// that arrived during it, and those the shutdown cut.
type drainState struct {
	began       atomic.Int64  // when the drain began, Unix ns; 0 before
	probedAt    atomic.Int64  // when the probers had seen readiness fail often enough
	last        atomic.Int64  // arrival of the last late application request
	pending     atomic.Int64  // late application requests in flight
	n           atomic.Uint64 // late application requests
	afterProbed atomic.Uint64 // of them, those after probedAt
	took        atomic.Int64  // the drain's length, ns; 0 until it is over
	cut         atomic.Int64  // requests the shutdown timeout cut
}

// probeMark is how a probe handler tells track that a request was a probe:
// track puts one in the context of each request during the drain.
type probeMark struct {
	probe   bool
	pending *atomic.Int64 // drainState.pending, which a probe leaves at once
}

type probeMarkKey struct{}

// markProbe tells track, during a drain, that r is a probe, not an
// application request.
func markProbe(r *http.Request) {
	if m, ok := r.Context().Value(probeMarkKey{}).(*probeMark); ok && !m.probe {
		m.probe = true
		m.pending.Add(-1) // a probe or a scrape in flight never holds the drain
	}
}

// Monitoring marks requests to h as monitoring, not application traffic, as
// probe requests are: a drain neither counts them as late requests nor waits
// for them to stop or end (a slow scrape does not hold it). They are still
// served through the shutdown like any request, and one still in flight at
// the shutdown timeout is cut. Wrap the handler of a /metrics path (or any endpoint
// only monitors call) served on the application listener with it, or a
// Prometheus scraping through the drain keeps DrainUntilProbed from seeing
// the quiet it waits for. It panics when h is nil.
func Monitoring(h http.Handler) http.Handler {
	if h == nil {
		panic("server: Monitoring(nil): need an http.Handler")
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		markProbe(r)
		h.ServeHTTP(w, r)
	})
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
			if s.drained.began.Load() != 0 {
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
	m := &probeMark{pending: &s.drained.pending}
	s.drained.pending.Add(1)
	defer func() {
		if !m.probe {
			s.drained.n.Add(1)
			if p := s.drained.probedAt.Load(); p != 0 && arrived >= p {
				s.drained.afterProbed.Add(1)
			}
			storeMax(&s.drained.last, arrived)
			s.drained.pending.Add(-1)
		}
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
