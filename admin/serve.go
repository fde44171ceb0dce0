package admin

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/probekit/probes/server"
)

// ListenUnix listens on a Unix socket at path, created with mode 0600
// (owner only; pass AllowUIDs to New and chmod it to let others in). A
// socket file left by a process that is gone is replaced; one that still
// answers is not, and neither is a file that is not a socket.
func ListenUnix(path string) (net.Listener, error) {
	if path == "" {
		return nil, errors.New("admin: ListenUnix(\"\"): need a path")
	}
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode().Type() != fs.ModeSocket {
			return nil, fmt.Errorf("admin: %s exists and is not a socket", path)
		}
		if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
			c.Close()
			return nil, fmt.Errorf("admin: %s is in use by another process", path)
		}
		if err := os.Remove(path); err != nil {
			return nil, fmt.Errorf("admin: removing the stale socket: %w", err)
		}
	}
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("admin: %w", err)
	}
	// Connecting needs write permission, which the usual umask (022)
	// denies others from the bind on; the chmod takes the group's too.
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("admin: %w", err)
	}
	ln.SetUnlinkOnClose(true)
	return ln, nil
}

// Serving returns a server.Peer that serves h on ln (ListenUnix's, or a
// TCP listener with an Authorize option), for server.Also: it serves
// through the drain, so an operator can still see and lift a cordon while
// the service shuts down, and stops with the HTTP server. Requests are
// bounded: headers within 5 s, the whole request within 10 s, at most 64
// connections at once.
func Serving(ln net.Listener, h *Handler) (server.Peer, error) {
	if ln == nil || h == nil {
		return nil, errors.New("admin: Serving needs a listener and a *Handler")
	}
	srv := &http.Server{
		Handler:           h,
		ConnContext:       ConnContext,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      10 * time.Second,
		IdleTimeout:       30 * time.Second,
		MaxHeaderBytes:    8 << 10,
		ErrorLog:          nil,
	}
	return &peer{srv: srv, ln: &limited{Listener: ln, slots: make(chan struct{}, maxConns), closed: make(chan struct{})}}, nil
}

const maxConns = 64

type peer struct {
	srv *http.Server
	ln  net.Listener
}

func (p *peer) Serve() error {
	if err := p.srv.Serve(p.ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

func (p *peer) Shutdown(ctx context.Context) error { return p.srv.Shutdown(ctx) }

func (p *peer) Close() error { return p.srv.Close() }

// limited bounds the connections open at once: Accept waits for a slot.
type limited struct {
	net.Listener
	slots  chan struct{}
	closed chan struct{}
	once   sync.Once
}

func (l *limited) Accept() (net.Conn, error) {
	select {
	case l.slots <- struct{}{}:
	case <-l.closed:
		return nil, net.ErrClosed
	}
	c, err := l.Listener.Accept()
	if err != nil {
		<-l.slots
		return nil, err
	}
	return &slotConn{Conn: c, free: func() { <-l.slots }}, nil
}

func (l *limited) Close() error {
	l.once.Do(func() { close(l.closed) })
	return l.Listener.Close()
}

// slotConn gives its slot back when it closes, once.
type slotConn struct {
	net.Conn
	free func()
	once sync.Once
}

func (c *slotConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.free)
	return err
}
