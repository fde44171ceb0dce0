package admin

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"syscall"
	"time"

	"go.uber.org/zap"

	"github.com/probekit/probes/internal/budget"
	"github.com/probekit/probes/server"
)

// maxSocketPath is the longest path a Unix socket address holds on Linux.
const maxSocketPath = 107

// ListenUnix listens on a Unix socket at path, created with mode 0600
// (owner only; pass AllowUIDs to New and chmod it to let others in). A
// socket file left by a process that is gone (connecting to it is refused)
// is replaced; one that still answers, or cannot be told, is not, and
// neither is a file that is not a socket. Closing the listener removes the
// socket file, unless another listener has replaced it meanwhile.
func ListenUnix(path string) (net.Listener, error) {
	switch {
	case path == "":
		return nil, errors.New("admin: ListenUnix(\"\"): need a path")
	case len(path) > maxSocketPath:
		return nil, fmt.Errorf("admin: socket path %q is %d bytes; a Unix socket's path holds at most %d", path, len(path), maxSocketPath)
	}
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode().Type() != fs.ModeSocket {
			return nil, fmt.Errorf("admin: %s exists and is not a socket", path)
		}
		c, err := net.DialTimeout("unix", path, time.Second)
		switch {
		case err == nil:
			c.Close()
			return nil, fmt.Errorf("admin: %s is in use by another process", path)
		case !errors.Is(err, syscall.ECONNREFUSED):
			// A full backlog (EAGAIN), say: someone is there.
			return nil, fmt.Errorf("admin: %s: cannot tell whether it is in use (%v); remove it if it is stale", path, err)
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
	ln.SetUnlinkOnClose(false) // ownListener removes it, if it is still ours
	fi, err := os.Lstat(path)
	if err != nil {
		ln.Close()
		return nil, fmt.Errorf("admin: %w", err)
	}
	return &ownListener{UnixListener: ln, path: path, file: fi}, nil
}

// ownListener removes its socket file on Close, unless the file is no
// longer the one it created (a newer instance's).
type ownListener struct {
	*net.UnixListener
	path string
	file fs.FileInfo
	once sync.Once
}

func (l *ownListener) Close() error {
	err := l.UnixListener.Close()
	l.once.Do(func() {
		if fi, serr := os.Lstat(l.path); serr == nil && os.SameFile(fi, l.file) {
			os.Remove(l.path)
		}
	})
	return err
}

// Serving returns a server.Peer that serves h on ln (ListenUnix's, or a
// TCP listener with an Authorize option), for server.Also: it serves
// through the drain, so an operator can still see and lift a cordon while
// the service shuts down, and stops with the HTTP server. Requests are
// bounded: headers within 5 s, the whole request within 10 s, at most 64
// connections of peers let in at once; a connection beyond them is
// answered 503 at once, and none is ever cut to make room. A Unix peer
// with a uid the handler does not let in is answered 403 as it connects,
// outside that bound.
func (h *Handler) Serving(ln net.Listener) (server.Peer, error) {
	if ln == nil {
		return nil, errors.New("admin: Serving(nil): need a listener")
	}
	srv := &http.Server{
		Handler:           h,
		ConnContext:       ConnContext,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      10 * time.Second,
		IdleTimeout:       30 * time.Second,
		MaxHeaderBytes:    8 << 10,
	}
	conns, err := budget.New(budget.Config{Max: maxConns}) // refusing: an operator is never cut
	if err != nil {
		return nil, fmt.Errorf("admin: %w", err)
	}
	refusing, err := budget.New(budget.Config{Max: maxRefusing})
	if err != nil {
		return nil, fmt.Errorf("admin: %w", err)
	}
	sc := &screened{Listener: ln, h: h, refusing: refusing}
	return &peer{srv: srv, ln: budget.Track(srv, sc, conns, sc.busy), sc: sc}, nil
}

// Connections of peers let in at once, and of refused peers being answered.
const (
	maxConns    = 64
	maxRefusing = 8
)

type peer struct {
	srv *http.Server
	ln  net.Listener
	sc  *screened
}

func (p *peer) Serve() error {
	if err := p.srv.Serve(p.ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

func (p *peer) Shutdown(ctx context.Context) error {
	err := p.srv.Shutdown(ctx)
	p.sc.answering.Wait()
	return err
}

func (p *peer) Close() error { return p.srv.Close() }

// screened answers refused Unix peers itself, before they can take one of
// the places of the admin budget, and answers those the budget refuses.
type screened struct {
	net.Listener
	h         *Handler
	refusing  *budget.Budget // refusals being answered
	answering sync.WaitGroup
}

func (l *screened) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if p, ok := peerOf(c); ok && !l.h.allowed(p.UID) {
			l.h.cfg.log.Warn("admin: connection refused: peer not allowed", p.field())
			l.refuse(c, forbidden)
			continue
		}
		return c, nil
	}
}

// busy answers a connection beyond the bound.
func (l *screened) busy(c net.Conn) {
	who := zap.Dict("peer", zap.Stringer("addr", c.RemoteAddr()))
	if p, ok := peerOf(c); ok {
		who = p.field()
	}
	l.h.cfg.log.Warn("admin: connection refused: every connection in use", who, zap.Int("max", maxConns))
	l.refuse(c, unavailable)
}

// refusal is a whole HTTP answer that closes its connection.
func refusal(status, msg string) []byte {
	body := `{"error":"` + msg + `"}` + "\n"
	return []byte("HTTP/1.1 " + status + "\r\nContent-Type: application/json\r\nConnection: close\r\nContent-Length: " +
		strconv.Itoa(len(body)) + "\r\n\r\n" + body)
}

var (
	forbidden   = refusal("403 Forbidden", "refused: this peer may not use the admin socket")
	unavailable = refusal("503 Service Unavailable", "busy: every admin connection is in use; try again")
)

// refuse answers c with answer, without reading its request, and closes
// it; beyond maxRefusing at once it just closes.
func (l *screened) refuse(c net.Conn, answer []byte) {
	place, ok := l.refusing.Acquire(budget.Common, nil)
	if !ok {
		c.Close()
		return
	}
	l.answering.Add(1)
	go func() {
		defer func() { c.Close(); place.Release(); l.answering.Done() }()
		_ = c.SetDeadline(time.Now().Add(time.Second))
		// Wait for the request's head (at most 8 KiB, 1 s): an answer
		// before it, HTTP clients take for an error of their own.
		waitHead(c)
		if _, err := c.Write(answer); err != nil {
			return
		}
		// Read what the peer sent, so that the close sends no reset that
		// could destroy the answer before it is read.
		if cw, ok := c.(interface{ CloseWrite() error }); ok {
			_ = cw.CloseWrite()
		}
		_, _ = io.Copy(io.Discard, io.LimitReader(c, 64<<10))
	}()
}

// waitHead reads from c until the end of a request's head, 8 KiB, an
// error or the deadline, whichever comes first.
func waitHead(c net.Conn) {
	var buf [8 << 10]byte
	n := 0
	for n < len(buf) {
		m, err := c.Read(buf[n:])
		n += m
		if bytes.Contains(buf[max(n-m-3, 0):n], []byte("\r\n\r\n")) || err != nil {
			return
		}
	}
}
