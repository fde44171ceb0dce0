package server

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

type also struct {
	name string
	svc  Peer
}

// Peer is another server that Run serves beside the HTTP server, through
// the same lifecycle and the same drain: a gRPC server, say (package
// grpchealth adapts one).
type Peer interface {
	// Serve serves until Shutdown or Close, then returns nil (or the
	// error that stopped it).
	Serve() error
	// Shutdown stops taking new work and waits for the work in flight to
	// finish, until ctx is done; then it returns ctx's error.
	Shutdown(ctx context.Context) error
	// Close stops at once, cutting the work in flight.
	Close() error
}

// Also makes Run serve svc beside the HTTP server, from the start: through
// the drain it serves as before (its health reads the lifecycle, so it
// reports the drain at once), then Run shuts it down with the HTTP server,
// bounded by the same shutdown timeout, and closes it past the timeout.
// With Also, New accepts a nil *http.Server, for a service with no HTTP API.
func Also(name string, svc Peer) Option {
	return func(c *config) error {
		switch {
		case name == "":
			return errors.New("Also(\"\", svc): need a name")
		case svc == nil:
			return fmt.Errorf("Also(%q, nil): need a service", name)
		}
		c.also = append(c.also, also{name, svc})
		return nil
	}
}

// BindOnRun returns a Peer whose listener Run binds before it serves
// anything, with the HTTP server's and the probe listener: bind binds it
// and returns the peer that serves on it (grpchealth.Serving,
// admin.Handler.Serving, haproxy.Agent.Serving). Give it to Also. A bind
// that fails fails Run at once, naming the peer, and the listeners bound
// before it are closed; nothing has been served.
func BindOnRun(bind func() (Peer, error)) Peer { return &onRun{do: bind} }

// onRun is BindOnRun's peer: the peer bind returned, once bound.
type onRun struct {
	do func() (Peer, error)
	p  Peer
}

func (o *onRun) bind() error {
	if o.do == nil {
		return errors.New("BindOnRun(nil): need a bind function")
	}
	p, err := o.do()
	if err == nil && p == nil {
		err = errors.New("its bind returned no peer")
	}
	if err != nil {
		return err
	}
	o.p = p
	return nil
}

func (o *onRun) Serve() error {
	if o.p == nil {
		return errors.New("not bound: give BindOnRun's peer to Also")
	}
	return o.p.Serve()
}

func (o *onRun) Shutdown(ctx context.Context) error {
	if o.p == nil {
		return nil
	}
	return o.p.Shutdown(ctx)
}

func (o *onRun) Close() error {
	if o.p == nil {
		return nil
	}
	return o.p.Close()
}

// peers runs the Also servers and collects what their Serve returned.
type peers struct {
	list    []also
	done    chan peerResult // one per Serve that returned
	pending int             // Serves not yet collected
}

type peerResult struct {
	name string
	err  error
}

func (s *Server) startPeers() *peers {
	p := &peers{list: s.cfg.also, done: make(chan peerResult, len(s.cfg.also)), pending: len(s.cfg.also)}
	for _, a := range p.list {
		go func() { p.done <- peerResult{a.name, a.svc.Serve()} }()
	}
	return p
}

// collect waits for the Serves not collected yet and joins their errors.
func (p *peers) collect() error {
	var errs []error
	for ; p.pending > 0; p.pending-- {
		if r := <-p.done; r.err != nil {
			errs = append(errs, fmt.Errorf("server: %s: %w", r.name, r.err))
		}
	}
	return errors.Join(errs...)
}

// shutdown shuts every peer down at once, beside the HTTP server, bounded
// by ctx and closing those still busy at the end; the channel gets what
// went wrong once every Serve has returned.
func (p *peers) shutdown(ctx context.Context, timeout time.Duration) <-chan error {
	done := make(chan error, 1)
	go func() {
		errs := make([]error, len(p.list))
		var wg sync.WaitGroup
		for i, a := range p.list {
			wg.Go(func() {
				if err := a.svc.Shutdown(ctx); err != nil {
					a.svc.Close() //nolint:errcheck // the timeout is the error worth reporting
					errs[i] = fmt.Errorf("server: %s: shutdown timeout %s: work in flight cut: %w", a.name, timeout, err)
				}
			})
		}
		wg.Wait()
		done <- errors.Join(append(errs, p.collect())...)
	}()
	return done
}
