// Package server puts the gates on HTTP and runs a service with a graceful,
// probe-aware shutdown.
//
// Its HTTP handlers speak only net/http: Register mounts /startupz, /livez,
// /readyz and the deep view /healthz on any router with a
// Handle(pattern, handler) method (*http.ServeMux, chi.Router), with one
// path per check below each (/readyz/postgres). Bodies follow the IETF draft
// "Health Check Response Format for HTTP APIs" (application/health+json);
// Accept: text/plain selects the Kubernetes text form. ?verbose lists the
// checks, ?exclude=name leaves one out. Pass and warn answer 200, fail 503;
// a check's own path answers the check's own verdict. Reasons (error texts,
// the cordon's reason, observed values) are shown only to the readers the
// lifecycle's read policy authorises (probes.Readers; probes.FromLoopback is
// one, for operators behind kubectl port-forward).
//
// Bodies are rendered when a gate changes, so a probe request costs an atomic
// load and a write, and a change shows in the very next response.
//
// Server runs a service: Run serves an *http.Server (and peers such as a
// gRPC server, see Also) and, on SIGTERM, SIGINT or the end of its context,
// drains: readiness fails first, the server keeps serving for the drain
// delay so that balancers notice, then it shuts down. It logs through zap,
// the package's one dependency outside the standard library. WarmupGuard
// and Needs keep application routes from answering when they cannot serve.
//
// Run leaves the cause of every stop where Kubernetes shows it, the
// termination message (TerminationLog): a stop from outside, the kubelet's
// restart for a failing liveness check, the warm-up deadline, background
// work that failed or panicked, a listener that failed, or the service's
// own stop, followed by the last transitions.
//
// For production, serve the probes on their own listener (ProbeListener:
// it never refuses a probe's connection), bound the application's requests
// in flight (Shedder) and its connections (MaxConns), and let New fill in
// safe connection timeouts: a busy or flooded process still answers its
// probes, and is not restarted for being busy.
//
// The files hold one idea each: options.go, server.go (New and Run),
// shutdown.go, drain.go (the drain and its accounting), termination.go
// (the termination message), timings.go, handler.go, render.go,
// routes.go, guard.go, passive.go (what makes a guard trigger its
// checks), conn.go and peer.go.
package server
