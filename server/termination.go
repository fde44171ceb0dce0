package server

// The termination message: why the process stopped and what happened just
// before, where Kubernetes shows it (kubectl describe pod, and the
// container's .status.containerStatuses[].lastState.terminated.message).

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"

	"go.uber.org/zap"

	"github.com/probekit/probes"
	"github.com/probekit/probes/internal/printable"
	"github.com/probekit/probes/internal/safe"
	"github.com/probekit/probes/redact"
	"github.com/probekit/probes/startup"
)

// DefaultTerminationLog is where Kubernetes reads a container's
// termination message unless its terminationMessagePath says otherwise.
const DefaultTerminationLog = "/dev/termination-log"

// Bounds of the message. The kubelet keeps the last 4096 bytes of the
// file: a message that never exceeds them keeps its first line, the
// cause, whatever the transitions after it.
const (
	maxMessage = 4096
	maxCause   = 1024 // the first line
	maxEntry   = 384  // one transition's line
	maxNote    = 40   // "\n(N older transitions left out)"
	recent     = 64   // transitions kept: more never fit
	stampForm  = "2006-01-02T15:04:05.000Z"
)

// lastWords keeps the service's recent transitions and writes the
// termination message: the cause of the stop on the first line, then the
// transitions, newest first, as many as fit. Every text in it is masked
// (package redact) and printable, one line each.
type lastWords struct {
	path   string
	create bool // a path the service chose: created when missing, and a failure to write it is a warning
	log    *zap.Logger
	clock  probes.Clock

	mu      sync.Mutex
	lines   [recent]string // a ring: lines[next-1] is the newest
	next    int
	n       int    // lines recorded, those the ring has dropped included
	lastKey string // what the newest line is about, when a later one may take its place
	cause   string // the first line, once the stop has begun
}

// newLastWords returns where Run writes the termination message, or nil
// for nowhere: TerminationLog's path, or DefaultTerminationLog when it is
// a regular file this process may write (in a Kubernetes container;
// elsewhere it does not exist).
func (s *Server) newLastWords() *lastWords {
	path, create := s.cfg.termLog, true
	if !s.cfg.termLogSet {
		path, create = DefaultTerminationLog, false
		if fi, err := os.Stat(path); err != nil || !fi.Mode().IsRegular() {
			return nil
		}
		f, err := os.OpenFile(path, os.O_WRONLY, 0)
		if err != nil {
			s.cfg.log.Debug("no termination message: cannot write the default path", zap.String("path", path), zap.Error(err))
			return nil
		}
		f.Close() //nolint:errcheck // opened only to see that it can be
	}
	if path == "" {
		return nil
	}
	return &lastWords{path: path, create: create, log: s.cfg.log, clock: s.lc.Clock()}
}

func (w *lastWords) moved(t probes.Transition) {
	reason := t.Reason
	w.mu.Lock()
	if reason != "" && reason == w.cause {
		reason = "the cause above" // the drain's reason is the stop's cause: said once
	}
	w.mu.Unlock()
	w.add(t.At, fmt.Sprintf("phase %s -> %s: %s", t.From, t.To, reason), "")
}

func (w *lastWords) cordonChanged(c probes.CordonChange) {
	if c.Cause == probes.CauseCordoned {
		w.add(c.At, fmt.Sprintf("cordoned until %s: %s%s", stamp(c.Cordon.Until), c.Cordon.Reason, by(c.By)), "")
		return
	}
	w.add(c.At, fmt.Sprintf("%s after %s: %s%s", c.Cause, c.At.Sub(c.Was.Since).Round(time.Second), c.Was.Reason, by(c.By)), "")
}

// by names who made a cordon's change, after its reason: " (by uid 1000
// (alice), pid 4242: probectl cordon ...)", or "" when nobody is known (a
// cordon set in code, or one that expired).
func by(a probes.Author) string {
	if a.IsZero() {
		return ""
	}
	return " (by " + a.String() + ")"
}

// reportChanged records what logDiff logs but for progress and flapping:
// a gate's verdict that a check moved (a phase's move has its own line), a
// check's verdict with its error (a first result that passes says
// nothing), a warm-up task done or failing (a task's failures in a row
// share one line).
func (w *lastWords) reportChanged(prev, cur *probes.Report) {
	now := w.clock.Now()
	if a, b := prev.Status(), cur.Status(); a != b && prev.Base == cur.Base {
		line := fmt.Sprintf("%s %s -> %s", cur.Gate, a, b)
		if failing, warning := cur.Behind(nil); len(failing)+len(warning) > 0 {
			line += ", behind: " + strings.Join(append(failing, warning...), ", ")
		}
		w.add(now, line, "")
	}
	for i := range cur.Checks {
		c := &cur.Checks[i]
		old, ok := prev.Check(c.Name)
		had := ok && !old.Time.IsZero()
		if c.Time.IsZero() || had && old.Status == c.Status || !had && c.Status == probes.Pass {
			continue
		}
		line := fmt.Sprintf("check %s/%s ", cur.Gate, c.Name)
		if had {
			line += old.Status.String() + " -> "
		}
		line += c.Status.String()
		if c.Err != nil {
			line += ": " + c.Err.Error()
		}
		w.add(c.Time, line, "")
	}
	for i := range cur.Tasks {
		t := &cur.Tasks[i]
		old, _ := prev.Task(t.Name)
		switch {
		case t.Done && !old.Done:
			w.add(now, fmt.Sprintf("warm-up task %s done after %d attempts", t.Name, t.Attempts), "")
		case t.Failures > old.Failures:
			w.add(now, fmt.Sprintf("warm-up task %s failed (%d failures so far): %v", t.Name, t.Failures, t.Err), "task "+t.Name)
		}
	}
}

// add records text as happening at at. A line with the key of the newest
// line takes its place.
func (w *lastWords) add(at time.Time, text, key string) {
	line := stamp(at) + " " + clean(text, maxEntry-len(stampForm)-1)
	w.mu.Lock()
	defer w.mu.Unlock()
	if key != "" && key == w.lastKey {
		w.lines[(w.next+recent-1)%recent] = line
		return
	}
	w.lines[w.next] = line
	w.next = (w.next + 1) % recent
	w.n++
	w.lastKey = key
}

// message returns the termination message: cause on the first line, then
// the transitions, newest first, and how many older ones did not fit;
// never more than maxMessage bytes.
func (w *lastWords) message(cause string) []byte {
	b := make([]byte, 0, maxMessage)
	b = append(b, clean(cause, maxCause)...)
	w.mu.Lock()
	defer w.mu.Unlock()
	kept := min(w.n, recent)
	for i := range kept {
		line := w.lines[(w.next+2*recent-1-i)%recent]
		room := maxMessage - len(b) - 1
		if i < w.n-1 {
			room -= maxNote // older lines remain: keep the room to say so
		}
		if len(line) > room {
			return leftOut(b, w.n-i)
		}
		b = append(append(b, '\n'), line...)
	}
	if w.n > kept {
		return leftOut(b, w.n-kept)
	}
	return b
}

func leftOut(b []byte, n int) []byte {
	return fmt.Appendf(append(b, '\n'), "(%d older transitions left out)", n)
}

// stopping records cause as the stop's and writes the message.
func (w *lastWords) stopping(cause string) {
	if w == nil {
		return
	}
	w.mu.Lock()
	w.cause = cause
	w.mu.Unlock()
	w.write(cause)
}

// note records text as happening now: a drain cut short, say.
func (w *lastWords) note(text string) {
	if w != nil {
		w.add(w.clock.Now(), text, "")
	}
}

// exited records how the stop ended, took after it began, and writes the
// message again.
func (w *lastWords) exited(took time.Duration, err error) {
	if w == nil {
		return
	}
	outcome := "clean"
	if err != nil {
		outcome = err.Error()
	}
	w.add(w.clock.Now(), fmt.Sprintf("Run returned after a %s stop: %s", took.Round(time.Millisecond), outcome), "")
	w.mu.Lock()
	cause := w.cause
	w.mu.Unlock()
	w.write(cause)
}

// panicked writes the message of a panic on Run's goroutine, which is
// about to take the process down: the panic first, then the stop's cause
// if the stop had begun.
func (w *lastWords) panicked(v any) {
	if w == nil {
		return
	}
	w.mu.Lock()
	cause := w.cause
	w.mu.Unlock()
	if cause != "" {
		w.add(w.clock.Now(), "the stop had begun: "+cause, "")
	}
	w.write(fmt.Sprintf("panicked on Server.Run's goroutine: %v", v))
}

// write writes the message with cause over the file, logging a failure:
// no failure to write it stops the service or changes how it stops.
func (w *lastWords) write(cause string) {
	if err := writeInPlace(w.path, w.message(cause), w.create); err != nil {
		w.log.Warn("cannot write the termination message", zap.String("path", w.path), zap.Error(err))
	}
}

// writeInPlace writes msg over the file at path, in place: in Kubernetes
// the path is a bind mount of a file the kubelet reads, which a rename
// would only hide. The new text goes over the old before the file is cut
// to its length, so that it never reads empty, whenever a SIGKILL comes.
// There is no fsync: the kubelet reads the file through the same page
// cache, and a sync could take longer than the stop may wait.
func writeInPlace(path string, msg []byte, create bool) error {
	flag := os.O_WRONLY
	if create {
		flag |= os.O_CREATE
	}
	f, err := os.OpenFile(path, flag, 0o644)
	if err != nil {
		return err
	}
	_, err = f.WriteAt(msg, 0)
	if err == nil {
		err = f.Truncate(int64(len(msg)))
	}
	return errors.Join(err, f.Close())
}

// clean masks the secrets of s and makes it one printable line of at most
// n bytes, cut between characters. Masking comes first: a cut could hide
// the name that marks a secret, and leave the secret.
func clean(s string, n int) string {
	s = redact.String(s)
	if e := printable.Escape(s, n); len(e) <= n {
		return e
	}
	return printable.Escape(s, n-len("..."))
}

func stamp(t time.Time) string { return t.UTC().Format(stampForm) }

// The causes of a stop, as the message's first line says them. Each
// starts with what happened: stopped (asked from outside, or by the
// service), restarted (by the kubelet, for liveness), broken (the
// lifecycle went Broken), failed (a listener's Serve) or panicked.

// signalCause says why a signal named name stops the service: the
// kubelet's restart when liveness fails, the startup probe's or a stop
// during the first warm-up, a stop from outside otherwise.
func (s *Server) signalCause(name string) string {
	live := s.lc.View(probes.Liveness).Report()
	if live.Status() == probes.Fail {
		return fmt.Sprintf("restarted by the kubelet: %s while liveness fails: %s", name, failing(&live, s.lc.Clock().Now()))
	}
	if !s.lc.Started() {
		progress := ""
		if note := s.lc.View(probes.Startup).Report().ProgressNote(); note != "" {
			progress = " (" + note + ")"
		}
		return fmt.Sprintf("stopped by %s during warm-up%s: the kubelet's restart once the startup probe has failed failureThreshold times, or a stop from outside", name, progress)
	}
	why := "a stop from outside"
	if name == "SIGTERM" {
		why += " (a rolling update, a scale-in, an eviction)" // what sends it in Kubernetes
	}
	return fmt.Sprintf("stopped by %s while %s and live: %s", name, s.lc.Phase(), why)
}

// failing describes the checks that fail r, each with when it began to
// fail, for how long by at, and its error; or the phase, when none does.
func failing(r *probes.Report, at time.Time) string {
	var parts []string
	for i := range r.Checks {
		c := &r.Checks[i]
		if c.Contribution() != probes.Fail {
			continue
		}
		part := fmt.Sprintf("check %q failing", c.Name)
		if !c.Since.IsZero() {
			part += fmt.Sprintf(" since %s (for %s)", stamp(c.Since), at.Sub(c.Since).Round(time.Millisecond))
		}
		if c.Err != nil {
			part += ": " + clean(c.Err.Error(), 200) // room for the other checks
		}
		parts = append(parts, part)
	}
	if len(parts) == 0 {
		return "phase " + r.Phase.String()
	}
	return strings.Join(parts, "; ")
}

// signalNames are the names the message gives the usual signals.
var signalNames = []struct {
	sig  syscall.Signal
	name string
}{{syscall.SIGTERM, "SIGTERM"}, {syscall.SIGINT, "SIGINT"}, {syscall.SIGHUP, "SIGHUP"}, {syscall.SIGQUIT, "SIGQUIT"}}

// signalName names the signal whose String is s: "SIGTERM" for
// "terminated", "signal user defined signal 2" for a signal without a
// name here.
func signalName(s string) string {
	for _, n := range signalNames {
		if n.sig.String() == s {
			return n.name
		}
	}
	return "signal " + s
}

// SignalStop is a cause to end Run's context with (context.WithCancelCause)
// when the program takes the stop signals itself (Signals() with none) and
// ends Run when one comes: the termination message, the drain's reason and
// the next instance's record then say what the signal meant (a stop from
// outside, or the kubelet's restart while liveness fails), as they do when
// Run hears the signal. It is context.Canceled for errors.Is. A context of
// signal.NotifyContext needs none: its own cause names its signal.
type SignalStop struct{ Signal os.Signal }

func (e *SignalStop) Error() string { return e.Signal.String() + " signal received" }

// Is reports whether target is context.Canceled: ending a context with
// it is a cancellation.
func (e *SignalStop) Is(target error) bool { return target == context.Canceled }

// contextCause says why ctx ended: the service's own stop, or a signal
// (SignalStop, or signal.NotifyContext's cause).
func (s *Server) contextCause(ctx context.Context) string {
	cause := context.Cause(ctx)
	var stop *SignalStop
	if errors.As(cause, &stop) && stop.Signal != nil {
		return s.signalCause(signalName(stop.Signal.String()))
	}
	if name, ok := strings.CutSuffix(cause.Error(), " signal received"); ok && errors.Is(cause, context.Canceled) {
		return s.signalCause(signalName(name))
	}
	switch cause {
	case context.Canceled:
		return "stopped: the context was cancelled: the service's own stop"
	case context.DeadlineExceeded:
		return "stopped: the context's deadline passed: the service's own stop"
	}
	return "stopped: the context was cancelled (" + cause.Error() + "): the service's own stop"
}

// errBrokenBeforeRun is Run's cause for a lifecycle Broken before it.
var errBrokenBeforeRun = errors.New("broken before Run")

// brokenCause says why the lifecycle went Broken, err being the error it
// went Broken with or background work's: the warm-up deadline, background
// work that panicked or failed (a gate's, or added with Lifecycle.Go), or
// MarkBroken.
func brokenCause(err error) string {
	var de *startup.DeadlineError
	var we *safe.WorkError
	var p *safe.Panic
	switch {
	case err == nil:
		return "broken: MarkBroken(nil)"
	case errors.Is(err, errBrokenBeforeRun):
		return "broken: the lifecycle was Broken before Run"
	case errors.As(err, &de):
		return "broken: " + strings.TrimPrefix(de.Error(), "startup: ")
	case errors.As(err, &we) && errors.As(we.Err, &p):
		return fmt.Sprintf("broken: background work %q panicked: %v", we.Name, p.Value)
	case errors.As(err, &we):
		return fmt.Sprintf("broken: background work %q failed: %v", we.Name, we.Err)
	}
	return "broken: " + err.Error()
}
