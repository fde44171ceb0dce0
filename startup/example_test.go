package startup_test

import (
	"context"
	"fmt"
	"time"

	"github.com/probekit/probes"
	"github.com/probekit/probes/startup"
)

func ExampleGate_Task() {
	lc := probes.NewLifecycle()
	warm, err := startup.New(lc, startup.Deadline(2*time.Minute))
	if err != nil {
		panic(err)
	}
	_ = warm.Task("cache", func(ctx context.Context, p *startup.Progress) error {
		const rows = 4
		for i := 1; i <= rows; i++ {
			// load a batch of rows here
			p.Count(i, rows)
		}
		return nil
	})
	fmt.Println(warm.Report().Status(), lc.Phase())
	// The lifecycle runs the warm-up (server.Server.Run calls lc.Run).
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- lc.Run(ctx) }()
	for lc.Phase() != probes.Ready {
		time.Sleep(time.Millisecond)
	}
	cancel()
	<-done
	r := warm.Report()
	fmt.Println(r.Status(), lc.Phase(), r.Notes[1])
	// Output:
	// fail cold
	// pass ready warm-up 100%: cache done
}
