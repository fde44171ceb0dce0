package grpchealth

import (
	"context"
	"fmt"
	"net"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/keepalive"

	"github.com/probekit/probes/internal/opt"
	"github.com/probekit/probes/server"
)

// Settings ServerOptions gives a gRPC server.
const (
	// DefaultConnectionTimeout bounds a new connection's handshake; grpc-go
	// waits 120 s by default for a client that connects and never speaks.
	DefaultConnectionTimeout = 5 * time.Second
	// DefaultMaxStreams bounds the concurrent streams of one connection;
	// grpc-go sets no bound by default, so one connection could open tens
	// of thousands of Watch streams.
	DefaultMaxStreams = 100
	// DefaultMaxConnectionIdle closes a connection with no stream for this
	// long (grpc-go keeps one for ever by default); clients reconnect.
	DefaultMaxConnectionIdle = 5 * time.Minute
)

// ServerOptions returns options for grpc.NewServer that bound what one
// client can take: the handshake timeout (DefaultConnectionTimeout), the
// streams per connection (DefaultMaxStreams) and how long a connection with
// no stream is kept (DefaultMaxConnectionIdle). Options given after them to
// grpc.NewServer take precedence.
//
//	gs := grpc.NewServer(append(grpchealth.ServerOptions(), grpc.UnaryInterceptor(i))...)
func ServerOptions() []grpc.ServerOption {
	return []grpc.ServerOption{
		grpc.ConnectionTimeout(DefaultConnectionTimeout),
		grpc.MaxConcurrentStreams(DefaultMaxStreams),
		grpc.KeepaliveParams(keepalive.ServerParameters{MaxConnectionIdle: DefaultMaxConnectionIdle}),
	}
}

// ServeOption configures Serving.
type ServeOption func(*serveConfig) error

type serveConfig struct {
	maxConns int
}

// MaxConns bounds the connections the gRPC listener holds. At the bound a
// new connection takes the place of the oldest one that has not sent a
// byte, and is refused when every connection has. Default: a quarter of
// the process's file-descriptor limit (1024 where it is unknown), so that a
// flood of gRPC connections leaves descriptors for the probe and
// application listeners. 0 removes the bound.
func MaxConns(n int) ServeOption {
	return func(c *serveConfig) error {
		if n < 0 {
			return fmt.Errorf("MaxConns(%d): must not be negative", n)
		}
		c.maxConns = n
		return nil
	}
}

// Serving returns gs, to be served on ln, as a peer of server.Run
// (server.Also): Run serves it from the start, through the drain (its
// readiness turns NOT_SERVING at once, pushed to every Watch stream), then
// ends the Watch streams of h, stops gs gracefully within the shutdown
// timeout, and stops it outright past it. h may be nil when gs serves no
// Health of this package. ln is bounded (see MaxConns). It fails with an
// error naming the option when an option is invalid.
func Serving(gs *grpc.Server, ln net.Listener, h *Health, opts ...ServeOption) (server.Peer, error) {
	cfg := serveConfig{maxConns: defaultMaxConns()}
	if err := opt.Apply("grpchealth", &cfg, opts); err != nil {
		return nil, err
	}
	if gs == nil || ln == nil {
		return nil, fmt.Errorf("grpchealth: Serving needs a *grpc.Server and a listener")
	}
	if cfg.maxConns > 0 {
		var err error
		if ln, _, err = bound(ln, cfg.maxConns, quietEvict); err != nil {
			return nil, fmt.Errorf("grpchealth: MaxConns: %w", err)
		}
	}
	return &peer{gs: gs, ln: ln, h: h}, nil
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
