package haproxy_test

import (
	"fmt"
	"time"

	"github.com/probekit/probes"
	"github.com/probekit/probes/haproxy"
	"github.com/probekit/probes/readiness"
	"github.com/probekit/probes/server"
)

// The lines HAProxy reads as the service moves: ready, cordoned, draining.
// Serve it with a.Serving(ln) and server.Also.
func ExampleAgent_Reply() {
	lc := probes.NewLifecycle()
	if _, err := readiness.New(lc); err != nil {
		fmt.Println(err)
		return
	}
	a, err := haproxy.New(lc)
	if err != nil {
		fmt.Println(err)
		return
	}
	_ = lc.Start()
	fmt.Println(a.Reply())
	_ = lc.MarkReady()
	fmt.Println(a.Reply())
	_, _ = lc.Cordon("disk swap", time.Hour)
	fmt.Println(a.Reply())
	_ = lc.Drain("SIGTERM")
	fmt.Println(a.Reply())
	// Output:
	// down #phase: warming; not ready until warm-up is done
	// ready up
	// drain #cordoned: disk swap
	// drain #draining: shutting down
}

// With a Shedder, the in-rotation line carries a weight from the spare
// capacity; an idle instance says 100%.
func ExampleCapacity() {
	lc := probes.NewLifecycle()
	_ = lc.Start()
	_ = lc.MarkReady()
	shed, _ := server.NewShedder(8)
	a, err := haproxy.New(lc, haproxy.Capacity(shed), haproxy.Floor(10))
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(a.Reply())
	// Output: ready up 100%
}
