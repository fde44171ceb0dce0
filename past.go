package probes

import "time"

// How an instance ended, as Past.Ended and package history say it.
const (
	// EndedStopped is a clean stop: the lifecycle went Stopped.
	EndedStopped = "stopped"
	// EndedBroken is a stop after the lifecycle went Broken.
	EndedBroken = "broken"
	// EndedClosed is a history closed by the program before the lifecycle
	// stopped or broke.
	EndedClosed = "closed"
	// EndedSilent is an instance that left no end at all: killed
	// (SIGKILL, out of memory), or the machine went down.
	EndedSilent = "without a word"
)

// Past is what the lifecycle knows of the instances that ran before it in
// the same place: the earlier runs of a container within its pod, as
// package history reads them from its state directory. Every surface that
// shows the lifecycle shows it beside the present: how many restarts and
// how the last instance ended to anyone, why it ended (Cause) to
// authorised readers only.
type Past struct {
	// Restarts counts the instances before this one.
	Restarts int
	// Ended says how the last of them ended: EndedStopped, EndedBroken,
	// EndedClosed or EndedSilent; "" when there was none.
	Ended string
	// End is when it ended; zero when it ended without a word.
	End time.Time
	// Cause says why it ended: the reason of its drain, or the error it
	// broke with, masked (package redact). Authorised readers only.
	Cause string
}

// IsZero reports whether p knows of no earlier instance.
func (p Past) IsZero() bool { return p.Restarts == 0 && p.Ended == "" }

// Clean reports whether the last instance ended as the program meant it
// to: stopped, or closed.
func (p Past) Clean() bool { return p.Ended == EndedStopped || p.Ended == EndedClosed }

// For returns p as audience a may read it: anonymous readers learn how
// many restarts there were and how the last one ended, not why.
func (p Past) For(a Audience) Past {
	if a != Authorized {
		p.Cause = ""
	}
	return p
}

// SetPast records what is known of the instances before this one. Package
// history calls it when it reads its state directory (history.StateDir);
// the deep view (Report.Past), the page and the fleet view show it.
func (l *Lifecycle) SetPast(p Past) {
	l.mu.Lock()
	l.past.Store(&p)
	l.state.Add(1 << seqShift) // a change every rendering must show
	l.mu.Unlock()
}

// Past returns what SetPast recorded; zero without it.
func (l *Lifecycle) Past() Past {
	if p := l.past.Load(); p != nil {
		return *p
	}
	return Past{}
}
