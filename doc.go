// Package probes is the core of a framework for honest Kubernetes-style health
// probes: one warm-up state machine (Lifecycle) that drives three gates,
// startup, liveness and readiness, each in a package of its own.
//
// The package holds the shared vocabulary: Status (pass, warn, fail), Phase and
// the Lifecycle that moves between phases, the one phase x gate table
// (Lifecycle.Basis), Checker and the check options (Every, Timeout, Recheck,
// Shared, ...), and Report, the model every surface renders (HTTP in package
// server, gRPC, systemd, metrics). Checks run in the background on their own
// schedules, inside the gates' packages.
//
// Anything that can block takes a context.Context as its first argument. Probe
// requests never block: checks run in the background, and a probe request only
// reads the last verdict.
//
// The package uses only the standard library and holds no package-level mutable
// state; the clock is injected through the Lifecycle (WithClock).
package probes
