package sqlcheck_test

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"strings"
	"testing"
	"time"

	"github.com/probekit/probes"
	"github.com/probekit/probes/app"
	"github.com/probekit/probes/internal/testenv/testutil"
	"github.com/probekit/probes/readiness/sqlcheck"
)

// TestOpen: the pool Open opens tells an exhausted pool from a dead server
// with no option given (it warns, where New without DSN fails after the
// timeout), and the checker owns it: the assembly closes it after the
// server has stopped.
func TestOpen(t *testing.T) {
	for _, srv := range servers {
		t.Run(srv.name, func(t *testing.T) {
			s := srv.start(t)
			db, check, err := sqlcheck.Open(s.driver, s.dsn)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { check.Close() })
			if !check.Owned() {
				t.Error("Open's checker does not own its pool")
			}
			db.SetMaxOpenConns(2)
			hold(t, db, 2, "SELECT 1")
			ready := newGate(t, check)
			waitFor(t, ready, time.Now(), probes.Warn, "pool exhausted: 2 of 2", generous)

			db2, check2, err := sqlcheck.Open(s.driver, s.dsn)
			if err != nil {
				t.Fatal(err)
			}
			a, err := app.New(app.Config{ProbeAddr: testutil.FreeAddr(t), Drain: app.NoDrain, Parts: []app.Part{
				app.Check("db", check2, probes.Every(10*time.Millisecond)),
			}})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- a.Run(ctx) }()
			testutil.Eventually(t, "db passing", func() bool {
				res, _ := a.Readiness.Report().Check("db")
				return res.Status == probes.Pass && !res.Time.IsZero()
			})
			cancel()
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			if err := db2.Ping(); err == nil || !strings.Contains(err.Error(), "closed") {
				t.Errorf("the owned pool after the stop: ping %v, want it closed", err)
			}
		})
	}
}

// TestOpenRejects: an unknown driver or a DSN the driver cannot parse is
// an error naming it, without the password; OpenDB refuses nil.
func TestOpenRejects(t *testing.T) {
	if _, _, err := sqlcheck.Open("nosuchdriver", "x"); err == nil || !strings.Contains(err.Error(), `Open("nosuchdriver"`) {
		t.Errorf("unknown driver: %v", err)
	}
	if _, _, err := sqlcheck.Open("mysql", "app:"+password+"@tcp(127.0.0.1:3306"); err == nil || strings.Contains(err.Error(), password) {
		t.Errorf("a DSN the driver cannot parse: %v, want an error without the password", err)
	}
	if _, _, err := sqlcheck.OpenDB(nil); err == nil || !strings.Contains(err.Error(), "OpenDB(nil)") {
		t.Errorf("OpenDB(nil): %v", err)
	}
	var _ func(driver.Connector, ...sqlcheck.Option) (*sql.DB, *sqlcheck.Checker, error) = sqlcheck.OpenDB
}
