package dnstest_test

import (
	"context"
	"errors"
	"net"
	"slices"
	"testing"

	"go.uber.org/goleak"

	"github.com/probekit/probes/internal/testenv/dnstest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestRecords(t *testing.T) {
	s := dnstest.Start(t, dnstest.Zone("fleet.test"),
		dnstest.Host("svc.fleet.test", "127.0.0.2", "127.0.0.3", "::1"),
		dnstest.Host("pod.fleet.test", "127.0.0.9"),
		dnstest.SRV("_probes._tcp.svc.fleet.test", "pod.fleet.test", 9001))
	r, ctx := s.Resolver(), context.Background()
	ips, err := r.LookupIPAddr(ctx, "svc.fleet.test")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, ip := range ips {
		got = append(got, ip.String())
	}
	slices.Sort(got)
	if want := []string{"127.0.0.2", "127.0.0.3", "::1"}; !slices.Equal(got, want) {
		t.Errorf("A/AAAA: got %v, want %v", got, want)
	}
	_, srvs, err := r.LookupSRV(ctx, "", "", "_probes._tcp.svc.fleet.test")
	if err != nil {
		t.Fatal(err)
	}
	if len(srvs) != 1 || srvs[0].Target != "pod.fleet.test." || srvs[0].Port != 9001 {
		t.Errorf("SRV: got %+v", srvs)
	}
	_, err = r.LookupIPAddr(ctx, "nobody.fleet.test")
	var de *net.DNSError
	if !errors.As(err, &de) || !de.IsNotFound {
		t.Errorf("a name nobody gave: got %v, want no such host", err)
	}
}
