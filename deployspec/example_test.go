package deployspec_test

import (
	"fmt"
	"log"
	"maps"
	"slices"
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

// A whole Deployment from the service's own settings: what a service's
// -print-deploy flag can print.
func ExampleDeployment() {
	d := deployspec.Deployment{
		Name:    "items",
		Image:   "registry.example/items:1.4.2",
		Args:    []string{"-addr=0.0.0.0:8080", "-probe-addr=0.0.0.0:8081"},
		AppAddr: "0.0.0.0:8080",
		Service: deployspec.Service{
			WarmupDeadline: 2 * time.Minute,                                                           // startup.Gate.Deadline()
			Stop:           server.Timings{Drain: 5 * time.Second, ShutdownTimeout: 15 * time.Second}, // Server.Timings()
			ProbeAddr:      "0.0.0.0:8081",
		},
		MetricsPath: "/metrics",
	}
	out, err := d.YAML()
	if err != nil {
		log.Fatal(err)
	}
	fmt.Print(out)
	// Output:
	// apiVersion: apps/v1
	// kind: Deployment
	// metadata:
	//   name: items
	//   labels:
	//     app: items
	// spec:
	//   replicas: 2
	//   selector:
	//     matchLabels:
	//       app: items
	//   strategy:
	//     type: RollingUpdate
	//     rollingUpdate:
	//       maxUnavailable: 0
	//       maxSurge: 1
	//   template:
	//     metadata:
	//       labels:
	//         app: items
	//       annotations:
	//         # what the service takes to stop, hooks included: probelint checks the grace period against it
	//         probes.probekit.dev/stop: "drain=5s on-drain=0s shutdown-timeout=15s after-close=0s stop=23s"
	//         # its warm-up deadline and where its probes answer: probelint checks the probes against them
	//         probes.probekit.dev/service: "warmup-deadline=2m probe-addr=0.0.0.0:8081"
	//         prometheus.io/scrape: "true"
	//         prometheus.io/port: "8081"
	//         prometheus.io/path: /metrics
	//     spec:
	//       # the longest stop is 23s (drain 5s + shutdown timeout 15s + 3s of one-second bounds), +5s to exit
	//       terminationGracePeriodSeconds: 28
	//       containers:
	//         - name: app
	//           image: registry.example/items:1.4.2
	//           args:
	//             - -addr=0.0.0.0:8080
	//             - -probe-addr=0.0.0.0:8081
	//           ports:
	//             - name: http
	//               containerPort: 8080
	//             - name: probes
	//               containerPort: 8081
	//           startupProbe:
	//             httpGet:
	//               path: /startupz
	//               port: probes
	//             # readiness is probed at most 5s after the warm-up ends
	//             periodSeconds: 5
	//             # the probe answers from a cached verdict, in well under a millisecond
	//             timeoutSeconds: 1
	//             # the last failure allowed comes 125s after the first probe, past the warm-up deadline 2m: the service's own deadline decides
	//             failureThreshold: 26
	//           livenessProbe:
	//             httpGet:
	//               path: /livez
	//               port: probes
	//             # liveness asks only about the process itself; no need to ask often
	//             periodSeconds: 10
	//             # the probe answers from a cached verdict, in well under a millisecond
	//             timeoutSeconds: 1
	//             # a restart needs 3 failures in a row, 30s of a wedged process
	//             failureThreshold: 3
	//           readinessProbe:
	//             httpGet:
	//               path: /readyz
	//               port: probes
	//             # a failing answer comes within 1s (+1s timeout) of the drain's start, inside half the 5s drain
	//             periodSeconds: 1
	//             # the probe answers from a cached verdict, in well under a millisecond
	//             timeoutSeconds: 1
	//             # the first failing answer takes the pod out: readiness fails only for warm-up, the drain and local faults
	//             failureThreshold: 1
	//           # why it stopped: the termination message the service writes as its stop begins, or the end of its log
	//           # when it could write none (a panic on a goroutine of its own)
	//           terminationMessagePolicy: FallbackToLogsOnError
}

func ExampleLintBalancer() {
	alb := deployspec.AWSALB()                 // interval 30s x unhealthy threshold 2: 60s
	alb.DeregistrationDelay = 20 * time.Second // deregistration_delay.timeout_seconds
	svc := deployspec.Service{
		WarmupDeadline: 2 * time.Minute,
		// DrainUntilQuiet(2*time.Second, 60*time.Second, 90*time.Second)
		Stop:      server.Timings{Drain: 90 * time.Second, DrainQuiet: 2 * time.Second, DrainMin: 60 * time.Second, ShutdownTimeout: 15 * time.Second},
		ProbeAddr: ":8081",
		Balancer:  &alb,
	}
	plan, err := deployspec.Compute(svc, false)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(plan.TerminationGracePeriodSeconds.Value, plan.Findings)

	alb.DeregistrationDelay = 300 * time.Second // AWS's default
	grace := int64(plan.TerminationGracePeriodSeconds.Value)
	found, err := deployspec.LintBalancer(svc, alb, &grace)
	if err != nil {
		log.Fatal(err)
	}
	for _, f := range found {
		fmt.Println(f.Field+":", f)
	}
	// Output:
	// 113 []
	// balancer.deregistration_delay.timeout_seconds: deregistration-delay: AWS ALB target group keeps a deregistered target for deregistration_delay.timeout_seconds 5m after the drain, until 6m30s after SIGTERM, but the pod is killed after 1m53s (terminationGracePeriodSeconds): its requests and connections still routed then are cut; fix: deregistration_delay.timeout_seconds: 23 (the grace period minus the drain), or terminationGracePeriodSeconds: 390
}

func ExamplePlan_Annotations() {
	nlb := deployspec.AWSNLB()
	nlb.Interval, nlb.Timeout = 5*time.Second, 5*time.Second // 5s x 2: out within 10s
	svc := deployspec.Service{
		WarmupDeadline: 2 * time.Minute,
		Stop:           server.Timings{Drain: 20 * time.Second, ShutdownTimeout: 15 * time.Second},
		ProbeAddr:      ":8081",
		Balancer:       &nlb,
	}
	plan, err := deployspec.Compute(svc, false)
	if err != nil {
		log.Fatal(err)
	}
	a, err := plan.Annotations("")
	if err != nil {
		log.Fatal(err)
	}
	for _, k := range slices.Sorted(maps.Keys(a)) {
		fmt.Printf("%s: %q\n", k, a[k])
	}
	// Output:
	// service.beta.kubernetes.io/aws-load-balancer-healthcheck-healthy-threshold: "5"
	// service.beta.kubernetes.io/aws-load-balancer-healthcheck-interval: "5"
	// service.beta.kubernetes.io/aws-load-balancer-healthcheck-path: "/readyz"
	// service.beta.kubernetes.io/aws-load-balancer-healthcheck-port: "8081"
	// service.beta.kubernetes.io/aws-load-balancer-healthcheck-protocol: "HTTP"
	// service.beta.kubernetes.io/aws-load-balancer-healthcheck-success-codes: "200"
	// service.beta.kubernetes.io/aws-load-balancer-healthcheck-timeout: "5"
	// service.beta.kubernetes.io/aws-load-balancer-healthcheck-unhealthy-threshold: "2"
	// service.beta.kubernetes.io/aws-load-balancer-nlb-target-type: "ip"
	// service.beta.kubernetes.io/aws-load-balancer-target-group-attributes: "deregistration_delay.timeout_seconds=15,deregistration_delay.connection_termination.enabled=true"
	// service.beta.kubernetes.io/aws-load-balancer-type: "external"
}

func ExamplePlan_HAProxyBackend() {
	hb := deployspec.HAProxy() // inter 2s x fall 3: out within 6s
	svc := deployspec.Service{
		WarmupDeadline: 2 * time.Minute,
		Stop:           server.Timings{Drain: 12 * time.Second, ShutdownTimeout: 15 * time.Second},
		ProbeAddr:      ":8081",
		Balancer:       &hb,
	}
	plan, err := deployspec.Compute(svc, false)
	if err != nil {
		log.Fatal(err)
	}
	backend, err := plan.HAProxyBackend("app", []deployspec.HAProxyServer{
		{Name: "web-1", Addr: "10.0.0.7:8080", AgentPort: 8082},
		{Name: "web-2", Addr: "10.0.0.8:8080", AgentPort: 8082},
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Print(backend)
	// Output:
	// backend app
	//     # the readiness gate: it fails while warming up, draining or cordoned
	//     option httpchk GET /readyz
	//     http-check expect status 200
	//     # a server is out within inter x fall = 6s of the drain's start, inside the drain
	//     default-server inter 2s fastinter 2s downinter 2s fall 3 rise 2
	//     server web-1 10.0.0.7:8080 check port 8081 agent-check agent-port 8082 agent-inter 2s
	//     server web-2 10.0.0.8:8080 check port 8081 agent-check agent-port 8082 agent-inter 2s
}
