package main

// The monitoring-plugin convention (Nagios, Icinga, Sensu, Consul,
// Mackerel's check plugins): one line of output,
//
//	PROBES <STATE> - <summary> | <perfdata>
//
// and the state as the exit code: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.
// A health+json answer maps its status: pass OK, warn WARNING, fail
// CRITICAL. No answer, a timeout, or a body that is not health+json is
// UNKNOWN: the plugin could not tell. Observed values become performance
// data with their units; secrets are masked and the line is bounded.

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"mime"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
)

// The plugin's exit codes.
const (
	nagiosOK       = 0
	nagiosWarning  = 1
	nagiosCritical = 2
	nagiosUnknown  = 3
)

// Bounds of the plugin's line: the summary, the performance data entries,
// and the whole line (Nagios keeps 8 KiB of a plugin's output; a line well
// within it passes through every scheduler unchanged).
const (
	maxDocument = 256 << 10 // a verbose deep view of many checks is far past the kubelet's 10 KiB
	maxSummary  = 300
	maxPerfData = 64
	maxLine     = 4 << 10
)

var nagiosStates = [...]string{"OK", "WARNING", "CRITICAL", "UNKNOWN"}

// nagiosLine writes the plugin's line for state and returns state.
func nagiosLine(out io.Writer, state int, summary string, perf []string) int {
	line := "PROBES " + nagiosStates[state] + " - " + summary
	if len(perf) > 0 {
		line += " |"
		for _, p := range perf {
			if len(line)+1+len(p) > maxLine {
				break
			}
			line += " " + p
		}
	}
	fmt.Fprintln(out, line)
	return state
}

// health is what the plugin reads of a health+json document.
type health struct {
	Status    string   `json:"status"`
	ServiceID string   `json:"serviceId"`
	ReleaseID string   `json:"releaseId"`
	Output    string   `json:"output"`
	Notes     []string `json:"notes"`
	Checks    map[string][]struct {
		Status        string   `json:"status"`
		ObservedValue *float64 `json:"observedValue"`
		ObservedUnit  string   `json:"observedUnit"`
	} `json:"checks"`
}

// nagiosHTTP asks target for a health+json answer and reports it as a
// plugin does.
func nagiosHTTP(target *url.URL, timeout time.Duration, out io.Writer) int {
	req, err := http.NewRequest(http.MethodGet, target.String(), nil)
	if err != nil {
		return nagiosLine(out, nagiosUnknown, shown(err.Error()), nil)
	}
	req.Header.Set("User-Agent", "probes-probe/1")
	req.Header.Set("Accept", "application/health+json, application/json;q=0.9")
	began := time.Now()
	res, err := httpClient(timeout).Do(req)
	if err != nil {
		return nagiosLine(out, nagiosUnknown, "no answer: "+shown(err.Error()), nil)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(io.LimitReader(res.Body, maxDocument))
	took := time.Since(began)
	from := shown(res.Request.URL.Redacted())
	if err != nil {
		return nagiosLine(out, nagiosUnknown, from+": reading the body: "+shown(err.Error()), nil)
	}
	var h health
	if !healthJSON(res.Header.Get("Content-Type")) || json.Unmarshal(body, &h) != nil || h.Status == "" {
		return nagiosLine(out, nagiosUnknown, fmt.Sprintf("%s answered %s, not health+json", from, shown(res.Status)), nil)
	}
	state := nagiosUnknown
	switch h.Status {
	case "pass":
		state = nagiosOK
	case "warn":
		state = nagiosWarning
	case "fail":
		state = nagiosCritical
	}
	perf := append([]string{perfDatum("time", took.Seconds(), "s")}, h.perfData()...)
	return nagiosLine(out, state, h.summary(from), perf)
}

// healthJSON reports whether a Content-Type is health+json or JSON.
func healthJSON(ctype string) bool {
	mt, _, err := mime.ParseMediaType(ctype)
	return err == nil && (mt == "application/health+json" || mt == "application/json")
}

// summary is the document's status and why, in a bounded line: the
// service, its notes (which name the failing checks), and its output.
func (h *health) summary(from string) string {
	var parts []string
	who := h.ServiceID
	if h.ReleaseID != "" {
		who += " " + h.ReleaseID
	}
	if who = strings.TrimSpace(who); who == "" {
		who = from
	}
	parts = append(parts, who+" "+h.Status)
	parts = append(parts, h.Notes...)
	if h.Output != "" {
		parts = append(parts, h.Output)
	}
	// " / " between the parts: Nagios turns every ';' of a plugin's output
	// into ':' (its logs use ';' as a separator), so "; " would read as ": ".
	s := strings.Join(parts, " / ")
	// The line must stay one line, and the perfdata separator must not
	// appear in the text.
	s = strings.NewReplacer("|", "/").Replace(s)
	return shownN(s, maxSummary)
}

// perfData turns the observed values into performance data, sorted by
// name, at most maxPerfData of them.
func (h *health) perfData() []string {
	names := make([]string, 0, len(h.Checks))
	for name := range h.Checks {
		names = append(names, name)
	}
	slices.Sort(names)
	var out []string
	for _, name := range names {
		for i, e := range h.Checks[name] {
			if e.ObservedValue == nil || math.IsNaN(*e.ObservedValue) || math.IsInf(*e.ObservedValue, 0) {
				continue
			}
			label := name
			if i > 0 {
				label += "#" + strconv.Itoa(i+1) // one check's entries per component
			}
			v, unit := *e.ObservedValue, e.ObservedUnit
			out = append(out, perfDatum(label, v, unit))
			if len(out) == maxPerfData {
				return out
			}
		}
	}
	return out
}

// perfDatum writes one performance datum, 'label'=value[UOM], in the
// units the convention knows (s, %, B, c; others go without a unit).
func perfDatum(label string, v float64, unit string) string {
	switch unit {
	case "ms":
		v, unit = v/1000, "s"
	case "µs", "us":
		v, unit = v/1e6, "s"
	case "s", "%", "B", "c":
	case "bytes":
		unit = "B"
	default:
		unit = ""
	}
	// A label holds no '=' and no newline; a quote is doubled.
	label = strings.NewReplacer("=", "_", "'", "''", "\n", " ", "\r", " ").Replace(shownN(label, 60))
	return "'" + label + "'=" + strconv.FormatFloat(v, 'g', 6, 64) + unit
}

// shownN is shown with a bound of n bytes.
func shownN(s string, n int) string {
	s = shown(s)
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && s[cut]&0xc0 == 0x80 {
		cut--
	}
	return s[:cut] + "..."
}

// nagiosGRPC asks grpc.health.v1 as the kubelet does and reports it as a
// plugin does: SERVING OK, NOT_SERVING CRITICAL, anything else (no answer,
// an unknown service) UNKNOWN.
func nagiosGRPC(addr, service string, timeout time.Duration, out io.Writer) int {
	if _, port, err := net.SplitHostPort(addr); err != nil || !validPort(port) {
		return nagiosLine(out, nagiosUnknown, fmt.Sprintf("%q is not host:port", shown(addr)), nil)
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	conn, err := grpc.NewClient("passthrough:///"+addr,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithUserAgent("kube-probe/probes-probe"))
	if err != nil {
		return nagiosLine(out, nagiosUnknown, shown(err.Error()), nil)
	}
	defer conn.Close()
	began := time.Now()
	res, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{Service: service}, grpc.WaitForReady(true))
	took := perfDatum("time", time.Since(began).Seconds(), "s")
	what := fmt.Sprintf("grpc %s service %q", shown(addr), shown(service))
	if err != nil {
		st := status.Convert(err)
		return nagiosLine(out, nagiosUnknown, what+": "+st.Code().String()+": "+shownN(st.Message(), maxSummary), []string{took})
	}
	state := nagiosUnknown
	switch res.GetStatus() {
	case healthpb.HealthCheckResponse_SERVING:
		state = nagiosOK
	case healthpb.HealthCheckResponse_NOT_SERVING:
		state = nagiosCritical
	}
	return nagiosLine(out, state, what+": "+res.GetStatus().String(), []string{took})
}
