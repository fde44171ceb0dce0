// Package sqlcheck is a readiness check over the service's own *sql.DB,
// whatever its driver. It lives in a package of its own, on the standard
// library only, so that it compiles no driver the service does not use.
//
// The check pings through the pool (or runs a query), so a probe never opens
// a connection of its own, and reports the pool's state (sql.DBStats) as
// observed values: "connections" (in use), "utilization" (in use / max open,
// in %, when there is a maximum), "open", "idle", "waitCount" (waits for a
// connection since the pool opened) and "waitDuration" (their total, in ms).
//
// A server that answers with a problem is told from one that does not
// answer:
//
//   - a server at its connection limit, refusing a new connection with "too
//     many connections" (MySQL and MariaDB error 1040, PostgreSQL SQLSTATE
//     53300), has answered: it warns (Exhausted makes it fail);
//
//   - a pool with every connection in use (MaxOpenConns reached) is reported
//     at once, without waiting for a connection that may not come; with a
//     DSN or Connector option the server itself is then asked over a
//     connection of the check's own, so that a hung server is not mistaken
//     for a busy service: answering, or refusing for too many connections,
//     warns (the Exhausted status), and not answering fails;
//
//   - a server that does not answer fails at the check's timeout, as the
//     driver honours the context (go-sql-driver/mysql and pgx's stdlib do).
//
// Open the pool through the package, so that the check knows how to reach
// the server past an exhausted pool, and owns the pool:
//
//	db, check, err := sqlcheck.Open("mysql", dsn)
//	...
//	err = ready.Add("mysql", check, probes.ComponentType("datastore")) // or app.Check
package sqlcheck

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"strings"

	"github.com/probekit/probes"
	"github.com/probekit/probes/internal/opt"
	"github.com/probekit/probes/redact"
)

// Defaults of the options.
const (
	DefaultWarnAbove = 0.9
)

// Option configures a Checker.
type Option func(*config) error

type config struct {
	owned     bool
	query     string
	warnAbove float64
	exhausted probes.Status
	dsn       string
	connector driver.Connector
}

// Query makes the check run query (through ExecContext) instead of a ping,
// for example one that touches the tables the service needs. Default: ping.
func Query(query string) Option {
	return func(c *config) error {
		if query == "" {
			return fmt.Errorf("Query(%q): the query must not be empty", query)
		}
		c.query = query
		return nil
	}
}

// WarnAbove makes the check warn when more than ratio of the pool's
// connections (MaxOpenConns) are in use. Default DefaultWarnAbove (0.9); 1
// disables it. Without MaxOpenConns there is no ratio.
func WarnAbove(ratio float64) Option {
	return func(c *config) error {
		if !(ratio > 0 && ratio <= 1) {
			return fmt.Errorf("WarnAbove(%v): the ratio must be in (0, 1]", ratio)
		}
		c.warnAbove = ratio
		return nil
	}
}

// Exhausted sets what an exhausted pool, or a server at its connection
// limit, reports while the server answers: probes.Warn (the default: the
// server is fine, the service is busy, and failing readiness would move its
// load onto its peers) or probes.Fail. A server that does not answer fails
// either way.
func Exhausted(s probes.Status) Option {
	return func(c *config) error {
		if s != probes.Warn && s != probes.Fail {
			return fmt.Errorf("Exhausted(%s): use probes.Warn or probes.Fail", s)
		}
		c.exhausted = s
		return nil
	}
}

// DSN gives the data source name the pool was opened with, so that with
// every connection of the pool in use the check can ask the server over a
// connection of its own, opened with the pool's driver and closed at once.
// Default: none; an exhausted pool is then pinged through, waiting for a
// connection to come free within the check's timeout.
func DSN(dsn string) Option {
	return func(c *config) error {
		if dsn == "" {
			return errors.New(`DSN(""): the data source name must not be empty`)
		}
		c.dsn = dsn
		return nil
	}
}

// Connector is DSN for a pool opened with sql.OpenDB: the check opens its
// own connection with connector when the pool is exhausted.
func Connector(connector driver.Connector) Option {
	return func(c *config) error {
		if connector == nil {
			return errors.New("Connector(nil): need a driver.Connector")
		}
		c.connector = connector
		return nil
	}
}

// Checker checks a database through a *sql.DB. Create one with New.
type Checker struct {
	db  *sql.DB
	cfg config
}

var _ probes.Checker = (*Checker)(nil)

// Open opens a pool of the driver driverName for dsn (sql.Open) and
// returns it with a Checker over it that tells an exhausted pool from a
// dead server (DSN(dsn): with every connection in use, the server is asked
// over a connection of the check's own) and owns the pool (Owned: Close
// closes it, and the assembly's app.Check closes it after the server has
// stopped). Prefer it to sql.Open and New: a *sql.DB shows neither its DSN
// nor its connector, so New alone cannot ask the server past an exhausted
// pool, and under load a busy instance's check then fails after its
// timeout, taking the instance out. Set the pool's limits
// (SetMaxOpenConns, ...) on the *sql.DB it returns. It fails as sql.Open
// and New do; the pool is closed then.
func Open(driverName, dsn string, opts ...Option) (*sql.DB, *Checker, error) {
	db, err := sql.Open(driverName, dsn)
	if err != nil {
		return nil, nil, redact.Error(fmt.Errorf("sqlcheck: Open(%q, %q): %w", driverName, redact.String(dsn), err))
	}
	c, err := New(db, append([]Option{DSN(dsn), Owned()}, opts...)...)
	if err != nil {
		db.Close()
		return nil, nil, err
	}
	return db, c, nil
}

// OpenDB is Open for a pool opened with a connector (sql.OpenDB), which the
// check also opens its own connection with (Connector).
func OpenDB(connector driver.Connector, opts ...Option) (*sql.DB, *Checker, error) {
	if connector == nil {
		return nil, nil, errors.New("sqlcheck: OpenDB(nil): need a driver.Connector")
	}
	db := sql.OpenDB(connector)
	c, err := New(db, append([]Option{Connector(connector), Owned()}, opts...)...)
	if err != nil {
		db.Close()
		return nil, nil, err
	}
	return db, c, nil
}

// Owned makes the Checker own its pool: Close closes it. Open and OpenDB
// set it. The assembly (package app) closes a checker it owns after the
// server has stopped, bounded. Default (New): the pool stays the
// service's to close.
func Owned() Option {
	return func(c *config) error { c.owned = true; return nil }
}

// Owned reports whether c owns its pool (Owned, Open, OpenDB).
func (c *Checker) Owned() bool { return c.cfg.owned }

// Close closes the pool when c owns it, and does nothing otherwise. Call
// it once the checks have stopped.
func (c *Checker) Close() error {
	if !c.cfg.owned {
		return nil
	}
	return c.db.Close()
}

// New returns a Checker over db. It returns an error naming the option
// when an option is invalid (a DSN the driver cannot parse, for one), or
// when db is nil.
func New(db *sql.DB, opts ...Option) (*Checker, error) {
	if db == nil {
		return nil, errors.New("sqlcheck: New(nil): need a *sql.DB")
	}
	cfg := config{warnAbove: DefaultWarnAbove, exhausted: probes.Warn}
	if err := opt.Apply("sqlcheck", &cfg, opts); err != nil {
		return nil, err
	}
	if cfg.dsn != "" && cfg.connector == nil {
		d := db.Driver()
		if dc, ok := d.(driver.DriverContext); ok {
			c, err := dc.OpenConnector(cfg.dsn)
			if err != nil {
				return nil, redact.Error(fmt.Errorf("sqlcheck: DSN(%q): %w", redact.String(cfg.dsn), err))
			}
			cfg.connector = c
		} else {
			cfg.connector = dsnConnector{d, cfg.dsn}
		}
	}
	return &Checker{db: db, cfg: cfg}, nil
}

// Check pings the database through the pool (or runs the query), after
// reporting the pool's usage.
func (c *Checker) Check(ctx context.Context) error {
	st := c.db.Stats()
	ratio := 0.0
	if st.MaxOpenConnections > 0 {
		ratio = float64(st.InUse) / float64(st.MaxOpenConnections)
		probes.Observe(ctx, probes.Observation{Measurement: "utilization", Value: ratio * 100, Unit: "%"})
	}
	probes.Observe(ctx, probes.Observation{Measurement: "connections", Value: float64(st.InUse), Unit: "connections"})
	probes.Observe(ctx, probes.Observation{Measurement: "open", Value: float64(st.OpenConnections), Unit: "connections"})
	probes.Observe(ctx, probes.Observation{Measurement: "idle", Value: float64(st.Idle), Unit: "connections"})
	probes.Observe(ctx, probes.Observation{Measurement: "waitCount", Value: float64(st.WaitCount), Unit: "waits"})
	probes.Observe(ctx, probes.Observation{Measurement: "waitDuration", Value: float64(st.WaitDuration.Microseconds()) / 1000, Unit: "ms"})

	exhausted := st.MaxOpenConnections > 0 && st.InUse >= st.MaxOpenConnections
	if exhausted && c.cfg.connector != nil {
		return redact.Error(c.exhaustedPool(ctx, st))
	}
	var err error
	if c.cfg.query != "" {
		_, err = c.db.ExecContext(ctx, c.cfg.query)
	} else {
		err = c.db.PingContext(ctx)
	}
	switch {
	case err != nil && tooManyConnections(err):
		// A new connection refused: the server answered, and is full.
		return redact.Error(c.busy(fmt.Errorf("server at its connection limit: %w", err)))
	case err != nil && exhausted:
		return redact.Error(fmt.Errorf("pool exhausted: %d of %d connections in use, and none came free: %w",
			st.InUse, st.MaxOpenConnections, err))
	case err != nil:
		return redact.Error(err)
	case ratio > c.cfg.warnAbove:
		return fmt.Errorf("pool busy: %d of %d connections in use: %w", st.InUse, st.MaxOpenConnections, probes.ErrWarn)
	}
	return nil
}

// busy gives err the Exhausted status.
func (c *Checker) busy(err error) error {
	if c.cfg.exhausted == probes.Warn {
		return fmt.Errorf("%w: %w", err, probes.ErrWarn)
	}
	return err
}

// exhaustedPool handles a pool with every connection in use. Waiting for one
// would only time out, and saying nothing of the server would hide an
// outage (a hung server is one way to exhaust a pool). So it asks the
// server over a connection of its own, closed at once: the server
// answering, or refusing it for too many connections, means the service is
// busy (the Exhausted status); refusing it otherwise (a wrong password,
// say) or not answering fails.
func (c *Checker) exhaustedPool(ctx context.Context, st sql.DBStats) error {
	exhausted := fmt.Errorf("pool exhausted: %d of %d connections in use", st.InUse, st.MaxOpenConnections)
	conn, err := c.cfg.connector.Connect(ctx)
	if err == nil {
		if p, ok := conn.(driver.Pinger); ok {
			err = p.Ping(ctx)
		}
		conn.Close() //nolint:errcheck // best effort on a one-off connection
	}
	switch {
	case err != nil && tooManyConnections(err):
		return c.busy(fmt.Errorf("%w, and the server refuses more: %w", exhausted, err))
	case err != nil && ctx.Err() != nil:
		return fmt.Errorf("%w, and the server does not answer: %w", exhausted, err)
	case err != nil:
		return fmt.Errorf("%w, and a connection of the check's own failed: %w", exhausted, err)
	}
	return c.busy(exhausted)
}

// tooManyConnections reports whether err is a server refusing a connection
// for want of connection slots: SQLSTATE 53300 (PostgreSQL's
// too_many_connections; the rest of class 53, a full disk or no memory, is
// trouble, not business) or 08004 as a driver's SQLState method gives it,
// or the message of MySQL and MariaDB errors 1040 ("Too many connections")
// and 1203 (max_user_connections), or PostgreSQL's "too many clients".
func tooManyConnections(err error) bool {
	var coded interface{ SQLState() string }
	if errors.As(err, &coded) {
		if s := coded.SQLState(); s == "53300" || s == "08004" {
			return true
		}
	}
	msg := strings.ToLower(err.Error())
	for _, sign := range []string{"too many connections", "max_user_connections", "too many clients"} {
		if strings.Contains(msg, sign) {
			return true
		}
	}
	return false
}

// dsnConnector opens connections with a driver that has no
// OpenConnector.
type dsnConnector struct {
	d   driver.Driver
	dsn string
}

func (c dsnConnector) Connect(context.Context) (driver.Conn, error) { return c.d.Open(c.dsn) }
func (c dsnConnector) Driver() driver.Driver                        { return c.d }
