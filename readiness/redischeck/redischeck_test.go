package redischeck_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/goleak"

	"github.com/probekit/probes"
	"github.com/probekit/probes/internal/testenv/redistest"
	"github.com/probekit/probes/internal/testenv/testutil"
	"github.com/probekit/probes/readiness"
	"github.com/probekit/probes/readiness/redischeck"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const (
	interval = 100 * time.Millisecond
	timeout  = 300 * time.Millisecond
	// generous bounds what the tests wait for a verdict or a return, for a
	// loaded machine: they assert behaviour, and log the times. How soon a
	// frozen server fails is measured by BenchmarkFrozenServer.
	generous = 10 * (interval + timeout)
)

const password = "hunter2-Secret"

func newClient(t testing.TB, addr, password string) *redis.Client {
	t.Helper()
	c := redis.NewClient(&redis.Options{
		Addr: addr, Password: password, ContextTimeoutEnabled: true,
		DialTimeout: time.Second, ReadTimeout: 3 * time.Second, MaxRetries: -1, DialerRetries: 1,
	})
	t.Cleanup(func() { c.Close() })
	return c
}

func newChecker(t testing.TB, client redis.UniversalClient, opts ...redischeck.Option) *redischeck.Checker {
	t.Helper()
	c, err := redischeck.New(client, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// newGate runs check in a readiness gate of a Ready lifecycle until the
// test ends.
func newGate(t *testing.T, check probes.Checker) *readiness.Gate {
	t.Helper()
	return testutil.ReadyGate(t, "redis", check, probes.Every(interval), probes.Timeout(timeout), probes.Local())
}

// waitFor polls the gate until the check's verdict is want with a reason
// holding one of reason's alternatives, from an execution that ended after
// since, and returns how long that took.
func waitFor(t *testing.T, ready *readiness.Gate, since time.Time, want probes.Status, reason string, within time.Duration) time.Duration {
	t.Helper()
	began := time.Now()
	for {
		res, _ := ready.Report().Check("redis")
		msg := ""
		if res.Err != nil {
			msg = res.Err.Error()
		}
		if res.Status == want && res.Time.After(since) && holds(msg, reason) {
			if strings.Contains(msg, password) {
				t.Errorf("reason holds the password: %s", msg)
			}
			return time.Since(began)
		}
		if time.Since(began) > within {
			t.Fatalf("verdict: got %s (%v) after %s, want %s with %q", res.Status, res.Err, within, want, reason)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// holds reports whether msg holds one of the |-separated alternatives.
func holds(msg, alternatives string) bool {
	for _, a := range strings.Split(alternatives, "|") {
		if strings.Contains(msg, a) {
			return true
		}
	}
	return false
}

// fault is one row of the fault table: a server set up, broken and healed.
type fault struct {
	name string
	opts []redischeck.Option
	// setup starts what the case needs and returns the client to check,
	// the fault and the cure.
	setup  func(t *testing.T) (client *redis.Client, breakIt, heal func())
	status probes.Status
	reason string
	within time.Duration // the bound on detection, from the fault: generous
}

func faults() []fault {
	detect := generous
	stopped := func(t *testing.T) (*redis.Client, func(), func()) {
		r := redistest.Start(t, redistest.Password(password))
		return newClient(t, r.Addr(), password), r.Stop, func() { r.StartAgain() }
	}
	atLimit := func(t *testing.T) (*redis.Client, func(), func()) {
		r := redistest.Start(t, redistest.Password(password))
		admin := r.Dial()
		return newClient(t, r.Addr(), password), func() {
				// No new connection from now on; then the client's are cut.
				admin.Do("CONFIG", "SET", "maxclients", "1")
				admin.Do("CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes")
			}, func() {
				admin.Do("CONFIG", "SET", "maxclients", "10000")
			}
	}
	replica := func(t *testing.T) (*redis.Client, func(), func()) {
		master := redistest.Start(t, redistest.Password(password))
		replica := redistest.Start(t, redistest.Password(password), redistest.ReplicaOf(master))
		testutil.Eventually(t, "the replica's link is up", func() bool {
			return replica.Info("replication", "master_link_status") == "up"
		})
		return newClient(t, replica.Addr(), password), master.Stop, func() { master.StartAgain() }
	}
	return []fault{
		{name: "stopped", setup: stopped, status: probes.Fail, reason: "connection refused", within: detect},
		{name: "frozen", setup: func(t *testing.T) (*redis.Client, func(), func()) {
			r := redistest.Start(t, redistest.Password(password))
			return newClient(t, r.Addr(), password), r.Pause, r.Resume
		}, status: probes.Fail, reason: "timed out after 300ms|i/o timeout", within: detect},
		{name: "at its client limit", setup: atLimit, status: probes.Warn, reason: "max number of clients reached", within: detect},
		{name: "at its client limit, Exhausted(Fail)", opts: []redischeck.Option{redischeck.Exhausted(probes.Fail)},
			setup: atLimit, status: probes.Fail, reason: "client limit (maxclients)", within: detect},
		{name: "does not answer, Exhausted(Warn)", opts: []redischeck.Option{redischeck.Exhausted(probes.Warn)},
			setup: func(t *testing.T) (*redis.Client, func(), func()) {
				r := redistest.Start(t, redistest.Password(password))
				return newClient(t, r.Addr(), password), r.Pause, r.Resume
			}, status: probes.Fail, reason: "timed out after 300ms|i/o timeout", within: detect},
		{name: "wrong password", setup: func(t *testing.T) (*redis.Client, func(), func()) {
			r := redistest.Start(t, redistest.Password(password))
			admin := r.Dial()
			return newClient(t, r.Addr(), password), func() {
					admin.Do("CONFIG", "SET", "requirepass", "another-"+password)
					admin.Do("CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes")
				}, func() {
					admin.Do("CONFIG", "SET", "requirepass", password)
				}
		}, status: probes.Fail, reason: "WRONGPASS", within: detect},
		{name: "loading its dataset", setup: func(t *testing.T) (*redis.Client, func(), func()) {
			r := redistest.Start(t, redistest.Password(password))
			// 20000 keys at 100µs each: two seconds of loading, with
			// clients answered (LOADING) every KiB loaded.
			if got := r.Do("DEBUG", "POPULATE", "20000"); got != "OK" {
				t.Fatalf("DEBUG POPULATE: %s", got)
			}
			if got := r.Do("SAVE"); got != "OK" {
				t.Fatalf("SAVE: %s", got)
			}
			return newClient(t, r.Addr(), password), func() {
				r.Stop()
				r.StartAgain("--key-load-delay", "100", "--loading-process-events-interval-bytes", "1024")
			}, func() {}
		}, status: probes.Fail, reason: "loading its dataset", within: detect + time.Second},
		{name: "replica, master stopped", setup: replica, status: probes.Warn, reason: "link to its master", within: detect + 2*time.Second},
		{name: "replica, master stopped, MasterLinkDown(Fail)", opts: []redischeck.Option{redischeck.MasterLinkDown(probes.Fail)},
			setup: replica, status: probes.Fail, reason: "link to its master", within: detect + 2*time.Second},
	}
}

// TestFaults proves the fault table against a real Redis: each fault's
// verdict and reason, how long it took to show, and the return to pass
// after the cure. The reasons never hold the password.
func TestFaults(t *testing.T) {
	for _, tt := range faults() {
		t.Run(tt.name, func(t *testing.T) {
			client, breakIt, heal := tt.setup(t)
			ready := newGate(t, newChecker(t, client, tt.opts...))
			waitFor(t, ready, time.Time{}, probes.Pass, "", 10*time.Second)
			began := time.Now()
			breakIt()
			// Timed from the fault in place; any result since it began
			// counts.
			detect := waitFor(t, ready, began, tt.status, tt.reason, tt.within)
			cured := time.Now()
			heal()
			recovery := waitFor(t, ready, cured, probes.Pass, "", 10*time.Second)
			t.Logf("fault table: %s: %s (%s) after %s; pass %s after the cure",
				tt.name, tt.status, tt.reason, detect.Round(time.Millisecond), recovery.Round(time.Millisecond))
		})
	}
}

// TestRestarted: a server restarted under the check's feet shows as
// passing again at once, the client's dead connections notwithstanding.
func TestRestarted(t *testing.T) {
	r := redistest.Start(t, redistest.Password(password))
	ready := newGate(t, newChecker(t, newClient(t, r.Addr(), password)))
	waitFor(t, ready, time.Time{}, probes.Pass, "", 10*time.Second)
	r.Stop()
	r.StartAgain()
	restarted := time.Now()
	took := waitFor(t, ready, restarted, probes.Pass, "", generous)
	t.Logf("fault table: restarted: pass %s after the server answered again", took.Round(time.Millisecond))
}

// TestStoppedRetries: how a stopped server shows depends on the client's
// retries. go-redis by default dials 5 times, 100 ms apart, for each of
// 4 attempts at the command, so a check of 1 s or less times out before
// the refusal comes back; the fault table's clients, made with
// MaxRetries: -1 and DialerRetries: 1, see "connection refused" at once.
// Either way the check fails.
func TestStoppedRetries(t *testing.T) {
	r := redistest.Start(t, redistest.Password(password))
	tests := []struct {
		name     string
		opts     redis.Options
		timedOut bool
	}{
		{"go-redis defaults", redis.Options{}, true},
		{"as the fault table's", redis.Options{MaxRetries: -1, DialerRetries: 1}, false},
	}
	var checks []*redischeck.Checker
	for _, tt := range tests {
		o := tt.opts
		o.Addr, o.Password, o.ContextTimeoutEnabled = r.Addr(), password, true
		client := redis.NewClient(&o)
		t.Cleanup(func() { client.Close() })
		check := newChecker(t, client)
		if err := check.Check(context.Background()); err != nil {
			t.Fatalf("%s, before the stop: %v", tt.name, err)
		}
		checks = append(checks, check)
	}
	r.Stop()
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), probes.DefaultTimeout)
			defer cancel()
			err := checks[i].Check(ctx)
			if probes.StatusOf(err) != probes.Fail {
				t.Fatalf("got %v, want a failure", err)
			}
			timedOut := errors.Is(err, context.DeadlineExceeded)
			refused := strings.Contains(err.Error(), "connection refused")
			if timedOut != tt.timedOut || refused == tt.timedOut {
				t.Errorf("got %v, want timed out %t, connection refused %t", err, tt.timedOut, !tt.timedOut)
			}
		})
	}
}

// A frozen server: Check itself returns after its context's deadline
// rather than hanging, and hung checks leave no goroutine behind.
func TestFrozenCheckReturns(t *testing.T) {
	r := redistest.Start(t)
	check := newChecker(t, newClient(t, r.Addr(), ""))
	if err := check.Check(context.Background()); err != nil {
		t.Fatal(err)
	}
	r.Pause()
	defer r.Resume()
	base := runtime.NumGoroutine()
	for i := range 10 {
		var err error
		took := testutil.Returns(t, generous, func() {
			ctx, cancel := context.WithTimeout(context.Background(), timeout)
			defer cancel()
			err = check.Check(ctx)
		})
		if probes.StatusOf(err) != probes.Fail {
			t.Fatalf("hung check %d: got %v after %s, want a failure", i, err, took)
		}
	}
	// Goroutines of the last execution may still be ending.
	testutil.Eventually(t, "no goroutine growth across hung checks", func() bool {
		return runtime.NumGoroutine() <= base+1
	})
}

// BenchmarkFrozenServer measures how soon a Redis that stopped answering
// (SIGSTOP) is reported failing (ns/op), against the design's target of
// the check's timeout plus 100 ms (ms-past-timeout).
func BenchmarkFrozenServer(b *testing.B) {
	r := redistest.Start(b)
	check := newChecker(b, newClient(b, r.Addr(), ""))
	if err := check.Check(context.Background()); err != nil {
		b.Fatal(err)
	}
	r.Pause()
	b.Cleanup(r.Resume)
	testutil.TimeToFail(b, check, timeout)
}

func TestObservations(t *testing.T) {
	r := redistest.Start(t)
	ready := newGate(t, newChecker(t, newClient(t, r.Addr(), "")))
	waitFor(t, ready, time.Time{}, probes.Pass, "", 10*time.Second)
	res, _ := ready.Report().Check("redis")
	got := map[string]float64{}
	for _, o := range res.Observations {
		got[o.Measurement] = o.Value
	}
	for name, want := range map[string]float64{"connections": 0, "open": 1, "idle": 1, "timeouts": 0} {
		if v, ok := got[name]; !ok || v != want {
			t.Errorf("%s: got %v (present %t), want %v", name, v, ok, want)
		}
	}
}

func TestNewRejects(t *testing.T) {
	tests := []struct {
		name   string
		client redis.UniversalClient
		opts   []redischeck.Option
		want   string
	}{
		{"nil client", nil, nil, "New(nil)"},
		{"context deadlines ignored", redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"}), nil, "ContextTimeoutEnabled"},
		{"cluster ignoring deadlines", redis.NewClusterClient(&redis.ClusterOptions{Addrs: []string{"127.0.0.1:1"}}), nil, "ContextTimeoutEnabled"},
		{"exhausted pass", redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", ContextTimeoutEnabled: true}),
			[]redischeck.Option{redischeck.Exhausted(probes.Pass)}, "Exhausted(pass)"},
		{"master link down pass", redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", ContextTimeoutEnabled: true}),
			[]redischeck.Option{nil, redischeck.MasterLinkDown(probes.Pass)}, "MasterLinkDown(pass)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.client != nil {
				defer tt.client.Close()
			}
			if c, err := redischeck.New(tt.client, tt.opts...); err == nil || c != nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %v, %v; want an error naming %s", c, err, tt.want)
			}
		})
	}
}

func TestPasswordNeverShown(t *testing.T) {
	r := redistest.Start(t, redistest.Password("right-one"))
	for _, tt := range []struct {
		name string
		url  string
	}{
		{"refused", "redis://app:" + password + "@" + r.Addr() + "/0"},
		{"nobody listens", "redis://app:" + password + "@127.0.0.1:1/0"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			opt, err := redis.ParseURL(tt.url)
			if err != nil {
				t.Fatal(err)
			}
			opt.ContextTimeoutEnabled = true
			client := redis.NewClient(opt)
			defer client.Close()
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			err = newChecker(t, client).Check(ctx)
			if err == nil || strings.Contains(fmt.Sprint(err), password) || errors.Unwrap(err) == nil {
				t.Errorf("got %v; want a failure without the password", err)
			}
		})
	}
}

// A user whose ACL refuses INFO (-@dangerous, or no +info) still gets a
// PONG: the server answered, so the check passes without the loading and
// replication state INFO would have told.
func TestINFORefused(t *testing.T) {
	r := redistest.Start(t, redistest.Password(password))
	for _, tt := range []struct {
		name string
		acl  []string
	}{
		{"-@dangerous", []string{"on", ">probe-pw", "~*", "+@all", "-@dangerous"}},
		{"ping only", []string{"on", ">probe-pw", "-@all", "+ping", "+hello"}},
		{"INFO replication refused", []string{"on", ">probe-pw", "-@all", "+ping", "+hello", "+info|persistence"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := r.Do(append([]string{"ACL", "SETUSER", "probe", "reset"}, tt.acl...)...); got != "OK" {
				t.Fatalf("ACL SETUSER: %s", got)
			}
			client := redis.NewClient(&redis.Options{
				Addr: r.Addr(), Username: "probe", Password: "probe-pw", ContextTimeoutEnabled: true,
				MaxRetries: -1, DialerRetries: 1,
			})
			defer client.Close()
			if err := client.Info(context.Background(), "replication").Err(); err == nil || !strings.HasPrefix(err.Error(), "NOPERM") {
				t.Fatalf("INFO replication as the user: got %v, want NOPERM", err)
			}
			obs, err := testutil.CheckOnce(newChecker(t, client), 5*time.Second)
			if err != nil {
				t.Errorf("got %v, want a pass", err)
			}
			if _, ok := testutil.Observed(obs, "connections"); !ok {
				t.Errorf("observed %v, want the pool's figures", obs)
			}
		})
	}
}
