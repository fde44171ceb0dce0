package probes_test

import (
	"errors"
	"fmt"

	"github.com/probekit/probes"
)

func ExampleLifecycle() {
	lc := probes.NewLifecycle()
	lc.Subscribe(func(t probes.Transition) {
		fmt.Printf("%s -> %s (%s)\n", t.From, t.To, t.Reason)
	})
	_ = lc.Start()
	_ = lc.MarkReady()
	_ = lc.Rewarm("cache reload")
	_ = lc.MarkReady()
	fmt.Println("started:", lc.Started())

	err := lc.Start() // Start is only legal from Cold
	fmt.Println(errors.Is(err, probes.ErrIllegalTransition), err)
	_ = lc.Drain("SIGTERM")
	_ = lc.Stop()
	// Output:
	// cold -> warming (warm-up started)
	// warming -> ready (warm-up done)
	// ready -> warming (cache reload)
	// warming -> ready (warm-up done)
	// started: true
	// true probes: illegal transition from ready to warming
	// ready -> draining (SIGTERM)
	// draining -> stopped (server closed)
}
