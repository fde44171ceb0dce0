package sqlcheck_test

import (
	"context"
	"database/sql"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	_ "github.com/go-sql-driver/mysql"
	_ "github.com/jackc/pgx/v5/stdlib"
	"go.uber.org/goleak"

	"github.com/probekit/probes"
	"github.com/probekit/probes/internal/testenv/mariadbtest"
	"github.com/probekit/probes/internal/testenv/pgtest"
	"github.com/probekit/probes/internal/testenv/testutil"
	"github.com/probekit/probes/readiness"
	"github.com/probekit/probes/readiness/sqlcheck"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const (
	interval = 100 * time.Millisecond
	timeout  = 300 * time.Millisecond
	// generous bounds what the tests wait for a verdict or a return, for a
	// loaded machine: they assert behaviour, and log the times. How soon a
	// frozen server fails is measured by BenchmarkFrozenServer.
	generous = 10 * (interval + timeout)
)

const password = "hunter2-Secret"

// server is a real database server of one kind, as the fault table drives
// it.
type server struct {
	driver string
	dsn    string // the checked user's
	admin  *sql.DB
	// stop, start, pause, resume act on the server.
	stop, start, pause, resume func()
	// full makes the server refuse the checked user's new connections for
	// want of slots and cuts the user's other connections; it returns the
	// cure.
	full func(t *testing.T) func()
	// rekey changes the checked user's password and cuts its connections;
	// it returns the cure. Nil where the server ignores passwords.
	rekey func(t *testing.T) func()
}

func openDB(t testing.TB, driver, dsn string, maxOpen int) *sql.DB {
	t.Helper()
	db, err := sql.Open(driver, dsn)
	if err != nil {
		t.Fatal(err)
	}
	db.SetMaxOpenConns(maxOpen)
	t.Cleanup(func() { db.Close() })
	return db
}

// hold takes n connections of db until the test ends, and returns their
// server-side ids as query gives them.
func hold(t *testing.T, db *sql.DB, n int, query string) []int64 {
	t.Helper()
	var ids []int64
	for range n {
		conn, err := db.Conn(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		var id int64
		if err := conn.QueryRowContext(context.Background(), query).Scan(&id); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	return ids
}

func ids(t testing.TB, db *sql.DB, query string) []int64 {
	t.Helper()
	rows, err := db.Query(query)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			t.Fatal(err)
		}
		out = append(out, id)
	}
	return out
}

func exec(t testing.TB, db *sql.DB, stmt string) {
	t.Helper()
	if _, err := db.Exec(stmt); err != nil {
		t.Fatalf("%s: %v", stmt, err)
	}
}

func mariadb(t testing.TB) *server {
	m := mariadbtest.Start(t, mariadbtest.Password(password))
	admin := openDB(t, "mysql", m.RootDSN(), 2)
	const appConns = "SELECT id FROM information_schema.processlist WHERE user = 'app'"
	cut := func(keep []int64) {
		for _, id := range ids(t, admin, appConns) {
			if !slices.Contains(keep, id) {
				exec(t, admin, fmt.Sprintf("KILL CONNECTION %d", id))
			}
		}
	}
	return &server{
		driver: "mysql", dsn: m.DSN(password), admin: admin,
		stop: m.Stop, start: m.StartAgain, pause: m.Pause, resume: m.Resume,
		full: func(t *testing.T) func() {
			// Ten held, max_connections lowered to ten: existing
			// connections stay, the checker's are cut, new ones refused.
			fillers := openDB(t, "mysql", m.DSN(password), 0)
			held := hold(t, fillers, 10, "SELECT CONNECTION_ID()")
			exec(t, admin, "SET GLOBAL max_connections = 10")
			for range 5 {
				cut(held)
				// A slot the checker took back before the cut: take it.
				for {
					conn, err := fillers.Conn(context.Background())
					if err != nil {
						break
					}
					t.Cleanup(func() { conn.Close() })
					var id int64
					if err := conn.QueryRowContext(context.Background(), "SELECT CONNECTION_ID()").Scan(&id); err != nil {
						break
					}
					held = append(held, id)
				}
				if len(ids(t, admin, appConns)) == len(held) {
					break
				}
			}
			return func() {
				exec(t, admin, "SET GLOBAL max_connections = 151")
				fillers.Close()
			}
		},
		rekey: func(t *testing.T) func() {
			exec(t, admin, "ALTER USER 'app'@'%' IDENTIFIED BY 'another-"+password+"'")
			cut(nil)
			return func() { exec(t, admin, "ALTER USER 'app'@'%' IDENTIFIED BY '"+password+"'") }
		},
	}
}

func postgres(t testing.TB) *server {
	pg := pgtest.Start(t)
	admin := openDB(t, "pgx", pg.URL(""), 2)
	exec(t, admin, "CREATE ROLE app LOGIN")
	dsn := strings.Replace(pg.URL(password), "postgres:"+password+"@", "app:"+password+"@", 1) + "&connect_timeout=1"
	return &server{
		driver: "pgx", dsn: dsn, admin: admin,
		stop: pg.Stop, start: pg.StartAgain, pause: pg.Pause, resume: pg.Resume,
		full: func(t *testing.T) func() {
			// The role's CONNECTION LIMIT: PostgreSQL answers 53300 as
			// for max_connections, and the limit can be lowered live.
			fillers := openDB(t, "pgx", dsn, 0)
			held := hold(t, fillers, 3, "SELECT pg_backend_pid()")
			exec(t, admin, "ALTER ROLE app CONNECTION LIMIT 3")
			for _, pid := range ids(t, admin, "SELECT pid FROM pg_stat_activity WHERE usename = 'app'") {
				if !slices.Contains(held, pid) {
					exec(t, admin, fmt.Sprintf("SELECT pg_terminate_backend(%d)", pid))
				}
			}
			return func() {
				exec(t, admin, "ALTER ROLE app CONNECTION LIMIT -1")
				fillers.Close()
			}
		},
	}
}

var servers = []struct {
	name  string
	start func(t testing.TB) *server
}{
	{"mariadb", mariadb},
	{"postgres", postgres},
}

func newChecker(t testing.TB, db *sql.DB, opts ...sqlcheck.Option) *sqlcheck.Checker {
	t.Helper()
	c, err := sqlcheck.New(db, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func newGate(t *testing.T, check probes.Checker) *readiness.Gate {
	t.Helper()
	return testutil.ReadyGate(t, "db", check, probes.Every(interval), probes.Timeout(timeout), probes.Local())
}

// holds reports whether msg holds one of the |-separated alternatives.
func holds(msg, alternatives string) bool {
	for _, a := range strings.Split(alternatives, "|") {
		if strings.Contains(msg, a) {
			return true
		}
	}
	return false
}

// waitFor polls the gate until the check's verdict is want with a reason
// holding one of reason's alternatives, from an execution that ended after
// since, and returns how long that took.
func waitFor(t *testing.T, ready *readiness.Gate, since time.Time, want probes.Status, reason string, within time.Duration) time.Duration {
	t.Helper()
	began := time.Now()
	for {
		res, _ := ready.Report().Check("db")
		msg := ""
		if res.Err != nil {
			msg = res.Err.Error()
		}
		if res.Status == want && res.Time.After(since) && holds(msg, reason) {
			if strings.Contains(msg, password) {
				t.Errorf("reason holds the password: %s", msg)
			}
			return time.Since(began)
		}
		if time.Since(began) > within {
			t.Fatalf("verdict: got %s (%v) after %s, want %s with %q", res.Status, res.Err, within, want, reason)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// TestFaults proves the fault table against real servers, MariaDB over
// go-sql-driver/mysql and PostgreSQL over pgx's stdlib: each fault's
// verdict and reason, how long it took to show, and the return to pass
// after the cure. The reasons never hold the password.
func TestFaults(t *testing.T) {
	detect := generous
	hung := "timed out after 300ms|i/o timeout|context deadline exceeded"
	for _, srv := range servers {
		t.Run(srv.name, func(t *testing.T) {
			s := srv.start(t)
			tests := []struct {
				name string
				// maxOpen is the checked pool's MaxOpenConns; busy holds
				// that many, exhausting it.
				maxOpen int
				busy    bool
				opts    []sqlcheck.Option
				fault   func(t *testing.T) func() // returns the cure
				status  probes.Status
				reason  string
				within  time.Duration
			}{
				{name: "stopped", maxOpen: 4, fault: func(*testing.T) func() { s.stop(); return s.start },
					status: probes.Fail, reason: "connection refused|bad connection|EOF|broken pipe", within: detect},
				{name: "frozen", maxOpen: 4, fault: func(*testing.T) func() { s.pause(); return s.resume },
					status: probes.Fail, reason: hung, within: detect},
				{name: "restarted", maxOpen: 4, fault: func(*testing.T) func() { s.stop(); s.start(); return func() {} },
					status: probes.Pass, within: detect},
				{name: "at its connection limit", maxOpen: 4, fault: s.full,
					status: probes.Warn, reason: "server at its connection limit", within: detect},
				{name: "at its connection limit, Exhausted(Fail)", maxOpen: 4, fault: s.full,
					opts:   []sqlcheck.Option{sqlcheck.Exhausted(probes.Fail)},
					status: probes.Fail, reason: "server at its connection limit", within: detect},
				{name: "wrong password", maxOpen: 4, fault: s.rekey,
					status: probes.Fail, reason: "Access denied|password authentication failed", within: detect},
				{name: "pool exhausted", maxOpen: 2, busy: true, opts: []sqlcheck.Option{sqlcheck.DSN(s.dsn)},
					fault: func(*testing.T) func() { return func() {} }, status: probes.Warn, reason: "pool exhausted: 2 of 2", within: detect},
				{name: "pool exhausted, Exhausted(Fail)", maxOpen: 2, busy: true,
					opts:  []sqlcheck.Option{sqlcheck.DSN(s.dsn), sqlcheck.Exhausted(probes.Fail)},
					fault: func(*testing.T) func() { return func() {} }, status: probes.Fail, reason: "pool exhausted: 2 of 2", within: detect},
				{name: "pool exhausted, frozen", maxOpen: 2, busy: true, opts: []sqlcheck.Option{sqlcheck.DSN(s.dsn)},
					fault:  func(*testing.T) func() { s.pause(); return s.resume },
					status: probes.Fail, reason: hung + "|does not answer", within: detect},
				{name: "pool exhausted, no DSN", maxOpen: 2, busy: true,
					fault:  func(*testing.T) func() { return func() {} },
					status: probes.Fail, reason: hung + "|none came free", within: detect},
			}
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					if tt.fault == nil || tt.name == "wrong password" && s.rekey == nil {
						t.Skip("the test server ignores passwords (trust authentication)")
					}
					db := openDB(t, s.driver, s.dsn, tt.maxOpen)
					ready := newGate(t, newChecker(t, db, tt.opts...))
					waitFor(t, ready, time.Time{}, probes.Pass, "", 10*time.Second)
					var release []*sql.Conn
					if tt.busy {
						for range tt.maxOpen {
							conn, err := db.Conn(context.Background())
							if err != nil {
								t.Fatal(err)
							}
							release = append(release, conn)
						}
					}
					began := time.Now()
					cure := tt.fault(t)
					// Timed from the fault in place; any result since it
					// began counts, but a pass must come after.
					since := began
					if tt.status == probes.Pass {
						since = time.Now()
					}
					detect := waitFor(t, ready, since, tt.status, tt.reason, tt.within)
					for _, c := range release {
						c.Close()
					}
					cured := time.Now()
					cure()
					recovery := waitFor(t, ready, cured, probes.Pass, "", 15*time.Second)
					t.Logf("fault table: %s: %s: %s (%s) after %s; pass %s after the cure", srv.name, tt.name,
						tt.status, tt.reason, detect.Round(time.Millisecond), recovery.Round(time.Millisecond))
				})
			}
		})
	}
}

// A frozen server: Check itself returns after its context's deadline
// rather than hanging, and hung checks leave no goroutine behind.
func TestFrozenCheckReturns(t *testing.T) {
	for _, srv := range servers {
		t.Run(srv.name, func(t *testing.T) {
			s := srv.start(t)
			check := newChecker(t, openDB(t, s.driver, s.dsn, 4))
			if err := check.Check(context.Background()); err != nil {
				t.Fatal(err)
			}
			s.pause()
			defer s.resume()
			base := runtime.NumGoroutine()
			for i := range 5 {
				var err error
				took := testutil.Returns(t, generous, func() {
					ctx, cancel := context.WithTimeout(context.Background(), timeout)
					defer cancel()
					err = check.Check(ctx)
				})
				if probes.StatusOf(err) != probes.Fail {
					t.Fatalf("hung check %d: got %v after %s, want a failure", i, err, took)
				}
			}
			testutil.Eventually(t, "no goroutine growth across hung checks", func() bool {
				return runtime.NumGoroutine() <= base+2
			})
		})
	}
}

// BenchmarkFrozenServer measures how soon a database server that stopped
// answering (SIGSTOP) is reported failing (ns/op), against the design's
// target of the check's timeout plus 100 ms (ms-past-timeout).
func BenchmarkFrozenServer(b *testing.B) {
	for _, srv := range servers {
		s := srv.start(b) // once, not at every b.N the sub-benchmark is run with
		b.Run(srv.name, func(b *testing.B) {
			check := newChecker(b, openDB(b, s.driver, s.dsn, 4))
			if err := check.Check(context.Background()); err != nil {
				b.Fatal(err)
			}
			s.pause()
			b.Cleanup(s.resume)
			testutil.TimeToFail(b, check, timeout)
		})
	}
}

func TestObservations(t *testing.T) {
	s := mariadb(t)
	db := openDB(t, s.driver, s.dsn, 4)
	ready := newGate(t, newChecker(t, db))
	waitFor(t, ready, time.Time{}, probes.Pass, "", 10*time.Second)
	// Executions counts the one in flight too, whose result is not in yet:
	// wait for a result recorded after the first execution opened a
	// connection.
	got := map[string]float64{}
	testutil.Eventually(t, "an execution that saw the first one's connection", func() bool {
		res, _ := ready.Report().Check("db")
		clear(got)
		for _, o := range res.Observations {
			got[o.Measurement] = o.Value
		}
		return got["open"] >= 1
	})
	for name, want := range map[string]float64{"connections": 0, "utilization": 0, "open": 1, "idle": 1, "waitCount": 0, "waitDuration": 0} {
		if v, ok := got[name]; !ok || v != want {
			t.Errorf("%s: got %v (present %t), want %v", name, v, ok, want)
		}
	}
}

func TestQuery(t *testing.T) {
	s := mariadb(t)
	db := openDB(t, s.driver, s.dsn, 2)
	tests := []struct {
		name   string
		query  string
		status probes.Status
		reason string
	}{
		{"good", "SELECT 1", probes.Pass, ""},
		{"missing table", "SELECT * FROM no_such_table", probes.Fail, "no_such_table' doesn't exist"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ready := newGate(t, newChecker(t, db, sqlcheck.Query(tt.query)))
			waitFor(t, ready, time.Time{}, tt.status, tt.reason, 10*time.Second)
		})
	}
}

func TestNewRejects(t *testing.T) {
	db, err := sql.Open("mysql", "app:"+password+"@tcp(127.0.0.1:1)/app")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	tests := []struct {
		name string
		opt  sqlcheck.Option
		want string
	}{
		{"empty query", sqlcheck.Query(""), `Query("")`},
		{"ratio zero", sqlcheck.WarnAbove(0), "WarnAbove(0)"},
		{"ratio above one", sqlcheck.WarnAbove(1.5), "WarnAbove(1.5)"},
		{"exhausted pass", sqlcheck.Exhausted(probes.Pass), "Exhausted(pass)"},
		{"empty DSN", sqlcheck.DSN(""), `DSN("")`},
		{"bad DSN", sqlcheck.DSN("app:" + password + "@tcp(127.0.0.1:1/app"), "DSN("},
		{"nil connector", sqlcheck.Connector(nil), "Connector(nil)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := sqlcheck.New(db, nil, tt.opt)
			if err == nil || c != nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, %v; want an error naming %s", c, err, tt.want)
			}
			if strings.Contains(err.Error(), password) {
				t.Errorf("error holds the password: %v", err)
			}
		})
	}
	if _, err := sqlcheck.New(nil); err == nil {
		t.Error("New(nil): got nil error")
	}
}
