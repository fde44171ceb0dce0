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

// Signals sets the signals that start a graceful shutdown; a second one cuts
// the drain short. Default SIGTERM and SIGINT; no arguments means none (stop
// through the context only).
func Signals(sig ...os.Signal) Option {
	return optionFunc(func(c *config) { c.signals = sig })
}

// Server runs an *http.Server with a graceful, probe-aware shutdown. Create
// one with New and start it with Run.
type Server struct {
	hs  *http.Server
	lc  *probes.Lifecycle
	cfg config
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
//  2. the server keeps serving for the drain delay (a second signal cuts it short);
//  3. http.Server.Shutdown, bounded by the shutdown timeout;
//  4. the lifecycle goes Stopped, and background work is cancelled and
//     awaited, at most the shutdown timeout.
//
// Run returns nil after a clean shutdown, an error if serving fails or the
// shutdown timeout cut requests off.
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

	s.hs.Handler = closeWhileDraining(s.lc, s.hs.Handler)
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
	if err := s.lc.Drain(reason); err != nil {
		log.Warn("cannot drain", zap.Error(err))
	}

	if s.cfg.drainDelay > 0 {
		t := time.NewTimer(s.cfg.drainDelay)
		select {
		case <-t.C:
			log.Info("drain delay over", zap.Duration("after", time.Since(began)))
		case sig := <-sigs:
			t.Stop()
			log.Warn("drain cut short", zap.Stringer("signal", sig), zap.Duration("after", time.Since(began)))
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.shutdownTimeout)
	defer cancel()
	s.hs.SetKeepAlivesEnabled(false)
	var err error
	if serr := s.hs.Shutdown(ctx); serr != nil {
		s.hs.Close() //nolint:errcheck // the timeout is the error worth reporting
		err = fmt.Errorf("server: shutdown after %s: %w", s.cfg.shutdownTimeout, serr)
	}
	if serr := <-served; !errors.Is(serr, http.ErrServerClosed) {
		err = errors.Join(err, fmt.Errorf("server: %w", serr))
	}
	if serr := s.lc.Stop(); serr != nil {
		log.Warn("cannot stop", zap.Error(serr))
	}
	log.Info("server closed", zap.Duration("shutdown", time.Since(began)), zap.Error(err))
	return err
}

var hdrClose = []string{"close"}

// closeWhileDraining asks clients to close their connection after each
// response while the lifecycle is Draining, so that kept-alive clients and
// balancers reconnect elsewhere. Idle connections are left alone until
// Shutdown: closing them at once would race a balancer reusing them.
func closeWhileDraining(lc *probes.Lifecycle, next http.Handler) http.Handler {
	if next == nil {
		next = http.DefaultServeMux
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if lc.Phase() == probes.Draining {
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
