// Package proctest runs the process of a throwaway server for tests: it
// starts it with its output appended to a log, signals it (and its
// children, for servers whose workers run in sessions of their own),
// pauses it and returns only once it is really stopped, stops it within a
// bound, and kills what is left at cleanup. internal/pgtest, redistest and
// mariadbtest are built on it.
package proctest

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Proc is one server's process, started again as often as a test wants.
// The zero value is ready to use.
type Proc struct {
	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{}
}

// Start starts cmd with its output appended to logPath and watches for its
// exit.
func (p *Proc) Start(cmd *exec.Cmd, logPath string) error {
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		return err
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		logf.Close()
		close(exited)
	}()
	p.mu.Lock()
	p.cmd, p.exited = cmd, exited
	p.mu.Unlock()
	return nil
}

// Exited is closed once the process started last has exited; nil before
// the first Start.
func (p *Proc) Exited() <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.exited
}

// pids is the process and, with all, its children.
func (p *Proc) pids(all bool) []int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return nil
	}
	pids := []int{p.cmd.Process.Pid}
	if all {
		pids = append(Children(pids[0]), pids...)
	}
	return pids
}

// Signal sends sig to the process and, with all, to its children. A
// process already gone is no error.
func (p *Proc) Signal(sig syscall.Signal, all bool) error {
	var errs []error
	for _, pid := range p.pids(all) {
		if err := p.kill(pid, sig); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// kill sends sig to pid, a process already gone being no error: through
// os.Process for the process itself, which knows once it has been reaped,
// so that a pid the system has given to another process is never hit; and
// with kill(2) for a child.
func (p *Proc) kill(pid int, sig syscall.Signal) error {
	p.mu.Lock()
	self := p.cmd.Process
	p.mu.Unlock()
	var err error
	if pid == self.Pid {
		if err = self.Signal(sig); errors.Is(err, os.ErrProcessDone) {
			return nil
		}
	} else if err = syscall.Kill(pid, sig); errors.Is(err, syscall.ESRCH) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("kill %d %s: %w", pid, sig, err)
	}
	return nil
}

// Pause freezes the process (and, with all, its children) with SIGSTOP and
// returns once each is stopped: the signal is asynchronous, and a test that
// meets a server still running would measure nothing. A child forked while
// the parent was being stopped is stopped too.
func (p *Proc) Pause(all bool) error {
	deadline := time.Now().Add(10 * time.Second)
	signalled := map[int]bool{}
	for {
		var fresh []int
		for _, pid := range p.pids(all) {
			if !signalled[pid] {
				fresh = append(fresh, pid)
			}
		}
		if len(fresh) == 0 {
			return nil
		}
		for _, pid := range fresh {
			signalled[pid] = true
			if err := p.kill(pid, syscall.SIGSTOP); err != nil {
				return err
			}
		}
		for _, pid := range fresh {
			for !Stopped(pid) {
				if time.Now().After(deadline) {
					return fmt.Errorf("process %d not stopped 10s after SIGSTOP", pid)
				}
				time.Sleep(time.Millisecond)
			}
		}
	}
}

// Resume undoes Pause.
func (p *Proc) Resume(all bool) error { return p.Signal(syscall.SIGCONT, all) }

// Stop resumes the process (a paused one cannot act on a signal), sends it
// sig and reports whether it exited within timeout.
func (p *Proc) Stop(sig syscall.Signal, all bool, timeout time.Duration) bool {
	exited := p.Exited()
	if exited == nil {
		return true
	}
	_ = p.Signal(syscall.SIGCONT, all)
	_ = p.Signal(sig, false)
	select {
	case <-exited:
		return true
	case <-time.After(timeout):
		return false
	}
}

// Cleanup stops a process still running as Stop does, and kills it (and,
// with all, its children) when it does not exit in time.
func (p *Proc) Cleanup(sig syscall.Signal, all bool, timeout time.Duration) {
	exited := p.Exited()
	if exited == nil {
		return
	}
	select {
	case <-exited:
		return
	default:
	}
	if !p.Stop(sig, all, timeout) {
		_ = p.Signal(syscall.SIGKILL, all)
		<-exited
	}
}

// stat returns the fields of /proc/pid/stat after the command's name
// (which may hold spaces and parentheses): state, ppid, ...
func stat(path string) []string {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	return strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
}

// Stopped reports whether process pid is stopped (state T in /proc), or
// gone: exited, or a zombie its stopped parent cannot reap. Without /proc
// it trusts the signal.
func Stopped(pid int) bool {
	f := stat(fmt.Sprintf("/proc/%d/stat", pid))
	return len(f) == 0 || strings.ContainsAny(f[0], "TtZX")
}

// Children lists the processes whose parent is pid, from /proc.
func Children(pid int) []int {
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	var out []int
	for _, path := range stats {
		f := stat(path)
		if len(f) < 2 {
			continue
		}
		if ppid, _ := strconv.Atoi(f[1]); ppid == pid {
			if child, err := strconv.Atoi(filepath.Base(filepath.Dir(path))); err == nil {
				out = append(out, child)
			}
		}
	}
	return out
}

// WaitReady polls ready until it returns nil, and fails when the process
// exits first (with the end of the log at logPath) or within passes.
func (p *Proc) WaitReady(ready func() error, logPath string, within time.Duration) error {
	exited := p.Exited()
	deadline := time.Now().Add(within)
	for {
		err := ready()
		if err == nil {
			return nil
		}
		select {
		case <-exited:
			log, _ := os.ReadFile(logPath)
			if len(log) > 4<<10 {
				log = log[len(log)-4<<10:]
			}
			return fmt.Errorf("exited before it was ready: %s", log)
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not ready after %s: %w", within, err)
		}
		time.Sleep(10 * time.Millisecond) // polling a server that starts; nothing to wait on
	}
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago, for
// a server the test starts.
func FreePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// Unprivileged returns the credentials of the first of the named users
// that exists, for a server that refuses to run as root (PostgreSQL,
// MariaDB); it fails when none does.
func Unprivileged(names ...string) (*syscall.Credential, error) {
	for _, name := range names {
		u, err := user.Lookup(name)
		if err != nil {
			continue
		}
		uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
		gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
		if err1 == nil && err2 == nil {
			return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), NoSetGroups: true}, nil
		}
	}
	return nil, fmt.Errorf("running as root, and none of the users %v to run the server as", names)
}
