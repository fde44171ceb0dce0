package deployspec_test

import (
	"fmt"
	"log"
	"time"

	"github.com/probekit/probes/deployspec"
	"github.com/probekit/probes/server"
)

func ExampleCompute() {
	svc := deployspec.Service{
		WarmupDeadline: 2 * time.Minute,                                                           // startup.Gate.Deadline()
		Stop:           server.Timings{Drain: 5 * time.Second, ShutdownTimeout: 15 * time.Second}, // Server.Timings()
		ProbeAddr:      ":8081",
	}
	plan, err := deployspec.Compute(svc, false)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Print(plan.Systemd())
	// Output:
	// # READY=1 comes when warm-up ends; past the 2m deadline the service stops itself (23s more), +5s
	// TimeoutStartSec=148
	// # the longest stop is 23s (drain 5s + shutdown timeout 15s + 3s of one-second bounds), +5s to exit
	// TimeoutStopSec=28
	// # WATCHDOG=1 stops while liveness fails; restart after 30s, as the kubelet does after 3 failures 10s apart
	// WatchdogSec=30
}

func ExampleLint() {
	svc := deployspec.Service{
		WarmupDeadline: 2 * time.Minute,
		Stop:           server.Timings{Drain: 5 * time.Second, ShutdownTimeout: 15 * time.Second},
		ProbeAddr:      ":8081",
	}
	grace := int64(60)
	c := deployspec.Container{
		Name:               "app",
		GracePeriodSeconds: &grace,
		Liveness:           &deployspec.ProbeSpec{HTTPPath: "/readyz", HTTPPort: 8081, FailureThreshold: 3},
		Readiness:          &deployspec.ProbeSpec{HTTPPath: "/readyz", HTTPPort: 8081, PeriodSeconds: 1},
	}
	for _, f := range deployspec.Lint(svc, c) {
		fmt.Println(f.Rule, "at", f.Field, "->", f.Fix)
	}
	// Output:
	// liveness-target at livenessProbe.httpGet.path -> path: /livez
}
