package server

// The shutdown sequence: drain, close, hooks.

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"time"

	"go.uber.org/zap"

	"github.com/probekit/probes"
	"github.com/probekit/probes/internal/safe"
	"github.com/probekit/probes/redact"
)

func (s *Server) shutdown(reason, cause string, failure error, sigs <-chan os.Signal, served <-chan error, peers *peers, bg *background) error {
	log := s.cfg.log
	began := time.Now()
	// A service that was never ready was never in rotation: no balancer
	// has to notice it leave, so it skips the drain, and the requests the
	// warm-up refuses meanwhile are not late ones.
	inRotation := s.lc.Started()
	if inRotation {
		s.drained.began.Store(began.UnixNano())
		if h := s.cfg.probed; h != nil {
			h.probed.arm()
			defer h.probed.disarm()
		}
	}
	if s.lc.Phase() != probes.Broken {
		// The drain's reason is the stop's whole cause, as the termination
		// message's first line says it: the timeline, the log, and the next
		// instance (package history keeps it as how this one ended) then
		// tell a stop from outside from the kubelet's restart.
		if err := s.lc.Drain(cause); err != nil {
			log.Warn("cannot drain", zap.Error(err))
		}
	}
	runHooks(log, s.cfg.onDrain)
	switch why, ended := s.drainEnded(); {
	case !inRotation:
		log.Info("drain skipped: the service was never ready, so no balancer sends it traffic")
	case ended:
		log.Info("drain skipped", zap.String("reason", why))
		s.drained.took.Store(int64(max(time.Since(began), 1)))
	default:
		s.drain(began, sigs)
		s.drained.took.Store(int64(max(time.Since(began), 1)))
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
