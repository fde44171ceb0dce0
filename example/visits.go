package main

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/redis/go-redis/v9"

	"github.com/probekit/probes"
	"github.com/probekit/probes/app"
	"github.com/probekit/probes/readiness/redischeck"
	"github.com/probekit/probes/redact"
)

// visits counts the views of each item in Redis: a dependency of the
// route GET /api/visits/{id} alone, which a Redis outage fails fast while
// the other routes keep serving.
type visits struct {
	rdb *redis.Client
}

// newVisits opens a client for url (redis://[:password@]host:port/db).
func newVisits(url string) (*visits, error) {
	opts, err := redis.ParseURL(url)
	if err != nil {
		return nil, fmt.Errorf("REDIS_URL: %w", redact.Error(err))
	}
	// The client must honour its context: a frozen Redis is then failed
	// at the check's timeout instead of hanging it (redischeck refuses a
	// client without it).
	opts.ContextTimeoutEnabled = true
	return &visits{rdb: redis.NewClient(opts)}, nil
}

// part is the redis readiness check, shared by the fleet like the
// database, which owns the client (closed after the server has stopped).
func (v *visits) part() app.Part {
	return redischeck.Part("redis", v.rdb, redischeck.Owned(), redischeck.With(probes.Shared(), probes.Every(5*time.Second), probes.Timeout(time.Second)))
}

func (v *visits) serve(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), time.Second)
	defer cancel()
	n, err := v.rdb.Incr(ctx, "visits:"+chi.URLParam(r, "id")).Result()
	if err != nil {
		// The guard sees the 503 and runs the redis check at once, as for
		// the stock route.
		w.Header().Set("Retry-After", "1")
		http.Error(w, "service unavailable: redis did not answer", http.StatusServiceUnavailable)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprintf(w, "{\"id\":%q,\"visits\":%d}\n", chi.URLParam(r, "id"), n)
}
