package grpchealth

import (
	"context"
	"net"

	"google.golang.org/grpc"

	"github.com/probekit/probes/server"
)

// Serving returns gs, to be served on ln, as a peer of server.Run
// (server.Also): Run serves it from the start, through the drain (its
// readiness turns NOT_SERVING at once, pushed to every Watch stream), then
// ends the Watch streams of h, stops gs gracefully within the shutdown
// timeout, and stops it outright past it. h may be nil when gs serves no
// Health of this package.
func Serving(gs *grpc.Server, ln net.Listener, h *Health) server.Peer {
	return &peer{gs: gs, ln: ln, h: h}
}

type peer struct {
	gs *grpc.Server
	ln net.Listener
	h  *Health
}

func (p *peer) Serve() error { return p.gs.Serve(p.ln) }

func (p *peer) Shutdown(ctx context.Context) error {
	if p.h != nil {
		p.h.Shutdown() // streams that never end would hold GracefulStop
	}
	done := make(chan struct{})
	go func() {
		p.gs.GracefulStop()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		p.gs.Stop()
		<-done
		return ctx.Err()
	}
}

func (p *peer) Close() error {
	if p.h != nil {
		p.h.Shutdown()
	}
	p.gs.Stop()
	return nil
}
