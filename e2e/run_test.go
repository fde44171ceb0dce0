//go:build e2e

package e2e

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/probekit/probes/internal/testenv/testutil"
)

// seedApp is the first seed's service: a FastAPI app that loads its cache
// at import, so that uvicorn answers only seconds after the process forks.
const seedApp = `import time

from fastapi import FastAPI

time.sleep(3)  # the cache, loaded at import
CACHE = {n: str(n) for n in range(1000)}

app = FastAPI()


@app.get("/health")
def health():
    return {"status": "ok", "items": len(CACHE)}
`

// fastAPIPython returns a Python that imports fastapi and uvicorn
// (Debian's python3-fastapi and python3-uvicorn are for /usr/bin/python3),
// skipping the test without one (failing it under CI=true).
func fastAPIPython(t *testing.T) string {
	t.Helper()
	for _, py := range []string{"/usr/bin/python3", "python3"} {
		if exec.Command(py, "-c", "import fastapi, uvicorn").Run() == nil {
			return py
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("no python3 imports fastapi and uvicorn (CI=true: they are required; scripts/install-deps.sh installs them)")
	}
	t.Skip("no python3 imports fastapi and uvicorn; install python3-fastapi and python3-uvicorn (scripts/install-deps.sh does)")
	return ""
}

// buildProbe builds cmd/probe into dir.
func buildProbe(t testing.TB, dir string) string {
	t.Helper()
	bin := filepath.Join(dir, "probe")
	build := exec.Command("go", "build", "-o", bin, "./cmd/probe")
	build.Dir = ".."
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build probe: %v\n%s", err, out)
	}
	return bin
}

// lockedLog is a log two goroutines write.
type lockedLog struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestProbeRunFastAPI runs probe run in front of the seed's FastAPI app
// under uvicorn, with a systemd notification socket: readiness fails, and
// READY=1 waits, until uvicorn answers; on SIGTERM readiness fails at once
// while uvicorn still serves through the drain, then uvicorn stops and
// probe run exits 0.
func TestProbeRunFastAPI(t *testing.T) {
	py := fastAPIPython(t)
	dir := t.TempDir()
	probe := buildProbe(t, dir)
	if err := os.WriteFile(filepath.Join(dir, "seed.py"), []byte(seedApp), 0o644); err != nil {
		t.Fatal(err)
	}
	notify := filepath.Join(dir, "notify.sock")
	sock, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: notify, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer sock.Close()
	readyAt := make(chan time.Time, 1)
	var notes lockedLog
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := sock.Read(buf)
			if err != nil {
				return
			}
			msg := string(buf[:n])
			notes.Write([]byte(msg + "\n"))
			if strings.Contains(msg, "READY=1") {
				select {
				case readyAt <- time.Now():
				default:
				}
			}
		}
	}()

	const drain = 2 * time.Second
	appAddr, probeAddr := testutil.FreeAddr(t), testutil.FreeAddr(t)
	host, port, _ := net.SplitHostPort(appAddr)
	cmd := exec.Command(probe, "run", "-name", "seed", "-probe-addr", probeAddr, "-ready", "http://"+appAddr+"/health",
		"-warmup-deadline", "1m", "-drain", drain.String(), "-stop-timeout", "10s",
		"--", py, "-m", "uvicorn", "seed:app", "--host", host, "--port", port)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "NOTIFY_SOCKET="+notify)
	var logs lockedLog
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		select {
		case <-exited:
		default:
			// SIGKILL to the wrapper alone would leave uvicorn, in a
			// process group of its own, running: its group too.
			cmd.Process.Kill()
			if m := reChildPID.FindStringSubmatch(logs.String()); m != nil {
				if pid, err := strconv.Atoi(m[1]); err == nil {
					_ = syscall.Kill(-pid, syscall.SIGKILL)
				}
			}
			<-exited
		}
		if t.Failed() {
			t.Logf("probe run and uvicorn:\n%s\nnotifications:\n%s", logs.String(), notes.String())
		}
	})

	client := &http.Client{Timeout: time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	get := func(url string) int {
		res, err := client.Get(url)
		if err != nil {
			return 0
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		return res.StatusCode
	}
	readyz, app := "http://"+probeAddr+"/readyz", "http://"+appAddr+"/health"

	// Readiness passes only once uvicorn answers: asked first, a passing
	// readiness means uvicorn answered before and answers still.
	var failedWhileLoading bool
	deadline := time.Now().Add(time.Minute)
	for {
		if time.Now().After(deadline) {
			t.Fatal("readiness did not pass within a minute")
		}
		r := get(readyz)
		a := get(app)
		if r == 200 {
			if a != 200 {
				t.Fatalf("readiness passes while uvicorn answers %d", a)
			}
			break
		}
		if r == 503 && a == 0 {
			failedWhileLoading = true
		}
		time.Sleep(20 * time.Millisecond) // polling a real process's start
	}
	if !failedWhileLoading {
		t.Error("readiness was never seen failing while the app loaded its cache")
	}
	if code := get("http://" + probeAddr + "/startupz"); code != 200 {
		t.Errorf("/startupz answers %d once ready, want 200", code)
	}
	select {
	case <-readyAt:
	case <-time.After(testutil.Deadline):
		t.Fatalf("no READY=1 within %s of readiness passing", testutil.Deadline)
	}
	if code := get(app); code != 200 {
		t.Errorf("READY=1 came, and uvicorn answers %d", code)
	}

	sent := time.Now()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, "readiness failing on SIGTERM", func() bool { return get(readyz) == 503 })
	if took := time.Since(sent); took >= drain {
		t.Fatalf("readiness failed %s after SIGTERM; want it at once, well inside the %s drain", took, drain)
	}
	if code := get(app); code != 200 {
		t.Errorf("during the drain uvicorn answers %d, want 200: it must serve until the drain is over", code)
	}
	select {
	case err := <-exited:
		exited <- err
		if err != nil {
			t.Errorf("probe run: %v, want exit 0 (uvicorn's own)", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("probe run still running a minute after SIGTERM")
	}
	if took := time.Since(sent); took < drain {
		t.Errorf("probe run exited %s after SIGTERM; want uvicorn stopped only after the %s drain", took, drain)
	}
	out := logs.String()
	over, shutting := strings.Index(out, "drain over"), strings.Index(out, "Shutting down")
	if over < 0 || shutting < over {
		t.Errorf("want the drain over before uvicorn shuts down:\n%s", out)
	}
	for _, want := range []string{"READY=1", "STOPPING=1"} {
		if !strings.Contains(notes.String(), want) {
			t.Errorf("systemd was not told %s:\n%s", want, notes.String())
		}
	}
}

// TestProbeRunManifests: the Deployment probe run -print-kubernetes writes
// for the seed passes probelint, which reads the settings from its args.
func TestProbeRunManifests(t *testing.T) {
	dir := t.TempDir()
	probe := buildProbe(t, dir)
	out, err := exec.Command(probe, "run", "-print-kubernetes", "-image", "registry.example/seed:1", "-name", "seed",
		"-ready", "http://127.0.0.1:8000/health", "-warmup-deadline", "1m", "-drain", "5s", "-stop-timeout", "10s",
		"--", "python3", "-m", "uvicorn", "seed:app", "--host", "0.0.0.0", "--port", "8000").Output()
	if err != nil {
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			t.Fatalf("probe run -print-kubernetes: %v\n%s", err, exit.Stderr)
		}
		t.Fatal(err)
	}
	manifest := filepath.Join(dir, "seed.yaml")
	if err := os.WriteFile(manifest, out, 0o644); err != nil {
		t.Fatal(err)
	}
	lint := exec.Command("go", "run", ".", "-from-args", manifest)
	lint.Dir = "../cmd/probelint"
	text, err := lint.CombinedOutput()
	if err != nil {
		t.Errorf("probelint -from-args: %v\n%s\n%s", err, text, out)
	}
	sc := bufio.NewScanner(strings.NewReader(string(text)))
	for sc.Scan() {
		t.Logf("probelint: %s", sc.Text())
	}
}
