package server

// The drain: how long it lasts, and the requests that arrive during it.

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/probekit/probes"
)

// drain keeps serving until the drain is over: the fixed delay; with
// DrainUntilProbed enough failing readiness answers and then a quiet period
// without application requests; with DrainUntilQuiet its minimum and then a
// quiet period (either bounded by its max), whichever strategy is set; a
// second signal cuts it short.
func (s *Server) drain(began time.Time, sigs <-chan os.Signal) {
	log := s.cfg.log
	h, q := s.cfg.probed, s.cfg.quiet
	wait := s.cfg.drainDelay
	switch {
	case h != nil:
		wait = s.cfg.probedMax
	case q != nil:
		wait = q.max
	}
	if wait <= 0 {
		return
	}
	deadline := began.Add(wait)
	t := time.NewTimer(time.Until(deadline))
	defer t.Stop()
	var answered <-chan struct{}
	if h != nil {
		answered = h.probed.nudge
	}
	for {
		var next time.Time
		var over bool
		switch {
		case h != nil:
			next, over = s.probedOver(h, began, deadline)
		case q != nil:
			next, over = s.quietOver(q, began, deadline)
		}
		if over {
			return
		}
		if !next.IsZero() {
			t.Reset(time.Until(next))
		}
		select {
		case <-answered:
		case <-t.C:
			if time.Now().Before(deadline) {
				continue // a quiet period to look at again
			}
			switch {
			case h != nil:
				log.Warn("drain over: probe-aware drain reached its maximum", zap.Duration("after", time.Since(began)),
					zap.Uint64("fail_answers", h.probed.n.Load()), zap.Int("wanted", s.cfg.probedN),
					zap.Uint64("late_requests", s.drained.n.Load()))
			case q != nil:
				log.Warn("drain over: quiet drain reached its maximum", zap.Duration("after", time.Since(began)),
					zap.Duration("quiet", q.quiet), zap.Uint64("late_requests", s.drained.n.Load()),
					zap.Int64("in_flight", s.drained.pending.Load()))
			default:
				log.Info("drain over: delay passed", zap.Duration("after", time.Since(began)),
					zap.Uint64("late_requests", s.drained.n.Load()))
			}
			return
		case sig := <-sigs:
			log.Warn("drain cut short", zap.Stringer("signal", sig), zap.Duration("after", time.Since(began)))
			s.words.note(fmt.Sprintf("drain cut short by %s after %s", signalName(sig.String()), time.Since(began).Round(time.Millisecond)))
			return
		case <-s.drained.ended:
			log.Info("drain cut short", zap.String("reason", s.drained.endReason), zap.Duration("after", time.Since(began)))
			return
		}
	}
}

// quietOver says whether a quiet drain is over: its minimum has passed,
// and since the drain began (or since the last application request, if
// later) a quiet period has passed with no application request in flight
// that arrived during the drain. Otherwise it returns when to look again.
func (s *Server) quietOver(q *quietDrain, began, deadline time.Time) (next time.Time, over bool) {
	now := time.Now()
	if minEnd := began.Add(q.min); now.Before(minEnd) {
		return earlier(minEnd, deadline), false
	}
	if s.drained.pending.Load() > 0 {
		return earlier(now.Add(max(q.quiet/10, time.Millisecond)), deadline), false
	}
	since := time.Unix(0, max(s.drained.last.Load(), began.UnixNano()))
	if quietEnd := since.Add(q.quiet); now.Before(quietEnd) {
		return earlier(quietEnd, deadline), false
	}
	s.cfg.log.Info("drain over: application requests stopped", zap.Duration("after", now.Sub(began)),
		zap.Duration("quiet", q.quiet), zap.Duration("min", q.min),
		zap.Uint64("late_requests", s.drained.n.Load()))
	return time.Time{}, true
}

// probedOver says whether a probe-aware drain is over: the probers have
// seen readiness fail often enough, and since then (or since the last
// application request, if later) a quiet period has passed with no
// application request in flight that arrived during the drain. Otherwise it
// returns when to look again, if a timer should wake the drain before the
// next failing answer or its deadline.
func (s *Server) probedOver(h *Handler, began, deadline time.Time) (next time.Time, over bool) {
	n := h.probed.n.Load()
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

	endOnce   sync.Once
	ended     chan struct{} // closed by EndDrain
	endReason string        // EndDrain's reason, written before ended closes
}

// EndDrain ends the drain at once, as a second signal does; called before
// the shutdown has begun, it makes the shutdown skip the drain. It is for
// a service that knows its traffic is over whatever the balancers do: the
// process that probe run stands in front of has exited, say, and nothing
// is left to serve. reason goes to the log. Calls after the first do
// nothing; it may be called from any goroutine, at any time.
func (s *Server) EndDrain(reason string) {
	s.drained.endOnce.Do(func() {
		s.drained.endReason = reason
		close(s.drained.ended)
	})
}

// drainEnded reports whether EndDrain has been called, and why.
func (s *Server) drainEnded() (string, bool) {
	select {
	case <-s.drained.ended:
		return s.drained.endReason, true
	default:
		return "", false
	}
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
	// In flight before its arrival is taken, so that a drain never sees
	// neither.
	s.drained.pending.Add(1)
	arrived := time.Now().UnixNano()
	m := &probeMark{pending: &s.drained.pending}
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

// probeFails counts the failing answers a readiness handler gives to what
// probers send, while a probe-aware drain (DrainUntilProbed) listens.
type probeFails struct {
	armed atomic.Bool
	n     atomic.Uint64
	nudge chan struct{} // nudged on each counted answer; capacity 1
}

func newProbeFails() probeFails { return probeFails{nudge: make(chan struct{}, 1)} }

// arm starts the count from zero, as the drain begins.
func (p *probeFails) arm() {
	p.n.Store(0)
	p.armed.Store(true)
}

func (p *probeFails) disarm() { p.armed.Store(false) }

// answered counts a failing answer to r, if a drain listens and r is what
// a prober sends (no body; the handler has checked the path and query).
func (p *probeFails) answered(r *http.Request) {
	if !p.armed.Load() || r.ContentLength != 0 {
		return
	}
	p.n.Add(1)
	select {
	case p.nudge <- struct{}{}:
	default:
	}
}
