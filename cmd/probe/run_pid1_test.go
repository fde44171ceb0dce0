//go:build linux

package main

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/probekit/probes/internal/testenv/testutil"
)

// unshareArgs start a command as PID 1 of a PID namespace of its own, with
// its own /proc; --kill-child ends it, and so the namespace, with unshare.
var unshareArgs = []string{"unshare", "--pid", "--fork", "--kill-child", "--mount-proc"}

// needPIDNamespace skips the test when util-linux's unshare is missing or
// cannot make a PID namespace (not root), and fails it then under CI=true.
func needPIDNamespace(t *testing.T) {
	t.Helper()
	msg := ""
	if _, err := exec.LookPath(unshareArgs[0]); err != nil {
		msg = "unshare not found (Debian package util-linux)"
	} else if out, err := exec.Command(unshareArgs[0], append(unshareArgs[1:], "true")...).CombinedOutput(); err != nil {
		msg = fmt.Sprintf("cannot make a PID namespace (the test needs root or CAP_SYS_ADMIN): %v: %s", err, strings.TrimSpace(string(out)))
	}
	if msg == "" {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatal(msg + " (CI=true: it is required)")
	}
	t.Skip(msg)
}

// As PID 1 of a PID namespace, without -subreaper, the wrapper reaps the
// orphans handed to it, leaves no zombie, answers its probes meanwhile,
// and exits with the child's code.
func TestRunReapsOrphansAsPID1(t *testing.T) {
	needPIDNamespace(t)
	w := startRunUnder(t, unshareArgs, []string{"-drain", "0"}, "exit:0")
	var pid1 int // probe run, unshare's child, by its pid outside the namespace
	testutil.Eventually(t, "probe run started by unshare", func() bool {
		children := procsWhere(func(pid int) bool {
			_, ppid, ok := procState(pid)
			return ok && ppid == w.cmd.Process.Pid
		})
		if len(children) == 1 {
			pid1 = children[0]
		}
		return pid1 != 0
	})
	if got := nsPID(pid1); got != 1 {
		t.Fatalf("probe run is pid %d in its namespace, want 1", got)
	}
	ns, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/pid", pid1))
	if err != nil {
		t.Fatal(err)
	}
	inNS := func(pid int) bool {
		link, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/pid", pid))
		return err == nil && link == ns
	}
	w.eventually("/livez", 200)
	w.eventually("/readyz", 200)

	var orphans []int
	for range 2 {
		w.write("orphan")
		line := w.next("orphan ")
		n, err := strconv.Atoi(strings.TrimPrefix(line, "orphan "))
		if err != nil {
			t.Fatalf("%q: %v", line, err)
		}
		var pid int // the orphan outside the namespace
		testutil.Eventually(t, fmt.Sprintf("the orphan (pid %d in the namespace) handed to probe run", n), func() bool {
			found := procsWhere(func(p int) bool { return inNS(p) && nsPID(p) == n })
			if len(found) != 1 {
				return false
			}
			_, ppid, ok := procState(found[0])
			pid = found[0]
			return ok && ppid == pid1
		})
		orphans = append(orphans, pid)
	}
	for _, pid := range orphans {
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
	}
	// A zombie keeps its /proc entry, in state Z, until it is reaped.
	testutil.Eventually(t, "the orphans reaped", func() bool {
		for _, pid := range orphans {
			if _, _, ok := procState(pid); ok {
				return false
			}
		}
		return true
	})
	if zombies := procsWhere(func(pid int) bool {
		state, _, ok := procState(pid)
		return ok && state == "Z" && inNS(pid)
	}); len(zombies) > 0 {
		t.Errorf("zombies left in the namespace: %v", zombies)
	}
	if got := w.status("/livez"); got != 200 {
		t.Errorf("once the orphans are reaped, /livez answers %d; want 200", got)
	}
	w.send("exit 3")
	if code := w.wait(); code != 3 {
		t.Errorf("exit code %d, want the child's 3", code)
	}
}

// procsWhere returns the pids in /proc for which keep is true.
func procsWhere(keep func(pid int) bool) []int {
	entries, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range entries {
		if pid, err := strconv.Atoi(e.Name()); err == nil && keep(pid) {
			out = append(out, pid)
		}
	}
	return out
}

// nsPID returns pid's pid in its own PID namespace (the last of NSpid in
// /proc/PID/status), 0 once it is gone.
func nsPID(pid int) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for line := range strings.Lines(string(b)) {
		if rest, ok := strings.CutPrefix(line, "NSpid:"); ok {
			f := strings.Fields(rest)
			if len(f) == 0 {
				return 0
			}
			n, _ := strconv.Atoi(f[len(f)-1])
			return n
		}
	}
	return 0
}
