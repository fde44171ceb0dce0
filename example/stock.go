package main

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/probekit/probes"
	"github.com/probekit/probes/app"
	"github.com/probekit/probes/readiness/pgxcheck"
	"github.com/probekit/probes/startup"
)

// stock serves GET /api/stock/{id} from PostgreSQL.
type stock struct {
	pool *pgxpool.Pool
}

const stockRows = 1000

// databaseParts are what the database brings: a warm-up task that creates
// and fills the stock table, and the postgres readiness check in scope,
// which owns the pool (closed after the server has stopped).
func (s *stock) parts(scope string) []app.Part {
	inScope := probes.Shared()
	if scope == "local" {
		inScope = probes.Local()
	}
	return []app.Part{
		app.Task("stock", func(ctx context.Context, p *startup.Progress) error {
			if _, err := s.pool.Exec(ctx, `CREATE TABLE IF NOT EXISTS stock (id int PRIMARY KEY, quantity int NOT NULL)`); err != nil {
				return err
			}
			p.Set(0.5)
			_, err := s.pool.Exec(ctx, `INSERT INTO stock SELECT i, i % 97 FROM generate_series(1, $1) AS i ON CONFLICT (id) DO NOTHING`, stockRows)
			return err
		}),
		pgxcheck.Part("postgres", s.pool, pgxcheck.Owned(), pgxcheck.With(inScope, probes.Every(5*time.Second), probes.Timeout(time.Second))),
	}
}

func (s *stock) serve(w http.ResponseWriter, r *http.Request) {
	id, err := strconv.Atoi(chi.URLParam(r, "id"))
	if err != nil || id < 1 || id > stockRows {
		http.Error(w, "no such item", http.StatusNotFound)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), time.Second)
	defer cancel()
	var quantity int
	err = s.pool.QueryRow(ctx, `SELECT quantity FROM stock WHERE id = $1`, id).Scan(&quantity)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		http.Error(w, "no such item", http.StatusNotFound)
		return
	case err != nil:
		// The database failed before the check noticed: the route guard
		// (server.Needs) sees the 5xx and runs the check at once, at most
		// once per Recheck wait, so the next requests fail fast. A client
		// that hung up triggers nothing: that says nothing of the database.
		w.Header().Set("Retry-After", "1")
		http.Error(w, "service unavailable: the database did not answer", http.StatusServiceUnavailable)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]int{"id": id, "quantity": quantity}) //nolint:errcheck // the client went away
}
