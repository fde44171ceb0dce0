package server

import (
	"errors"
	"fmt"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/probekit/probes"
	"github.com/probekit/probes/internal/versioned"
)

// WarmupGuard returns middleware for application routes that answers 503
// with a Retry-After header unless probes.Serves says the phase may serve:
// while the service is Cold, Warming (a Rewarm included) or Broken, and
// during a drain that began before warm-up had finished, so traffic that
// slips past a balancer never sees half-loaded data. During a drain after
// warm-up, late requests are served as usual. wait is sent as Retry-After,
// rounded up to whole seconds, at least 1.
func WarmupGuard(lc *probes.Lifecycle, wait time.Duration) func(http.Handler) http.Handler {
	retry := retryAfter(wait)
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if p := lc.Phase(); !probes.Serves(p, lc.Started()) {
				unavailable(w, retry, []byte("service unavailable: "+p.String()+"\n"))
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

// Needs returns middleware for the application routes that need the named
// checks of g, such as a readiness gate's "postgres": while any of them
// fails, a request gets 503 at once, with a Retry-After header (the longest
// interval of the failing checks, in whole seconds, at least 1: when the
// next result may change the answer) and a body that names them, and the
// handler is not called. Clients fail fast instead of waiting on a timeout,
// and routes that do not need the dependency keep serving: with a shared
// dependency (probes.Shared), readiness keeps the instance in rotation and
// the guard fails only what cannot work. The body never carries the
// check's error text.
//
// It reads the check's own verdict (after its thresholds), whatever its
// scope or criticality, from a cached answer re-read only when g's version
// changes. Put WarmupGuard outside it: warm-up answers first, and a route
// is guarded by its dependencies only once the service serves.
//
// Passive checks: when g can run a check on demand (a Trigger(name string)
// method, as readiness and liveness gates have), a request that the handler
// answers with a 5xx status, or whose context has reached its deadline when
// the handler returns (a timeout set outside the guard, such as
// http.TimeoutHandler's), triggers each named check, so that an outage is
// seen after one failed request rather than one interval. Failed does the
// same for a failure the handler reports itself. A 1xx to 4xx answer, a
// client that went away (the context cancelled), and the 503 of this
// package's WarmupGuard, Needs or Shedder nested inside trigger nothing; put
// other middleware that answers 5xx on its own outside the guard. Trigger
// bounds the cost: a check runs at most once per its Recheck wait however
// many requests fail, and the guard calls it inline, with no goroutine or
// queue of its own. The handler writes through a pooled wrapper that keeps
// http.Flusher, http.Hijacker, io.ReaderFrom and http.Pusher, and unwraps
// for http.ResponseController; like any ResponseWriter, it must not be used
// once the handler has returned.
//
// Needs fails when g is nil, when no check is named, or when a name is not
// one of g's checks.
func Needs(g probes.Gate, checks ...string) (func(http.Handler) http.Handler, error) {
	if g == nil {
		return nil, errors.New("server: Needs(nil): need a gate")
	}
	if len(checks) == 0 {
		return nil, errors.New("server: Needs: name at least one check")
	}
	rep := g.Report()
	for _, name := range checks {
		if _, ok := rep.Check(name); !ok {
			return nil, fmt.Errorf("server: Needs: %s has no check %q", g.Kind(), name)
		}
	}
	n := &needs{gate: g, checks: slices.Clone(checks)}
	n.trigger, _ = g.(triggerer)
	n.writers.New = func() any { return &passive{guard: n} }
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if refuse := n.current(); refuse != nil {
				unavailable(w, refuse.retry, refuse.body)
				return
			}
			if n.trigger == nil {
				next.ServeHTTP(w, r)
				return
			}
			n.serve(next, w, r)
		})
	}, nil
}

type needs struct {
	gate    probes.Gate
	checks  []string
	state   versioned.Cache[*refusal] // nil: every needed check passes or warns
	trigger triggerer                 // nil: the gate cannot run a check on demand
	writers sync.Pool                 // of *passive, whose guard is this one
}

// refusal is the guard's answer while a needed check fails.
type refusal struct {
	retry []string
	body  []byte
}

// current returns the refusal for the gate's present state, nil for none.
func (n *needs) current() *refusal {
	if f, ok := n.state.Load(n.gate.Version()); ok {
		return f
	}
	return n.state.Update(n.gate.Version, n.refusal)
}

func (n *needs) refusal() *refusal {
	rep := n.gate.Report()
	var failing []string
	var longest time.Duration
	for _, name := range n.checks {
		if c, ok := rep.Check(name); ok && c.Status == probes.Fail {
			failing = append(failing, name)
			longest = max(longest, c.Interval)
		}
	}
	if len(failing) == 0 {
		return nil
	}
	verb := ", which is "
	if len(failing) > 1 {
		verb = ", which are "
	}
	return &refusal{
		retry: retryAfter(longest),
		body:  []byte("service unavailable: this route needs " + strings.Join(failing, ", ") + verb + "failing\n"),
	}
}

// retryAfter is a Retry-After value: d in whole seconds, rounded up, at
// least 1.
func retryAfter(d time.Duration) []string {
	return []string{strconv.Itoa(max(1, int(math.Ceil(d.Seconds()))))}
}

// unavailable answers 503 with Retry-After and a plain-text body. The
// Needs guards around w do not take it for the dependency's failure.
func unavailable(w http.ResponseWriter, retry []string, body []byte) {
	markRefused(w)
	hdr := w.Header()
	hdr["Retry-After"] = retry
	hdr["Content-Type"] = hdrText
	hdr["Cache-Control"] = hdrNoStore
	w.WriteHeader(http.StatusServiceUnavailable)
	w.Write(body) //nolint:errcheck // the client went away; nothing to do
}
