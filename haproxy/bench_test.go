package haproxy_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
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

// BenchmarkProbeDuringAgentFlood is a readiness probe over real HTTP while
// a thousand agent connections are held open: the agent's bound keeps the
// flood from slowing the probes.
func BenchmarkProbeDuringAgentFlood(b *testing.B) {
	lc := probes.NewLifecycle()
	ready, err := readiness.New(lc)
	if err != nil {
		b.Fatal(err)
	}
	_ = lc.Start()
	_ = lc.MarkReady()
	a, err := haproxy.New(lc, haproxy.MaxConns(64))
	if err != nil {
		b.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	p, err := a.Serving(ln)
	if err != nil {
		b.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- p.Serve() }()
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = p.Shutdown(ctx)
		<-served
	}()
	mux := http.NewServeMux()
	if _, err := server.Mount(mux, "/readyz", ready); err != nil {
		b.Fatal(err)
	}
	probe := httptest.NewServer(mux)
	defer probe.Close()
	conns := floodAgent(ln.Addr().String(), 1000)
	defer closeAll(conns)

	for b.Loop() {
		res, err := http.Get(probe.URL + "/readyz")
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, res.Body) //nolint:errcheck // the status is what counts
		res.Body.Close()
		if res.StatusCode != 200 {
			b.Fatalf("probe during the flood: %d", res.StatusCode)
		}
	}
}
