// Command quickstart is the README's quick start: a chi API whose cache
// loads at start-up, with PostgreSQL, on the assembly.
package main

import (
	"context"
	"encoding/json"
	"log"
	"net/http"
	"os"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/probekit/probes/app"
	"github.com/probekit/probes/readiness/pgxcheck"
	"github.com/probekit/probes/server"
	"github.com/probekit/probes/startup"
)

func main() {
	pool, err := pgxpool.New(context.Background(), os.Getenv("DATABASE_URL"))
	if err != nil {
		log.Fatal(err)
	}
	r := chi.NewRouter()
	a, err := app.New(app.Config{
		Name:    "items",
		Handler: r, // the API on :8080; the probes on :8081
		Parts: []app.Part{
			app.Task("cache", loadCache),                      // startup passes once it returns
			pgxcheck.Part("postgres", pool, pgxcheck.Owned()), // readiness; the pool closed at exit
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	// 503 with Retry-After until the cache is warm.
	r.With(server.WarmupGuard(a.Lifecycle, time.Second)).Get("/api/items/{id}", items)
	// Serves until SIGTERM, failing readiness first and draining.
	if err := a.Run(context.Background()); err != nil {
		log.Fatal(err)
	}
}

// loadCache fills the cache, saying how far it has got.
func loadCache(ctx context.Context, p *startup.Progress) error {
	for i := range 10 {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(300 * time.Millisecond): // a tenth of the cache
		}
		p.Set(float64(i+1) / 10)
	}
	return nil
}

func items(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]string{"id": chi.URLParam(r, "id")})
}
