// Command probe is an HTTP or gRPC probe for containers without curl: a
// Docker HEALTHCHECK or a Kubernetes exec probe.
//
//	probe [-timeout 1s] http://127.0.0.1:8081/readyz
//	probe -grpc [-service NAME] [-timeout 1s] 127.0.0.1:9090
//	probe -format nagios [-timeout 1s] http://127.0.0.1:8081/healthz?verbose
//
// With -format nagios it speaks the monitoring-plugin convention of
// Nagios, Icinga, Sensu, Consul and Mackerel's check plugins instead: one
// line "PROBES OK|WARNING|CRITICAL|UNKNOWN - summary | perfdata" and exit
// 0, 1, 2 or 3 (see nagios.go).
//
// With -grpc it calls grpc.health.v1.Health/Check as the kubelet's gRPC
// probe does: plaintext, user agent kube-probe, the timeout bounding the
// whole call, healthy only on SERVING.
//
// It exits 0 when the answer is 2xx or 3xx and 1 otherwise (Docker reserves
// exit code 2), printing one line that says why. It behaves like the
// kubelet's HTTP prober: no proxy from the environment, no keep-alive, no TLS
// verification, at most 10 KiB of the body read, and redirects followed only
// to the same host (a redirect elsewhere counts as success, unfollowed).
//
// The line lands in logs and Kubernetes events, so what it holds of the
// server's answer (status, URL, body, Location, gRPC message, error text)
// has its secrets masked by redact.String and its unprintable characters
// escaped (\x1b), each piece cut to 200 bytes.
//
// With run as its first argument it stands in front of a process that has
// no probes of its own (run.go):
//
//	probe run [-ready http://127.0.0.1:8000/health] [flags] -- CMD ARGS...
//
// Build it static: CGO_ENABLED=0 go build ./cmd/probe
package main

import (
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/probekit/probes/redact"
)

// maxBody is what the kubelet reads of a probe's body.
const maxBody = 10 << 10

func main() {
	os.Exit(run(os.Args[1:], os.Stdout))
}

func run(args []string, out io.Writer) int {
	if len(args) > 0 && args[0] == "run" {
		return runCommand(args[1:], out, os.Stderr)
	}
	fs := flag.NewFlagSet("probe", flag.ContinueOnError)
	fs.SetOutput(out)
	timeout := fs.Duration("timeout", time.Second, "how long the whole probe may take")
	useGRPC := fs.Bool("grpc", false, "probe grpc.health.v1 at host:port instead of an HTTP URL")
	service := fs.String("service", "", "with -grpc: the service name to check (\"\" is the whole server)")
	format := fs.String("format", "line", "what to print and how to exit: line (0 healthy, 1 not, one line why) or nagios (the monitoring-plugin convention: exit 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN)")
	fs.Usage = func() {
		fmt.Fprintln(out, "usage: probe [-format line|nagios] [-timeout 1s] http://host:port/path\n       probe -grpc [-format line|nagios] [-service NAME] [-timeout 1s] host:port\n       probe run [flags] -- CMD ARGS... (probe run -h for the flags)")
	}
	nagios := slices.Contains(args, "nagios") || slices.Contains(args, "-format=nagios") || slices.Contains(args, "--format=nagios")
	bad := 1
	if nagios {
		bad = nagiosUnknown // a plugin that cannot run says UNKNOWN
	}
	if err := fs.Parse(args); err != nil {
		return bad
	}
	if *format != "line" && *format != "nagios" {
		fmt.Fprintf(out, "probe: -format %q: use line or nagios\n", shown(*format))
		return bad
	}
	if fs.NArg() != 1 || *timeout <= 0 {
		fs.Usage()
		return bad
	}
	if *useGRPC {
		if *format == "nagios" {
			return nagiosGRPC(fs.Arg(0), *service, *timeout, out)
		}
		return probeGRPC(fs.Arg(0), *service, *timeout, out)
	}
	target, err := url.Parse(fs.Arg(0))
	if err != nil || (target.Scheme != "http" && target.Scheme != "https") || target.Host == "" {
		if *format == "nagios" {
			fmt.Fprintf(out, "PROBES UNKNOWN - %q is not an http or https URL\n", redact.String(fs.Arg(0)))
			return nagiosUnknown
		}
		fmt.Fprintf(out, "probe: %q is not an http or https URL\n", redact.String(fs.Arg(0)))
		return 1
	}
	if *format == "nagios" {
		return nagiosHTTP(target, *timeout, out)
	}

	client := httpClient(*timeout)
	req, err := http.NewRequest(http.MethodGet, target.String(), nil)
	if err != nil {
		fmt.Fprintf(out, "probe: %s\n", shown(err.Error()))
		return 1
	}
	req.Header.Set("User-Agent", "probes-probe/1")
	req.Header.Set("Accept", "*/*")
	res, err := client.Do(req)
	if err != nil {
		fmt.Fprintf(out, "probe: %s\n", shown(err.Error()))
		return 1
	}
	defer res.Body.Close()
	// The status text, the URL after redirects, the body and the Location
	// all come from the server.
	from := shown(res.Status) + " from " + shown(res.Request.URL.Redacted())
	body, err := io.ReadAll(io.LimitReader(res.Body, maxBody))
	if err != nil {
		// A body that stalls past the timeout fails, as with the kubelet.
		fmt.Fprintf(out, "probe: %s: reading the body: %s\n", from, shown(err.Error()))
		return 1
	}
	summary := firstLine(body)
	switch {
	case res.StatusCode >= 300 && res.StatusCode < 400:
		fmt.Fprintf(out, "probe: %s: redirect to %s not followed (another host): healthy\n",
			from, shown(res.Header.Get("Location")))
		return 0
	case res.StatusCode >= 200 && res.StatusCode < 300:
		fmt.Fprintf(out, "probe: %s: %s\n", from, summary)
		return 0
	}
	fmt.Fprintf(out, "probe: %s: %s\n", from, summary)
	return 1
}

// httpClient is the kubelet's HTTP prober, bounded by timeout: no proxy
// from the environment, no keep-alive, no TLS verification, redirects
// followed to the same host only.
func httpClient(timeout time.Duration) *http.Client {
	return &http.Client{
		Timeout: timeout,
		Transport: &http.Transport{
			Proxy:              nil, // never from the environment
			DisableKeepAlives:  true,
			DisableCompression: true,
			TLSClientConfig:    &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // as the kubelet: a probe checks health, not identity
		},
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) >= 10 {
				return errors.New("stopped after 10 redirects")
			}
			if req.URL.Hostname() != via[0].URL.Hostname() {
				return http.ErrUseLastResponse
			}
			return nil
		},
	}
}

// firstLine returns the body's first line as shown prints it.
func firstLine(b []byte) string {
	s, _, _ := strings.Cut(string(b), "\n")
	if s = strings.TrimSuffix(s, "\r"); s == "" {
		return "(no body)"
	}
	return shown(s)
}
