package server

import (
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/probekit/probes"
)

// WarmupGuard returns middleware for application routes that answers 503
// with a Retry-After header unless probes.Serves says the phase may serve:
// while the service is Cold, Warming (a Rewarm included) or Broken, and
// during a drain that began before warm-up had finished, so traffic that
// slips past a balancer never sees half-loaded data. During a drain after
// warm-up, late requests are served as usual. retryAfter is rounded up to
// whole seconds, at least 1.
func WarmupGuard(lc *probes.Lifecycle, retryAfter time.Duration) func(http.Handler) http.Handler {
	retry := []string{strconv.Itoa(max(1, int(math.Ceil(retryAfter.Seconds()))))}
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if p := lc.Phase(); !probes.Serves(p, lc.Started()) {
				hdr := w.Header()
				hdr["Retry-After"] = retry
				hdr["Content-Type"] = hdrText
				hdr["Cache-Control"] = hdrNoStore
				w.WriteHeader(http.StatusServiceUnavailable)
				w.Write([]byte("service unavailable: " + p.String() + "\n")) //nolint:errcheck
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}
