package server_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/probekit/probes"
	"github.com/probekit/probes/internal/testenv/testutil"
	"github.com/probekit/probes/readiness"
	"github.com/probekit/probes/server"
)

// httpPeer serves a handler on its own listener, as a Peer.
type httpPeer struct {
	hs *http.Server
	ln net.Listener
}

func (p *httpPeer) Serve() error {
	if err := p.hs.Serve(p.ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
func (p *httpPeer) Shutdown(ctx context.Context) error { return p.hs.Shutdown(ctx) }
func (p *httpPeer) Close() error                       { return p.hs.Close() }

// TestBindOnRun: Run binds the probe listener (ProbeAddr) and the peers
// made with BindOnRun before it serves, and they answer; the binds run
// once each.
func TestBindOnRun(t *testing.T) {
	lc := probes.NewLifecycle()
	if _, err := readiness.New(lc); err != nil {
		t.Fatal(err)
	}
	probeMux := http.NewServeMux()
	if _, err := server.Register(probeMux, lc); err != nil {
		t.Fatal(err)
	}
	probeAddr, peerAddr := testutil.FreeAddr(t), testutil.FreeAddr(t)
	var binds atomic.Int32
	peer := server.BindOnRun(func() (server.Peer, error) {
		binds.Add(1)
		ln, err := net.Listen("tcp", peerAddr)
		if err != nil {
			return nil, err
		}
		return &httpPeer{hs: &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte("peer")) })}, ln: ln}, nil
	})
	srv, err := server.New(&http.Server{Addr: testutil.FreeAddr(t), Handler: http.NotFoundHandler()}, lc,
		server.ProbeAddr(probeAddr, probeMux), server.Also("peer", peer), server.DrainDelay(0), server.Signals())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	testutil.Ready(t, lc)
	testutil.Eventually(t, "readyz on the probe address Run binds", func() bool {
		res, err := http.Get("http://" + probeAddr + "/readyz")
		if err != nil {
			return false
		}
		res.Body.Close()
		return res.StatusCode == 200
	})
	res, err := http.Get("http://" + peerAddr + "/")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if n := binds.Load(); n != 1 {
		t.Errorf("bound %d times, want 1", n)
	}
}

// TestBindFailsRun: an address in use fails Run at once, naming what could
// not be bound; what Run had bound is closed again, and nothing ran: the
// lifecycle never left Cold.
func TestBindFailsRun(t *testing.T) {
	taken := testutil.Listen(t)
	for _, tc := range []struct {
		name string
		opts func(app, probe string) []server.Option
		want string
	}{
		{"probe listener", func(_, _ string) []server.Option {
			return []server.Option{server.ProbeAddr(taken.Addr().String(), http.NotFoundHandler())}
		}, "probe listener"},
		{"a peer", func(_, probe string) []server.Option {
			return []server.Option{server.ProbeAddr(probe, http.NotFoundHandler()), server.Also("agent", server.BindOnRun(func() (server.Peer, error) {
				_, err := net.Listen("tcp", taken.Addr().String())
				return nil, err
			}))}
		}, "agent"},
		{"a peer without a bind", func(_, _ string) []server.Option {
			return []server.Option{server.Also("nothing", server.BindOnRun(nil))}
		}, "nothing: BindOnRun(nil)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			lc := probes.NewLifecycle()
			appAddr, probeAddr := testutil.FreeAddr(t), testutil.FreeAddr(t)
			srv, err := server.New(&http.Server{Addr: appAddr, Handler: http.NotFoundHandler()}, lc,
				append(tc.opts(appAddr, probeAddr), server.Signals())...)
			if err != nil {
				t.Fatal(err)
			}
			err = srv.Run(context.Background())
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Run: %v, want an error naming %q", err, tc.want)
			}
			if lc.Phase() != probes.Cold {
				t.Errorf("phase %s after a failed bind, want cold: nothing may have run", lc.Phase())
			}
			for _, addr := range []string{appAddr, probeAddr} { // free again
				ln, err := net.Listen("tcp", addr)
				if err != nil {
					t.Errorf("%s still bound after the failed Run: %v", addr, err)
					continue
				}
				ln.Close()
			}
		})
	}
}

func TestProbeAddrRefuses(t *testing.T) {
	for _, tc := range []struct {
		opt  server.Option
		want string
	}{
		{server.ProbeAddr("", http.NotFoundHandler()), `ProbeAddr("", h)`},
		{server.ProbeAddr(":0", nil), `ProbeAddr(":0", nil)`},
	} {
		if _, err := server.New(&http.Server{}, probes.NewLifecycle(), tc.opt); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("error %v, want one naming %s", err, tc.want)
		}
	}
}
