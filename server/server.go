package server

// The Server: what it holds, how it starts, what it serves.

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"go.uber.org/zap"

	"github.com/probekit/probes"
	"github.com/probekit/probes/internal/budget"
	"github.com/probekit/probes/internal/fds"
	"github.com/probekit/probes/internal/logs"
	"github.com/probekit/probes/internal/opt"
	"github.com/probekit/probes/redact"
)

// Server runs an *http.Server and the background work of a lifecycle, with
// a graceful, probe-aware shutdown. Create one with New and start it with
// Run.
type Server struct {
	hs      *http.Server
	lc      *probes.Lifecycle
	cfg     config
	active  atomic.Int64   // requests in flight
	conns   *budget.Budget // of hs, refusing beyond MaxConns; nil: no bound
	probe   *http.Server   // on the probe listener; nil without one
	pconns  *budget.Budget // of probe, cutting the quietest
	drained drainState
	words   *lastWords // the termination message, set by Run; nil for none
}

// New returns a Server for hs and lc. hs may be nil for a service with no
// HTTP API of its own, served through Also peers or only probed (a worker
// with a ProbeListener or ProbeAddr). It fails when lc is nil, when there
// is nothing to serve at all, or with an error naming the option when an
// option is invalid.
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
	if err := cfg.drainPolicy(); err != nil {
		return nil, fmt.Errorf("server: %w", err)
	}
	if hs == nil && len(cfg.also) == 0 && cfg.probeLn == nil && cfg.probeAddr == "" {
		return nil, errors.New("server: New needs an *http.Server, a service given with Also, or a probe listener")
	}
	if hs != nil {
		secure(hs)
	}
	cfg.log = logs.Identified(cfg.log, lc.Identity())
	s := &Server{hs: hs, lc: lc, cfg: cfg}
	s.drained.ended = make(chan struct{})
	if cfg.maxConns > 0 {
		var err error
		if s.conns, err = budget.New(budget.Config{Max: cfg.maxConns}); err != nil {
			return nil, fmt.Errorf("server: MaxConns: %w", err)
		}
	}
	if cfg.probeLn != nil || cfg.probeAddr != "" {
		s.probe = &http.Server{
			Handler:           canonical(cfg.probeHandler),
			ReadHeaderTimeout: probeReadTimeout,
			ReadTimeout:       probeReadTimeout,
			IdleTimeout:       probeIdleTimeout,
			MaxHeaderBytes:    probeMaxHeaderBytes,
		}
		// Never a refusal: any connection at all may make room, so the
		// newest, a probe's, stays.
		var err error
		if s.pconns, err = budget.New(budget.Config{Max: DefaultProbeMaxConns, Policy: budget.Policy{Evict: true}}); err != nil {
			return nil, fmt.Errorf("server: probe listener: %w", err)
		}
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
//     and application requests have stopped, or with DrainUntilQuiet until
//     application requests have stopped (a second signal or EndDrain cuts
//     it short); a service that was never ready skips the drain, since no
//     balancer sends it traffic, and so does one that called EndDrain
//     before;
//  3. http.Server.Shutdown, bounded by the shutdown timeout;
//  4. background work is cancelled and awaited until the same shutdown
//     timeout ends (at least 1 s), so the timeout bounds steps 3 and 4
//     together;
//  5. AfterClose hooks run, then the lifecycle goes Stopped;
//  6. the probe listener, if any, closes.
//
// Run writes the termination message (TerminationLog) as the shutdown
// begins and again before it returns: why it stopped, then the last
// transitions.
//
// Run returns nil after a clean shutdown; otherwise an error that says why:
// serving failed, background work failed or the lifecycle broke, or the
// shutdown timeout cut requests off (saying how many). Connections that
// never completed a request (a body that never arrived, headers half sent)
// are closed at the timeout without failing Run.
func (s *Server) Run(ctx context.Context) error {
	log := s.cfg.log
	words := s.newLastWords()
	s.words = words
	// A panic on this goroutine (a listener of the lifecycle's moves, say,
	// which runs on the goroutine that moves it) takes the process down:
	// it leaves its cause before it does.
	defer func() {
		if v := recover(); v != nil {
			words.panicked(v)
			panic(v)
		}
	}()
	watchers := []changes{logSink{log}}
	if words != nil {
		watchers = append(watchers, words)
	}
	defer s.lc.Watch(watchChanges(s.lc, watchers...))()
	broke := make(chan error, 1)
	defer s.lc.Subscribe(func(t probes.Transition) {
		if t.To == probes.Broken {
			broke <- t.Err
		}
	})()
	if s.lc.Phase() == probes.Broken {
		broke <- errBrokenBeforeRun
	}

	sigs := make(chan os.Signal, 2)
	if len(s.cfg.signals) > 0 {
		signal.Notify(sigs, s.cfg.signals...)
		defer signal.Stop(sigs)
	}

	ln, probeLn, err := s.bind()
	if err != nil {
		err = redact.Error(err) // nothing has started yet
		words.stopping("failed before serving: " + err.Error())
		return err
	}
	served := make(chan error, 1)
	if s.hs != nil {
		s.hs.Handler = s.track(s.hs.Handler)
		go func() { served <- s.hs.Serve(bounded(s.hs, ln, s.conns)) }()
	}
	bg := s.startBackground(ctx)
	probeServed := make(chan error, 1)
	if s.probe != nil {
		go func() { probeServed <- s.probe.Serve(bounded(s.probe, probeLn, s.pconns)) }()
	}
	peers := s.startPeers()

	var reason, cause string
	var failure error
	select {
	case err := <-served:
		served = nil // its Serve has returned: reported here, nothing for the shutdown to wait for
		failure = fmt.Errorf("server: %w", err)
		reason = "serving failed"
		cause = "failed: the HTTP server's Serve returned: " + err.Error()
	case r := <-peers.done:
		peers.pending--
		failure = fmt.Errorf("server: %s stopped serving: %w", r.name, cmp.Or(r.err, errors.New("its Serve returned")))
		reason = r.name + " failed"
		cause = "failed: " + strings.TrimPrefix(failure.Error(), "server: ")
	case err := <-probeServed:
		probeServed = nil // its Serve has returned: reported here, nothing for closeProbes to wait for
		failure = fmt.Errorf("server: probe listener: %w", err)
		reason = "probe listener failed"
		cause = "failed: the probe listener's Serve returned: " + err.Error()
	case <-ctx.Done():
		reason = "context done"
		cause = s.contextCause(ctx)
	case sig := <-sigs:
		reason = signalName(sig.String())
		cause = s.signalCause(reason)
	case err := <-bg.done:
		bg.finished, failure = true, fmt.Errorf("server: background work: %w", err)
		reason = "background work failed"
		cause = brokenCause(err)
	case err := <-broke:
		failure = fmt.Errorf("server: lifecycle broken: %w", err)
		reason = "lifecycle broken"
		cause = brokenCause(err)
	}
	began := time.Now()
	words.stopping(cause)
	err = s.shutdown(reason, cause, failure, sigs, served, peers, bg)
	err = errors.Join(err, s.closeProbes(probeServed))
	words.exited(time.Since(began), redact.Error(err))
	// Masked here too, not only in the log: callers log what Run returns.
	return redact.Error(err)
}

// bind binds what Run serves before anything starts: the HTTP server's
// listener (Listener's, or one on http.Server.Addr), the probe listener
// (ProbeListener's, or one on ProbeAddr's address), and every peer made
// with BindOnRun, in that order. On a failure it closes what it bound
// itself and returns an error naming what could not be bound.
func (s *Server) bind() (ln, probeLn net.Listener, err error) {
	var bound []io.Closer
	defer func() {
		if err != nil {
			for _, c := range slices.Backward(bound) {
				c.Close() //nolint:errcheck // undoing a failed start
			}
		}
	}()
	if s.hs != nil {
		if ln = s.cfg.listener; ln == nil {
			if ln, err = listen(s.hs.Addr); err != nil {
				return nil, nil, &BindError{Listener: "listener", Err: err}
			}
			bound = append(bound, ln)
		}
	}
	if s.probe != nil {
		if probeLn = s.cfg.probeLn; probeLn == nil {
			if probeLn, err = listen(s.cfg.probeAddr); err != nil {
				return nil, nil, &BindError{Listener: "probe listener", Err: err}
			}
			bound = append(bound, probeLn)
		}
	}
	for _, a := range s.cfg.also {
		if b, ok := a.svc.(*onRun); ok {
			if err := b.bind(); err != nil {
				return nil, nil, &BindError{Listener: a.name, Err: err}
			}
			bound = append(bound, b)
		}
	}
	return ln, probeLn, nil
}

// BindError is Run's error when it cannot bind what it serves, before it
// has served anything: Listener says which ("listener" for the HTTP
// server's, "probe listener", or the name given to Also for a peer made
// with BindOnRun).
type BindError struct {
	Listener string
	Err      error
}

func (e *BindError) Error() string { return "server: " + e.Listener + ": " + e.Err.Error() }

// Unwrap returns the bind's own error.
func (e *BindError) Unwrap() error { return e.Err }

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
