package systemd_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/probekit/probes"
	"github.com/probekit/probes/internal/testenv/testutil"
	"github.com/probekit/probes/liveness"
	"github.com/probekit/probes/startup"
	"github.com/probekit/probes/systemd"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// listener plays systemd: a real unixgram socket that records datagrams.
type listener struct {
	name string
	conn *net.UnixConn
	mu   sync.Mutex
	got  []string
	done chan struct{}
}

func listen(t *testing.T, name string) *listener {
	t.Helper()
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: name, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	l := &listener{name: name, conn: conn, done: make(chan struct{})}
	go func() {
		defer close(l.done)
		buf := make([]byte, 4096)
		for {
			n, err := conn.Read(buf)
			if err != nil {
				return
			}
			l.mu.Lock()
			l.got = append(l.got, string(buf[:n]))
			l.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		conn.Close()
		<-l.done
	})
	return l
}

func (l *listener) datagrams() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.got...)
}

func (l *listener) count(s string) int {
	n := 0
	for _, d := range l.datagrams() {
		if d == s {
			n++
		}
	}
	return n
}

func env(vars map[string]string) systemd.Option {
	return systemd.Environment(func(k string) string { return vars[k] })
}

// TestWholeLife follows a service from start through warm-up, drain and
// stop, over a path socket and an abstract one.
func TestWholeLife(t *testing.T) {
	for _, socket := range []string{
		filepath.Join(t.TempDir(), "notify.sock"),
		fmt.Sprintf("@probes-test-%d-%d", os.Getpid(), time.Now().UnixNano()),
	} {
		t.Run(strings.TrimPrefix(filepath.Base(socket), "@"), func(t *testing.T) {
			sd := listen(t, socket)
			lc := probes.NewLifecycle()
			warm, err := startup.New(lc)
			if err != nil {
				t.Fatal(err)
			}
			step := make(chan float64)
			if err := warm.Task("cache", func(ctx context.Context, p *startup.Progress) error {
				for f := range step {
					p.Set(f)
				}
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			newNotifier(t, lc, env(map[string]string{"NOTIFY_SOCKET": socket}), systemd.StatusInterval(0))
			testutil.Background(t, lc.Run) // the warm-up and the notifier
			testutil.Eventually(t, "warming", func() bool { return sd.count("STATUS=warming: warm-up 0%: cache 0%") == 1 })
			step <- 0.5
			testutil.Eventually(t, "progress", func() bool { return sd.count("STATUS=warming: warm-up 50%: cache 50%") == 1 })
			close(step)
			testutil.Eventually(t, "ready", func() bool { return lc.Phase() == probes.Ready })
			if err := lc.Drain("SIGTERM"); err != nil {
				t.Fatal(err)
			}
			if err := lc.Stop(); err != nil {
				t.Fatal(err)
			}
			want := []string{
				"STATUS=warming: warm-up 0%: cache 0%",
				"STATUS=warming: warm-up 50%: cache 50%",
				"STATUS=warming: warm-up 100%: cache done",
				"READY=1\nSTATUS=ready",
				"STOPPING=1\nSTATUS=draining",
				"STATUS=stopped",
			}
			// The notifier may start before or after the warm-up moves
			// Cold to Warming: a first STATUS=cold is optional.
			datagrams := func() []string {
				got := sd.datagrams()
				if len(got) > 0 && got[0] == "STATUS=cold" {
					got = got[1:]
				}
				return got
			}
			testutil.Eventually(t, "all datagrams", func() bool { return len(datagrams()) >= len(want) })
			if got := datagrams(); strings.Join(got, "|") != strings.Join(want, "|") {
				t.Errorf("datagrams:\n got %q\nwant %q", got, want)
			}
		})
	}
}

func TestReadyOnlyOnce(t *testing.T) {
	socket := filepath.Join(t.TempDir(), "notify.sock")
	sd := listen(t, socket)
	lc := probes.NewLifecycle()
	newNotifier(t, lc, env(map[string]string{"NOTIFY_SOCKET": socket}))
	testutil.Background(t, lc.Run)
	testutil.Eventually(t, "first status", func() bool { return len(sd.datagrams()) == 1 })
	for _, move := range []func() error{lc.Start, lc.MarkReady, func() error { return lc.Rewarm("reload") }, lc.MarkReady} {
		if err := move(); err != nil {
			t.Fatal(err)
		}
	}
	testutil.Eventually(t, "four more datagrams", func() bool { return len(sd.datagrams()) == 5 })
	want := []string{"STATUS=cold", "STATUS=warming", "READY=1\nSTATUS=ready", "STATUS=warming", "STATUS=ready"}
	if got := sd.datagrams(); strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("datagrams:\n got %q\nwant %q", got, want)
	}
}

func TestWatchdog(t *testing.T) {
	tests := []struct {
		name     string
		pid      string
		liveness bool // liveness passes
		want     bool // WATCHDOG=1 is sent
	}{
		{"sent while liveness passes", "", true, true},
		{"sent for this process", strconv.Itoa(os.Getpid()), true, true},
		{"withheld while liveness fails", "", false, false},
		{"not for another process", "1", true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			socket := filepath.Join(t.TempDir(), "notify.sock")
			sd := listen(t, socket)
			lc := probes.NewLifecycle()
			if _, err := liveness.New(lc); err != nil {
				t.Fatal(err)
			}
			if !tt.liveness {
				if err := lc.MarkBroken(errors.New("wedged")); err != nil {
					t.Fatal(err)
				}
			}
			newNotifier(t, lc, env(map[string]string{
				"NOTIFY_SOCKET": socket, "WATCHDOG_USEC": "10000", "WATCHDOG_PID": tt.pid,
			}))
			testutil.Background(t, lc.Run)
			// Absence cannot be awaited: give it 20 watchdog periods.
			deadline := time.Now().Add(200 * time.Millisecond)
			testutil.Eventually(t, "watchdog periods passed", func() bool {
				return sd.count("WATCHDOG=1") >= 3 || time.Now().After(deadline)
			})
			if got := sd.count("WATCHDOG=1") >= 3; got != tt.want {
				t.Errorf("watchdog sent: got %v (%d datagrams), want %v", got, sd.count("WATCHDOG=1"), tt.want)
			}
		})
	}
}

func newNotifier(t *testing.T, lc *probes.Lifecycle, opts ...systemd.Option) {
	t.Helper()
	if _, err := systemd.New(lc, opts...); err != nil {
		t.Fatal(err)
	}
}

func TestWithoutSocket(t *testing.T) {
	lc := probes.NewLifecycle()
	newNotifier(t, lc, env(nil))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := lc.Run(ctx); !errors.Is(err, context.DeadlineExceeded) || lc.Phase() != probes.Cold {
		t.Errorf("Run without NOTIFY_SOCKET: got %v in %s, want a plain stop in cold", err, lc.Phase())
	}
	if _, err := systemd.New(nil); err == nil {
		t.Error("New(nil): no error")
	}
}

func TestBadEnvironment(t *testing.T) {
	socket := filepath.Join(t.TempDir(), "notify.sock")
	listen(t, socket)
	tests := []struct {
		name string
		vars map[string]string
		want string
	}{
		{"no such socket", map[string]string{"NOTIFY_SOCKET": filepath.Join(t.TempDir(), "none")}, "NOTIFY_SOCKET"},
		{"bad watchdog", map[string]string{"NOTIFY_SOCKET": socket, "WATCHDOG_USEC": "soon"}, "WATCHDOG_USEC"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lc := probes.NewLifecycle()
			newNotifier(t, lc, env(tt.vars))
			if err := lc.Run(context.Background()); err == nil || !strings.Contains(err.Error(), tt.want) || lc.Phase() != probes.Broken {
				t.Errorf("got %v in %s, want an error naming %s and broken", err, lc.Phase(), tt.want)
			}
		})
	}
}

// The unit's STATUS says when the service is cordoned, never why (any local
// user reads it), and stops saying so when the cordon goes.
func TestStatusSaysCordoned(t *testing.T) {
	socket := filepath.Join(t.TempDir(), "notify.sock")
	sd := listen(t, socket)
	lc := probes.NewLifecycle()
	newNotifier(t, lc, env(map[string]string{"NOTIFY_SOCKET": socket}))
	testutil.Background(t, lc.Run)
	testutil.Eventually(t, "first status", func() bool { return len(sd.datagrams()) == 1 })
	testutil.Ready(t, lc)
	testutil.Eventually(t, "ready", func() bool { return sd.count("READY=1\nSTATUS=ready") == 1 })
	ch, err := lc.Cordon("disk swap", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	want := "STATUS=ready; cordoned (until " + ch.Cordon.Until.UTC().Format(time.RFC3339) + ")"
	testutil.Eventually(t, "cordoned", func() bool { return sd.count(want) == 1 })
	for _, d := range sd.datagrams() {
		if strings.Contains(d, "disk swap") {
			t.Errorf("the cordon's reason in a datagram: %q", d)
		}
	}
	if _, err := lc.Uncordon(); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, "uncordoned", func() bool {
		got := sd.datagrams()
		return len(got) > 0 && got[len(got)-1] == "STATUS=ready"
	})
	// A cordon during the drain changes no status and says STOPPING=1
	// no second time.
	if err := lc.Drain("SIGTERM"); err != nil {
		t.Fatal(err)
	}
	if _, err := lc.Cordon("late", time.Hour); err != nil {
		t.Fatal(err)
	}
	if err := lc.Stop(); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, "stopped", func() bool { return sd.count("STATUS=stopped") == 1 })
	stopping := 0
	for _, d := range sd.datagrams() {
		stopping += strings.Count(d, "STOPPING=1")
	}
	if stopping != 1 {
		t.Errorf("STOPPING=1 sent %d times, want once: %q", stopping, sd.datagrams())
	}
}
