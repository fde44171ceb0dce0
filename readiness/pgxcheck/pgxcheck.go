// Package pgxcheck is a readiness check for PostgreSQL over the service's own
// *pgxpool.Pool. It lives in a package of its own so that a service without
// PostgreSQL never compiles pgx.
//
// The check pings through the pool (or runs a query), so a probe never opens
// a connection of its own, and reports the pool's state as observed values:
// "connections" (acquired) and "utilization" (acquired / max, in %). A pool
// whose every connection is in use is reported at once, without waiting for
// a connection that will not come; the database itself is then asked over a
// connection of the check's own, so that a hung database is not mistaken for
// a busy service.
//
//	check, err := pgxcheck.New(pool)
//	...
//	err = ready.Add("postgres", check, probes.ComponentType("datastore"))
package pgxcheck

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/probekit/probes"
	"github.com/probekit/probes/internal/opt"
)

// Defaults of the options.
const (
	DefaultWarnAbove = 0.9
)

// Option configures a Checker.
type Option func(*config) error

type config struct {
	check     []probes.CheckOption // With's, for Part
	owned     bool
	query     string
	warnAbove float64
	exhausted probes.Status
}

// Query makes the check run sql (through Exec) instead of a ping, for
// example a query that touches the tables the service needs. Default: ping.
func Query(sql string) Option {
	return func(c *config) error {
		if sql == "" {
			return fmt.Errorf("Query(%q): the query must not be empty", sql)
		}
		c.query = sql
		return nil
	}
}

// WarnAbove makes the check warn when more than ratio of the pool's
// connections are in use. Default DefaultWarnAbove (0.9); 1 disables it.
func WarnAbove(ratio float64) Option {
	return func(c *config) error {
		if !(ratio > 0 && ratio <= 1) {
			return fmt.Errorf("WarnAbove(%v): the ratio must be in (0, 1]", ratio)
		}
		c.warnAbove = ratio
		return nil
	}
}

// Exhausted sets what a pool with every connection in use reports while the
// database answers: probes.Warn (the default: the database is fine, the
// service is busy, and failing readiness would move its load onto its peers)
// or probes.Fail. A database that does not answer fails either way.
func Exhausted(s probes.Status) Option {
	return func(c *config) error {
		if s != probes.Warn && s != probes.Fail {
			return fmt.Errorf("Exhausted(%s): use probes.Warn or probes.Fail", s)
		}
		c.exhausted = s
		return nil
	}
}

// Checker checks PostgreSQL through a pool. Create one with New.
// Owned makes the Checker own its pool: Close closes it. The assembly
// (package app) closes a checker it owns after the server has stopped,
// bounded; a service without it calls Close from a server.AfterClose hook.
// Default: the pool stays the service's to close.
func Owned() Option {
	return func(c *config) error { c.owned = true; return nil }
}

type Checker struct {
	pool *pgxpool.Pool
	cfg  config
}

var _ probes.Checker = (*Checker)(nil)

// New returns a Checker over pool. It returns an error naming the option
// when an option is invalid, or when pool is nil.
func New(pool *pgxpool.Pool, opts ...Option) (*Checker, error) {
	if pool == nil {
		return nil, fmt.Errorf("pgxcheck: New(nil): need a *pgxpool.Pool")
	}
	cfg := config{warnAbove: DefaultWarnAbove, exhausted: probes.Warn}
	if err := opt.Apply("pgxcheck", &cfg, opts); err != nil {
		return nil, err
	}
	return &Checker{pool: pool, cfg: cfg}, nil
}

// Check pings PostgreSQL through the pool (or runs the query), after
// reporting the pool's usage.
func (c *Checker) Check(ctx context.Context) error {
	st := c.pool.Stat()
	acquired, maxConns := st.AcquiredConns(), st.MaxConns()
	ratio := 0.0
	if maxConns > 0 {
		ratio = float64(acquired) / float64(maxConns)
	}
	probes.Observe(ctx, probes.Observation{Measurement: "connections", Value: float64(acquired), Unit: "connections"})
	probes.Observe(ctx, probes.Observation{Measurement: "utilization", Value: ratio * 100, Unit: "%"})
	if maxConns > 0 && acquired >= maxConns {
		return c.exhaustedPool(ctx, acquired, maxConns)
	}
	var err error
	if c.cfg.query != "" {
		_, err = c.pool.Exec(ctx, c.cfg.query)
	} else {
		err = c.pool.Ping(ctx)
	}
	if err != nil {
		return err
	}
	if ratio > c.cfg.warnAbove {
		return fmt.Errorf("pool busy: %d of %d connections in use: %w", acquired, maxConns, probes.ErrWarn)
	}
	return nil
}

// exhaustedPool handles a pool with every connection in use. Waiting for one
// would only time out, and saying nothing of the database would hide an
// outage (a hung database is one way to exhaust a pool). So it asks the
// database itself over a connection of its own, opened only while the pool
// is exhausted and closed at once: the database answering means the
// service is busy (the Exhausted status), and so does a database that
// refuses the connection for want of resources (SQLSTATE class 53, such as
// a role's CONNECTION LIMIT or max_connections equal to the pools' total);
// refusing it otherwise (a wrong password, say) or not answering means
// something is wrong with the database, and fails.
func (c *Checker) exhaustedPool(ctx context.Context, acquired, maxConns int32) error {
	exhausted := fmt.Errorf("pool exhausted: %d of %d connections in use", acquired, maxConns)
	conn, err := pgx.ConnectConfig(ctx, c.pool.Config().ConnConfig.Copy())
	if err == nil {
		err = conn.Ping(ctx)
		conn.Close(context.WithoutCancel(ctx)) //nolint:errcheck // best effort on a one-off connection
	}
	var pgErr *pgconn.PgError
	switch {
	case errors.As(err, &pgErr) && pgErr.Code == "53300":
		// too_many_connections (for the role, or max_connections
		// reached): the database answered, and it is as busy as the pool.
		// The rest of class 53 (a full disk, no memory) is trouble.
		exhausted = fmt.Errorf("%w, and the database refuses more: %w", exhausted, err)
	case errors.As(err, &pgErr):
		return fmt.Errorf("%w, and the database refused a connection: %w", exhausted, err)
	case err != nil:
		return fmt.Errorf("%w, and the database does not answer: %w", exhausted, err)
	}
	if c.cfg.exhausted == probes.Warn {
		return fmt.Errorf("%w: %w", exhausted, probes.ErrWarn)
	}
	return exhausted
}

// Owned reports whether c owns its pool (the Owned option).
func (c *Checker) Owned() bool { return c.cfg.owned }

// Close closes the pool when c owns it (Owned), and does nothing
// otherwise. Call it once the checks have stopped.
func (c *Checker) Close() error {
	if !c.cfg.owned {
		return nil
	}
	c.pool.Close()
	return nil
}
