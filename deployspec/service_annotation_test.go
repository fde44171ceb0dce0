package deployspec_test

import (
	"strings"
	"testing"
	"time"

	"github.com/probekit/probes/deployspec"
	"github.com/probekit/probes/server"
)

func TestServiceAnnotation(t *testing.T) {
	s := deployspec.Service{WarmupDeadline: 2 * time.Minute, ProbeAddr: ":9001", GRPCAddr: "0.0.0.0:9090"}
	v := deployspec.FormatService(s)
	if v != "warmup-deadline=2m probe-addr=:9001 grpc-addr=0.0.0.0:9090" {
		t.Errorf("FormatService: %q", v)
	}
	got, err := deployspec.ParseService(v)
	if err != nil || got.WarmupDeadline != s.WarmupDeadline || got.ProbeAddr != s.ProbeAddr || got.GRPCAddr != s.GRPCAddr {
		t.Errorf("ParseService(%q) = %+v, %v", v, got, err)
	}
	for _, tc := range []struct{ v, want string }{
		{"", "warmup-deadline is missing"},
		{"warmup-deadline=2m", "probe-addr is missing"},
		{"warmup-deadline=0s probe-addr=:1", "not a positive duration"},
		{"warmup-deadline=2m probe-addr=8081", "not host:port"},
		{"warmup-deadline=2m probe-addr=:1 probe-addr=:2", "set twice"},
		{"warmup-deadline=2m probe-addr=:1 color=red", "unknown key"},
		{"warmup-deadline", "not key=value"},
	} {
		if _, err := deployspec.ParseService(tc.v); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ParseService(%q): %v, want an error saying %q", tc.v, err, tc.want)
		}
	}
}

// TestDeploymentRefusesLoopback: a service listening on loopback cannot be
// probed in a pod; the generator says so, naming the field, instead of
// writing probes that always fail.
func TestDeploymentRefusesLoopback(t *testing.T) {
	for _, tc := range []struct {
		d    deployspec.Deployment
		want string
	}{
		{deployspec.Deployment{Name: "x", Image: "x", AppAddr: "127.0.0.1:8080", Service: deployspec.Service{WarmupDeadline: time.Minute, ProbeAddr: ":8081", Stop: server.Timings{Drain: 5 * time.Second}}}, "Deployment.AppAddr"},
		{deployspec.Deployment{Name: "x", Image: "x", AppAddr: ":8080", Service: deployspec.Service{WarmupDeadline: time.Minute, ProbeAddr: "127.0.0.1:8081", Stop: server.Timings{Drain: 5 * time.Second}}}, "Service.ProbeAddr"},
		{deployspec.Deployment{Name: "x", Image: "x", AppAddr: ":8080", Service: deployspec.Service{WarmupDeadline: time.Minute, ProbeAddr: ":8081", GRPCAddr: "[::1]:9090", Stop: server.Timings{Drain: 5 * time.Second}}}, "Service.GRPCAddr"},
	} {
		if _, err := tc.d.YAML(); err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "loopback") {
			t.Errorf("%v, want an error naming %s and loopback", err, tc.want)
		}
	}
}
