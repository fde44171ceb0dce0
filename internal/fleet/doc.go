// Package fleet is `probectl fleet`: the whole fleet of a service at a
// glance. It finds the instances the way Kubernetes publishes them (the A
// and AAAA records of a headless Service's name, or its SRV records), or
// takes a static list. An instance is a pod, not an address: a dual-stack
// pod's two addresses are one instance (paired by their PTR records, or
// else one family standing for the pods), asked through one address. With
// a DNS server given, only that server is asked, and only addresses it
// gave are dialled. It asks each instance's deep view
// (GET /healthz?verbose, Accept: application/health+json) concurrently,
// each request bounded by a timeout and the requests in flight by a limit;
// and tells the failing checks that are fleet-wide (failing on at least a
// share of the reachable instances, and on at least two: a shared
// dependency) from the local ones (a few instances' own fault).
//
// It prints the faults and a table of the instances, or JSON, once or every
// interval (-watch: redrawn in place when standard output is a character
// device), or serves the same view as a page (-serve), with the last round
// as JSON at /fleet.json. There is
// no membership protocol here: discovery is DNS, which Kubernetes keeps.
//
// What it reads of a deep view: the members phase, since, gates (startup,
// liveness, readiness: pass, warn or fail), cordon (reason, since, until;
// present only while cordoned), restarts and lastEnd (ended, cause; from a
// service with a state directory) and, in each entry of checks, status and
// gate. A check is the key of its entries up to the first ':'; an
// instance's failing checks are "<gate>/<name>" for every entry whose
// status is fail. An instance is ready unless its readiness gate fails.
// From an older instance without those members, the phase is taken from
// its "phase: X" note, readiness from the top-level status, and the gate
// of a check is "health".
//
// Everything an instance sends is untrusted: at most 1 MiB of a body is
// read, as a stream; at most MaxChecks checks of an instance are kept (the
// most severe) and the others counted; each text it holds is cut short
// and has its control and formatting characters (escape sequences,
// bidirectional overrides) escaped as \x1b or \u202e before it is printed
// or kept, and the page escapes it. A round lists at most MaxFaults faults
// and asks at most MaxInstances instances, so its output and memory are
// bounded by the instance count.
//
// Testing contract of the page: each instance element carries
// data-instance="<host:port>", data-phase="<phase>" ("" when unreachable),
// data-reachable="true|false" and, while it is cordoned,
// data-cordon="<reason>"; inside it, each check data-check="<gate>/<name>"
// with data-status="pass|warn|fail", and the restarts' cell
// data-restarts="N" (with data-last-ended="<how>" once one ended); each fleet-wide fault
// data-fleet-wide="<gate>/<name>" and each local one data-local; what the
// bounds left out, data-more-checks="N" and data-more-faults="N"; each
// warning, data-warning. The page
// holds no script: it reloads itself (meta refresh) every interval, and
// shows the last round, so that page requests never cause requests to the
// instances.
package fleet
