package redischeck_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/probekit/probes"
	"github.com/probekit/probes/app"
	"github.com/probekit/probes/internal/testenv/redistest"
	"github.com/probekit/probes/internal/testenv/testutil"
	"github.com/probekit/probes/readiness/redischeck"
)

// TestPart: through the assembly, against a real Redis; the client it
// owns is closed once the server has stopped.
func TestPart(t *testing.T) {
	r := redistest.Start(t, redistest.Password(password))
	client := newClient(t, r.Addr(), password)
	a, err := app.New(app.Config{ProbeAddr: testutil.FreeAddr(t), Drain: time.Millisecond, Parts: []app.Part{
		redischeck.Part("redis", client, redischeck.Owned(), redischeck.With(probes.Every(10*time.Millisecond))),
	}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	testutil.Eventually(t, "redis checked and passing", func() bool {
		rep := a.Readiness.Report()
		return len(rep.Checks) == 1 && rep.Checks[0].Status == probes.Pass && !rep.Checks[0].Time.IsZero()
	})
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if err := client.Ping(context.Background()).Err(); !errors.Is(err, redis.ErrClosed) {
		t.Errorf("the owned client after the stop: ping %v, want %v", err, redis.ErrClosed)
	}
}
