package server

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/probekit/probes"
	"github.com/probekit/probes/internal/opt"
)

var errNilRegister = errors.New("server: Register needs a Mux and a *probes.Lifecycle")

// Mux is the one method of a router that Register needs. *http.ServeMux and
// chi.Router have it.
type Mux interface {
	Handle(pattern string, h http.Handler)
}

// Handlers are the handlers Register mounted. Health is the deep view (nil
// when DeepView leaves it out).
type Handlers struct {
	// Startup, Liveness and Readiness serve the gates at StartupPath,
	// LivenessPath and ReadinessPath; Readiness is the handler to give
	// DrainUntilProbed.
	Startup, Liveness, Readiness *Handler
	// Health serves the deep view (HealthPath, or DeepView's path).
	Health *Handler
}

// Paths of the gates and of the deep view, as Register mounts them.
const (
	StartupPath   = "/startupz"
	LivenessPath  = "/livez"
	ReadinessPath = "/readyz"
	HealthPath    = "/healthz"
)

// Path returns the path Register mounts gate k at, such as "/readyz".
func Path(k probes.Kind) string {
	switch k {
	case probes.Startup:
		return StartupPath
	case probes.Liveness:
		return LivenessPath
	case probes.Health:
		return HealthPath
	}
	return ReadinessPath
}

// Mount mounts the handler of g at path and each of g's checks and tasks
// below it (path + "/{check}"), and returns the handler. Register uses it
// for the gates; use it for a named group:
//
//	db, err := probes.NewGroup(lc, "db", "postgres", "replica")
//	...
//	_, err = server.Mount(r, "/health/db", db)
func Mount(m Mux, path string, g probes.Gate, opts ...HandlerOption) (*Handler, error) {
	cfg, err := handlerOptions(opts)
	if err != nil {
		return nil, err
	}
	return mount(m, path, g, cfg)
}

func mount(m Mux, path string, g probes.Gate, cfg handlerConfig) (*Handler, error) {
	if m == nil {
		return nil, errors.New("server: Mount needs a Mux")
	}
	if !strings.HasPrefix(path, "/") || strings.HasSuffix(path, "/") || strings.ContainsAny(path, "{}") {
		return nil, fmt.Errorf("server: Mount(%q): the path must start with '/', not end with one, and hold no wildcard", path)
	}
	h, err := newHandler(g, cfg)
	if err != nil {
		return nil, err
	}
	m.Handle(path, h)
	if g.Kind() == probes.Health {
		if group, ok := g.(*probes.Group); !ok || group.Named() {
			m.Handle(path+"/{check}", h)
		} else {
			// Checks go by their canonical names here: /healthz/readiness/postgres.
			m.Handle(path+"/{gate}/{check}", h)
		}
		return h, nil
	}
	m.Handle(path+"/{check}", h)
	return h, nil
}

// Register mounts lc's gates on m: startup at /startupz, liveness at
// /livez, readiness at /readyz, the deep view over every check of every
// gate at /healthz (see probes.Group), and each check or warm-up task below
// its gate (/readyz/postgres) and in the deep view by its canonical name
// (/healthz/readiness/postgres). The order things are built in does not
// matter: each path answers for its gate from the moment the gate is
// built, and by the phase alone before (probes.Lifecycle.View); a check
// added at any time is on every path. DeepView moves the deep view or
// leaves it out. What it mounts is what lc.Run (and so Server.Run) runs: a
// gate cannot be served without its checks running.
// Patterns use the "{name}" wildcard syntax that both *http.ServeMux (Go 1.22
// and later) and chi understand; a chi.Router is a Mux as it is. The handlers it returns serve
// DrainUntilProbed.
func Register(m Mux, lc *probes.Lifecycle, opts ...HandlerOption) (Handlers, error) {
	var hs Handlers
	if m == nil || lc == nil {
		return hs, errNilRegister
	}
	var cfg handlerConfig
	if err := opt.Apply("server", &cfg, opts); err != nil {
		return hs, err
	}
	deepPath := HealthPath
	if cfg.deepPath != nil {
		deepPath = *cfg.deepPath
	}
	gates := []probes.Gate{lc.View(probes.Startup), lc.View(probes.Liveness), lc.View(probes.Readiness)}
	if deepPath != "" {
		deep, err := probes.NewGroup(lc, HealthPath[1:])
		if err != nil {
			return hs, fmt.Errorf("server: the deep view: %w", err)
		}
		gates = append(gates, deep)
	}
	for _, g := range gates {
		path := Path(g.Kind())
		if g.Kind() == probes.Health {
			path = deepPath
		}
		one := cfg
		one.deepPath = nil
		if g.Kind() != probes.Health {
			one.browsers = nil // the page is the deep view's
		}
		h, err := mount(m, path, g, one)
		if err != nil {
			return Handlers{}, err
		}
		switch g.Kind() {
		case probes.Startup:
			hs.Startup = h
		case probes.Liveness:
			hs.Liveness = h
		case probes.Readiness:
			hs.Readiness = h
		case probes.Health:
			hs.Health = h
		}
	}
	return hs, nil
}
