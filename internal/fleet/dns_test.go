package fleet

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/probekit/probes"
	"github.com/probekit/probes/internal/testenv/dnstest"
	"github.com/probekit/probes/internal/testenv/testutil"
)

// sharedPort listens on the same free port of each loopback address, as
// the pods of a Service listen on one probe port each at its own address.
func sharedPort(t testing.TB, hosts ...string) (int, []net.Listener) {
	t.Helper()
	for range 20 {
		first, err := net.Listen("tcp", net.JoinHostPort(hosts[0], "0"))
		if err != nil {
			t.Fatal(err)
		}
		port := first.Addr().(*net.TCPAddr).Port
		lns := []net.Listener{first}
		for _, h := range hosts[1:] {
			ln, err := net.Listen("tcp", net.JoinHostPort(h, strconv.Itoa(port)))
			if err != nil {
				break
			}
			lns = append(lns, ln)
		}
		if len(lns) == len(hosts) {
			return port, lns
		}
		for _, ln := range lns {
			ln.Close()
		}
	}
	t.Fatalf("no port free on all of %v", hosts)
	return 0, nil
}

func TestDiscoverARecords(t *testing.T) {
	hosts := []string{"127.0.0.2", "127.0.0.3", "127.0.0.4"}
	port, lns := sharedPort(t, hosts...)
	for _, ln := range lns {
		serveLifecycleOn(t, ln, nil, probes.Pass)
	}
	dns := dnstest.Start(t, dnstest.Zone("fleet.test"), dnstest.Host("svc.fleet.test", hosts...))
	code, r := runJSON(t, "-resolver", dns.Addr(), "-port", strconv.Itoa(port), "svc.fleet.test")
	if code != 0 {
		t.Errorf("exit code: got %d, want 0: %+v", code, r)
	}
	var got []string
	for _, in := range r.Instances {
		if in.Reachable {
			got = append(got, in.Address)
		}
	}
	want := []string{}
	for _, h := range hosts {
		want = append(want, net.JoinHostPort(h, strconv.Itoa(port)))
	}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("reachable instances: got %v, want %v", got, want)
	}
}

func TestDiscoverSRV(t *testing.T) {
	a, b := serveLifecycle(t, nil, probes.Pass), serveLifecycle(t, nil, probes.Pass)
	_, pa, _ := net.SplitHostPort(a)
	_, pb, _ := net.SplitHostPort(b)
	na, _ := strconv.Atoi(pa)
	nb, _ := strconv.Atoi(pb)
	dns := dnstest.Start(t, dnstest.Zone("fleet.test"),
		dnstest.Host("pod-a.svc.fleet.test", "127.0.0.1"), dnstest.Host("pod-b.svc.fleet.test", "127.0.0.1"),
		dnstest.SRV("_probes._tcp.svc.fleet.test", "pod-a.svc.fleet.test", na),
		dnstest.SRV("_probes._tcp.svc.fleet.test", "pod-b.svc.fleet.test", nb),
		dnstest.SRV("_other._tcp.svc.fleet.test", "pod-b.svc.fleet.test", nb))
	for _, args := range [][]string{
		{"_probes._tcp.svc.fleet.test"},         // SRV because of the '_'
		{"-srv", "_probes._tcp.svc.fleet.test"}, // said aloud
	} {
		code, r := runJSON(t, append([]string{"-resolver", dns.Addr(), "-port", "1"}, args...)...)
		if code != 0 || len(r.Instances) != 2 {
			t.Fatalf("%v: exit %d, %d instances: %+v", args, code, len(r.Instances), r)
		}
		got := map[string]bool{r.Instances[0].Address: true, r.Instances[1].Address: true}
		if !got[a] || !got[b] {
			t.Errorf("%v: got %v, want %s and %s (the SRV ports, not -port)", args, got, a, b)
		}
	}
}

// An SRV target that no longer resolves (a pod deleted between the SRV
// question and its own) is listed unreachable by its name; the others are
// asked as usual.
func TestDiscoverSRVTargetGone(t *testing.T) {
	a := serveLifecycle(t, nil, probes.Pass)
	_, pa, _ := net.SplitHostPort(a)
	na, _ := strconv.Atoi(pa)
	dns := dnstest.Start(t, dnstest.Zone("fleet.test"),
		dnstest.Host("pod-a.svc.fleet.test", "127.0.0.1"),
		dnstest.SRV("_probes._tcp.svc.fleet.test", "pod-a.svc.fleet.test", na),
		dnstest.SRV("_probes._tcp.svc.fleet.test", "pod-gone.svc.fleet.test", na))
	code, r := runJSON(t, "-resolver", dns.Addr(), "-timeout", "500ms", "_probes._tcp.svc.fleet.test")
	if code != 1 || len(r.Instances) != 2 {
		t.Fatalf("exit %d, %d instances: %+v; want 1 and both listed", code, len(r.Instances), r)
	}
	byAddr := map[string]Instance{}
	for _, in := range r.Instances {
		byAddr[in.Address] = in
	}
	if in := byAddr[a]; !in.Reachable || !in.Ready {
		t.Errorf("the live target: %+v", in)
	}
	if in := byAddr["pod-gone.svc.fleet.test:"+pa]; in.Reachable || in.Error == "" {
		t.Errorf("the gone target: %+v; want unreachable with a reason", in)
	}
}

func TestDiscoveryFails(t *testing.T) {
	dns := dnstest.Start(t, dnstest.Zone("fleet.test"), dnstest.Host("svc.fleet.test", "127.0.0.2"))
	gone := testutil.FreeAddr(t)
	for _, tc := range []struct {
		name string
		args []string
		says string
	}{
		{"a name with no records", []string{"-resolver", dns.Addr(), "nobody.fleet.test"}, "nobody.fleet.test: no records"},
		{"no SRV records", []string{"-resolver", dns.Addr(), "_probes._tcp.svc.fleet.test"}, "no records of type SRV"},
		{"no DNS server", []string{"-resolver", gone, "-timeout", "100ms", "svc.fleet.test"}, gone},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := run(t, tc.args...)
			if code != 2 {
				t.Errorf("exit code: got %d, want 2", code)
			}
			if !strings.Contains(errOut, tc.says) || !strings.HasPrefix(errOut, "probectl fleet: discovery: ") {
				t.Errorf("stderr %q does not say %q", errOut, tc.says)
			}
			if testing.Verbose() {
				t.Log(errOut)
			}
			if out != "" {
				t.Errorf("stdout: got %q, want nothing", out)
			}
		})
	}
}

// With -watch and -serve, a round whose discovery fails asks the
// instances found before, and says why.
func TestRediscoveryFails(t *testing.T) {
	a := serveLifecycle(t, nil, probes.Pass)
	dns, server, err := lookupFor(testutil.FreeAddr(t)) // nobody answers there
	if err != nil {
		t.Fatal(err)
	}
	p := newPoller(time.Second, 4)
	defer p.close()
	f := &fleet{src: &source{name: "svc.fleet.test", port: 8081, dns: dns, server: server}, poller: p, share: DefaultShare,
		found: found{targets: static([]string{a})}}
	got := f.round(context.Background(), true)
	if len(got.Instances) != 1 || !got.Instances[0].Reachable || !strings.Contains(got.Error, "svc.fleet.test: looking up A/AAAA") {
		t.Fatalf("got %+v, want the instance found before and the lookup's error", got)
	}
	if got.OK() {
		t.Error("a round whose discovery failed counts as all well")
	}
	var text strings.Builder
	if err := writeText(&text, &got); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(text.String(), "discovery: svc.fleet.test") {
		t.Errorf("the text form does not lead with the discovery error:\n%s", text.String())
	}
}

// A dual-stack pod has an A and an AAAA record under its Service's name:
// it is one instance, asked through one of its addresses, so that its own
// fault stays local. Kubernetes names a pod's addresses with PTR records
// (dnsmasq answers one for each --host-record, the first given for an
// address); without them, the addresses of one family stand for the pods.
func TestDualStackPodIsOneInstance(t *testing.T) {
	for _, tc := range []struct {
		name     string
		ptr      bool // the pods' addresses have PTR records naming them
		v4closed bool // pod a's IPv4 address refuses
	}{
		{name: "pods named by PTR records", ptr: true},
		{name: "no pod names: one address family", ptr: false},
		{name: "pod a's IPv4 address refuses: asked through its IPv6 one", ptr: true, v4closed: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hosts := []string{"127.0.0.2", "::1", "127.0.0.3", "127.0.0.4"}
			port, lns := sharedPort(t, hosts...)
			podA := lns[:2]
			if tc.v4closed {
				podA[0].Close()
				podA = podA[1:]
			}
			serveLifecycleOn(t, podA[0], map[string]error{"sidecar": errDown}, probes.Fail, podA[1:]...)
			serveLifecycleOn(t, lns[2], map[string]error{"sidecar": nil}, probes.Pass)
			serveLifecycleOn(t, lns[3], map[string]error{"sidecar": nil}, probes.Pass)
			var recs []dnstest.Record
			if tc.ptr { // first: the PTR record of an address names the first host record given for it
				recs = append(recs, dnstest.Host("pod-a.svc.fleet.test", "127.0.0.2", "::1"),
					dnstest.Host("pod-b.svc.fleet.test", "127.0.0.3"), dnstest.Host("pod-c.svc.fleet.test", "127.0.0.4"))
			}
			recs = append(recs, dnstest.Zone("fleet.test"), dnstest.Host("svc.fleet.test", hosts...))
			dns := dnstest.Start(t, recs...)
			code, r := runJSON(t, "-resolver", dns.Addr(), "-port", strconv.Itoa(port), "-timeout", generous.String(), "svc.fleet.test")
			if code != 1 {
				t.Errorf("exit code: got %d, want 1", code)
			}
			if len(r.Instances) != 3 || r.Reachable != 3 {
				t.Errorf("got %d instances, %d reachable; want 3 and 3: %+v", len(r.Instances), r.Reachable, r.Instances)
			}
			if want := "readiness/sidecar"; fmt.Sprint(r.Local) != "["+want+"]" || len(r.FleetWide) != 0 {
				t.Errorf("got local %q fleet-wide %q; want [%s] local, none fleet-wide", r.Local, r.FleetWide, want)
			}
			p := strconv.Itoa(port)
			v4, v6 := net.JoinHostPort("127.0.0.2", p), net.JoinHostPort("::1", p)
			var a Instance
			for _, in := range r.Instances {
				if len(in.Failing) > 0 {
					a = in
				}
			}
			want := Instance{Name: "pod-a.svc.fleet.test", Address: v4, Addresses: []string{v4, v6}}
			switch {
			case !tc.ptr:
				want = Instance{Address: v4, Addresses: []string{v4}}
			case tc.v4closed:
				want.Address = v6
			}
			if a.Name != want.Name || a.Address != want.Address || fmt.Sprint(a.Addresses) != fmt.Sprint(want.Addresses) {
				t.Errorf("pod a: got name %q, asked at %s of %v; want %q, %s of %v",
					a.Name, a.Address, a.Addresses, want.Name, want.Address, want.Addresses)
			}
		})
	}
}

// An SRV answer cut short (too large for a DNS message even over TCP) is
// said to be, in the text and the JSON, and the round is not all well.
func TestDiscoverSRVTruncated(t *testing.T) {
	const records = 10000
	recs := []dnstest.Record{dnstest.Zone("fleet.test")}
	for i := range records {
		recs = append(recs, dnstest.SRV("_probes._tcp.svc.fleet.test", fmt.Sprintf("pod-%d.svc.fleet.test", i), 8081))
	}
	dns := dnstest.Start(t, recs...)
	args := []string{"-resolver", dns.Addr(), "-timeout", "1s", "_probes._tcp.svc.fleet.test"}
	code, out, errOut := run(t, append([]string{"-json"}, args...)...)
	var doc struct {
		Instances []Instance `json:"instances"`
		Truncated *bool      `json:"truncated"`
		Warnings  []string   `json:"warnings"`
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("-json output %.200q (stderr %q): %v", out, errOut, err)
	}
	if code != 1 {
		t.Errorf("exit code: got %d, want 1", code)
	}
	n := len(doc.Instances)
	if n == 0 || n >= records {
		t.Fatalf("got %d instances, want some and fewer than %d (the answer is cut short)", n, records)
	}
	want := fmt.Sprintf("discovery: answer truncated, %d of more instances listed", n)
	if doc.Truncated == nil || !*doc.Truncated || fmt.Sprint(doc.Warnings) != "["+want+"]" {
		t.Errorf("got truncated %v, warnings %q; want true and [%s]", doc.Truncated, doc.Warnings, want)
	}
	_, text, _ := run(t, args...)
	if !strings.HasPrefix(text, want+"\n") {
		t.Errorf("the text form does not lead with %q:\n%.300s", want, text)
	}
}

// An SRV target that the given resolver does not resolve is never dialled
// by its name (which the system would resolve: through /etc/hosts,
// localhost): it is listed unreachable, with the reason.
func TestSRVTargetNotResolvedIsNotDialled(t *testing.T) {
	names := []string{"localhost"}
	if h := hostsName(t); h != "" {
		names = append(names, h)
	}
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			var hits atomic.Int32
			ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				hits.Add(1)
				w.Header().Set("Content-Type", "application/health+json")
				fmt.Fprint(w, `{"status":"pass","phase":"ready","gates":{"readiness":"pass"}}`)
			}))
			t.Cleanup(ts.Close)
			_, port, _ := net.SplitHostPort(ts.Listener.Addr().String())
			n, _ := strconv.Atoi(port)
			dns := dnstest.Start(t, dnstest.Zone("fleet.test"), dnstest.SRV("_probes._tcp.svc.fleet.test", name+".", n))
			code, r := runJSON(t, "-resolver", dns.Addr(), "-timeout", generous.String(), "_probes._tcp.svc.fleet.test")
			if code != 1 || len(r.Instances) != 1 {
				t.Fatalf("exit %d, %d instances; want 1 and 1: %+v", code, len(r.Instances), r)
			}
			in := r.Instances[0]
			if in.Reachable || !strings.Contains(in.Error, "does not resolve through "+dns.Addr()) {
				t.Errorf("got reachable %v, error %q; want false, does not resolve through %s", in.Reachable, in.Error, dns.Addr())
			}
			if got := hits.Load(); got != 0 {
				t.Errorf("the instance behind %s was asked %d times, want 0", name, got)
			}
		})
	}
}

// hostsName returns a name /etc/hosts gives 127.0.0.1, other than
// localhost, or "".
func hostsName(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("/etc/hosts")
	if err != nil {
		return ""
	}
	for _, line := range strings.Split(string(b), "\n") {
		line, _, _ = strings.Cut(line, "#")
		f := strings.Fields(line)
		if len(f) < 2 || f[0] != "127.0.0.1" {
			continue
		}
		for _, n := range f[1:] {
			if n != "localhost" && !strings.Contains(n, "localhost") {
				return n
			}
		}
	}
	return ""
}

// The system's resolver (Go's) returns an answer truncated over TCP as if
// it were whole; the connection it dials is watched for the flag.
func TestSystemLookupSeesTruncation(t *testing.T) {
	recs := []dnstest.Record{dnstest.Zone("fleet.test")}
	for i := range 5000 {
		recs = append(recs, dnstest.SRV("_many._tcp.fleet.test", fmt.Sprintf("pod-%d.fleet.test", i), 8081))
	}
	recs = append(recs, dnstest.SRV("_few._tcp.fleet.test", "pod-0.fleet.test", 8081))
	dns := dnstest.Start(t, recs...)
	sys := &system{r: &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		return watchDial(ctx, network, dns.Addr()) // the server the system would have named
	}}}
	for _, tc := range []struct {
		name string
		cut  bool
	}{
		{"_many._tcp.fleet.test", true},
		{"_few._tcp.fleet.test", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			recs, cut, err := sys.srv(context.Background(), tc.name)
			if err != nil {
				t.Fatal(err)
			}
			if cut != tc.cut {
				t.Errorf("got truncated %v with %d records, want %v", cut, len(recs), tc.cut)
			}
		})
	}
}
