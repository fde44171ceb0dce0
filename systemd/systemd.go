// Package systemd tells systemd the truth about a service run by a unit
// with Type=notify: READY=1 only once warm-up has finished, STATUS= lines
// with the phase and warm-up progress, STOPPING=1 when the drain begins, and
// WATCHDOG=1 keep-alives only while liveness passes, so that systemd kills a
// hung process when the unit sets WatchdogSec=.
//
// It speaks the sd_notify datagram protocol directly over the socket named
// by NOTIFY_SOCKET (a path, or an abstract name starting with '@'), with the
// standard library only. Without NOTIFY_SOCKET it does nothing.
package systemd

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/probekit/probes"
	"github.com/probekit/probes/internal/opt"
)

// Option configures a Notifier.
type Option func(*Notifier) error

// DefaultStatusInterval is how often, at most, warm-up progress updates the
// unit's status line.
const DefaultStatusInterval = time.Second

// StatusInterval sets how often, at most, warm-up progress updates STATUS=;
// phase changes are always sent at once. Default DefaultStatusInterval (1s).
func StatusInterval(d time.Duration) Option {
	return func(n *Notifier) error {
		if d < 0 {
			return fmt.Errorf("StatusInterval(%s): must not be negative", d)
		}
		n.statusEvery = d
		return nil
	}
}

// Environment makes the notifier read NOTIFY_SOCKET, WATCHDOG_USEC and
// WATCHDOG_PID through getenv instead of os.Getenv, for tests.
func Environment(getenv func(string) string) Option {
	return func(n *Notifier) error {
		if getenv != nil {
			n.getenv = getenv
		}
		return nil
	}
}

// Notifier sends a lifecycle's story to systemd. Create one with New; it
// runs as background work of the lifecycle (probes.Lifecycle.Run, which
// server.Server.Run calls).
type Notifier struct {
	lc          *probes.Lifecycle
	startup     probes.Gate
	liveness    probes.Gate
	statusEvery time.Duration
	getenv      func(string) string

	mu           sync.Mutex // serialises datagrams, so they arrive in order
	conn         *net.UnixConn
	readySent    bool
	lastProgress time.Time
	lastStatus   string
}

// New returns a Notifier for lc and adds it to lc's background work. The
// lifecycle's startup gate, if built before New, supplies the warm-up
// progress, and its liveness gate gates the watchdog (without one, the
// watchdog only needs the process to run). It fails when lc is nil or an
// option is invalid.
func New(lc *probes.Lifecycle, opts ...Option) (*Notifier, error) {
	if lc == nil {
		return nil, errors.New("systemd: New(nil): need a *probes.Lifecycle")
	}
	n := &Notifier{lc: lc, startup: lc.Gate(probes.Startup), liveness: lc.Gate(probes.Liveness),
		statusEvery: DefaultStatusInterval, getenv: os.Getenv}
	if err := opt.Apply("systemd", n, opts); err != nil {
		return nil, err
	}
	if err := lc.Go("systemd", n.run); err != nil {
		return nil, fmt.Errorf("systemd: %w", err)
	}
	return n, nil
}

// run notifies until ctx is done and returns ctx.Err(). Without NOTIFY_SOCKET
// it only waits. An unusable NOTIFY_SOCKET is an error at once, which fails
// the service: a unit of Type=notify would wait for READY=1 in vain.
func (n *Notifier) run(ctx context.Context) error {
	socket := n.getenv("NOTIFY_SOCKET")
	if socket == "" {
		return nil // not under systemd: nothing to do
	}
	conn, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: socket, Net: "unixgram"})
	if err != nil {
		return fmt.Errorf("systemd: NOTIFY_SOCKET %q: %w", socket, err)
	}
	defer conn.Close()
	n.mu.Lock()
	n.conn = conn
	n.mu.Unlock()
	defer func() {
		n.mu.Lock()
		n.conn = nil
		n.mu.Unlock()
	}()

	defer n.lc.Subscribe(func(t probes.Transition) { n.transition(t.To) })()
	defer n.lc.SubscribeCordon(func(probes.CordonChange) { n.restate() })()
	if n.startup != nil {
		defer n.startup.Subscribe(n.progress)()
	}
	n.current()

	interval, err := n.watchdogInterval()
	if err != nil {
		return err
	}
	if interval == 0 {
		<-ctx.Done()
		return ctx.Err()
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
			if n.liveness == nil || n.liveness.Report().Status().OK() {
				n.send("WATCHDOG=1")
			}
		}
	}
}

// watchdogInterval is half of WATCHDOG_USEC, or 0 when the watchdog is off
// or meant for another process (WATCHDOG_PID).
func (n *Notifier) watchdogInterval() (time.Duration, error) {
	usec := n.getenv("WATCHDOG_USEC")
	if usec == "" {
		return 0, nil
	}
	if pid := n.getenv("WATCHDOG_PID"); pid != "" && pid != strconv.Itoa(os.Getpid()) {
		return 0, nil
	}
	u, err := strconv.ParseUint(usec, 10, 63)
	if err != nil || u == 0 {
		return 0, fmt.Errorf("systemd: WATCHDOG_USEC %q: want a positive number of microseconds", usec)
	}
	return time.Duration(u) * time.Microsecond / 2, nil
}

// current sends where the lifecycle is now. It reads the phase under the
// lock, so that a transition delivered meanwhile cannot be overtaken by an
// older status.
func (n *Notifier) current() {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.transitionLocked(n.lc.Phase())
}

// restate sends the status line again (a cordon came or went), and nothing
// else: a drain's STOPPING=1 is said once, by its move.
func (n *Notifier) restate() {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.sendLocked("STATUS=" + n.status(n.lc.Phase()))
}

// transition sends what a move to phase means to systemd.
func (n *Notifier) transition(phase probes.Phase) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.transitionLocked(phase)
}

func (n *Notifier) transitionLocked(phase probes.Phase) {
	var lines []string
	switch {
	case phase == probes.Draining:
		lines = append(lines, "STOPPING=1")
	case n.lc.Started() && phase != probes.Broken && !n.readySent:
		n.readySent = true
		lines = append(lines, "READY=1")
	}
	n.sendLocked(append(lines, "STATUS="+n.status(phase))...)
}

// progress sends warm-up progress, at most once per status interval. It
// holds the lock while it reads the phase, so that a progress line never
// follows the move out of Warming.
func (n *Notifier) progress() {
	n.mu.Lock()
	defer n.mu.Unlock()
	phase := n.lc.Phase()
	if phase != probes.Warming || time.Since(n.lastProgress) < n.statusEvery {
		return
	}
	n.lastProgress = time.Now()
	n.sendLocked("STATUS=" + n.status(phase))
}

// status is the unit's status line: the phase, the warm-up note while
// warming, and the cordon while there is one (in the phases it counts in),
// such as "ready; cordoned (until 2026-12-01T10:45:00Z)". Any local user
// can read it (systemctl status), so it is written for anonymous readers:
// the cordon's reason stays out (probes.Cordon.For).
func (n *Notifier) status(phase probes.Phase) string {
	s := phase.String()
	if phase == probes.Warming && n.startup != nil {
		if note := n.startup.Report().ProgressNote(); note != "" {
			s += ": " + note
		}
	}
	if c, _ := n.lc.Cordoned(); c.CountsIn(phase) {
		s += "; " + c.For(probes.Anonymous).Note()
	}
	return s
}

func (n *Notifier) send(lines ...string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.sendLocked(lines...)
}

// sendLocked writes one datagram of newline-separated assignments, dropping
// a STATUS= that repeats the last one sent. n.mu must be held.
func (n *Notifier) sendLocked(lines ...string) {
	if n.conn == nil {
		return
	}
	if len(lines) == 1 && lines[0] == "STATUS="+n.lastStatus {
		return
	}
	for _, l := range lines {
		if status, ok := strings.CutPrefix(l, "STATUS="); ok {
			n.lastStatus = status
		}
	}
	_ = n.conn.SetWriteDeadline(time.Now().Add(time.Second))
	// An error means systemd is gone or its queue is full: nothing useful
	// to do but go on.
	_, _ = n.conn.Write([]byte(strings.Join(lines, "\n")))
}
