package server

import (
	"context"
	"fmt"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/probekit/probes"
)

// DefaultShedWindow is how long a Shedder's check keeps failing after it
// last refused a request.
const DefaultShedWindow = 10 * time.Second

// Shedder bounds the application requests in flight. Its Middleware answers
// a request beyond the bound at once with 503 and Retry-After: 1, so that a
// busy process spends its CPU on the requests it has taken, and probes (which
// never pass through it) are not queued behind a backlog: a busy pod is not
// restarted for being busy.
//
// A Shedder is also a probes.Checker that warns (probes.ErrWarn) while the
// Shedder has refused a request within its window (DefaultShedWindow): add
// it to readiness, and readiness warns while the instance sheds, for
// monitors and balancers that weigh warn, without taking the instance out
// of rotation. Failing readiness on load would move the load onto the
// other instances, which then shed too: a fleet-wide outage made of a
// busy hour. Never add it to liveness.
type Shedder struct {
	max      int64
	inFlight atomic.Int64
	shed     atomic.Uint64
	lastShed atomic.Int64 // Unix ns of the last refusal; 0 for never
}

// NewShedder returns a Shedder that lets max application requests be in
// flight at once. A good bound is a small multiple of the cores for routes
// that burn CPU, and the database pool's size (plus what needs no
// database) for routes that wait on it. It fails unless max is positive.
func NewShedder(max int) (*Shedder, error) {
	if max < 1 {
		return nil, fmt.Errorf("server: NewShedder(%d): max must be at least 1", max)
	}
	return &Shedder{max: int64(max)}, nil
}

var (
	hdrRetry1 = retryAfter(time.Second)
	shedBody  = []byte("service unavailable: too busy, try again\n")
)

// Middleware admits a request while fewer than max are in flight and
// answers the others 503 with Retry-After: 1. Put it on application routes
// only: r.Use on a chi group or route, not on a router that serves the
// probes too (or serve the probes on their own listener).
func (s *Shedder) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.inFlight.Add(1) > s.max {
			s.inFlight.Add(-1)
			s.shed.Add(1)
			s.lastShed.Store(time.Now().UnixNano())
			unavailable(w, hdrRetry1, shedBody)
			return
		}
		defer s.inFlight.Add(-1)
		next.ServeHTTP(w, r)
	})
}

// Check returns a warning (wrapping probes.ErrWarn) while the Shedder has
// refused a request within its window, and nil otherwise.
func (s *Shedder) Check(context.Context) error {
	last := s.lastShed.Load()
	if last == 0 {
		return nil
	}
	if ago := time.Since(time.Unix(0, last)); ago < DefaultShedWindow {
		return fmt.Errorf("%w: shedding load: %d requests refused so far, the last %s ago (bound %d in flight)",
			probes.ErrWarn, s.shed.Load(), ago.Round(time.Millisecond), s.max)
	}
	return nil
}

// Shed returns how many requests the Shedder has refused.
func (s *Shedder) Shed() uint64 { return s.shed.Load() }

// InFlight returns how many requests the Shedder has admitted that are
// still in flight.
func (s *Shedder) InFlight() int { return int(s.inFlight.Load()) }

// Max returns the bound NewShedder was given.
func (s *Shedder) Max() int { return int(s.max) }
