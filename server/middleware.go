package server

import (
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/probekit/probes"
)

// WarmupGuard returns middleware for application routes that answers 503 with
// a Retry-After header while lc is Cold or Warming (or Broken), so that traffic
// which slips past a balancer gets an honest answer instead of a half-loaded
// one. It passes requests through while Ready, Draining and Stopped: during a
// drain, late requests are still served. retryAfter is rounded up to whole
// seconds, at least 1.
func WarmupGuard(lc *probes.Lifecycle, retryAfter time.Duration) func(http.Handler) http.Handler {
	retry := []string{strconv.Itoa(max(1, int(math.Ceil(retryAfter.Seconds()))))}
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			switch p := lc.Phase(); p {
			case probes.Cold, probes.Warming, probes.Broken:
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
