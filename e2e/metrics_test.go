//go:build e2e

package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/probekit/probes/internal/testenv/pgtest"
	"github.com/probekit/probes/internal/testenv/testutil"
)

// prometheusServer is a real Prometheus scraping one target every 100 ms.
type prometheusServer struct {
	api string // base URL of its HTTP API
	log string // its log file
}

// startPrometheus starts Prometheus in a temp dir, scraping target's
// /metrics, and waits until it is ready.
func startPrometheus(t *testing.T, target string) *prometheusServer {
	t.Helper()
	need(t, "prometheus")
	dir := t.TempDir()
	rules, err := filepath.Abs("../example/deploy/prometheus-rules.yaml")
	if err != nil {
		t.Fatal(err)
	}
	config := fmt.Sprintf(`global:
  scrape_interval: 100ms
  scrape_timeout: 100ms
  evaluation_interval: 200ms
rule_files: [%q]
scrape_configs:
  - job_name: example
    static_configs:
      - targets: [%q]
`, rules, target)
	if err := os.WriteFile(filepath.Join(dir, "prometheus.yml"), []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	p := &prometheusServer{api: "http://" + testutil.FreeAddr(t), log: filepath.Join(dir, "prometheus.log")}
	logFile, err := os.Create(p.log)
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	cmd := exec.Command("prometheus",
		"--config.file="+filepath.Join(dir, "prometheus.yml"),
		"--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+strings.TrimPrefix(p.api, "http://"),
		"--log.level=warn")
	cmd.Stdout, cmd.Stderr = logFile, logFile
	t.Cleanup(func() { // runs after the stop below: cleanups run last first
		if t.Failed() {
			out, _ := os.ReadFile(p.log)
			t.Logf("prometheus log:\n%s", out)
		}
	})
	startOwned(t, cmd)
	waitOK(t, p.api+"/-/ready")
	// Prometheus hands new targets to its scrapers only every 5 s: wait for
	// the first scrape (up is 0 while nothing listens), so that the test's
	// clock starts when Prometheus's does.
	testutil.Eventually(t, "prometheus scraping", func() bool {
		_, ok := p.query(t, `up{job="example"}`, 0)
		return ok
	})
	return p
}

// query evaluates expr through Prometheus's HTTP API, at the time at when
// it is not zero, and returns the value of its one result; ok is false when
// the result is empty.
func (p *prometheusServer) query(t *testing.T, expr string, at float64) (v float64, ok bool) {
	t.Helper()
	q := url.Values{"query": {expr}}
	if at != 0 {
		q.Set("time", strconv.FormatFloat(at, 'f', 3, 64))
	}
	res, err := http.Get(p.api + "/api/v1/query?" + q.Encode())
	if err != nil {
		t.Fatalf("query %s: %v", expr, err)
	}
	defer res.Body.Close()
	var body struct {
		Status string
		Error  string
		Data   struct {
			Result []struct {
				Value [2]any
			}
		}
	}
	if err := json.NewDecoder(res.Body).Decode(&body); err != nil || body.Status != "success" {
		t.Fatalf("query %s: %v %s %s", expr, err, body.Status, body.Error)
	}
	switch n := len(body.Data.Result); n {
	case 0:
		return 0, false
	case 1:
	default:
		t.Fatalf("query %s: %d results, want one", expr, n)
	}
	text, _ := body.Data.Result[0].Value[1].(string)
	if v, err = strconv.ParseFloat(text, 64); err != nil {
		t.Fatalf("query %s: value %q: %v", expr, text, err)
	}
	return v, true
}

// eventually waits until expr evaluates to want now.
func (p *prometheusServer) eventually(t *testing.T, expr string, want float64) {
	t.Helper()
	testutil.Eventually(t, expr+" == "+strconv.FormatFloat(want, 'g', -1, 64), func() bool {
		v, ok := p.query(t, expr, 0)
		return ok && v == want
	})
}

// increase returns increase(counter[1m]) evaluated at the counter's last
// scrape: at any other moment Prometheus extrapolates the increase to the
// window's end, and a single step of 1 reads 1.02 or so.
func (p *prometheusServer) increase(t *testing.T, counter string) float64 {
	t.Helper()
	at, ok := p.query(t, "timestamp("+counter+")", 0)
	if !ok {
		t.Fatalf("no sample of %s", counter)
	}
	v, ok := p.query(t, "increase("+counter+"[1m])", at)
	if !ok {
		t.Fatalf("no increase of %s", counter)
	}
	return v
}

// A real Prometheus scrapes the example through its warm-up, ready, a
// database outage and SIGTERM; every value is read back through its query
// API, as a dashboard or an alert would.
func TestPrometheusSeesTheWholeLife(t *testing.T) {
	need(t, "prometheus")
	bin := buildExample(t)
	pg := pgtest.Start(t)
	// The example serves /metrics beside its probes, on the probe listener.
	addr, probeAddr := testutil.FreeAddr(t), testutil.FreeAddr(t)
	prom := startPrometheus(t, probeAddr)
	in := startInstanceAt(t, bin, "a", addr, probeAddr, []string{"-warmup", "3s", "-drain", "2s", "-shutdown-timeout", "2s"},
		"DATABASE_URL="+pg.URL("pw"))

	prom.eventually(t, `probes_phase{phase="warming"}`, 1)
	prom.eventually(t, `probes_gate_status{gate="readiness",status="fail"}`, 1)
	prom.eventually(t, `probes_gate_status{gate="liveness",status="pass"}`, 1)
	testutil.Eventually(t, "the warm-up's progress seen between 0 and 1", func() bool {
		v, ok := prom.query(t, `probes_warmup_progress_ratio`, 0)
		return ok && v > 0 && v < 1
	})

	prom.eventually(t, `probes_phase{phase="ready"}`, 1)
	prom.eventually(t, `probes_warmup_progress_ratio`, 1)
	if v, ok := prom.query(t, `probes_warmup_duration_seconds`, 0); !ok || v < 3 || v > 10 {
		t.Errorf("warm-up length %v s (present %v), want about the -warmup of 3s", v, ok)
	} else {
		t.Logf("warm-up length seen: %.3f s", v)
	}
	prom.eventually(t, `probes_gate_status{gate="readiness",status="pass"}`, 1)
	if v := prom.increase(t, `probes_transitions_total{from="warming",to="ready"}`); v != 1 {
		t.Errorf(`increase(probes_transitions_total{from="warming",to="ready"}[1m]) = %v, want 1`, v)
	}
	prom.eventually(t, `probes_check_status{gate="readiness",check="postgres",status="pass"}`, 1)

	// The shared database goes away: its check fails, readiness only warns.
	pg.Stop()
	prom.eventually(t, `probes_check_status{gate="readiness",check="postgres",status="fail"}`, 1)
	prom.eventually(t, `probes_gate_status{gate="readiness",status="warn"}`, 1)
	if v, ok := prom.query(t, `increase(probes_check_executions_total{check="postgres",status="fail"}[1m])`, 0); !ok || v <= 0 {
		t.Errorf("failed executions of the postgres check: %v", v)
	}
	if v, ok := prom.query(t, `histogram_quantile(0.99, sum by (le) (rate(probes_check_duration_seconds_bucket{check="postgres"}[1m])))`, 0); !ok || !(v > 0) {
		t.Errorf("p99 of the postgres check's duration: %v (present %v)", v, ok)
	} else {
		t.Logf("p99 of the postgres check's duration over the last minute: %.3g s", v)
	}
	if v, ok := prom.query(t, `time() - probes_check_last_result_timestamp_seconds{check="postgres"}`, 0); !ok || v > 15 {
		t.Errorf("age of the postgres check's last result: %v s (present %v)", v, ok)
	}

	// SIGTERM: the drain shows while the listener still serves.
	if err := in.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	prom.eventually(t, `probes_phase{phase="draining"}`, 1)
	prom.eventually(t, `probes_gate_status{gate="readiness",status="fail"}`, 1)
	testutil.Eventually(t, "the drain's length seen growing", func() bool {
		v, ok := prom.query(t, `probes_drain_duration_seconds`, 0)
		return ok && v > 0.5
	})
	if v, ok := prom.query(t, `sum_over_time(probes_phase{phase="draining"}[1m])`, 0); ok {
		t.Logf("scrapes so far that saw the drain: %v", v)
	}
	select {
	case <-in.exited:
	case <-time.After(30 * time.Second):
		t.Fatal("the example did not exit after SIGTERM")
	}
	if v := prom.increase(t, `probes_transitions_total{from="ready",to="draining"}`); v != 1 {
		t.Errorf(`increase(probes_transitions_total{from="ready",to="draining"}[1m]) = %v, want 1`, v)
	}
	if v, ok := prom.query(t, `max_over_time(probes_drain_late_requests_total[1m])`, 0); !ok || v != 0 {
		t.Errorf("late requests seen: %v (present %v); nothing but scrapes and probes reached the instance", v, ok)
	}
	if v, ok := prom.query(t, `max_over_time(probes_shutdown_cut_requests_total[1m])`, 0); !ok || v != 0 {
		t.Errorf("cut requests seen: %v (present %v)", v, ok)
	}
	prom.rulesHealthy(t, 4)
}

// rulesHealthy checks that Prometheus loaded n rules and evaluated every one
// without error.
func (p *prometheusServer) rulesHealthy(t *testing.T, n int) {
	t.Helper()
	res, err := http.Get(p.api + "/api/v1/rules")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var body struct {
		Data struct {
			Groups []struct {
				Rules []struct {
					Name, Health, LastError string
					LastEvaluation          time.Time
				}
			}
		}
	}
	if err := json.NewDecoder(res.Body).Decode(&body); err != nil {
		t.Fatal(err)
	}
	seen := 0
	for _, g := range body.Data.Groups {
		for _, r := range g.Rules {
			seen++
			if r.Health != "ok" || r.LastError != "" || r.LastEvaluation.IsZero() {
				t.Errorf("rule %s: health %q, last error %q, last evaluated %v", r.Name, r.Health, r.LastError, r.LastEvaluation)
			}
		}
	}
	if seen != n {
		t.Errorf("prometheus loaded %d rules, want %d", seen, n)
	}
}
