package server

import (
	"errors"
	"net/http"

	"github.com/probekit/probes"
)

var errNilRegister = errors.New("server: Register needs a Mux and a *probes.Lifecycle")

// Mux is the one method of a router that Register needs. *http.ServeMux and
// chi.Router have it.
type Mux interface {
	Handle(pattern string, h http.Handler)
}

// Handlers are the handlers Register mounted; nil for a gate the lifecycle
// does not have.
type Handlers struct {
	Startup, Liveness, Readiness *Handler
}

// Paths of the gates, as Register mounts them.
const (
	StartupPath   = "/startupz"
	LivenessPath  = "/livez"
	ReadinessPath = "/readyz"
)

// Path returns the path Register mounts gate k at, such as "/readyz".
func Path(k probes.Kind) string {
	switch k {
	case probes.Startup:
		return StartupPath
	case probes.Liveness:
		return LivenessPath
	}
	return ReadinessPath
}

// Register mounts every gate built on lc on m: startup at /startupz,
// liveness at /livez, readiness at /readyz, and each check or warm-up task
// below its gate (/readyz/postgres). What it mounts is what lc.Run (and so
// Server.Run) runs: a gate cannot be served without its checks running.
// Patterns use the "{name}" wildcard syntax that both *http.ServeMux (Go 1.22
// and later) and chi understand; a chi.Router is a Mux as it is. The handlers it returns serve
// DrainUntilProbed.
func Register(m Mux, lc *probes.Lifecycle, opts ...HandlerOption) (Handlers, error) {
	var hs Handlers
	if m == nil || lc == nil {
		return hs, errNilRegister
	}
	for _, g := range lc.Gates() {
		h, err := NewHandler(g, opts...)
		if err != nil {
			return Handlers{}, err
		}
		path := Path(g.Kind())
		m.Handle(path, h)
		m.Handle(path+"/{check}", h)
		switch g.Kind() {
		case probes.Startup:
			hs.Startup = h
		case probes.Liveness:
			hs.Liveness = h
		case probes.Readiness:
			hs.Readiness = h
		}
	}
	return hs, nil
}
