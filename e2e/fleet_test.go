//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/probekit/probes/internal/testenv/pgtest"
	"github.com/probekit/probes/internal/testenv/testutil"
)

// hit is one request of the fleet test's load.
type hit struct {
	at      time.Time
	route   string // "items" or "stock"
	code    int    // 0 for a transport error
	retry   bool   // Retry-After present
	service bool   // the body is the service's own refusal, not the balancer's
	took    time.Duration
}

// fleetRun is what one outage run saw.
type fleetRun struct {
	hits             []hit
	stopped, started time.Time // the database's outage
	healthz          []hit     // /healthz of one instance, sampled directly
	down             []string  // instances HAProxy marked down during the run
}

// fleetOutage runs two example instances on one PostgreSQL behind HAProxy,
// drives the cache route and the database route through the balancer,
// stops PostgreSQL for outage and starts it again, and returns what
// clients saw once the database route has recovered.
func fleetOutage(t *testing.T, bin, scope string, outage time.Duration) fleetRun {
	pg := pgtest.Start(t)
	env := []string{"DATABASE_URL=" + pg.URL("pw"), "DB_SCOPE=" + scope}
	args := []string{"-warmup", "200ms", "-drain", "0", "-shutdown-timeout", "2s"}
	instances := []*instance{
		startInstance(t, bin, "a", testutil.FreeAddr(t), args, env...),
		startInstance(t, bin, "b", testutil.FreeAddr(t), args, env...),
	}
	front := testutil.FreeAddr(t)
	lb := startHAProxy(t, t.TempDir(), front, instances)
	for _, in := range instances {
		lb.waitStatus(t, in.name, "UP", 30*time.Second)
	}

	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16}, Timeout: 5 * time.Second}
	defer client.CloseIdleConnections()
	get := func(url, route string) hit {
		began := time.Now()
		h := hit{at: began, route: route}
		res, err := client.Get(url)
		if err != nil {
			h.took = time.Since(began)
			return h
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		h.took = time.Since(began)
		h.code = res.StatusCode
		h.retry = res.Header.Get("Retry-After") != ""
		h.service = strings.HasPrefix(string(body), "service unavailable:")
		return h
	}

	ctx, stop := context.WithCancel(context.Background())
	var (
		mu  sync.Mutex
		run fleetRun
		wg  sync.WaitGroup
	)
	for w := range 4 {
		wg.Go(func() {
			for i := 0; ctx.Err() == nil; i++ {
				id := (w*7919+i)%900 + 1
				a := get(fmt.Sprintf("http://%s/api/items/%d", front, id), "items")
				b := get(fmt.Sprintf("http://%s/api/stock/%d", front, id), "stock")
				mu.Lock()
				run.hits = append(run.hits, a, b)
				mu.Unlock()
				time.Sleep(2 * time.Millisecond)
			}
		})
	}
	wg.Go(func() {
		for ctx.Err() == nil {
			h := get("http://"+instances[0].probeAddr+"/healthz", "healthz")
			mu.Lock()
			run.healthz = append(run.healthz, h)
			mu.Unlock()
			time.Sleep(50 * time.Millisecond)
		}
	})
	watched := make(chan struct{})
	go lb.watchDown(ctx, watched)

	time.Sleep(1500 * time.Millisecond) // load with everything up
	run.stopped = time.Now()
	pg.Stop()
	time.Sleep(outage)
	run.started = time.Now()
	pg.StartAgain()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if h := get(fmt.Sprintf("http://%s/api/stock/1", front), "stock"); h.code == 200 {
			break
		}
		if time.Now().After(deadline) {
			stop()
			wg.Wait()
			<-watched
			t.Fatalf("the database route did not recover within 30s of PostgreSQL's return")
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(500 * time.Millisecond) // load after the recovery
	stop()
	wg.Wait()
	<-watched
	for _, in := range instances {
		if _, down := lb.downAt(in.name); down {
			run.down = append(run.down, in.name)
		}
	}
	return run
}

type tally struct {
	total, ok, service, balancer, transport int
	p50, p99                                time.Duration
}

func count(hits []hit, keep func(hit) bool) tally {
	var t tally
	var took []time.Duration
	for _, h := range hits {
		if !keep(h) {
			continue
		}
		t.total++
		took = append(took, h.took)
		switch {
		case h.code == 0:
			t.transport++
		case h.code < 300:
			t.ok++
		case h.service && h.retry:
			t.service++
		default:
			t.balancer++
		}
	}
	if len(took) > 0 {
		slices.Sort(took)
		t.p50, t.p99 = took[len(took)/2], took[len(took)*99/100]
	}
	return t
}

func (t tally) String() string {
	return fmt.Sprintf("%d requests: %d 2xx, %d refused by the service (503 + Retry-After), %d other failures (balancer or handler), %d transport errors; p50 %s, p99 %s",
		t.total, t.ok, t.service, t.balancer, t.transport, t.p50.Round(10*time.Microsecond), t.p99.Round(10*time.Microsecond))
}

// TestSharedDatabaseOutage is the fleet-safety claim end to end: a
// PostgreSQL outage must not take every replica out of the balancer when
// the database is declared shared, while the routes that need it fail fast.
// With the check declared local (the control), HAProxy takes both
// instances out and the cache route fails with them.
func TestSharedDatabaseOutage(t *testing.T) {
	need(t, "haproxy")
	bin := buildExample(t)
	const outage = 6 * time.Second

	t.Run("shared", func(t *testing.T) {
		run := fleetOutage(t, bin, "shared", outage)
		items := count(run.hits, func(h hit) bool { return h.route == "items" })
		inOutage := func(h hit) bool { return !h.at.Before(run.stopped) && h.at.Before(run.started) }
		stock := count(run.hits, func(h hit) bool { return h.route == "stock" && inOutage(h) })
		t.Logf("cache route, whole run: %s", items)
		t.Logf("database route, during the outage: %s", stock)
		if items.total == 0 || stock.total == 0 {
			t.Fatal("no load reached the routes")
		}
		if float64(items.ok) < 0.999*float64(items.total) {
			t.Errorf("cache route: %d of %d 2xx; want at least 99.9 %%", items.ok, items.total)
		}
		if len(run.down) > 0 {
			t.Errorf("HAProxy marked %v down although the database is shared", run.down)
		}
		if stock.balancer+stock.transport > 0 {
			t.Errorf("database route: %d failures that were not the service's own fast 503", stock.balancer+stock.transport)
		}
		if stock.p99 >= 100*time.Millisecond {
			t.Errorf("database route during the outage: p99 %s; want under 100 ms", stock.p99)
		}
		// The first failing query triggers the check; allow a second.
		var late []int
		for _, h := range run.healthz {
			if h.at.After(run.stopped.Add(time.Second)) && h.at.Before(run.started) && h.code != 503 {
				late = append(late, h.code)
			}
		}
		if len(late) > 0 {
			t.Errorf("/healthz answered %v during the outage; want 503 throughout", late)
		}
	})

	t.Run("local", func(t *testing.T) {
		run := fleetOutage(t, bin, "local", outage)
		items := count(run.hits, func(h hit) bool { return h.route == "items" })
		t.Logf("cache route, whole run: %s", items)
		t.Logf("HAProxy marked down: %v", run.down)
		if len(run.down) != 2 {
			t.Errorf("HAProxy marked %v down; with a local check both instances must go (the control)", run.down)
		}
		if items.ok == items.total {
			t.Errorf("cache route: every request passed with a local check; the harness cannot tell the scopes apart")
		}
	})
}
