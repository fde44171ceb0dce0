package pgxcheck_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/probekit/probes"
	"github.com/probekit/probes/app"
	"github.com/probekit/probes/internal/testenv/pgtest"
	"github.com/probekit/probes/internal/testenv/testutil"
	"github.com/probekit/probes/readiness/pgxcheck"
)

// TestPart: through the assembly, the check answers against a real
// PostgreSQL, with the check options given With, and the pool it owns is
// closed once the server has stopped; an invalid option fails app.New,
// naming the part.
func TestPart(t *testing.T) {
	pg := pgtest.Start(t)
	pool := newPool(t, pg.URL("pw"), 4)
	a, err := app.New(app.Config{ProbeAddr: testutil.FreeAddr(t), Drain: time.Millisecond, Parts: []app.Part{
		pgxcheck.Part("postgres", pool, pgxcheck.Owned(), pgxcheck.With(probes.Every(10*time.Millisecond), probes.Local())),
	}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	testutil.Eventually(t, "postgres checked and passing", func() bool {
		rep := a.Readiness.Report()
		return len(rep.Checks) == 1 && rep.Checks[0].Status == probes.Pass && !rep.Checks[0].Time.IsZero()
	})
	if ct := a.Readiness.Report().Checks[0].ComponentType; ct != "datastore" {
		t.Errorf("componentType %q, want datastore", ct)
	}
	if err := pool.Ping(context.Background()); err != nil {
		t.Fatalf("the pool before the stop: %v", err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if err := pool.Ping(context.Background()); err == nil || !strings.Contains(err.Error(), "closed") {
		t.Errorf("the owned pool after the stop: ping %v, want it closed", err)
	}

	if _, err := app.New(app.Config{Parts: []app.Part{pgxcheck.Part("postgres", pool, pgxcheck.WarnAbove(2))}}); err == nil || !strings.Contains(err.Error(), "Config.Parts[0]") {
		t.Errorf("an invalid option: %v, want an error naming the part", err)
	}
	if _, err := app.New(app.Config{Parts: []app.Part{pgxcheck.Part("postgres", nil)}}); err == nil || !strings.Contains(err.Error(), "New(nil)") {
		t.Errorf("a nil pool: %v", err)
	}
}

// TestNotOwned: without Owned, Close leaves the pool open.
func TestNotOwned(t *testing.T) {
	pg := pgtest.Start(t)
	pool := newPool(t, pg.URL("pw"), 2)
	c, err := pgxcheck.New(pool)
	if err != nil {
		t.Fatal(err)
	}
	if c.Owned() {
		t.Error("Owned without the option")
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := pool.Ping(context.Background()); err != nil {
		t.Errorf("Close of a checker that does not own the pool closed it: %v", err)
	}
}
