package pgxcheck_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"go.uber.org/goleak"

	"github.com/probekit/probes"
	"github.com/probekit/probes/internal/testenv/pgtest"
	"github.com/probekit/probes/internal/testenv/testutil"
	"github.com/probekit/probes/liveness"
	"github.com/probekit/probes/readiness"
	"github.com/probekit/probes/readiness/pgxcheck"
	"github.com/probekit/probes/redact"
	"github.com/probekit/probes/server"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const (
	interval = 100 * time.Millisecond
	timeout  = 300 * time.Millisecond
	// generous bounds what the tests wait for a verdict, for a loaded
	// machine: they assert behaviour, and log the times. How soon a frozen
	// database fails is measured by BenchmarkFrozenServer.
	generous = 10 * (interval + timeout)
)

// stack is a Ready service with a PostgreSQL readiness check, served over
// loopback HTTP.
type stack struct {
	url   string
	ready *readiness.Gate
}

func newPool(t testing.TB, url string, maxConns int32) *pgxpool.Pool {
	t.Helper()
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		t.Fatal(err)
	}
	cfg.MaxConns = maxConns
	cfg.ConnConfig.ConnectTimeout = time.Second
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool
}

func newStack(t *testing.T, check probes.Checker, opts ...probes.CheckOption) *stack {
	t.Helper()
	lc := probes.NewLifecycle(probes.Readers(func(*http.Request) bool { return true }))
	if _, err := liveness.New(lc); err != nil {
		t.Fatal(err)
	}
	ready, err := readiness.New(lc)
	if err != nil {
		t.Fatal(err)
	}
	opts = append([]probes.CheckOption{probes.Every(interval), probes.Timeout(timeout), probes.ComponentType("datastore")}, opts...)
	if err := ready.Add("postgres", check, opts...); err != nil {
		t.Fatal(err)
	}
	testutil.Ready(t, lc)
	mux := http.NewServeMux()
	if _, err := server.Register(mux, lc); err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(mux)
	t.Cleanup(ts.Close)
	testutil.Background(t, lc.Run)
	return &stack{url: ts.URL, ready: ready}
}

var client = &http.Client{Timeout: 10 * time.Second}

// get returns the code and body of a probe, and how long it took.
func get(t *testing.T, url string) (int, string, time.Duration) {
	t.Helper()
	began := time.Now()
	res, err := client.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	return res.StatusCode, string(b), time.Since(began)
}

// waitCode polls url until it answers code, and returns how long that took.
func waitCode(t *testing.T, url string, code int, within time.Duration) time.Duration {
	t.Helper()
	began := time.Now()
	for {
		if c, _, _ := get(t, url); c == code {
			return time.Since(began)
		}
		if time.Since(began) > within {
			t.Fatalf("%s did not answer %d within %s", url, code, within)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func newChecker(t testing.TB, pool *pgxpool.Pool, opts ...pgxcheck.Option) *pgxcheck.Checker {
	t.Helper()
	c, err := pgxcheck.New(pool, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// A stopped database fails readiness when the check is local, and only
// makes it warn, naming the check, when the database is shared by the fleet
// (the default). Liveness never notices either.
func TestDatabaseStopsAndReturns(t *testing.T) {
	pg := pgtest.Start(t)
	for _, tt := range []struct {
		scope  string
		opts   []probes.CheckOption
		code   int
		marker string // in the outage's /readyz body
	}{
		{"local", []probes.CheckOption{probes.Local()}, 503, `"failing: postgres"`},
		{"shared", nil, 200, `"warning: postgres"`},
	} {
		t.Run(tt.scope, func(t *testing.T) {
			s := newStack(t, newChecker(t, newPool(t, pg.URL("pw"), 4)), tt.opts...)
			waitCode(t, s.url+"/readyz", 200, 10*time.Second)
			livez := sample(t, s.url+"/livez")

			pg.Stop()
			detect := waitBody(t, s.url+"/readyz", tt.code, tt.marker, generous)
			pg.StartAgain()
			recover := waitBody(t, s.url+"/readyz", 200, `"status":"pass"`, generous+5*time.Second)
			if bad := livez(); len(bad) > 0 {
				t.Errorf("liveness failed during the outage: %v", bad)
			}
			t.Logf("%s: readiness answered %d %s after the database stopped and passed %s after it returned (interval %s, timeout %s)",
				tt.scope, tt.code, detect.Round(time.Millisecond), recover.Round(time.Millisecond), interval, timeout)
		})
	}
}

// sample GETs url every 2 ms until the returned function is called, which
// returns every answer other than 200 (-1 for a transport error).
func sample(t *testing.T, url string) func() []int {
	stopSampling := make(chan struct{})
	out := make(chan []int, 1)
	go func() {
		var bad []int
		for {
			select {
			case <-stopSampling:
				out <- bad
				return
			default:
			}
			res, err := client.Get(url)
			if err != nil {
				bad = append(bad, -1)
			} else {
				res.Body.Close()
				if res.StatusCode != 200 {
					bad = append(bad, res.StatusCode)
				}
			}
			time.Sleep(2 * time.Millisecond)
		}
	}()
	var bad []int
	stop := sync.OnceFunc(func() { close(stopSampling); bad = <-out })
	t.Cleanup(stop) // also when the test fails early
	return func() []int { stop(); return bad }
}

// waitBody polls url until it answers code with a body holding marker, and
// returns how long that took.
func waitBody(t *testing.T, url string, code int, marker string, within time.Duration) time.Duration {
	t.Helper()
	began := time.Now()
	for {
		c, body, _ := get(t, url)
		if c == code && strings.Contains(body, marker) {
			return time.Since(began)
		}
		if time.Since(began) > within {
			t.Fatalf("%s did not answer %d with %s within %s; last: %d %s", url, code, marker, within, c, body)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// A stopped database's error is one line of the text form, said once.
// Under sslmode=prefer, pgx's default, pgconn tries TLS and then plain
// text, and its error holds both attempts, each on a line of its own.
func TestStoppedDatabaseErrorOneLine(t *testing.T) {
	pg := pgtest.Start(t)
	url := strings.Replace(pg.URL("pw"), "sslmode=disable", "sslmode=prefer", 1)
	s := newStack(t, newChecker(t, newPool(t, url, 4)), probes.Local())
	waitCode(t, s.url+"/readyz", 200, 10*time.Second)
	pg.Stop()

	const refused = "connect: connection refused"
	var body string
	began := time.Now()
	for !strings.Contains(body, refused) {
		if time.Since(began) > generous {
			t.Fatalf("the text form did not say %q within %s; last:\n%s", refused, generous, body)
		}
		time.Sleep(10 * time.Millisecond)
		req, err := http.NewRequest(http.MethodGet, s.url+"/readyz?verbose", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Accept", "text/plain")
		res, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		body = string(b)
	}
	lines := strings.Split(strings.TrimSuffix(body, "\n"), "\n")
	want := []string{"[+]phase ok: ready", "[-]postgres failed: ", "readyz check failed"}
	if len(lines) != len(want) {
		t.Fatalf("got %d lines, want %d, one per check:\n%s", len(lines), len(want), body)
	}
	for i, w := range want {
		if !strings.HasPrefix(lines[i], w) {
			t.Errorf("line %d: got %q, want it to begin %q", i+1, lines[i], w)
		}
	}
	if n := strings.Count(lines[1], refused); n != 1 {
		t.Errorf("%q %d times in %q, want once", refused, n, lines[1])
	}
	if !strings.Contains(lines[1], "failed to connect to `user=postgres database=postgres`: 127.0.0.1:") {
		t.Errorf("got %q, want pgconn's error, the prefix and the attempt on one line", lines[1])
	}
	res, _ := s.ready.Report().Check("postgres")
	if got := res.Err.Error(); got != strings.TrimPrefix(lines[1], "[-]postgres failed: ") {
		t.Errorf("the report's error: got %q, want the text form's", got)
	}
	t.Logf("%s", lines[1])
}

func TestDatabaseHangs(t *testing.T) {
	pg := pgtest.Start(t)
	s := newStack(t, newChecker(t, newPool(t, pg.URL("pw"), 4)), probes.Local())
	waitCode(t, s.url+"/readyz", 200, 10*time.Second)

	pg.Pause()
	paused := time.Now()
	var latencies []time.Duration
	for {
		code, _, took := get(t, s.url+"/readyz")
		latencies = append(latencies, took)
		if code == 503 {
			break
		}
		if time.Since(paused) > generous {
			t.Fatalf("readiness still passing %s after the database hung", time.Since(paused))
		}
	}
	detect := time.Since(paused)
	for range 200 {
		_, _, took := get(t, s.url+"/readyz")
		latencies = append(latencies, took)
	}
	if code, _, _ := get(t, s.url+"/livez"); code != 200 {
		t.Errorf("liveness with the database hung: got %d, want 200", code)
	}
	_, body, _ := get(t, s.url+"/readyz?verbose")
	if !strings.Contains(body, "timed out after 300ms") {
		t.Errorf("verbose readiness with the database hung: %s; want a timeout", body)
	}
	pg.Resume()
	waitCode(t, s.url+"/readyz", 200, 10*time.Second)

	slices.Sort(latencies)
	t.Logf("database hung: readiness failed after %s; probe latency over %d requests: median %s, p99 %s, max %s",
		detect.Round(time.Millisecond), len(latencies), latencies[len(latencies)/2],
		latencies[len(latencies)*99/100], latencies[len(latencies)-1])
}

// BenchmarkFrozenServer measures how soon a PostgreSQL that stopped
// answering (SIGSTOP) is reported failing (ns/op), against the design's
// target of the check's timeout plus 100 ms (ms-past-timeout).
func BenchmarkFrozenServer(b *testing.B) {
	pg := pgtest.Start(b)
	check := newChecker(b, newPool(b, pg.URL("pw"), 4))
	if err := check.Check(context.Background()); err != nil {
		b.Fatal(err)
	}
	pg.Pause()
	b.Cleanup(pg.Resume)
	testutil.TimeToFail(b, check, timeout)
}

func TestPoolExhausted(t *testing.T) {
	pg := pgtest.Start(t)
	tests := []struct {
		name   string
		opts   []pgxcheck.Option
		code   int
		status string
	}{
		{"warns by default", nil, 200, "warn"},
		{"fails when asked", []pgxcheck.Option{pgxcheck.Exhausted(probes.Fail)}, 503, "fail"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pool := newPool(t, pg.URL("pw"), 2)
			// Local: its own pool being exhausted is this instance's fault.
			s := newStack(t, newChecker(t, pool, tt.opts...), probes.Local())
			waitCode(t, s.url+"/readyz", 200, 10*time.Second)
			var held []*pgxpool.Conn
			for range 2 {
				c, err := pool.Acquire(context.Background())
				if err != nil {
					t.Fatal(err)
				}
				held = append(held, c)
			}
			defer func() {
				for _, c := range held {
					c.Release()
				}
			}()
			deadline := time.Now().Add(10 * time.Second)
			for {
				_, body, _ := get(t, s.url+"/readyz?verbose")
				var doc struct {
					Status string
					Checks map[string][]struct {
						ObservedValue float64
						Status        string
						Output        string
					}
				}
				if err := json.Unmarshal([]byte(body), &doc); err != nil {
					t.Fatalf("%v: %s", err, body)
				}
				if u := doc.Checks["postgres:utilization"]; doc.Status == tt.status && len(u) == 1 && u[0].ObservedValue == 100 {
					if !strings.Contains(u[0].Output, "pool exhausted: 2 of 2") {
						t.Errorf("output: got %q, want the exhaustion", u[0].Output)
					}
					if c := doc.Checks["postgres:connections"]; len(c) != 1 || c[0].ObservedValue != 2 {
						t.Errorf("postgres:connections: got %+v, want 2", c)
					}
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("pool exhaustion not reported: %s", body)
				}
				time.Sleep(5 * time.Millisecond)
			}
			if code, _, _ := get(t, s.url+"/readyz"); code != tt.code {
				t.Errorf("code: got %d, want %d", code, tt.code)
			}
			if res, _ := s.ready.Report().Check("postgres"); res.Duration >= timeout {
				t.Errorf("the check waited %s for a connection; want an answer without waiting", res.Duration)
			}
			// Exhausted and the database hanging: that is an outage, not a
			// busy service, whatever Exhausted says.
			pg.Pause()
			defer pg.Resume()
			testutil.Eventually(t, "exhausted pool with the database hung fails", func() bool {
				code, body, _ := get(t, s.url+"/readyz/postgres")
				// The one-off connection hangs like the database: the
				// check's timeout reports it.
				return code == 503 && strings.Contains(body, "timed out after")
			})
		})
	}
}

func TestQuery(t *testing.T) {
	pg := pgtest.Start(t)
	pool := newPool(t, pg.URL("pw"), 2)
	good := newStack(t, newChecker(t, pool, pgxcheck.Query("SELECT 1")))
	waitCode(t, good.url+"/readyz", 200, 10*time.Second)
	bad := newStack(t, newChecker(t, pool, pgxcheck.Query("SELECT * FROM no_such_table")))
	deadline := time.Now().Add(10 * time.Second)
	for {
		code, body, _ := get(t, bad.url+"/readyz/postgres")
		if code == 503 && strings.Contains(body, `relation \"no_such_table\" does not exist`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("authorised detail: %d %s; want the query's error", code, body)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestPasswordNeverShown(t *testing.T) {
	const password = "hunter2-Secret"
	// Nothing listens on port 1: the connection fails.
	pool := newPool(t, "postgres://app:"+password+"@127.0.0.1:1/items?sslmode=disable", 2)
	s := newStack(t, newChecker(t, pool))
	testutil.Eventually(t, "the connection error is reported", func() bool {
		c, ok := s.ready.Report().Check("postgres")
		return ok && !c.Time.IsZero()
	})
	for _, path := range []string{"/readyz?verbose", "/readyz/postgres"} {
		_, body, _ := get(t, s.url+path)
		if strings.Contains(body, password) || !strings.Contains(body, "127.0.0.1") {
			t.Errorf("%s: %s; want the host but not the password", path, body)
		}
	}
	// A malformed connection string fails in pgx; its error, once redacted,
	// does not hold the password either.
	_, err := pgxpool.ParseConfig("postgres://app:" + password + "@[::1:5432/items")
	if err == nil {
		t.Fatal("malformed URL parsed")
	}
	if msg := redact.Error(err).Error(); strings.Contains(msg, password) {
		t.Errorf("redacted parse error holds the password: %s", msg)
	}
	_, err = pgxpool.ParseConfig("host=db user=app password=" + password + " port=notaport")
	if err == nil {
		t.Fatal("malformed key/value string parsed")
	}
	if msg := redact.Error(err).Error(); strings.Contains(msg, password) {
		t.Errorf("redacted parse error holds the password: %s", msg)
	}
}

func TestNewRejects(t *testing.T) {
	pool, err := pgxpool.New(context.Background(), "postgres://127.0.0.1:1/x")
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	tests := []struct {
		name string
		opt  pgxcheck.Option
		want string
	}{
		{"empty query", pgxcheck.Query(""), `Query("")`},
		{"ratio zero", pgxcheck.WarnAbove(0), "WarnAbove(0)"},
		{"ratio above one", pgxcheck.WarnAbove(1.5), "WarnAbove(1.5)"},
		{"exhausted pass", pgxcheck.Exhausted(probes.Pass), "Exhausted(pass)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if c, err := pgxcheck.New(pool, tt.opt); err == nil || c != nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %v, %v; want an error naming %s", c, err, tt.want)
			}
		})
	}
	if _, err := pgxcheck.New(nil); err == nil {
		t.Error("New(nil): got nil error")
	}
}

// A server that refuses one more connection (a role's CONNECTION LIMIT, or
// max_connections equal to the pools' total) has answered: with the pool
// exhausted, that is a busy service, not a dead database.
func TestPoolExhaustedAtTheServersLimit(t *testing.T) {
	pg := pgtest.Start(t)
	admin := newPool(t, pg.URL("pw"), 1)
	tests := []struct {
		name   string
		opts   []pgxcheck.Option
		status probes.Status
	}{
		{"warns by default", nil, probes.Warn},
		{"fails when asked", []pgxcheck.Option{pgxcheck.Exhausted(probes.Fail)}, probes.Fail},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// A role per case: the last case's backends may not have
			// exited yet, and they count against the limit.
			role := fmt.Sprintf("limited%d", i)
			if _, err := admin.Exec(context.Background(), `CREATE ROLE `+role+` LOGIN CONNECTION LIMIT 2`); err != nil {
				t.Fatal(err)
			}
			pool := newPool(t, strings.Replace(pg.URL("pw"), "postgres:pw@", role+":pw@", 1), 2)
			var held []*pgxpool.Conn
			for range 2 {
				c, err := pool.Acquire(context.Background())
				if err != nil {
					t.Fatal(err)
				}
				held = append(held, c)
			}
			defer func() {
				for _, c := range held {
					c.Release()
				}
			}()
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			err := newChecker(t, pool, tt.opts...).Check(ctx)
			if got := probes.StatusOf(err); got != tt.status {
				t.Errorf("status: got %s (%v), want %s", got, err, tt.status)
			}
			if err == nil || strings.Contains(err.Error(), "does not answer") || !strings.Contains(err.Error(), "53300") {
				t.Errorf("error: got %v, want the exhaustion with the server's refusal (SQLSTATE 53300), not an outage", err)
			}
		})
	}
}
