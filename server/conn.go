package server

import (
	"cmp"
	"errors"
	"fmt"
	"net"
	"net/http"
	"path"
	"strings"
	"time"

	"github.com/probekit/probes/internal/budget"
)

// Connection defaults New gives the application's *http.Server for every
// field the caller left at zero. The zero values of net/http leave a server
// open to clients that never finish a request or never leave: a body that
// never arrives holds its connection for ever, idle keep-alive connections
// pile up to the file-descriptor limit, and a megabyte of headers per
// connection adds up.
const (
	// DefaultReadHeaderTimeout bounds reading a request's headers.
	DefaultReadHeaderTimeout = 5 * time.Second
	// DefaultReadTimeout bounds reading a whole request, body included.
	// Services that accept slow uploads set their own.
	DefaultReadTimeout = 30 * time.Second
	// DefaultIdleTimeout closes keep-alive connections idle this long:
	// longer than the 60 s idle timeout common load balancers use, so that
	// the balancer, not the server, closes a connection it may be reusing.
	DefaultIdleTimeout = 75 * time.Second
	// DefaultMaxHeaderBytes bounds a request's headers (net/http's own
	// default is 1 MiB per connection).
	DefaultMaxHeaderBytes = 32 << 10
)

// Settings of the probe listener's server (ProbeListener). Probers send
// small requests and wait a second or so for the answer.
const (
	probeReadTimeout    = 5 * time.Second
	probeIdleTimeout    = 30 * time.Second
	probeMaxHeaderBytes = 8 << 10
	// DefaultProbeMaxConns bounds concurrent connections to the probe
	// listener. At the bound a new connection is still served: the one
	// unchanged longest is closed to make room for it.
	DefaultProbeMaxConns = 256
)

// MaxConns bounds concurrent connections to the application listener:
// beyond n, a new connection is accepted and closed at once, so that the
// process keeps file descriptors for its probe listener, its database pool
// and its files, and a client learns at once to go elsewhere. Default: the
// process's file-descriptor limit less an eighth of it (at least 128 kept
// back), on Unix; no bound elsewhere. 0 removes the bound.
func MaxConns(n int) Option {
	return func(c *config) error {
		if n < 0 {
			return fmt.Errorf("MaxConns(%d): must not be negative", n)
		}
		c.maxConns = n
		return nil
	}
}

// ProbeListener serves h, a handler with the probe endpoints (a mux that
// Register mounted), on its own listener ln, apart from application
// traffic: the recommended production layout. Application load cannot
// queue probes behind it, a flood of application connections cannot take
// the probe listener's, and load shedding (Shedder) never sees a probe.
//
// Run serves it with settings for probers (read timeout 5 s, idle timeout
// 30 s, 8 KiB of headers) from the start to the end: probes answer
// throughout the drain and are the last thing to close. It never refuses a
// connection: the kubelet opens one per probe, so a refused probe
// connection is a failed probe, and enough of them restart the pod. Beyond
// DefaultProbeMaxConns connections, each new one closes the connection
// that has gone longest without a request or an answer (idle keep-alive
// connections, headers or bodies sent byte by byte), so that whatever a
// client holds open, the next probe is answered.
func ProbeListener(ln net.Listener, h http.Handler) Option {
	return func(c *config) error {
		switch {
		case ln == nil:
			return errors.New("ProbeListener(nil, h): need a listener")
		case h == nil:
			return errors.New("ProbeListener(ln, nil): need a handler")
		}
		c.probeLn, c.probeHandler, c.probeAddr = ln, h, ""
		return nil
	}
}

// ProbeAddr is ProbeListener with a listener Run binds on addr (host:port)
// before it serves anything, rather than one bound already; a failure to
// bind fails Run at once. The last of ProbeListener and ProbeAddr wins.
func ProbeAddr(addr string, h http.Handler) Option {
	return func(c *config) error {
		switch {
		case addr == "":
			return errors.New("ProbeAddr(\"\", h): need an address")
		case h == nil:
			return fmt.Errorf("ProbeAddr(%q, nil): need a handler", addr)
		}
		c.probeLn, c.probeHandler, c.probeAddr = nil, h, addr
		return nil
	}
}

// secure fills the connection settings hs left at zero with the defaults.
func secure(hs *http.Server) {
	hs.ReadHeaderTimeout = cmp.Or(hs.ReadHeaderTimeout, DefaultReadHeaderTimeout)
	hs.ReadTimeout = cmp.Or(hs.ReadTimeout, DefaultReadTimeout)
	hs.IdleTimeout = cmp.Or(hs.IdleTimeout, DefaultIdleTimeout)
	hs.MaxHeaderBytes = cmp.Or(hs.MaxHeaderBytes, DefaultMaxHeaderBytes)
}

// defaultMaxConns is the default of MaxConns for a file-descriptor limit.
func defaultMaxConns(limit uint64) int {
	if limit == 0 || limit > 1<<24 {
		return 0 // unknown or unlimited
	}
	keep := max(limit/8, 128)
	if limit <= keep {
		return int(limit / 2)
	}
	return int(limit - keep)
}

// bounded returns ln for hs with its connections held in b (budget.Track),
// or ln as it is when b is nil (no bound).
func bounded(hs *http.Server, ln net.Listener, b *budget.Budget) net.Listener {
	if b == nil {
		return ln
	}
	return budget.Track(hs, ln, b, nil)
}

// canonical answers 404 for a path that is not in its clean form
// ("//readyz", "/./readyz"), which http.ServeMux would redirect: a prober
// such as the kubelet takes a 3xx for a pass, so the probe contract never
// answers one.
func canonical(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Only "//" and "/." (".", "..") can make a path unclean; a probe's
		// path has neither, so it pays two short scans, not a Clean.
		if p := r.URL.Path; (strings.Contains(p, "//") || strings.Contains(p, "/.")) && path.Clean(p) != strings.TrimSuffix(p, "/") {
			notFound.write(w, r)
			return
		}
		h.ServeHTTP(w, r)
	})
}
