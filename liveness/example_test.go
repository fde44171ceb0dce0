package liveness_test

import (
	"context"
	"fmt"
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
	defer cancel()
	go func() {
		for ctx.Err() == nil {
			beat.Tick() // one pass of the worker's loop
			time.Sleep(10 * time.Millisecond)
		}
	}()
	done := make(chan struct{})
	go func() { defer close(done); _ = live.Run(ctx) }()
	for live.Report().Status() != probes.Pass {
		time.Sleep(time.Millisecond)
	}
	fmt.Println("liveness:", live.Report().Status())
	cancel()
	<-done
	// Output:
	// liveness: pass
}
