//go:build unix

package main

import (
	"bufio"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// seedArgs is the first seed's service under probe run: uvicorn serving a
// FastAPI app that loads its cache at import.
var seedArgs = []string{"-name", "seed", "-ready", "http://127.0.0.1:8000/health",
	"-ready", `exec:sh -c 'test -e /run/seed/ready && echo "100% $HOME"'`,
	"-warmup-deadline", "1m", "-drain", "5s", "-stop-timeout", "10s", "-probe-addr", ":8081",
	"--", "/usr/bin/python3", "-m", "uvicorn", "app:app", "--port", "8000"}

// The unit is Type=notify with KillMode=mixed, its timeouts cover the
// drain and the child's stop, and its ExecStart runs the same command line.
func TestPrintSystemd(t *testing.T) {
	var out, stderr strings.Builder
	if code := runCommand(append([]string{"-print-systemd"}, seedArgs...), &out, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	unit := map[string]string{}
	sc := bufio.NewScanner(strings.NewReader(out.String()))
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), "="); ok && !strings.HasPrefix(k, "#") {
			unit[k] = v
		}
	}
	for k, want := range map[string]string{"Type": "notify", "NotifyAccess": "main", "KillMode": "mixed", "KillSignal": "SIGTERM", "Restart": "on-failure"} {
		if unit[k] != want {
			t.Errorf("%s=%s, want %s", k, unit[k], want)
		}
	}
	seconds := func(k string) time.Duration {
		n, err := strconv.Atoi(unit[k])
		if err != nil {
			t.Fatalf("%s=%q: want whole seconds", k, unit[k])
		}
		return time.Duration(n) * time.Second
	}
	if stop := seconds("TimeoutStopSec"); stop < 5*time.Second+10*time.Second+killGrace {
		t.Errorf("TimeoutStopSec %s does not cover the drain (5s), the stop timeout (10s) and the SIGKILL (%s)", stop, killGrace)
	}
	if start := seconds("TimeoutStartSec"); start <= time.Minute {
		t.Errorf("TimeoutStartSec %s does not exceed the warm-up deadline (1m)", start)
	}
	if seconds("WatchdogSec") <= 0 {
		t.Error("WatchdogSec must be set: WATCHDOG=1 goes only while liveness passes")
	}

	words, err := systemdSplit(unit["ExecStart"])
	if err != nil {
		t.Fatalf("ExecStart=%s: %v", unit["ExecStart"], err)
	}
	if len(words) < 2 || words[0] != probePath || words[1] != "run" {
		t.Fatalf("ExecStart=%s: want %s run ...", unit["ExecStart"], probePath)
	}
	o, code, ok := parseRun(words[2:], &stderr)
	if !ok {
		t.Fatalf("ExecStart's flags do not parse (exit %d): %s", code, stderr.String())
	}
	want, _, _ := parseRun(seedArgs, &stderr)
	if !slices.Equal(o.ready, want.ready) || !slices.Equal(o.argv, want.argv) || o.name != want.name ||
		o.drain != want.drain || o.stopTimeout != want.stopTimeout || o.warmupDeadline != want.warmupDeadline || o.probeAddr != want.probeAddr {
		t.Errorf("ExecStart runs %+v\nwant %+v", o, want)
	}
	if strings.Contains(unit["ExecStart"], "print-systemd") {
		t.Errorf("ExecStart=%s carries -print-systemd", unit["ExecStart"])
	}

	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze not installed; the unit's numbers were checked above")
	}
	// systemd-analyze wants ExecStart's binary to exist: this test's will do.
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "seed.service")
	if err := os.WriteFile(path, []byte(strings.ReplaceAll(out.String(), probePath, self)), 0o644); err != nil {
		t.Fatal(err)
	}
	text, err := exec.Command(analyze, "verify", path).CombinedOutput()
	// Outside a booted systemd, verify may complain about the machine (no
	// D-Bus, missing default units); what matters is what it says of ours.
	for _, line := range strings.Split(string(text), "\n") {
		if strings.Contains(line, "seed.service") {
			t.Errorf("systemd-analyze verify: %s", line)
		}
	}
	t.Logf("systemd-analyze verify: %v\n%s", err, text)
}

// systemdSplit splits a command line as systemd does: words at blanks,
// "..." and '...' quoted with C escapes, %% and $$ for % and $.
func systemdSplit(s string) ([]string, error) {
	var words []string
	for i := 0; i < len(s); {
		if s[i] == ' ' {
			i++
			continue
		}
		var w strings.Builder
		if q := s[i]; q == '"' || q == '\'' {
			i++
			for ; i < len(s) && s[i] != q; i++ {
				if s[i] == '\\' && i+1 < len(s) {
					i++
					switch s[i] {
					case 'n':
						w.WriteByte('\n')
					case 't':
						w.WriteByte('\t')
					case 'r':
						w.WriteByte('\r')
					default:
						w.WriteByte(s[i])
					}
					continue
				}
				w.WriteByte(s[i])
			}
			if i >= len(s) {
				return nil, errors.New("a quote is not closed")
			}
			i++
		} else {
			for ; i < len(s) && s[i] != ' '; i++ {
				w.WriteByte(s[i])
			}
		}
		words = append(words, strings.NewReplacer("%%", "%", "$$", "$").Replace(w.String()))
	}
	return words, nil
}

func TestSystemdWord(t *testing.T) {
	for _, w := range []string{"plain", "-ready=http://127.0.0.1:8000/health", "", "a b", `say "hi"`, `back\slash`, "50%", "$HOME", "semi;colon", "tab\tnew\nline", "it's"} {
		got, err := systemdSplit(systemdWord(w))
		if err != nil || len(got) != 1 || got[0] != w {
			t.Errorf("systemdWord(%q) = %s, which splits to %q, %v", w, systemdWord(w), got, err)
		}
	}
}

// The Deployment runs probe run as the container's command, with the
// probes on -probe-addr and the child's port from its -ready check.
func TestPrintKubernetes(t *testing.T) {
	var out, stderr strings.Builder
	if code := runCommand(append([]string{"-print-kubernetes", "-image", "registry.example/seed:1"}, seedArgs...), &out, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	y := out.String()
	for _, want := range []string{
		"command:\n            - /usr/local/bin/probe\n          args:\n            - run\n",
		"            - -warmup-deadline=1m0s\n",
		"            - --\n            - /usr/bin/python3\n",
		"- name: http\n              containerPort: 8000\n",
		"- name: probes\n              containerPort: 8081\n",
		"path: /readyz\n              port: probes\n",
		"probes.probekit.dev/stop: \"drain=5s on-drain=0s shutdown-timeout=12s after-close=0s stop=20s\"",
		"image: registry.example/seed:1\n",
	} {
		if !strings.Contains(y, want) {
			t.Errorf("the Deployment lacks %q:\n%s", want, y)
		}
	}
	for _, not := range []string{"- -print-kubernetes", "- -image"} {
		if strings.Contains(y, not) {
			t.Errorf("the Deployment carries %q:\n%s", not, y)
		}
	}

	// The state directory is the container's: it need not exist here, and
	// the Deployment mounts an emptyDir there, which outlives the container.
	out.Reset()
	stderr.Reset()
	if code := runCommand(append([]string{"-print-kubernetes", "-image", "x", "-state-dir", "/var/lib/seed-not-here"}, seedArgs...), &out, &stderr); code != 0 {
		t.Fatalf("with -state-dir: exit %d: %s", code, stderr.String())
	}
	for _, want := range []string{"            - -state-dir=/var/lib/seed-not-here\n", "mountPath: /var/lib/seed-not-here\n", "emptyDir:"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("with -state-dir, the Deployment lacks %q:\n%s", want, out.String())
		}
	}

	stderr.Reset()
	code := runCommand([]string{"-print-kubernetes", "-image", "x", "--", "worker"}, &out, &stderr)
	if code != exitWrapper || !strings.Contains(stderr.String(), "give -app-addr") {
		t.Errorf("without an address for the child: got %d %q, want %d and a line asking for -app-addr", code, stderr.String(), exitWrapper)
	}
	stderr.Reset()
	code = runCommand([]string{"-print-kubernetes", "-image", "x", "-drain", "0", "-app-addr", ":8000", "--", "worker"}, &out, &stderr)
	if code != exitWrapper || !strings.Contains(stderr.String(), "-drain") {
		t.Errorf("with no drain: got %d %q, want %d and a line about -drain", code, stderr.String(), exitWrapper)
	}
}
