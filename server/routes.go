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

// Handlers are the handlers Register mounted; nil for a gate left out.
type Handlers struct {
	Startup, Liveness, Readiness *Handler
}

// Register mounts the gates on m: startup at /startupz, liveness at /livez,
// readiness at /readyz, and each check below its gate (/readyz/postgres). A
// nil gate is left out. Patterns use the "{name}" wildcard syntax that both
// *http.ServeMux (Go 1.22 and later) and chi understand. The handlers it
// returns serve DrainUntilProbed.
func Register(m Mux, startup, liveness, readiness Gate, opts ...HandlerOption) Handlers {
	mount := func(g Gate, path string) *Handler {
		if g == nil {
			return nil
		}
		h := NewHandler(g, path, opts...)
		m.Handle("/"+path, h)
		m.Handle("/"+path+"/{check}", h)
		return h
	}
	return Handlers{
		Startup:   mount(startup, "startupz"),
		Liveness:  mount(liveness, "livez"),
		Readiness: mount(readiness, "readyz"),
	}
}

// Routes returns a chi router serving the gates as Register mounts them, to
// be mounted on an application router: r.Mount("/", server.Routes(...)).
func Routes(startup, liveness, readiness Gate, opts ...HandlerOption) chi.Router {
	r := chi.NewRouter()
	Register(r, startup, liveness, readiness, opts...)
	return r
}
