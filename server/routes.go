package server

import (
	"net/http"

	"github.com/go-chi/chi/v5"
)

// Mux is the one method of a router that Register needs. *http.ServeMux and
// chi.Router have it.
type Mux interface {
	Handle(pattern string, h http.Handler)
}

// Register mounts the gates on m: startup at /startupz, liveness at /livez,
// readiness at /readyz, and each check below its gate (/readyz/postgres). A
// nil gate is left out. Patterns use the "{name}" wildcard syntax that both
// *http.ServeMux (Go 1.22 and later) and chi understand.
func Register(m Mux, startup, liveness, readiness Gate, opts ...HandlerOption) {
	for _, e := range []struct {
		g    Gate
		path string
	}{{startup, "startupz"}, {liveness, "livez"}, {readiness, "readyz"}} {
		if e.g == nil {
			continue
		}
		h := NewHandler(e.g, e.path, opts...)
		m.Handle("/"+e.path, h)
		m.Handle("/"+e.path+"/{check}", h)
	}
}

// Routes returns a chi router serving the gates as Register mounts them, to
// be mounted on an application router: r.Mount("/", server.Routes(...)).
func Routes(startup, liveness, readiness Gate, opts ...HandlerOption) chi.Router {
	r := chi.NewRouter()
	Register(r, startup, liveness, readiness, opts...)
	return r
}
