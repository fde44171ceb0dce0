// Package app assembles a whole service's probes from one Config: the
// lifecycle and its three gates, the probe listener with the probes, the
// status page and /history, the admin socket, HAProxy's agent and systemd's
// notifications, under one identity, one read policy and one logger, and
// the graceful shutdown that ties them together.
//
// The zero Config is the recommended layout: the application on :8080, the
// probes on their own listener on :8081, a fixed 5 s drain and a 15 s
// shutdown timeout. Everything New builds stays reachable on the App (the
// gates, the page, the probe mux, the server), and every package it uses
// still works alone: the assembly only saves the wiring.
//
// The deployment files follow from the assembled service: Deployment
// writes its Kubernetes Deployment, whose grace period and stop annotation
// count every hook the parts added, and SystemdTimeouts its systemd unit's
// timeouts, both from DeploySpec.
//
// The assembly needs only the standard library and the core. Metrics
// (Prometheus or OpenTelemetry), gRPC health and the checkers of client
// libraries come as Parts that their own packages supply, so that a service
// still never compiles what it does not use:
//
//	a, err := app.New(app.Config{
//		Name:    "shop",
//		Handler: router,
//		Parts: []app.Part{
//			metrics.Part(prometheus.NewRegistry()),
//			app.Task("cache", cache.Load),
//			app.Check("postgres", pgx, probes.ComponentType("datastore")),
//		},
//	})
//	if err != nil {
//		log.Fatal(err)
//	}
//	log.Fatal(a.Run(context.Background()))
package app

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/probekit/probes"
	"github.com/probekit/probes/admin"
	"github.com/probekit/probes/deployspec"
	"github.com/probekit/probes/haproxy"
	"github.com/probekit/probes/history"
	"github.com/probekit/probes/internal/logs"
	"github.com/probekit/probes/liveness"
	"github.com/probekit/probes/readiness"
	"github.com/probekit/probes/server"
	"github.com/probekit/probes/startup"
	"github.com/probekit/probes/systemd"
)

// Defaults of the Config.
const (
	DefaultAddr      = ":8080"
	DefaultProbeAddr = ":8081"
)

// NoDrain, as Config.Drain, turns the drain off: the listener closes as
// soon as the stop begins. For tests, and for a service no balancer sends
// to.
const NoDrain time.Duration = -1

// NoTerminationLog, as Config.TerminationLog, writes no termination
// message anywhere.
const NoTerminationLog = "-"

// Config is a whole service's probes. Every field's zero value is its
// default, and the zero Config is the recommended layout.
type Config struct {
	// Name names the service on every surface (probes.Identity.Service):
	// serviceId in health+json, the page's title, every log line, the
	// metrics' info series. Default: the executable's base name.
	Name string
	// Release is the running build's version (probes.Identity.Release,
	// releaseId). Default: the main module's version from the build
	// information, or its VCS revision; empty when neither is known.
	Release string
	// Instance names this process among the service's instances.
	// Default: POD_NAME, else the host name (probes.Identify).
	Instance string
	// APIVersion is the public version of the service's API ("version" in
	// health+json), such as "1". Default: none.
	APIVersion string
	// Description describes the service in health+json bodies. Default:
	// none.
	Description string

	// Handler serves the application on Addr. Default: nil, a service with
	// no HTTP API of its own (a worker, a gRPC server given as a Part).
	Handler http.Handler
	// Addr is where Handler is served. Run binds it. Default DefaultAddr
	// (":8080").
	Addr string
	// Listener, when set, is bound already and used instead of Addr.
	Listener net.Listener
	// ProbeAddr is the probe listener's address: the probes (/startupz,
	// /livez, /readyz, and /healthz with the page for browsers), /history,
	// and what the parts mount (/metrics). Run binds it. Default
	// DefaultProbeAddr (":8081").
	ProbeAddr string
	// ProbeListener, when set, is bound already and used instead of
	// ProbeAddr.
	ProbeListener net.Listener
	// ServeWhileWarming serves Handler during the warm-up too. Default
	// false: until the warm-up has finished, Handler's requests get 503
	// with Retry-After (server.WarmupGuard), so that nothing is served
	// from a half-loaded state; the probes, the page and /metrics answer
	// throughout.
	ServeWhileWarming bool
	// ProbesOnAddr serves the probe listener's routes on Addr instead,
	// ahead of Handler: a request whose path the probes serve gets the
	// probes, any other Handler. Default false: a listener of their own,
	// so that load on the application cannot queue the probes.
	ProbesOnAddr bool

	// WarmupDeadline is how long warm-up may take before the service goes
	// Broken (startup.Deadline). Default startup.DefaultDeadline.
	WarmupDeadline time.Duration
	// Drain is how long the service keeps serving once readiness fails on
	// shutdown (server.DrainDelay); with DrainQuiet or DrainProbes, the
	// drain's maximum. Default server.DefaultDrainDelay (5s); NoDrain for
	// none.
	Drain time.Duration
	// DrainQuiet ends the drain once the application has seen no request
	// for this long, after DrainMin (server.DrainUntilQuiet). Default 0:
	// none.
	DrainQuiet time.Duration
	// DrainMin is the least a quiet drain lasts: the balancer's detection
	// time (deployspec.Balancer.Detection). Default 0.
	DrainMin time.Duration
	// DrainProbes ends the drain once /readyz has answered fail this many
	// times (server.DrainUntilProbed). Default 0: none. Not with DrainQuiet.
	DrainProbes int
	// ShutdownTimeout bounds the requests in flight after the drain
	// (server.ShutdownTimeout). Default server.DefaultShutdownTimeout (15s).
	ShutdownTimeout time.Duration

	// TerminationLog is the file the termination message goes to: why the
	// service stopped, then its last transitions, where Kubernetes shows
	// them (server.TerminationLog). Give the container's
	// terminationMessagePath when it is not the default. Default: the
	// library's, server.DefaultTerminationLog ("/dev/termination-log")
	// when it exists and can be written, nothing elsewhere;
	// NoTerminationLog ("-") for none.
	TerminationLog string
	// StateDir is a directory where the history keeps its files
	// (history.StateDir), so that the next instance of the service there
	// lists this one: when it ran, how it ended and why, on /history, the
	// page, the deep view, probectl status and the fleet view. In
	// Kubernetes, an emptyDir volume: it outlives the container's
	// restarts, and Deployment mounts one there. Default: none, the
	// history lives in memory only.
	StateDir string

	// Readers decides which HTTP readers see reasons (probes.Readers), on
	// every surface. Default: none; the admin socket's peers are authorised
	// by their uid.
	Readers func(*http.Request) bool

	// AdminSocket is the path of a Unix socket for probectl (status,
	// cordon, uncordon), open to this uid and root. Run binds it. Default:
	// none.
	AdminSocket string
	// AdminUIDs are more Unix users let in on the admin socket, besides the
	// service's own uid and root (admin.AllowUIDs); the socket's file mode
	// must let them connect too. Default: none.
	AdminUIDs []uint32
	// AgentAddr is where HAProxy's agent check is answered (package
	// haproxy). Run binds it. Default: none.
	AgentAddr string
	// Capacity are the shedders whose spare capacity weighs the agent's
	// answer (haproxy.Capacity). Default: none.
	Capacity []*server.Shedder

	// Logger or Slog receives the library's lines, each with the service's
	// identity; give at most one. Default: no logs.
	Logger *zap.Logger
	Slog   *slog.Logger

	// Parts are added in order, after the gates, the probe routes and the
	// page, before the server: metrics.Part, grpchealth.Part, Task,
	// Worker, Check, and any of the service's own.
	Parts []Part
}

// App is an assembled service. Its fields are what New built, for the
// service that needs one more knob.
type App struct {
	// Lifecycle is the state machine every surface reads.
	Lifecycle *probes.Lifecycle
	// Startup, Liveness and Readiness are the gates.
	Startup   *startup.Gate
	Liveness  *liveness.Gate
	Readiness *readiness.Gate
	// History records what happened; Page shows it to browsers on
	// /healthz.
	History *history.History
	Page    *history.Page
	// Probes is the probe listener's mux (Addr's, with ProbesOnAddr), with
	// the probes, the deep view and /history mounted.
	Probes *http.ServeMux
	// Handlers are the probe handlers Register mounted.
	Handlers server.Handlers
	// Info is what every health+json body says of the service.
	Info server.Info
	// Log is the library's logger, with the service's identity.
	Log *zap.Logger
	// GRPCAddr is where gRPC health answers, as the part that serves it
	// (grpchealth.Part) sets it; "" for none.
	GRPCAddr string
	// MetricsPath is where metrics are served on the probe listener, as the
	// part that serves them (metrics.Part) sets it; "" for none. Deployment
	// writes Prometheus's scrape annotations for it.
	MetricsPath string

	cfg   Config
	base  *zap.Logger // the logger given, without the identity
	opts  []server.Option
	built []func(*server.Server) error
	srv   *server.Server
}

// Part is a piece of a service that New adds to the App: its checks, its
// routes on the probe listener, its servers, its hooks. Packages that need
// a client library (metrics, grpchealth, otelprobes) supply their parts, so
// that the assembly compiles none of them.
type Part interface {
	// Attach adds the part to a. New calls it once, in the order of
	// Config.Parts; an error fails New, naming the part.
	Attach(a *App) error
}

// PartFunc is a Part written as a function.
type PartFunc func(a *App) error

// Attach calls f(a).
func (f PartFunc) Attach(a *App) error { return f(a) }

// NewPart returns a Part named name (such as `pgxcheck.Part("postgres")`)
// that attach adds: the name is what New's errors call it.
func NewPart(name string, attach func(a *App) error) Part { return named{name, attach} }

type named struct {
	name   string
	attach func(*App) error
}

func (n named) Attach(a *App) error { return n.attach(a) }
func (n named) String() string      { return n.name }

// New assembles the service cfg describes. Nothing is bound and nothing
// runs until Run. It fails with every error of cfg at once, each naming
// its field, or with the first part that fails, naming it.
func New(cfg Config) (*App, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	var id probes.Identity
	id.Service = cmp.Or(cfg.Name, filepath.Base(os.Args[0]))
	id.Release = cmp.Or(cfg.Release, buildRelease())
	id.Instance = cfg.Instance
	lcOpts := []probes.LifecycleOption{probes.Identify(id)}
	if cfg.Readers != nil {
		lcOpts = append(lcOpts, probes.Readers(cfg.Readers))
	}
	a := &App{Lifecycle: probes.NewLifecycle(lcOpts...), cfg: cfg}
	lc := a.Lifecycle
	a.base = zap.NewNop()
	switch {
	case cfg.Logger != nil:
		a.base = cfg.Logger
	case cfg.Slog != nil:
		a.base = logs.FromSlog(cfg.Slog)
	}
	// The server and admin name the identity on their lines themselves.
	a.Log = logs.Identified(a.base, lc.Identity())
	a.Info = server.Info{Version: cfg.APIVersion, ServiceID: lc.Identity().Service, ReleaseID: lc.Identity().Release, Description: cfg.Description}

	var err error
	if a.Startup, err = startup.New(lc, startup.Deadline(cmp.Or(cfg.WarmupDeadline, startup.DefaultDeadline))); err != nil {
		return nil, fmt.Errorf("app: Config.WarmupDeadline: %w", err)
	}
	if a.Liveness, err = liveness.New(lc); err != nil {
		return nil, fmt.Errorf("app: %w", err)
	}
	if a.Readiness, err = readiness.New(lc); err != nil {
		return nil, fmt.Errorf("app: %w", err)
	}
	var histOpts []history.Option
	if cfg.StateDir != "" {
		histOpts = append(histOpts, history.StateDir(cfg.StateDir))
	}
	if a.History, err = history.New(lc, histOpts...); err != nil {
		if cfg.StateDir != "" {
			return nil, fmt.Errorf("app: Config.StateDir: %w", err)
		}
		return nil, fmt.Errorf("app: %w", err)
	}
	if a.Page, err = history.NewPage(lc, a.History); err != nil {
		return nil, fmt.Errorf("app: %w", err)
	}
	a.Probes = http.NewServeMux()
	if a.Handlers, err = server.Register(a.Probes, lc, server.Service(a.Info), server.Browsers(a.Page)); err != nil {
		return nil, fmt.Errorf("app: %w", err)
	}
	a.Monitor("/history", a.History.Handler())

	if err := a.operators(); err != nil {
		return nil, err
	}
	for i, p := range cfg.Parts {
		if p == nil {
			return nil, fmt.Errorf("app: Config.Parts[%d] is nil", i)
		}
		if err := p.Attach(a); err != nil {
			what := fmt.Sprintf("%T", p)
			if n, ok := p.(fmt.Stringer); ok {
				what = n.String()
			}
			return nil, fmt.Errorf("app: Config.Parts[%d] (%s): %w", i, what, err)
		}
	}
	// systemd last: it reads the gates as they are when it is built.
	if _, err := systemd.New(lc); err != nil {
		return nil, fmt.Errorf("app: systemd: %w", err)
	}
	if a.srv, err = a.server(); err != nil {
		return nil, err
	}
	for _, fn := range a.built {
		if err := fn(a.srv); err != nil {
			return nil, fmt.Errorf("app: %w", err)
		}
	}
	return a, nil
}

// validate reports every field of c that no service can have, each by
// name.
func (c *Config) validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("app: Config.%s: %s", field, fmt.Sprintf(format, args...)))
	}
	for _, d := range []struct {
		field string
		v     time.Duration
	}{{"WarmupDeadline", c.WarmupDeadline}, {"Drain", max(c.Drain, 0)}, {"DrainQuiet", c.DrainQuiet}, {"DrainMin", c.DrainMin}, {"ShutdownTimeout", c.ShutdownTimeout}} {
		if d.v < 0 {
			bad(d.field, "%s is negative", d.v)
		}
	}
	if c.Drain < 0 && c.Drain != NoDrain {
		bad("Drain", "%s is negative; NoDrain turns the drain off", c.Drain)
	}
	if c.Drain == NoDrain && (c.DrainQuiet > 0 || c.DrainProbes > 0) {
		bad("Drain", "NoDrain with DrainQuiet or DrainProbes, which end a drain")
	}
	if c.DrainProbes < 0 {
		bad("DrainProbes", "%d is negative", c.DrainProbes)
	}
	if c.DrainQuiet > 0 && c.DrainProbes > 0 {
		bad("DrainQuiet", "and DrainProbes both end the drain; give one")
	}
	if c.DrainMin > 0 && c.DrainQuiet == 0 {
		bad("DrainMin", "%s without DrainQuiet, which it is the minimum of", c.DrainMin)
	}
	if c.Logger != nil && c.Slog != nil {
		bad("Slog", "and Logger both set; give one")
	}
	if c.Listener != nil && c.Addr != "" {
		bad("Addr", "%q and Listener both set; give one", c.Addr)
	}
	if c.ProbeListener != nil && c.ProbeAddr != "" {
		bad("ProbeAddr", "%q and ProbeListener both set; give one", c.ProbeAddr)
	}
	if c.ProbesOnAddr && (c.ProbeListener != nil || c.ProbeAddr != "") {
		bad("ProbesOnAddr", "with a ProbeAddr or ProbeListener of their own; give one")
	}
	if c.Addr != "" && c.Addr == c.ProbeAddr {
		bad("ProbeAddr", "%q is Addr too; to serve the probes on Addr, set ProbesOnAddr", c.ProbeAddr)
	}
	if c.ProbesOnAddr && c.Handler == nil {
		bad("ProbesOnAddr", "without a Handler: the probes need a listener; leave ProbesOnAddr false")
	}
	for _, a := range []struct{ field, v string }{{"Addr", c.Addr}, {"ProbeAddr", c.ProbeAddr}, {"AgentAddr", c.AgentAddr}} {
		if a.v == "" {
			continue
		}
		if _, _, err := net.SplitHostPort(a.v); err != nil {
			bad(a.field, "%q is not host:port: %v", a.v, err)
		}
	}
	for _, p := range []struct{ field, v string }{{"AdminSocket", c.AdminSocket}, {"TerminationLog", c.TerminationLog}} {
		if strings.ContainsRune(p.v, 0) {
			bad(p.field, "%q holds a NUL byte", p.v)
		}
	}
	return errors.Join(errs...)
}

// buildRelease is the main module's version, or its VCS revision when
// built from a work tree; "" when neither is known.
func buildRelease() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return ""
	}
	if v := bi.Main.Version; v != "" && v != "(devel)" {
		return v
	}
	var rev, dirty string
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				dirty = "+dirty"
			}
		}
	}
	if len(rev) > 12 {
		rev = rev[:12]
	}
	if rev == "" {
		return ""
	}
	return rev + dirty
}

// operators adds the admin socket and HAProxy's agent, when asked.
func (a *App) operators() error {
	if path := a.cfg.AdminSocket; path != "" {
		opts := []admin.Option{admin.Logger(a.base), admin.Service(a.Info)}
		if len(a.cfg.AdminUIDs) > 0 {
			opts = append(opts, admin.AllowUIDs(a.cfg.AdminUIDs...))
		}
		h, err := admin.New(a.Lifecycle, opts...)
		if err != nil {
			return fmt.Errorf("app: Config.AdminSocket: %w", err)
		}
		a.Serve("admin", func() (server.Peer, error) {
			ln, err := admin.ListenUnix(path)
			if err != nil {
				return nil, err
			}
			peer, err := h.Serving(ln)
			if err != nil {
				ln.Close()
				return nil, err
			}
			return peer, nil
		})
	}
	if addr := a.cfg.AgentAddr; addr != "" {
		var opts []haproxy.Option
		if len(a.cfg.Capacity) > 0 {
			opts = append(opts, haproxy.Capacity(a.cfg.Capacity...))
		}
		agent, err := haproxy.New(a.Lifecycle, opts...)
		if err != nil {
			return fmt.Errorf("app: Config.Capacity: %w", err)
		}
		a.Serve("haproxy agent", func() (server.Peer, error) {
			ln, err := net.Listen("tcp", addr)
			if err != nil {
				return nil, err
			}
			peer, err := agent.Serving(ln)
			if err != nil {
				ln.Close()
				return nil, err
			}
			return peer, nil
		})
	}
	return nil
}

// server builds the server with the drain, the listeners, the logger and
// what the parts added.
func (a *App) server() (*server.Server, error) {
	c := &a.cfg
	drain := server.DrainDelay(max(cmp.Or(c.Drain, server.DefaultDrainDelay), 0))
	switch {
	case c.DrainQuiet > 0:
		drain = server.DrainUntilQuiet(c.DrainQuiet, c.DrainMin, cmp.Or(c.Drain, server.DefaultDrainDelay))
	case c.DrainProbes > 0:
		drain = server.DrainUntilProbed(a.Handlers.Readiness, c.DrainProbes, cmp.Or(c.Drain, server.DefaultDrainDelay))
	}
	opts := []server.Option{drain, server.ShutdownTimeout(cmp.Or(c.ShutdownTimeout, server.DefaultShutdownTimeout)), server.Logger(a.base)}
	switch c.TerminationLog {
	case "": // the library's default
	case NoTerminationLog:
		opts = append(opts, server.TerminationLog(""))
	default:
		opts = append(opts, server.TerminationLog(c.TerminationLog))
	}
	switch {
	case c.ProbesOnAddr:
	case c.ProbeListener != nil:
		opts = append(opts, server.ProbeListener(c.ProbeListener, a.Probes))
	default:
		opts = append(opts, server.ProbeAddr(cmp.Or(c.ProbeAddr, DefaultProbeAddr), a.Probes))
	}
	var hs *http.Server
	if c.Handler != nil {
		h := c.Handler
		if !c.ServeWhileWarming {
			h = server.WarmupGuard(a.Lifecycle, time.Second)(h)
		}
		if c.ProbesOnAddr {
			h = probesFirst(a.Probes, h)
		}
		hs = &http.Server{Addr: cmp.Or(c.Addr, DefaultAddr), Handler: h}
		if c.Listener != nil {
			opts = append(opts, server.Listener(c.Listener))
		}
	}
	srv, err := server.New(hs, a.Lifecycle, append(opts, a.opts...)...)
	if err != nil {
		return nil, fmt.Errorf("app: %w", err)
	}
	return srv, nil
}

// probesFirst serves a request whose path probes has a route for with
// probes, any other with h.
func probesFirst(probes *http.ServeMux, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, pattern := probes.Handler(r); pattern != "" {
			probes.ServeHTTP(w, r)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// Monitor mounts h on the probe listener at pattern (an http.ServeMux
// pattern, such as "/metrics"), marked as monitoring (server.Monitoring):
// it never holds a quiet drain.
func (a *App) Monitor(pattern string, h http.Handler) {
	a.Probes.Handle(pattern, server.Monitoring(h))
}

// Serve makes Run serve a peer beside the HTTP server (server.Also),
// bound when Run begins (server.BindOnRun): bind listens and returns the
// peer. For parts such as gRPC health.
func (a *App) Serve(name string, bind func() (server.Peer, error)) {
	a.opts = append(a.opts, server.Also(name, server.BindOnRun(bind)))
}

// Option adds server options to the server New builds (server.OnDrain,
// server.AfterClose, server.MaxConns, ...), for parts and for knobs the
// Config does not have.
func (a *App) Option(opts ...server.Option) { a.opts = append(a.opts, opts...) }

// Built calls fn with the server once New has built it, for parts that
// read it (metrics.Metrics.Server); an error fails New.
func (a *App) Built(fn func(*server.Server) error) { a.built = append(a.built, fn) }

// Server is the server New built: its Timings and Stats.
func (a *App) Server() *server.Server { return a.srv }

// DeploySpec is what package deployspec computes the probe specs, the
// grace period and the systemd unit's timeouts from, as this service
// really is: its warm-up deadline, the stop its server will really take
// (the drain, the shutdown timeout, every hook the parts added), where its
// probes answer and where gRPC health does. Give it to
// deployspec.Deployment, deployspec.Compute or probelint's settings, so
// that the manifest and the service cannot disagree.
func (a *App) DeploySpec() deployspec.Service {
	probeAddr := cmp.Or(a.cfg.ProbeAddr, DefaultProbeAddr)
	switch {
	case a.cfg.ProbesOnAddr:
		probeAddr = a.appAddr()
	case a.cfg.ProbeListener != nil:
		probeAddr = a.cfg.ProbeListener.Addr().String()
	}
	return deployspec.Service{
		WarmupDeadline: a.Startup.Deadline(),
		Stop:           a.srv.Timings(),
		ProbeAddr:      probeAddr,
		GRPCAddr:       a.GRPCAddr,
	}
}

// appAddr is the application listener's address: the Listener's, or Addr.
func (a *App) appAddr() string {
	if a.cfg.Listener != nil {
		return a.cfg.Listener.Addr().String()
	}
	return cmp.Or(a.cfg.Addr, DefaultAddr)
}

// Deployment writes a Kubernetes Deployment of this service as
// deployspec.Deployment.YAML does, with d.Service this service's
// DeploySpec (but for d.Service's Balancer and GRPCServices, which the App
// does not know, kept as d gives them), when d.AppAddr is empty the
// application listener's address (Config.Addr, DefaultAddr when unset),
// and when d.StateDir is empty Config.StateDir, an emptyDir mounted there.
// Its grace period covers the stop the service will really take, every
// hook the parts added included, and its pod template carries that stop
// (deployspec.StopAnnotation) for probelint to check the manifest against
// as it is edited.
func (a *App) Deployment(d deployspec.Deployment) (string, error) {
	s := a.DeploySpec()
	s.Balancer, s.GRPCServices = d.Service.Balancer, d.Service.GRPCServices
	d.Service = s
	if d.AppAddr == "" {
		d.AppAddr = a.appAddr()
	}
	if d.MetricsPath == "" {
		d.MetricsPath = a.MetricsPath
	}
	if d.StateDir == "" {
		d.StateDir = a.cfg.StateDir
	}
	return d.YAML()
}

// SystemdTimeouts returns the [Service] timeouts of a Type=notify systemd
// unit for this service (deployspec.Plan.Systemd): TimeoutStartSec,
// TimeoutStopSec and WatchdogSec computed from DeploySpec, each under a
// comment that says why, so that systemd waits out the real stop, hooks
// included, before it kills. It fails as deployspec.Compute does.
func (a *App) SystemdTimeouts() (string, error) {
	p, err := deployspec.Compute(a.DeploySpec(), false)
	if err != nil {
		return "", err
	}
	return p.Systemd(), nil
}

// Run binds every listener (Addr, ProbeAddr, AdminSocket, AgentAddr, and
// the parts'), then serves and runs the lifecycle until ctx is done, a
// signal (SIGTERM, SIGINT) arrives or the lifecycle breaks, and shuts down
// gracefully: readiness fails at once, the drain, the shutdown, the hooks
// (server.Server.Run says how). A listener that cannot be bound fails Run
// at once, naming it, with nothing served. Run may be called once.
func (a *App) Run(ctx context.Context) error {
	defer a.History.Close()
	defer a.Page.Close()
	err := a.srv.Run(ctx)
	var bind *server.BindError
	if !errors.As(err, &bind) {
		return err
	}
	field := map[string]string{"listener": "Addr", "probe listener": "ProbeAddr", "admin": "AdminSocket", "haproxy agent": "AgentAddr"}[bind.Listener]
	if field == "" {
		return fmt.Errorf("app: %s: %w", bind.Listener, bind.Err) // a part's
	}
	if field == "AdminSocket" && errors.Is(bind.Err, fs.ErrNotExist) {
		return fmt.Errorf("app: Config.AdminSocket %q: its directory does not exist; create it first: %w", a.cfg.AdminSocket, bind.Err)
	}
	return fmt.Errorf("app: Config.%s: %w", field, bind.Err)
}
