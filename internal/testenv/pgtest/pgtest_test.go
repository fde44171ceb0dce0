package pgtest_test

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"go.uber.org/goleak"

	"github.com/probekit/probes/internal/testenv/pgtest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestStartStopRestart(t *testing.T) {
	pg := pgtest.Start(t)
	ping := func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, pg.URL("secret"))
		if err != nil {
			return err
		}
		defer conn.Close(ctx)
		return conn.Ping(ctx)
	}
	if err := ping(); err != nil {
		t.Fatalf("fresh server: %v", err)
	}
	pg.Stop()
	if err := ping(); err == nil {
		t.Fatal("stopped server answered")
	}
	pg.StartAgain()
	if err := ping(); err != nil {
		t.Fatalf("restarted server: %v", err)
	}
}
