//go:build unix

package main

// probe run [flags] -- CMD ARGS...: the three gates for a process that has
// none of its own, assembled by package app as for any service (the probe
// listener, the page and /history, /metrics, systemd, the admin socket,
// HAProxy's agent) with the process as the service:
//
//   - startup passes once the child answers its -ready checks, polled every
//     -every; past -warmup-deadline the wrapper goes Broken and stops it;
//   - liveness fails once the child has exited, or when a -live check has
//     failed -live-failures times in a row (counted only once started);
//   - readiness is the -ready checks, failing at once on the stop.
//
// The wrapper handles the signals itself rather than the server (whose
// Signals it turns off): SIGTERM or SIGINT cancels Run, so the drain
// begins; a second one cuts the drain short (Server.EndDrain). The child
// is signalled when the shutdown cancels the background work, after the
// drain: its lifetime is background work of the lifecycle, and the server's
// shutdown timeout is the child's -stop-timeout plus the time a SIGKILL
// takes, so that the deployment files count it. A child that exits on its
// own breaks the lifecycle and ends the drain, or has it skipped: nothing
// is left to serve.

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/probekit/probes"
	"github.com/probekit/probes/app"
	"github.com/probekit/probes/metrics"
	"github.com/probekit/probes/readiness"
	"github.com/probekit/probes/server"
	"github.com/probekit/probes/startup"
)

// Defaults of probe run's flags.
const (
	defaultEvery        = 100 * time.Millisecond
	defaultStopTimeout  = 10 * time.Second
	defaultLiveFailures = 3
	defaultCheckTimeout = time.Second
)

// killGrace is how long the wrapper waits for the child to go once it has
// sent SIGKILL, and for a timed-out exec check to go.
const killGrace = 2 * time.Second

// Exit codes of probe run, besides the child's own (128+n when a signal n
// killed it).
const (
	exitDeadline  = 124 // the child was not ready by the warm-up deadline (as timeout(1))
	exitWrapper   = 125 // probe run itself failed: its flags, a listener it could not bind (as docker run)
	exitCannotRun = 126 // the command could not be run
	exitNotFound  = 127 // the command was not found
)

// Names the wrapper gives its own pieces.
const (
	aliveCheck = "child"
	readyTask  = "ready"
	childWork  = "child"
)

// forwarded are the signals passed on to the child as they come.
var forwarded = []os.Signal{syscall.SIGHUP, syscall.SIGUSR1, syscall.SIGUSR2, syscall.SIGWINCH}

// runOptions is what probe run was given.
type runOptions struct {
	ready, live                        checkSpecs
	liveFailures                       int
	every, interval, timeout           time.Duration
	warmupDeadline, drain, stopTimeout time.Duration
	probeAddr, adminSocket, agentAddr  string
	terminationLog, stateDir, readers  string
	name                               string
	subreaper                          bool
	printSystemd, printKubernetes      bool
	image, appAddr                     string
	argv                               []string
	fs                                 *flag.FlagSet
}

// checkSpecs is a repeatable flag.
type checkSpecs []string

func (c *checkSpecs) String() string     { return strings.Join(*c, " ") }
func (c *checkSpecs) Set(v string) error { *c = append(*c, v); return nil }

// printOnly are the flags that say what to print, left out of the command
// line the printed files run.
var printOnly = map[string]bool{"print-systemd": true, "print-kubernetes": true, "image": true, "app-addr": true}

const runUsage = `usage: probe run [flags] -- CMD ARGS...

Runs CMD in a process group of its own, its stdio passed through, and gives
it the three probes on -probe-addr (/startupz, /livez, /readyz, /healthz,
/history, /metrics): startup passes once every -ready check passes,
liveness fails once CMD has exited (or a -live check fails), readiness is
the -ready checks until the stop. SIGTERM or SIGINT: readiness fails at
once, the drain runs, then CMD's process group gets the same signal and
-stop-timeout before SIGKILL. SIGHUP, SIGUSR1, SIGUSR2 and SIGWINCH are
passed on to CMD. The exit code is CMD's (128+n when signal n killed it);
124 when CMD was not ready by -warmup-deadline, 125 when probe run itself
failed, 126 when CMD cannot be run, 127 when it is not found.

A check is http://host:port/path (answers 2xx), tcp://host:port (accepts)
or exec:CMD ARGS (exits 0; words split at blanks, '...' and "..." quote).

-print-systemd and -print-kubernetes print a unit or a Deployment that
runs the same command line, with the timeouts it needs.

`

// parseRun parses probe run's arguments. It returns false with the exit
// code when there is nothing to run.
func parseRun(args []string, stderr io.Writer) (runOptions, int, bool) {
	var o runOptions
	fs := flag.NewFlagSet("probe run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, runUsage)
		fs.PrintDefaults()
	}
	fs.Var(&o.ready, "ready", "a check that passes once the child is ready, repeatable: http://host:port/path, tcp://host:port or exec:CMD ARGS; startup waits for all, and readiness keeps checking them")
	fs.Var(&o.live, "live", "a check of the child for liveness, repeatable, in the same forms; it counts only once startup has passed")
	fs.IntVar(&o.liveFailures, "live-failures", defaultLiveFailures, "how many failures in a row of a -live check fail liveness")
	fs.DurationVar(&o.every, "every", defaultEvery, "how often the -ready checks are polled until the child is ready")
	fs.DurationVar(&o.interval, "interval", probes.DefaultInterval, "how often the -ready and -live checks run once the child is ready")
	fs.DurationVar(&o.timeout, "timeout", defaultCheckTimeout, "how long one execution of a check may take")
	fs.DurationVar(&o.warmupDeadline, "warmup-deadline", startup.DefaultDeadline, "how long the child may take to be ready; past it, probe run goes Broken and stops it")
	fs.DurationVar(&o.drain, "drain", server.DefaultDrainDelay, "how long readiness fails before the child is signalled; 0 for none")
	fs.DurationVar(&o.stopTimeout, "stop-timeout", defaultStopTimeout, "how long the child has to exit once signalled, before SIGKILL")
	fs.StringVar(&o.probeAddr, "probe-addr", app.DefaultProbeAddr, "where the probes, the page, /history and /metrics answer")
	fs.StringVar(&o.adminSocket, "admin-socket", "", "a Unix socket for probectl (status, cordon, uncordon); none when empty")
	fs.StringVar(&o.agentAddr, "agent-addr", "", "where HAProxy's agent check is answered; none when empty")
	fs.StringVar(&o.terminationLog, "termination-log", "", "where the termination message goes: why probe run stopped (the child's exit code, a failing -live check, the deadline, a signal), then the last transitions (default /dev/termination-log when it exists and is writable; - for none)")
	fs.StringVar(&o.stateDir, "state-dir", "", "a directory where the history keeps its files, so that the next probe run there lists this one and how it ended (in Kubernetes an emptyDir, which outlives the container); none when empty")
	fs.StringVar(&o.readers, "readers", "none", "who sees reasons (check errors, causes, the cordon's reason) on the probe port: none, or loopback (an operator through kubectl port-forward or an SSH tunnel; not behind a proxy in the same pod or host); the admin socket's peers always do")
	fs.StringVar(&o.name, "name", "", "the service's name on every surface (default the command's base name)")
	fs.BoolVar(&o.subreaper, "subreaper", false, "reap orphaned descendants as a child subreaper (Linux); as PID 1, probe run reaps them anyway")
	fs.BoolVar(&o.printSystemd, "print-systemd", false, "print a systemd unit that runs this command line, and exit")
	fs.BoolVar(&o.printKubernetes, "print-kubernetes", false, "print a Kubernetes Deployment that runs this command line, and exit")
	fs.StringVar(&o.image, "image", "", "with -print-kubernetes: the container's image, holding the command and /usr/local/bin/probe")
	fs.StringVar(&o.appAddr, "app-addr", "", "with -print-kubernetes: the child's own address, for its port (default the first http:// or tcp:// -ready check's)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return o, 0, false
		}
		return o, exitWrapper, false
	}
	o.fs, o.argv = fs, fs.Args()
	var errs []string
	if len(o.argv) == 0 {
		errs = append(errs, "no command: give it after --")
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"every", o.every}, {"interval", o.interval}, {"timeout", o.timeout}, {"warmup-deadline", o.warmupDeadline}, {"stop-timeout", o.stopTimeout}} {
		if d.v <= 0 {
			errs = append(errs, fmt.Sprintf("-%s %s: must be positive", d.name, d.v))
		}
	}
	if o.drain < 0 {
		errs = append(errs, fmt.Sprintf("-drain %s: must not be negative", o.drain))
	}
	if o.readers != "none" && o.readers != "loopback" {
		errs = append(errs, fmt.Sprintf("-readers %q: want none or loopback", shown(o.readers)))
	}
	if o.liveFailures < 1 {
		errs = append(errs, fmt.Sprintf("-live-failures %d: must be at least 1", o.liveFailures))
	}
	if o.printSystemd && o.printKubernetes {
		errs = append(errs, "-print-systemd and -print-kubernetes: give one")
	}
	if o.printKubernetes && o.image == "" {
		errs = append(errs, "-print-kubernetes needs -image")
	}
	for _, list := range []struct {
		flag  string
		specs checkSpecs
	}{{"ready", o.ready}, {"live", o.live}} {
		for _, s := range list.specs {
			if _, _, err := parseCheck(s, nil); err != nil {
				errs = append(errs, fmt.Sprintf("-%s %q: %v", list.flag, shown(s), err))
			}
		}
	}
	if len(errs) > 0 {
		for _, e := range errs {
			fmt.Fprintf(stderr, "probe run: %s\n", e)
		}
		fmt.Fprintln(stderr, "usage: probe run [flags] -- CMD ARGS... (probe run -h for the flags)")
		return o, exitWrapper, false
	}
	return o, 0, true
}

// runCommand is probe run.
func runCommand(args []string, stdout, stderr io.Writer) int {
	o, code, ok := parseRun(args, stderr)
	if !ok {
		return code
	}
	if o.printSystemd || o.printKubernetes {
		return printDeploy(o, stdout, stderr)
	}
	w, err := newWrapper(o, slog.New(slog.NewTextHandler(stderr, nil)))
	if err != nil {
		fmt.Fprintf(stderr, "probe run: %s\n", shown(err.Error()))
		return exitWrapper
	}
	return w.run(context.Background(), os.Getpid() == 1)
}

// namedCheck is a check of the child, as a flag gave it.
type namedCheck struct {
	name, spec string
	checker    probes.Checker
}

// Why probe run stopped, as far as the exit code cares.
const (
	causeNone   = iota
	causeSignal // SIGTERM or SIGINT
	causeChild  // the child exited on its own
)

// wrapper is probe run's state.
type wrapper struct {
	o           runOptions
	ready, live []namedCheck
	a           *app.App
	log         *zap.Logger
	procs       *procs // from run

	stdin, stdout, stderr *os.File // the child's

	started  chan struct{}           // closed once the child has started
	child    atomic.Pointer[proc]    // the child, once started
	startErr atomic.Pointer[error]   // why it could not start
	stopSig  atomic.Int32            // the first SIGTERM or SIGINT; 0 before
	cause    atomic.Int32            // causeSignal or causeChild, the first
	stopping atomic.Bool             // the child has been signalled to stop
	stopRun  context.CancelCauseFunc // ends Run: the drain begins
}

// newWrapper assembles the service for o; nothing runs until run.
func newWrapper(o runOptions, logger *slog.Logger) (*wrapper, error) {
	w := &wrapper{o: o, stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr, started: make(chan struct{})}
	var err error
	if w.ready, err = w.checks(o.ready); err != nil {
		return nil, err
	}
	if w.live, err = w.checks(o.live); err != nil {
		return nil, err
	}
	parts := []app.Part{
		metrics.Part(prometheus.NewRegistry()),
		app.Task(readyTask, w.warm),
		// The child's exit triggers the check (runChild), within the
		// recheck gap; the schedule, as the other checks' (-interval), is
		// only a safety net, so that the wrapper wakes no more often at
		// rest than its checks of the child need.
		app.SelfCheck(aliveCheck, probes.CheckFunc(w.alive), probes.Every(o.interval), probes.Untimed(),
			probes.Recheck(min(o.every, o.interval))),
	}
	for _, c := range w.ready {
		parts = append(parts, app.Check(c.name, c.checker, probes.Local(), probes.Every(o.interval),
			probes.Timeout(o.timeout), probes.Recheck(min(o.every, o.interval))))
	}
	for _, c := range w.live {
		parts = append(parts, app.SelfCheck(c.name, w.afterStartup(c.checker), probes.Every(o.interval),
			probes.Timeout(o.timeout), probes.FailureThreshold(o.liveFailures)))
	}
	parts = append(parts, app.PartFunc(func(a *app.App) error {
		// The wrapper takes SIGTERM and SIGINT itself (see run), so that
		// the child hears of them only after the drain.
		a.Option(server.Signals())
		return a.Lifecycle.Go(childWork, w.runChild)
	}))
	drain := o.drain
	if drain == 0 {
		drain = app.NoDrain
	}
	cfg := app.Config{
		Name:           cmp.Or(o.name, filepath.Base(o.argv[0])),
		ProbeAddr:      o.probeAddr,
		WarmupDeadline: o.warmupDeadline,
		Drain:          drain,
		// The shutdown's background work is the child's stop: its
		// -stop-timeout, then a SIGKILL.
		ShutdownTimeout: o.stopTimeout + killGrace,
		AdminSocket:     o.adminSocket,
		AgentAddr:       o.agentAddr,
		TerminationLog:  o.terminationLog,
		StateDir:        o.stateDir,
		Slog:            logger,
		Parts:           parts,
	}
	if o.readers == "loopback" {
		cfg.Readers = probes.FromLoopback
	}
	if o.printSystemd || o.printKubernetes {
		// The directory is the unit's or the container's, not this
		// machine's: the Deployment mounts it (see deployment).
		cfg.StateDir = ""
	}
	if o.printKubernetes {
		// Only the Deployment reads it: the application is the child.
		cfg.Addr = w.appAddr()
	}
	if w.a, err = app.New(cfg); err != nil {
		return nil, errors.New(configAsFlags.Replace(err.Error()))
	}
	w.log = w.a.Log
	return w, nil
}

// configAsFlags names the assembly's fields in its errors by the flags
// that set them.
var configAsFlags = strings.NewReplacer(
	"app: Config.ProbeAddr:", "-probe-addr:",
	"app: Config.AdminSocket:", "-admin-socket:",
	"app: Config.AgentAddr:", "-agent-addr:",
	"app: Config.TerminationLog:", "-termination-log:",
	"app: Config.StateDir:", "-state-dir:",
	"app: Config.WarmupDeadline:", "-warmup-deadline:",
	"app: Config.Name:", "-name:",
)

// checks turns check flags into named checks, each name unique.
func (w *wrapper) checks(specs []string) ([]namedCheck, error) {
	taken := map[string]bool{}
	var out []namedCheck
	for _, s := range specs {
		name, c, err := parseCheck(s, w)
		if err != nil {
			return nil, fmt.Errorf("%q: %w", s, err)
		}
		out = append(out, namedCheck{name: unique(name, taken), spec: s, checker: c})
	}
	return out, nil
}

// unique returns name, or name-2, name-3... if taken has it, and takes it.
func unique(name string, taken map[string]bool) string {
	n := name
	for i := 2; taken[n]; i++ {
		suffix := fmt.Sprintf("-%d", i)
		n = name[:min(len(name), 63-len(suffix))] + suffix
	}
	taken[n] = true
	return n
}

// appAddr is the child's own address, for the Deployment's http port:
// -app-addr, or the first http:// or tcp:// -ready check's; "" when none.
func (w *wrapper) appAddr() string {
	if w.o.appAddr != "" {
		return w.o.appAddr
	}
	for _, s := range w.o.ready {
		if u, err := url.Parse(s); err == nil && (u.Scheme == "http" || u.Scheme == "https" || u.Scheme == "tcp") && u.Port() != "" {
			return u.Host
		}
	}
	return ""
}

// run runs the child under the assembled service until it has stopped,
// and returns the exit code. With reapAll (PID 1, or -subreaper) it reaps
// every orphan handed to it too.
func (w *wrapper) run(ctx context.Context, pid1 bool) int {
	reapAll := pid1
	if w.o.subreaper {
		if err := becomeSubreaper(); err != nil {
			w.log.Error("cannot become a child subreaper", zap.Error(err))
			return exitWrapper
		}
		reapAll = true
	}
	w.procs = newProcs(reapAll)
	defer w.procs.close()

	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	w.stopRun = cancel
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, append([]os.Signal{syscall.SIGTERM, syscall.SIGINT}, forwarded...)...)
	defer signal.Stop(sigs)
	quit, handled := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(handled)
		w.signals(sigs, quit)
	}()
	err := w.a.Run(ctx)
	close(quit)
	<-handled
	return w.exitCode(err)
}

// signals handles the signals: the first SIGTERM or SIGINT starts the
// stop, a later one cuts the drain short and, once the child has been
// told to stop, goes to its group; the others go to the child.
func (w *wrapper) signals(sigs <-chan os.Signal, quit <-chan struct{}) {
	for {
		var s os.Signal
		select {
		case <-quit:
			return
		case s = <-sigs:
		}
		sig := s.(syscall.Signal)
		switch sig {
		case syscall.SIGTERM, syscall.SIGINT:
			if w.stopSig.CompareAndSwap(0, int32(sig)) {
				w.cause.CompareAndSwap(causeNone, causeSignal)
				w.log.Info("stopping: readiness fails, the drain, then the child gets the signal", zap.Stringer("signal", sig))
				w.stopRun(&server.SignalStop{Signal: sig}) // the message names it, as Run would
				continue
			}
			w.a.Server().EndDrain("signal " + sig.String() + " again")
			if w.stopping.Load() {
				if pr := w.child.Load(); pr != nil {
					_ = pr.signalGroup(sig)
				}
			}
		default:
			pr := w.child.Load()
			if pr == nil {
				w.log.Warn("signal not passed on: the child has not started", zap.Stringer("signal", sig))
				continue
			}
			if err := pr.signal(sig); err != nil && !errors.Is(err, errExited) {
				w.log.Warn("cannot pass the signal on to the child", zap.Stringer("signal", sig), zap.Error(err))
			}
		}
	}
}

// stopSignal is the signal the child's group gets to stop: the one the
// wrapper got, or SIGTERM when the wrapper stops for another reason.
func (w *wrapper) stopSignal() syscall.Signal {
	if s := w.stopSig.Load(); s != 0 {
		return syscall.Signal(s)
	}
	return syscall.SIGTERM
}

// runChild is the child's lifetime as background work of the lifecycle:
// it starts the child when Run begins (once every listener is bound) and
// waits for it; when the shutdown cancels ctx, after the drain, it stops
// it. A child that exits on its own breaks the lifecycle, which stops the
// service.
func (w *wrapper) runChild(ctx context.Context) error {
	switch w.a.Lifecycle.Phase() {
	case probes.Draining, probes.Stopped, probes.Broken:
		return nil // stopped before the child could start
	}
	cmd := exec.Command(w.o.argv[0], w.o.argv[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = w.stdin, w.stdout, w.stderr
	cmd.Env = childEnv(os.Environ())
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	pr, err := w.procs.start(cmd)
	if err != nil {
		w.startErr.Store(&err)
		return fmt.Errorf("cannot start %s: %w", w.o.argv[0], err)
	}
	w.child.Store(pr)
	close(w.started)
	w.log.Info("child started", zap.Int("pid", pr.pid), zap.String("command", w.o.argv[0]))
	select {
	case <-pr.exited:
	case <-ctx.Done():
		w.stop(pr)
		return nil
	}
	// A service's process that ends on its own has failed, whatever its
	// code: Broken (every gate fails) until the wrapper has stopped, with
	// no drain, since nothing is left to serve.
	w.cause.CompareAndSwap(causeNone, causeChild)
	w.a.Server().EndDrain("the child exited")
	w.a.Liveness.Trigger(aliveCheck)
	return fmt.Errorf("the child %s", describe(pr.status))
}

// stop signals the child's group, and kills it past -stop-timeout.
func (w *wrapper) stop(pr *proc) {
	sig := w.stopSignal()
	w.stopping.Store(true)
	if err := pr.signalGroup(sig); err != nil {
		if !errors.Is(err, errExited) {
			w.log.Error("cannot signal the child", zap.Error(err))
		}
	} else {
		w.log.Info("signalled the child's process group", zap.Stringer("signal", sig), zap.Duration("stop_timeout", w.o.stopTimeout))
	}
	t := time.NewTimer(w.o.stopTimeout)
	defer t.Stop()
	select {
	case <-pr.exited:
		w.log.Info("the child stopped", zap.String("how", describe(pr.status)))
		return
	case <-t.C:
	}
	w.log.Warn("the child is still running at the stop timeout: SIGKILL to its process group", zap.Duration("stop_timeout", w.o.stopTimeout))
	_ = pr.signalGroup(syscall.SIGKILL)
	t.Reset(killGrace)
	select {
	case <-pr.exited:
		w.log.Info("the child stopped", zap.String("how", describe(pr.status)))
	case <-t.C:
		w.log.Error("the child is still running after SIGKILL; leaving it behind", zap.Duration("after", killGrace))
	}
}

// exitCode is the wrapper's exit code once Run has returned err.
func (w *wrapper) exitCode(err error) int {
	if p := w.startErr.Load(); p != nil {
		w.log.Error("cannot start the command", zap.Error(*p))
		if errors.Is(*p, exec.ErrNotFound) || errors.Is(*p, fs.ErrNotExist) {
			return exitNotFound
		}
		return exitCannotRun
	}
	pr := w.child.Load()
	cause := w.cause.Load()
	if pr == nil {
		if cause == causeSignal {
			return 128 + int(w.stopSignal())
		}
		w.log.Error("stopped before the child started", zap.Error(err))
		return exitWrapper
	}
	select {
	case <-pr.exited:
	default:
		w.log.Error("the child has not exited", zap.Error(err))
		return exitWrapper
	}
	lc := w.a.Lifecycle
	switch {
	case cause != causeNone:
	case !lc.Started() && lc.Phase() == probes.Broken:
		return exitDeadline
	case err != nil:
		w.log.Error("probe run failed", zap.Error(err))
		return exitWrapper
	}
	return exitCode(pr.status)
}

// alive is the liveness self-check: it fails once the child has exited.
func (w *wrapper) alive(context.Context) error {
	pr := w.child.Load()
	if pr == nil {
		return nil // not started yet: it has not failed
	}
	select {
	case <-pr.exited:
		return fmt.Errorf("the child %s", describe(pr.status))
	default:
		return nil
	}
}

// afterStartup passes until startup has passed, then is c: a -live check
// cannot fail the warm-up (startup's deadline bounds that), which would
// stop systemd's watchdog and restart a service that is only slow.
func (w *wrapper) afterStartup(c probes.Checker) probes.Checker {
	return probes.CheckFunc(func(ctx context.Context) error {
		if !w.a.Lifecycle.Started() {
			return nil
		}
		return c.Check(ctx)
	})
}

// warm is the startup task: until every -ready check passes, it has the
// readiness gate run each failing one every -every (Trigger), and it ends
// once all pass, so that readiness passes the moment startup does.
func (w *wrapper) warm(ctx context.Context, p *startup.Progress) error {
	select {
	case <-w.started:
	case <-ctx.Done():
		return ctx.Err()
	}
	changed := make(chan struct{}, 1)
	defer w.a.Readiness.Subscribe(func() {
		select {
		case changed <- struct{}{}:
		default:
		}
	})()
	// A ticker, not a timer set again once it has fired: the polls keep
	// to -every and do not drift by the time each round takes, so that a
	// child's readiness is seen within one -every of it.
	t := time.NewTicker(w.o.every)
	defer t.Stop()
	for {
		failing := w.failing()
		p.Count(len(w.ready)-len(failing), len(w.ready))
		if len(failing) == 0 {
			return nil
		}
		for _, r := range failing {
			w.a.Readiness.Trigger(r.Name)
		}
		select {
		case <-ctx.Done():
			if !w.a.Lifecycle.Started() {
				w.log.Warn("the warm-up ended before the child was ready", zap.String("failing", failing[0].Name), zap.Error(failing[0].Err))
			}
			return fmt.Errorf("%s: %w", failing[0].Name, ctx.Err())
		case <-changed:
		case <-t.C:
		}
	}
}

// failing returns the readiness gate's latest results of the -ready
// checks that do not pass.
func (w *wrapper) failing() []probes.Result {
	results := w.a.Readiness.Report().Checks
	var out []probes.Result
	for _, c := range w.ready {
		r := probes.Result{Name: c.name, Status: probes.Fail}
		for _, res := range results {
			if res.Name == c.name {
				r = res
			}
		}
		if r.Status != probes.Pass && r.Status != probes.Warn {
			out = append(out, r)
		}
	}
	return out
}

// childEnv is the wrapper's environment without systemd's notification
// variables: the wrapper is the one that notifies (NotifyAccess=main), and
// a child that spoke too would be refused, or believed too early.
func childEnv(env []string) []string {
	out := env[:0:0]
	for _, kv := range env {
		k, _, _ := strings.Cut(kv, "=")
		switch k {
		case "NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID":
			continue
		}
		out = append(out, kv)
	}
	return out
}

// parseCheck reads a check flag: http://host:port/path, tcp://host:port
// or exec:CMD ARGS. It returns the check's name and, with w, its checker.
func parseCheck(spec string, w *wrapper) (string, probes.Checker, error) {
	switch {
	case strings.HasPrefix(spec, "http://"), strings.HasPrefix(spec, "https://"):
		u, err := url.Parse(spec)
		if err != nil || u.Host == "" {
			return "", nil, errors.New("want http://host:port/path")
		}
		c, err := readiness.HTTP(spec)
		if err != nil {
			return "", nil, err
		}
		return checkName(u.Scheme, u.Host), c, nil
	case strings.HasPrefix(spec, "tcp://"):
		addr := strings.TrimPrefix(spec, "tcp://")
		if _, port, err := net.SplitHostPort(addr); err != nil || port == "" {
			return "", nil, errors.New("want tcp://host:port")
		}
		c, err := readiness.TCP(addr)
		if err != nil {
			return "", nil, err
		}
		return checkName("tcp", addr), c, nil
	case strings.HasPrefix(spec, "exec:"):
		argv, err := splitWords(strings.TrimPrefix(spec, "exec:"))
		if err != nil {
			return "", nil, err
		}
		if len(argv) == 0 {
			return "", nil, errors.New("want exec:CMD ARGS")
		}
		var c probes.Checker
		if w != nil {
			c = w.execCheck(argv)
		}
		return checkName("exec", filepath.Base(argv[0])), c, nil
	}
	return "", nil, errors.New("want http://host:port/path, tcp://host:port or exec:CMD ARGS")
}

// checkName makes a check's name (probes.ValidName) of its kind and
// target: http-127.0.0.1-8000, exec-pg_isready.
func checkName(kind, target string) string {
	var b strings.Builder
	b.WriteString(kind + "-")
	dash := true
	for _, r := range target {
		ok := 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' || r == '_' || r == '.'
		switch {
		case ok:
			b.WriteRune(r)
			dash = false
		case !dash:
			b.WriteByte('-')
			dash = true
		}
	}
	name := strings.TrimRight(b.String(), "-")
	return name[:min(len(name), 63)]
}

// splitWords splits s into words at blanks; '...' quotes everything in it,
// "..." everything but \" and \\, and a backslash outside quotes the next
// character. Nothing is expanded.
func splitWords(s string) ([]string, error) {
	var words []string
	var cur strings.Builder
	inWord := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n':
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		case c == '\'':
			end := strings.IndexByte(s[i+1:], '\'')
			if end < 0 {
				return nil, errors.New("a ' is not closed")
			}
			cur.WriteString(s[i+1 : i+1+end])
			i += end + 1
			inWord = true
		case c == '"':
			i++
			for ; i < len(s) && s[i] != '"'; i++ {
				if s[i] == '\\' && i+1 < len(s) && (s[i+1] == '"' || s[i+1] == '\\') {
					i++
				}
				cur.WriteByte(s[i])
			}
			if i >= len(s) {
				return nil, errors.New(`a " is not closed`)
			}
			inWord = true
		case c == '\\':
			if i+1 >= len(s) {
				return nil, errors.New("a \\ ends the command")
			}
			i++
			cur.WriteByte(s[i])
			inWord = true
		default:
			cur.WriteByte(c)
			inWord = true
		}
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words, nil
}

// maxExecOutput is how much of an exec check's output is read; its last
// line says why it failed.
const maxExecOutput = 4 << 10

// execCheck runs argv in a process group of its own: it passes when argv
// exits 0. At the check's timeout the group is killed.
func (w *wrapper) execCheck(argv []string) probes.Checker {
	return probes.CheckFunc(func(ctx context.Context) error {
		r, pw, err := os.Pipe()
		if err != nil {
			return err
		}
		defer r.Close()
		cmd := exec.Command(argv[0], argv[1:]...)
		cmd.Stdout, cmd.Stderr = pw, pw
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		pr, err := w.procs.start(cmd)
		pw.Close()
		if err != nil {
			return err
		}
		out := make(chan string, 1)
		go func() { out <- lastLine(r) }()
		select {
		case <-pr.exited:
		case <-ctx.Done():
			_ = pr.signalGroup(syscall.SIGKILL)
			t := time.NewTimer(killGrace)
			defer t.Stop()
			select {
			case <-pr.exited:
			case <-t.C:
			}
			return fmt.Errorf("%s: %w", argv[0], ctx.Err())
		}
		if exitCode(pr.status) == 0 {
			return nil
		}
		var line string
		select {
		case line = <-out:
		case <-ctx.Done(): // a descendant holds the output open
		}
		if line != "" {
			return fmt.Errorf("%s %s: %s", argv[0], describe(pr.status), line)
		}
		return fmt.Errorf("%s %s", argv[0], describe(pr.status))
	})
}

// lastLine reads r to its end (keeping the first maxExecOutput bytes) and
// returns the last line that is not blank.
func lastLine(r io.Reader) string {
	b, _ := io.ReadAll(io.LimitReader(r, maxExecOutput))
	_, _ = io.Copy(io.Discard, r)
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	return shown(strings.TrimSpace(lines[len(lines)-1]))
}
