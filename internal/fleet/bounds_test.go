package fleet

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/probekit/probes"
)

// deepViewOf returns the body of a deep view of at most size bytes, as
// many tiny checks as fit (named prefix and a number), every one failing:
// what a hostile or broken instance might send within the bound on a body.
func deepViewOf(size int, prefix string) (body []byte, checks int) {
	var b bytes.Buffer
	b.WriteString(`{"status":"fail","phase":"ready","gates":{"readiness":"fail"},"checks":{`)
	const end = `}}`
	for {
		entry := fmt.Sprintf(`"%s%x":[{"status":"fail"}]`, prefix, checks)
		if b.Len()+len(entry)+1+len(end) > size {
			break
		}
		if checks > 0 {
			b.WriteByte(',')
		}
		b.WriteString(entry)
		checks++
	}
	b.WriteString(end)
	return bytes.Clone(b.Bytes()), checks
}

// serveBody serves body as a deep view.
func serveBody(t testing.TB, body []byte) string {
	t.Helper()
	return hostile(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/health+json")
		w.WriteHeader(http.StatusServiceUnavailable)
		w.Write(body) //nolint:errcheck // the client went away
	})
}

// Instances with deep views of the largest size read, full of tiny
// failing checks (different ones on each), cost a bounded part of the
// output: at most MaxChecks checks kept of each, the others counted, and
// at most MaxFaults faults listed.
func TestHugeDeepView(t *testing.T) {
	const huge = 3
	var addrs []string
	var n int
	for i := range huge {
		body, checks := deepViewOf(maxBody, fmt.Sprintf("i%d-", i))
		if checks < 30000 {
			t.Fatalf("the deep view holds %d checks, want more than 30,000", checks)
		}
		n = checks
		addrs = append(addrs, serveBody(t, body))
	}
	small := serveLifecycle(t, nil, probes.Pass)
	args := []string{"-timeout", generous.String(), targets(append(addrs, small)...)}
	code, text, _ := run(t, args...)
	if code != 1 {
		t.Errorf("exit code: got %d, want 1", code)
	}
	if lines, most := strings.Count(text, "\n"), MaxFaults+huge+10; lines > most {
		t.Errorf("the text form is %d lines, want at most %d", lines, most)
	}
	if len(text) > 64<<10 {
		t.Errorf("the text form is %d bytes, want at most 64 KiB", len(text))
	}
	if want := fmt.Sprintf("and %d more failing checks, 0 of them fleet-wide\n", huge*MaxChecks-MaxFaults); !strings.Contains(text, want) {
		t.Errorf("the text form does not say %q:\n%s", want, text)
	}
	for _, line := range strings.Split(text, "\n") {
		if len(line) > 300 {
			t.Errorf("a line of %d bytes, want at most 300: %.300s...", len(line), line)
		}
		if strings.HasPrefix(line, addrs[0]+" ") && !strings.Contains(line, " more ") {
			t.Errorf("the row of a huge instance does not count the checks it does not name: %s", line)
		}
	}
	_, out, _ := run(t, append([]string{"-json"}, args...)...)
	if len(out) > 64<<10 {
		t.Errorf("the JSON form is %d bytes, want at most 64 KiB", len(out))
	}
	var r Round
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatal(err)
	}
	if len(r.Faults) != MaxFaults || r.MoreFaults != huge*MaxChecks-MaxFaults {
		t.Errorf("got %d faults and %d more, want %d and %d", len(r.Faults), r.MoreFaults, MaxFaults, huge*MaxChecks-MaxFaults)
	}
	for _, in := range r.Instances {
		if in.Address == small {
			continue
		}
		if !in.Reachable || len(in.Checks) != MaxChecks || len(in.Failing) != MaxChecks ||
			in.MoreChecks != n-MaxChecks || in.MoreFailing != n-MaxChecks {
			t.Errorf("%s: got reachable %v, %d checks and %d failing kept, %d and %d more; want true, %d, %d, %d, %d",
				in.Address, in.Reachable, len(in.Checks), len(in.Failing), in.MoreChecks, in.MoreFailing,
				MaxChecks, MaxChecks, n-MaxChecks, n-MaxChecks)
		}
	}
}

// parse keeps the most severe checks: failing, then warning, then
// passing, by name within each; a check's status is the worst of its
// entries wherever they come in the body.
func TestParseKeepsTheWorst(t *testing.T) {
	entries := func(status string, from, to int) string {
		var b strings.Builder
		for i := from; i < to; i++ {
			fmt.Fprintf(&b, `,"%s%03d:x":[{"status":"%s","gate":"readiness"}]`, status, i, status)
		}
		return b.String()
	}
	view := func(checks string) string {
		return `{"status":"fail","checks":{"first:x":[{"status":"pass","gate":"readiness"}]` + checks + `}}`
	}
	for _, tc := range []struct {
		name              string
		body              string
		kept, failing     int
		more, moreFailing int
		has               map[string]string
	}{
		{"fewer than the bound: all kept", view(entries("fail", 0, 3)), 4, 3, 0, 0,
			map[string]string{"readiness/first": "pass", "readiness/fail000": "fail"}},
		{"failing first, then warning, then passing by name", view(entries("pass", 0, 100) + entries("warn", 0, 2) + entries("fail", 0, 3)),
			MaxChecks, 3, 106 - MaxChecks, 0,
			map[string]string{"readiness/fail002": "fail", "readiness/warn001": "warn", "readiness/first": "pass", "readiness/pass000": "pass"}},
		{"a passing check failing in a later entry counts as failing", view(entries("pass", 0, 100) + `,"first:y":[{"status":"fail","gate":"readiness"}]`),
			MaxChecks, 1, 101 - MaxChecks, 0, map[string]string{"readiness/first": "fail"}},
		{"more failing than the bound", view(entries("fail", 0, 200)), MaxChecks, MaxChecks, 201 - MaxChecks, 200 - MaxChecks,
			map[string]string{"readiness/fail000": "fail", "readiness/fail063": "fail"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := Instance{Failing: []string{}, Checks: []Check{}}
			if err := parse(strings.NewReader(tc.body), &in); err != nil {
				t.Fatal(err)
			}
			if len(in.Checks) != tc.kept || len(in.Failing) != tc.failing || in.MoreChecks != tc.more || in.MoreFailing != tc.moreFailing {
				t.Errorf("got %d kept, %d failing, %d and %d more; want %d, %d, %d, %d",
					len(in.Checks), len(in.Failing), in.MoreChecks, in.MoreFailing, tc.kept, tc.failing, tc.more, tc.moreFailing)
			}
			got := map[string]string{}
			for _, c := range in.Checks {
				got[c.Name] = c.Status
			}
			for name, want := range tc.has {
				if got[name] != want {
					t.Errorf("%s: got %q, want %q", name, got[name], want)
				}
			}
		})
	}
}

// A hostile deep view of 1 MiB of tiny checks: parse keeps MaxChecks, and
// what it holds once done does not grow with the body.
func TestParseHugeKeepsAFew(t *testing.T) {
	body, n := deepViewOf(maxBody, "")
	in := Instance{Failing: []string{}, Checks: []Check{}}
	if err := parse(bytes.NewReader(body), &in); err != nil {
		t.Fatal(err)
	}
	if len(in.Checks) != MaxChecks || in.MoreChecks != n-MaxChecks || in.MoreFailing != n-MaxChecks {
		t.Errorf("got %d checks kept, %d and %d more; want %d, %d, %d", len(in.Checks), in.MoreChecks, in.MoreFailing,
			MaxChecks, n-MaxChecks, n-MaxChecks)
	}
	for _, c := range in.Checks {
		if len(c.Name) > maxCheckName {
			t.Errorf("a name of %d bytes kept, want at most %d", len(c.Name), maxCheckName)
		}
	}
}

// BenchmarkHugeDeepViews asks ten instances, each with a deep view of the
// largest size read, full of tiny failing checks (about 37,000 each,
// different on each), and writes the round as text. Besides time and
// allocations it reports what the round keeps (the live heap with the
// round held, less the live heap without it) and the peak resident memory
// of the process over the run (reset first where Linux allows it).
func BenchmarkHugeDeepViews(b *testing.B) {
	var addrs []string
	for i := range 10 {
		body, _ := deepViewOf(maxBody, fmt.Sprintf("i%d-", i))
		addrs = append(addrs, serveBody(b, body))
	}
	resetPeak := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) == nil
	b.ReportAllocs()
	var kept uint64
	for b.Loop() {
		p := newPoller(generous, DefaultParallel)
		r := round(context.Background(), p, static(addrs), DefaultShare)
		if r.Reachable != 10 {
			b.Fatalf("%d of 10 reachable", r.Reachable)
		}
		if err := writeText(io.Discard, &r); err != nil {
			b.Fatal(err)
		}
		p.close()
		b.StopTimer()
		held := liveHeap()
		runtime.KeepAlive(r)
		r = Round{}
		kept = max(kept, held-min(held, liveHeap()))
		b.StartTimer()
	}
	b.ReportMetric(float64(kept)/(1<<10), "KB-kept")
	if peak, ok := peakRSS(); ok && resetPeak {
		b.ReportMetric(float64(peak)/(1<<20), "MB-peak-RSS")
	}
}

// liveHeap collects garbage and returns the bytes of the heap still in use.
func liveHeap() uint64 {
	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// peakRSS reads the peak resident memory of the process (VmHWM), in bytes.
func peakRSS() (uint64, bool) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, false
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10, err == nil
		}
	}
	return 0, false
}

// TestParseIdentity: the deep view's serviceId, releaseId and instance
// are read, control characters escaped as the fleet escapes them; a name the instance was
// discovered by (SRV, PTR) is kept over the one it gives itself.
func TestParseIdentity(t *testing.T) {
	body := `{"status":"pass","serviceId":"shop","releaseId":"1.4.2\u001b[2J","instance":"shop-7d9f-x2k","phase":"ready"}`
	in := Instance{Failing: []string{}, Checks: []Check{}}
	if err := parse(strings.NewReader(body), &in); err != nil {
		t.Fatal(err)
	}
	if in.Service != "shop" || in.Release != `1.4.2\x1b[2J` || in.Name != "shop-7d9f-x2k" {
		t.Errorf("service %q, release %q, name %q", in.Service, in.Release, in.Name)
	}
	known := Instance{Name: "from-srv", Failing: []string{}, Checks: []Check{}}
	if err := parse(strings.NewReader(body), &known); err != nil {
		t.Fatal(err)
	}
	if known.Name != "from-srv" {
		t.Errorf("name %q, want the discovered from-srv kept", known.Name)
	}
}
