// Package otelprobes exports a lifecycle's phase, its gates, their checks
// and the warm-up as OpenTelemetry metrics, on a metric.MeterProvider the
// service passes in: the same facts as package metrics (Prometheus), read
// from the same sources, named the OpenTelemetry way. The core packages do
// not import OpenTelemetry; this package is the one that does.
//
// State (the phase, each gate's and check's status, the warm-up's progress,
// the age of each check's last result, the server's figures) is read at
// collection time by one callback registered for the observable instruments,
// from one snapshot of the lifecycle (Lifecycle.Facts). What happens (check
// executions and their durations, phase transitions, cordon changes) is
// recorded as it happens, from the lifecycle's one stream of changes
// (Lifecycle.Watch); recording an execution allocates nothing, its attribute
// sets being built once per check. Both hold every gate, whenever it was
// built, so gates may be built before or after Register.
//
// Every attribute is a name the service chose when it built its gates
// (gates, checks, warm-up tasks) or a fixed name of a phase, a status or an
// end, so the number of series is bounded by the service's own checks.
//
// The instruments, and the names the OpenTelemetry Prometheus exporter
// (go.opentelemetry.io/otel/exporters/prometheus) gives them by default,
// which are those of package metrics:
//
//	probes.phase{phase}                              gauge {lifecycle}: 1 for the current phase, 0 for the others   probes_phase
//	probes.gate.status{gate,status}                  gauge {gate}: 1 for the gate's current status                   probes_gate_status
//	probes.check.status{gate,check,status}           gauge {check}: 1 for the check's current status                 probes_check_status
//	probes.check.duration{gate,check}                histogram s: execution times                                    probes_check_duration_seconds
//	probes.check.executions{gate,check,status}       counter {execution}: executions by their own outcome            probes_check_executions_total
//	probes.check.last_result.timestamp{gate,check}   gauge s: when the last result came, 0 before                    probes_check_last_result_timestamp_seconds
//	probes.check.stale{gate,check}                   gauge {check}: 1 while the last result is stale                 probes_check_stale
//	probes.check.consecutive_failures{gate,check}    gauge {failure}                                                 probes_check_consecutive_failures
//	probes.check.flapping{gate,check}                gauge {check}: 1 while its outcomes keep changing               probes_check_flapping
//	probes.transitions{from,to}                      counter {transition}: phase transitions                         probes_transitions_total
//	probes.cordoned                                  gauge {lifecycle}: 1 while cordoned by hand                     probes_cordoned
//	probes.cordon.changes{cause}                     counter {change}: cordoned, uncordoned, lifted                  probes_cordon_changes_total
//	probes.warmup.progress                           gauge 1: 0 to 1 over the whole warm-up                          probes_warmup_progress_ratio
//	probes.warmup.duration                           gauge s: the warm-up so far, then its length                    probes_warmup_duration_seconds
//	probes.warmup.task.progress{task}                gauge 1: 0 to 1 per warm-up task                                probes_warmup_task_progress_ratio
//	probes.restarts                                  gauge {restart}: instances before this one, 0 for the first     probes_restarts
//	probes.last_end{ended}                           gauge {instance}: 1, with how the last of them ended            probes_last_end
//	probes.last_end.timestamp                        gauge s: when it ended                                          probes_last_end_timestamp_seconds
//
// The last three show the past (probes.Past) as anonymous readers may see
// it, never its cause, as package metrics does: probes.restarts always, 0
// for a first instance and without a state directory; probes.last_end a
// single point at 1 whose attribute ended is stopped, broken, closed or
// without a word, only when an instance ran before; its timestamp only when
// that end was written (not after an end without a word).
//
// With the Server option (or Metrics.Server), also what the server saw of
// its connections and its shutdown (server.Stats):
//
//	probes.refused_connections                       counter {connection}: refused at MaxConns                       probes_refused_connections_total
//	probes.drain.duration                            gauge s: the drain so far, then its length                      probes_drain_duration_seconds
//	probes.drain.late_requests                       counter {request}: application requests during the drain        probes_drain_late_requests_total
//	probes.drain.late_requests.after_probed          counter {request}: of them, after the probers had noticed       probes_drain_late_requests_after_probed_total
//	probes.shutdown.cut_requests                     counter {request}: requests the shutdown timeout cut            probes_shutdown_cut_requests_total
//
// The gauges that say which phase or status holds count the lifecycles,
// gates or checks in it (0 or 1 here, a count once summed over a fleet), as
// the k8s.pod.status.phase convention does, so their unit is an annotation
// such as {gate} rather than "1", which the exporter would read as a ratio.
// The server's counters are observable: they are read from server.Stats.
//
// A check's status is its own verdict after its thresholds: a failing shared
// database shows as fail in probes.check.status while readiness, which only
// warns for it, shows warn in probes.gate.status.
package otelprobes
