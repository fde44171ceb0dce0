package haproxy_test

import (
	"context"
	"testing"
	"time"

	"github.com/probekit/probes"
	"github.com/probekit/probes/haproxy"
	"github.com/probekit/probes/readiness"
	"github.com/probekit/probes/server"
)

// BenchmarkReply is the cost of one agent line: a readiness report and the
// line built from it, as each HAProxy poll pays.
func BenchmarkReply(b *testing.B) {
	lc := probes.NewLifecycle()
	ready, err := readiness.New(lc)
	if err != nil {
		b.Fatal(err)
	}
	for _, name := range []string{"db", "cache", "queue"} {
		if err := ready.Add(name, probes.CheckFunc(func(context.Context) error { return nil }), probes.Every(time.Hour)); err != nil {
			b.Fatal(err)
		}
	}
	_ = lc.Start()
	_ = lc.MarkReady()
	shed, _ := server.NewShedder(64)
	a, err := haproxy.New(lc, haproxy.Capacity(shed))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if a.Reply() == "" {
			b.Fatal("empty line")
		}
	}
}
