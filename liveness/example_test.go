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
	beat, err := live.Heartbeat("worker", 30*time.Second)
	if err != nil {
		panic(err)
	}
	// The watched worker, owned by the lifecycle: its loop ticks the heartbeat.
	_ = lc.Go("worker", func(ctx context.Context) error {
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
	wg.Go(func() { _ = lc.Run(ctx) })           // runs the checks and the worker
	for live.Report().Status() != probes.Pass { // the first evaluation is under way
		time.Sleep(time.Millisecond)
	}
	fmt.Println("liveness:", live.Report().Status())
	cancel()
	wg.Wait()
	// Output:
	// liveness: pass
}
