//go:build unix

package main

// The processes probe run starts, and waiting for them without ever
// losing an exit status: one loop, woken by SIGCHLD, reaps every process
// the wrapper started and, as PID 1 or a child subreaper, every orphan
// handed to it too. Nothing else waits (no exec.Cmd.Wait), so a status
// cannot go to the wrong waiter, and signals are sent under the same lock
// as the reaping, so that a pid is never signalled once it may be reused.

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"sync"
	"sync/atomic"
	"syscall"
)

// errExited is a signal to a process that has been reaped.
var errExited = errors.New("the process has exited")

// procs starts processes and reaps them. Create it with newProcs before
// starting anything, and close it when every process has been awaited.
type procs struct {
	reapAll bool // wait4(-1): as PID 1 or a subreaper, orphans are ours too

	mu   sync.Mutex
	live map[int]*proc // started and not yet reaped

	orphans atomic.Uint64 // reaped processes the wrapper did not start
	sigchld chan os.Signal
	stop    chan struct{}
	done    chan struct{}
}

// proc is a process started by procs.
type proc struct {
	pid    int
	owner  *procs
	exited chan struct{}      // closed once reaped
	status syscall.WaitStatus // set before exited is closed
}

// newProcs starts the reaping loop. With reapAll it reaps every child of
// the process, orphans included; otherwise only those it started.
func newProcs(reapAll bool) *procs {
	p := &procs{
		reapAll: reapAll,
		live:    map[int]*proc{},
		sigchld: make(chan os.Signal, 1),
		stop:    make(chan struct{}),
		done:    make(chan struct{}),
	}
	signal.Notify(p.sigchld, syscall.SIGCHLD)
	go p.loop()
	return p
}

// close stops the reaping loop and waits for it.
func (p *procs) close() {
	signal.Stop(p.sigchld)
	close(p.stop)
	<-p.done
}

func (p *procs) loop() {
	defer close(p.done)
	for {
		select {
		case <-p.sigchld:
			p.reap()
		case <-p.stop:
			p.reap() // one last pass: the last SIGCHLD may have come with stop
			return
		}
	}
}

// start starts cmd. Its pid is known to the loop before the loop can
// reap it, however soon it exits.
func (p *procs) start(cmd *exec.Cmd) (*proc, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	pr := &proc{pid: cmd.Process.Pid, owner: p, exited: make(chan struct{})}
	// The loop waits for it by pid, and signals go by pid under p.mu:
	// the handle (a pidfd) is not needed.
	_ = cmd.Process.Release()
	p.live[pr.pid] = pr
	return pr, nil
}

// reap reaps every child that has exited.
func (p *procs) reap() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.reapAll {
		for {
			var ws syscall.WaitStatus
			pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil)
			if errors.Is(err, syscall.EINTR) {
				continue
			}
			if err != nil || pid <= 0 {
				return
			}
			if pr := p.live[pid]; pr != nil {
				p.exit(pr, ws)
			} else {
				p.orphans.Add(1)
			}
		}
	}
	for pid, pr := range p.live {
		var ws syscall.WaitStatus
		got, err := syscall.Wait4(pid, &ws, syscall.WNOHANG, nil)
		for errors.Is(err, syscall.EINTR) {
			got, err = syscall.Wait4(pid, &ws, syscall.WNOHANG, nil)
		}
		if got == pid {
			p.exit(pr, ws)
		}
	}
}

// exit records pr's status; p.mu must be held.
func (p *procs) exit(pr *proc, ws syscall.WaitStatus) {
	delete(p.live, pr.pid)
	pr.status = ws
	close(pr.exited)
}

// signal sends sig to the process.
func (pr *proc) signal(sig syscall.Signal) error { return pr.kill(pr.pid, sig) }

// signalGroup sends sig to the process's group, whose leader it is.
func (pr *proc) signalGroup(sig syscall.Signal) error { return pr.kill(-pr.pid, sig) }

// kill sends sig to target (pr's pid, or its group) unless pr has been
// reaped: until then neither its pid nor its group id can be reused.
func (pr *proc) kill(target int, sig syscall.Signal) error {
	pr.owner.mu.Lock()
	defer pr.owner.mu.Unlock()
	select {
	case <-pr.exited:
		return errExited
	default:
	}
	return syscall.Kill(target, sig)
}

// exitCode is the exit code a shell gives for ws: the process's own, or
// 128 plus the signal that killed it.
func exitCode(ws syscall.WaitStatus) int {
	if ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ws.ExitStatus()
}

// describe says how a process ended, for the log.
func describe(ws syscall.WaitStatus) string {
	if ws.Signaled() {
		return fmt.Sprintf("killed by signal %d (%s)", int(ws.Signal()), ws.Signal())
	}
	return fmt.Sprintf("exited with code %d", ws.ExitStatus())
}
