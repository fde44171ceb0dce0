//go:build e2e

package e2e

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/probekit/probes/internal/testenv/testutil"
)

// bareAddrEnv makes the test binary serve a bare handler instead of running
// tests: the yardstick process of BenchmarkWrk.
const bareAddrEnv = "PROBES_E2E_BARE_ADDR"

func init() {
	addr := os.Getenv(bareAddrEnv)
	if addr == "" {
		return
	}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusOK)
		w.Write([]byte("ok")) //nolint:errcheck
	})
	err := http.ListenAndServe(addr, h) //nolint:gosec // a benchmark's yardstick, on loopback
	fmt.Fprintln(os.Stderr, err)
	os.Exit(1)
}

var (
	reRate = regexp.MustCompile(`Requests/sec:\s+([0-9.]+)`)
	reP99  = regexp.MustCompile(`\n\s+99%\s+([0-9.]+)(us|ms|s)`)
)

// wrkRun loads url for d and returns requests/s and the p99 latency.
func wrkRun(b *testing.B, url string, d time.Duration) (float64, time.Duration) {
	b.Helper()
	out, err := exec.Command("wrk", "-t1", "-c32", fmt.Sprintf("-d%ds", int(d.Seconds())), "--latency", url).CombinedOutput()
	if err != nil {
		b.Fatalf("wrk: %v\n%s", err, out)
	}
	w := parseWrk(string(out))
	if w.non2xx != 0 || w.socketErrors != 0 {
		b.Fatalf("wrk against %s: %d non-2xx, %d socket errors\n%s", url, w.non2xx, w.socketErrors, out)
	}
	rate := reRate.FindStringSubmatch(string(out))
	p99 := reP99.FindStringSubmatch(string(out))
	if rate == nil || p99 == nil {
		b.Fatalf("wrk output not understood:\n%s", out)
	}
	rps, _ := strconv.ParseFloat(rate[1], 64)
	v, _ := strconv.ParseFloat(p99[1], 64)
	unit := map[string]time.Duration{"us": time.Microsecond, "ms": time.Millisecond, "s": time.Second}[p99[2]]
	return rps, time.Duration(v * float64(unit))
}

// BenchmarkWrk compares, over real HTTP on loopback, the example's /readyz
// with a bare handler writing 200 "ok", each in a process of its own, under
// the same wrk load. Run it once: go test -tags e2e -run '^$' -bench Wrk -benchtime 1x ./e2e
func BenchmarkWrk(b *testing.B) {
	if _, err := exec.LookPath("wrk"); err != nil {
		b.Skip("wrk not found")
	}
	bin := buildExample(b)
	exampleAddr, bareAddr := testutil.FreeAddr(b), testutil.FreeAddr(b) // exampleAddr: the example's probes
	example := exec.Command(bin, "-addr", testutil.FreeAddr(b), "-probe-addr", exampleAddr, "-grpc-addr=", "-warmup", "1ms")
	bare := exec.Command(os.Args[0])
	bare.Env = append(os.Environ(), bareAddrEnv+"="+bareAddr)
	for _, c := range []*exec.Cmd{example, bare} {
		if err := c.Start(); err != nil {
			b.Fatal(err)
		}
		c := c
		b.Cleanup(func() { _ = c.Process.Kill(); _ = c.Wait() })
	}
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: time.Second}
	for _, url := range []string{"http://" + exampleAddr + "/readyz", "http://" + bareAddr + "/"} {
		testutil.Eventually(b, url+" answering 200", func() bool {
			res, err := client.Get(url)
			if err != nil {
				return false
			}
			res.Body.Close()
			return res.StatusCode == 200
		})
	}
	const d = 5 * time.Second
	for b.Loop() {
		bareRPS, bareP99 := wrkRun(b, "http://"+bareAddr+"/", d)
		probeRPS, probeP99 := wrkRun(b, "http://"+exampleAddr+"/readyz", d)
		b.ReportMetric(bareRPS, "bare-req/s")
		b.ReportMetric(probeRPS, "readyz-req/s")
		b.ReportMetric(probeRPS/bareRPS, "req/s-ratio")
		b.ReportMetric(float64(bareP99.Microseconds()), "bare-p99-us")
		b.ReportMetric(float64(probeP99.Microseconds()), "readyz-p99-us")
	}
}
