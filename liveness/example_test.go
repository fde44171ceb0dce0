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
	live := liveness.New(lc)
	beat, err := live.Heartbeat("worker", 30*time.Second)
	if err != nil {
		panic(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { // the watched worker: its loop ticks the heartbeat
		t := time.NewTicker(10 * time.Millisecond)
		defer t.Stop()
		for {
			beat.Tick()
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	})
	wg.Go(func() { _ = live.Run(ctx) })
	for live.Report().Status() != probes.Pass { // the first evaluation is under way
		time.Sleep(time.Millisecond)
	}
	fmt.Println("liveness:", live.Report().Status())
	cancel()
	wg.Wait()
	// Output:
	// liveness: pass
}
