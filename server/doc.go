// Package server puts the gates on HTTP and runs a service with a graceful,
// probe-aware shutdown. It is the edge of the framework: the only package
// that uses chi and zap.
//
// Register (or Routes, for chi) mounts /startupz, /livez and /readyz, with
// one path per check below each (/readyz/postgres). Bodies follow the IETF
// draft "Health Check Response Format for HTTP APIs" (application/health+json);
// Accept: text/plain selects the Kubernetes text form. ?verbose lists the
// checks, ?exclude=name leaves one out. Pass and warn answer 200, fail 503.
// Error texts are shown only to requests an Authorize hook accepts.
//
// Bodies are rendered when a gate changes, so a probe request costs an atomic
// load and a write, and a change shows in the very next response.
//
// Server.Run serves an *http.Server and, on SIGTERM, SIGINT or the end of its
// context, drains: readiness fails first, the server keeps serving for the
// drain delay so that balancers notice, then it shuts down. WarmupGuard keeps
// application routes from answering before warm-up is done.
//
// For production, serve the probes on their own listener (ProbeListener),
// bound the application's requests in flight (Shedder) and its connections
// (MaxConns), and let New fill in safe connection timeouts: a busy or
// flooded process still answers its probes, and is not restarted for being
// busy.
package server
