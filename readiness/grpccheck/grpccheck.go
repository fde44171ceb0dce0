// Package grpccheck is a readiness check of a gRPC upstream: it calls the
// upstream's standard health service, grpc.health.v1.Health/Check, for a
// named service over the service's own connection. It lives in a package of
// its own so that a service that does not call gRPC upstreams never
// compiles it.
//
// SERVING passes. NOT_SERVING and SERVICE_UNKNOWN fail, with the status
// named; so does NotFound, which is how grpc-go's health server answers
// Check for a service it does not know. A server without the health service
// (Unimplemented) fails saying so, since it can never pass. A server that
// refuses the call with ResourceExhausted (a rate limiter, say) has
// answered and is alive: it warns (Exhausted makes it fail), as a Redis or
// SQL server at its client limit does in redischeck and sqlcheck. A
// server that does not answer fails: at once when the connection is
// refused (Unavailable), at the check's timeout when it accepts and says
// nothing.
// Failures name the connection's state when conn is a *grpc.ClientConn, so
// that "the server answered with a problem" reads apart from "the server
// did not answer". The response time is the call's latency.
//
// An upstream is usually shared by the fleet, the default of readiness
// checks:
//
//	conn, err := grpc.NewClient("dns:///billing:8443", grpc.WithTransportCredentials(creds))
//	...
//	billing, err := grpccheck.New(conn, "billing.v1.Billing")
//	...
//	err = ready.Add("billing", billing, probes.ComponentType("component"))
//
// How soon a restarted upstream is seen again depends on the connection's
// reconnect backoff (grpc.WithConnectParams), which the check does not
// change: it calls like the service's own calls do.
package grpccheck

import (
	"context"
	"errors"
	"fmt"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/probekit/probes"
	"github.com/probekit/probes/internal/opt"
)

// Option configures a Checker.
type Option func(*config) error

type config struct {
	callOpts  []grpc.CallOption
	exhausted probes.Status
}

// Exhausted sets what a Health/Check answered with ResourceExhausted
// reports: a server at one of its limits (a rate limiter, a concurrency
// or quota interceptor) refusing the call. probes.Warn (the default: the
// server answered, it is alive and busy, and failing readiness would move
// this instance's load onto its peers, which share the upstream) or
// probes.Fail. A server that does not answer fails either way. The same
// convention as redischeck's and sqlcheck's Exhausted.
func Exhausted(s probes.Status) Option {
	return func(c *config) error {
		if s != probes.Warn && s != probes.Fail {
			return fmt.Errorf("Exhausted(%s): use probes.Warn or probes.Fail", s)
		}
		c.exhausted = s
		return nil
	}
}

// CallOptions adds options to every Health/Check call, such as per-RPC
// credentials (grpc.PerRPCCredentials) or a header. Default none: a call
// that fails fast when the connection is down, instead of waiting for it
// until the timeout (grpc.WaitForReady(true) would wait).
func CallOptions(opts ...grpc.CallOption) Option {
	return func(c *config) error {
		for i, o := range opts {
			if o == nil {
				return fmt.Errorf("CallOptions: option %d is nil", i)
			}
		}
		c.callOpts = append(c.callOpts, opts...)
		return nil
	}
}

// Checker checks a gRPC upstream's health service. Create one with New.
type Checker struct {
	conn    grpc.ClientConnInterface
	client  healthpb.HealthClient
	service string
	cfg     config
}

var _ probes.Checker = (*Checker)(nil)

// New returns a Checker that asks the health service on conn about
// service; "" asks about the server as a whole, as the protocol defines
// it. It returns an error naming the option when an option is invalid, and
// when conn is nil. The Checker does not own conn: closing it is the
// caller's.
func New(conn grpc.ClientConnInterface, service string, opts ...Option) (*Checker, error) {
	if conn == nil {
		return nil, errors.New("grpccheck: New(nil): need a connection")
	}
	cfg := config{exhausted: probes.Warn}
	if err := opt.Apply("grpccheck", &cfg, opts); err != nil {
		return nil, err
	}
	return &Checker{conn: conn, client: healthpb.NewHealthClient(conn), service: service, cfg: cfg}, nil
}

// Check calls Health/Check and turns its answer into a verdict.
func (c *Checker) Check(ctx context.Context) error {
	res, err := c.client.Check(ctx, &healthpb.HealthCheckRequest{Service: c.service}, c.cfg.callOpts...)
	if err != nil {
		return c.callFailed(ctx, err)
	}
	switch st := res.GetStatus(); st {
	case healthpb.HealthCheckResponse_SERVING:
		return nil
	case healthpb.HealthCheckResponse_SERVICE_UNKNOWN:
		return fmt.Errorf("%s: SERVICE_UNKNOWN: the server does not know it", c.subject())
	default: // NOT_SERVING, UNKNOWN, and values of later versions
		return fmt.Errorf("%s: %s", c.subject(), st)
	}
}

// callFailed says why the call got no status: the server answered with an
// error, or it did not answer.
func (c *Checker) callFailed(ctx context.Context, err error) error {
	st := status.Convert(err)
	switch {
	case st.Code() == codes.Unimplemented:
		return fmt.Errorf("%s: the server has no grpc.health.v1 service: %w", c.subject(), err)
	case st.Code() == codes.NotFound:
		return fmt.Errorf("%s: SERVICE_UNKNOWN (NotFound): the server does not know it: %w", c.subject(), err)
	case st.Code() == codes.ResourceExhausted:
		// It answered, refusing the call: alive, at a limit.
		err = fmt.Errorf("%s: the server is at a limit (ResourceExhausted): %w", c.subject(), err)
		if c.cfg.exhausted == probes.Warn {
			return fmt.Errorf("%w: %w", err, probes.ErrWarn)
		}
		return err
	case ctx.Err() != nil || st.Code() == codes.DeadlineExceeded:
		return fmt.Errorf("%s: no answer before the timeout%s: %w", c.subject(), c.state(), err)
	case st.Code() == codes.Unavailable:
		return fmt.Errorf("%s: the server does not answer%s: %w", c.subject(), c.state(), err)
	}
	return fmt.Errorf("%s: Health/Check: %w", c.subject(), err)
}

// subject names what is checked.
func (c *Checker) subject() string {
	if c.service == "" {
		return `health of the server (service "")`
	}
	return fmt.Sprintf("health of service %q", c.service)
}

// state is the connection's state, ", connection TRANSIENT_FAILURE", for
// a *grpc.ClientConn.
func (c *Checker) state() string {
	if cc, ok := c.conn.(*grpc.ClientConn); ok {
		return ", connection " + cc.GetState().String()
	}
	return ""
}
