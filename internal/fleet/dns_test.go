package fleet

import (
	"context"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/probekit/probes"
	"github.com/probekit/probes/internal/dnstest"
	"github.com/probekit/probes/internal/testutil"
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
	r, server, err := resolverFor(testutil.FreeAddr(t)) // nobody answers there
	if err != nil {
		t.Fatal(err)
	}
	p := newPoller(time.Second, 4)
	defer p.close()
	f := &fleet{src: &source{name: "svc.fleet.test", port: 8081, resolver: r, server: server}, poller: p, share: DefaultShare,
		addrs: []string{a}}
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
