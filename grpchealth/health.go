// Package grpchealth serves a lifecycle's gates as the gRPC health service,
// grpc.health.v1.Health: what the kubelet's gRPC probes call (Check), what
// grpc-go's client-side health checking and Envoy follow (Watch), and List.
// It reads the same gates and is pushed by the same change notifications as
// the HTTP handlers, so nothing has to be kept in step: when the service
// drains, every Watch stream hears NOT_SERVING at once.
//
// Service names: "" (the whole server, as the protocol defines it) and
// "readiness" answer the readiness gate, "liveness" and "startup" theirs,
// and names given with Services (your own gRPC services) answer readiness
// too. Pass and warn are SERVING, fail is NOT_SERVING.
//
// Of the library's packages, only this one and readiness/grpccheck import
// google.golang.org/grpc: a service that imports neither never compiles grpc.
package grpchealth

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/probekit/probes"
	"github.com/probekit/probes/internal/opt"
	"github.com/probekit/probes/internal/versioned"
)

// Option configures a Health.
type Option func(*config) error

type config struct {
	services    []string
	maxWatchers int
}

// DefaultMaxWatchers is the default of MaxWatchers.
const DefaultMaxWatchers = 1024

// MaxWatchers bounds the Watch streams open at once, over every connection:
// each holds a goroutine and a subscription, so that without a bound a
// client could open streams until the process runs out of memory. A Watch
// beyond it fails at once with RESOURCE_EXHAUSTED, and the client's
// health checking retries it. Default DefaultMaxWatchers (1024).
func MaxWatchers(n int) Option {
	return func(c *config) error {
		if n < 1 {
			return fmt.Errorf("MaxWatchers(%d): must be at least 1", n)
		}
		c.maxWatchers = n
		return nil
	}
}

// Services makes each name (a gRPC service of yours, such as
// "items.v1.Items") answer with the readiness gate, as "" does. A name must
// not be empty or one of the gates' names, and must not repeat.
func Services(names ...string) Option {
	return func(c *config) error {
		for _, n := range names {
			switch {
			case n == "":
				return errors.New(`Services(""): "" already answers readiness`)
			case n == "readiness" || n == "liveness" || n == "startup":
				return fmt.Errorf("Services(%q): the name of a gate", n)
			case slices.Contains(c.services, n):
				return fmt.Errorf("Services(%q): given twice", n)
			}
			c.services = append(c.services, n)
		}
		return nil
	}
}

// Health implements grpc_health_v1.HealthServer over a lifecycle's gates.
// Create it with New, register it with Register, and end it with Shutdown
// (Serving does both for Server.Run).
type Health struct {
	healthpb.UnimplementedHealthServer
	services map[string]*view
	names    []string // sorted
	cancels  []func()
	closing  chan struct{} // closed by Shutdown
	shut     sync.Once

	maxWatchers int64
	watchers    atomic.Int64
}

var _ healthpb.HealthServer = (*Health)(nil)

// New returns the health service of lc's gates: readiness as "" and
// "readiness", liveness and startup by their names, whatever order they are
// built in (each answers by the phase alone until its gate is built; see
// probes.Lifecycle.View). It fails with an error naming the option when an
// option is invalid.
func New(lc *probes.Lifecycle, opts ...Option) (*Health, error) {
	if lc == nil {
		return nil, errors.New("grpchealth: New(nil): need a lifecycle")
	}
	cfg := config{maxWatchers: DefaultMaxWatchers}
	if err := opt.Apply("grpchealth", &cfg, opts); err != nil {
		return nil, err
	}
	h := &Health{services: map[string]*view{}, closing: make(chan struct{}), maxWatchers: int64(cfg.maxWatchers)}
	add := func(g probes.Gate, names ...string) {
		v := &view{gate: g}
		v.serving()
		h.cancels = append(h.cancels, g.Subscribe(func() { v.serving() }))
		for _, n := range names {
			h.services[n] = v
			h.names = append(h.names, n)
		}
	}
	// Views, not the gates: a gate built after the service is served from
	// the moment it is built, and by the phase alone before.
	add(lc.View(probes.Readiness), append([]string{"", "readiness"}, cfg.services...)...)
	add(lc.View(probes.Liveness), probes.Liveness.String())
	add(lc.View(probes.Startup), probes.Startup.String())
	slices.Sort(h.names)
	return h, nil
}

// Register registers h on gs as grpc.health.v1.Health.
func (h *Health) Register(gs *grpc.Server) { healthpb.RegisterHealthServer(gs, h) }

// Check answers with the service's present status, from a verdict rendered
// when the gate last changed: no check runs, and no lock is held across a
// dependency. An unknown service is NotFound.
func (h *Health) Check(_ context.Context, req *healthpb.HealthCheckRequest) (*healthpb.HealthCheckResponse, error) {
	v, ok := h.services[req.GetService()]
	if !ok {
		return nil, status.Errorf(codes.NotFound, "unknown service %q", req.GetService())
	}
	return response(v.serving()), nil
}

// List answers with every service's present status.
func (h *Health) List(context.Context, *healthpb.HealthListRequest) (*healthpb.HealthListResponse, error) {
	res := &healthpb.HealthListResponse{Statuses: make(map[string]*healthpb.HealthCheckResponse, len(h.names))}
	for _, n := range h.names {
		res.Statuses[n] = response(h.services[n].serving())
	}
	return res, nil
}

// Watch sends the service's status at once and again on every change, as
// the gate's change notifications push it. A slow client holds only its own
// stream: it gets the latest status when it reads again, skipping the ones
// in between. An unknown service gets SERVICE_UNKNOWN and the stream stays
// open, as the protocol asks. Shutdown ends every stream, NOT_SERVING last.
// Beyond MaxWatchers streams, Watch fails with RESOURCE_EXHAUSTED.
func (h *Health) Watch(req *healthpb.HealthCheckRequest, stream grpc.ServerStreamingServer[healthpb.HealthCheckResponse]) error {
	if h.watchers.Add(1) > h.maxWatchers {
		h.watchers.Add(-1)
		return status.Errorf(codes.ResourceExhausted, "%d Watch streams open already", h.maxWatchers)
	}
	defer h.watchers.Add(-1)
	ctx := stream.Context()
	v, ok := h.services[req.GetService()]
	if !ok {
		if err := stream.Send(response(healthpb.HealthCheckResponse_SERVICE_UNKNOWN)); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return status.FromContextError(ctx.Err()).Err()
		case <-h.closing:
			return status.Error(codes.Unavailable, "the server is shutting down")
		}
	}
	// Nudged by the gate's own notifications, never blocking them: a
	// nudge not yet taken already says "read the latest".
	nudge := make(chan struct{}, 1)
	defer v.gate.Subscribe(func() {
		select {
		case nudge <- struct{}{}:
		default:
		}
	})()
	last := healthpb.HealthCheckResponse_UNKNOWN
	for {
		if st := v.serving(); st != last {
			if err := stream.Send(response(st)); err != nil {
				return err
			}
			last = st
		}
		select {
		case <-nudge:
		case <-ctx.Done():
			return status.FromContextError(ctx.Err()).Err()
		case <-h.closing:
			if last != healthpb.HealthCheckResponse_NOT_SERVING {
				if err := stream.Send(response(healthpb.HealthCheckResponse_NOT_SERVING)); err != nil {
					return err
				}
			}
			return status.Error(codes.Unavailable, "the server is shutting down")
		}
	}
}

// Shutdown ends every Watch stream, after a last NOT_SERVING, so that a
// graceful stop of the gRPC server does not wait on streams that never end.
// Check and List go on answering. Call it once the drain is over.
func (h *Health) Shutdown() { h.shut.Do(func() { close(h.closing) }) }

// Close stops following the gates (and ends the Watch streams), for a
// Health thrown away while the lifecycle lives on.
func (h *Health) Close() {
	h.Shutdown()
	for _, c := range h.cancels {
		c()
	}
}

var responses = map[healthpb.HealthCheckResponse_ServingStatus]*healthpb.HealthCheckResponse{}

func init() {
	for st := range healthpb.HealthCheckResponse_ServingStatus_name {
		s := healthpb.HealthCheckResponse_ServingStatus(st)
		responses[s] = &healthpb.HealthCheckResponse{Status: s}
	}
}

// response returns the shared, never modified response for st.
func response(st healthpb.HealthCheckResponse_ServingStatus) *healthpb.HealthCheckResponse {
	return responses[st]
}

// view is one gate's serving status, rendered when the gate changes (New
// subscribes serving to it) and read with one atomic load.
type view struct {
	gate   probes.Gate
	status versioned.Cache[healthpb.HealthCheckResponse_ServingStatus]
}

// serving returns the gate's present status, rendering it first if the gate
// has changed since (a change whose notification is still on its way).
func (v *view) serving() healthpb.HealthCheckResponse_ServingStatus {
	if st, ok := v.status.Load(v.gate.Version()); ok {
		return st
	}
	return v.status.Update(v.gate.Version, func() healthpb.HealthCheckResponse_ServingStatus {
		if rep := v.gate.Report(); rep.Status() == probes.Fail {
			return healthpb.HealthCheckResponse_NOT_SERVING
		}
		return healthpb.HealthCheckResponse_SERVING
	})
}
