package liveness_test

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/probekit/probes"
	"github.com/probekit/probes/liveness"
)

func ExampleGate_Heartbeat() {
	lc := probes.NewLifecycle()
	live, err := liveness.New(lc)
	if err != nil {
		panic(err)
	}
	// The watched worker, owned by the lifecycle. It makes its heartbeat as
	// it starts, so that the limit does not run through a long warm-up, and
	// its loop ticks it.
	_ = lc.Go("worker", func(ctx context.Context) error {
		beat, err := live.Heartbeat("worker", 30*time.Second)
		if err != nil {
			return err
		}
		t := time.NewTicker(10 * time.Millisecond)
		defer t.Stop()
		for {
			beat.Tick()
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-t.C:
			}
		}
	})
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { _ = lc.Run(ctx) }) // runs the checks and the worker
	for !beating(live) {              // the worker starts, then the first evaluation
		time.Sleep(time.Millisecond)
	}
	fmt.Println("liveness:", live.Report().Status())
	cancel()
	wg.Wait()
	// Output:
	// liveness: pass
}

// beating reports whether live has a passing "worker" heartbeat.
func beating(live *liveness.Gate) bool {
	c, ok := live.Report().Check("worker")
	return ok && c.Status == probes.Pass
}
