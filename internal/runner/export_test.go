package runner

// StallSchedule stops the named check's schedule, as a stalled runner would:
// no execution starts until Trigger.
func StallSchedule(r *Runner, name string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.find(name).timer.Stop()
}
