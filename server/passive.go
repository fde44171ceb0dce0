package server

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"slices"
)

// triggerer is a gate that runs a check on demand, as readiness.Gate and
// liveness.Gate do: at once, or after its Recheck wait.
type triggerer interface{ Trigger(name string) }

// serve calls next with a writer that notes the answer's status, and
// triggers the needed checks when the answer or the request's deadline
// says the dependency failed.
func (n *needs) serve(next http.Handler, w http.ResponseWriter, r *http.Request) {
	p := n.writers.Get().(*passive)
	p.ResponseWriter, p.status, p.refused = w, 0, false
	next.ServeHTTP(p, r)
	status, refused := p.status, p.refused
	p.ResponseWriter = nil
	n.writers.Put(p)
	if refused {
		return
	}
	switch err := r.Context().Err(); {
	case err == context.DeadlineExceeded:
	case err != nil, status < 500, status > 599:
		return
	}
	for _, name := range n.checks {
		n.trigger.Trigger(name)
	}
}

// Failed tells the Needs guards around a handler that the dependency
// behind check failed while it served: each guard on the path that needs
// check triggers it, as a 5xx answer would, so that the guard fails the
// next requests fast. Call it when the handler answers otherwise (a
// fallback, a partial answer) or sees the failure on a goroutine of its
// own; not when the failure came from the request's own context ending
// (the client hung up), which says nothing of the dependency. Trigger
// bounds the cost: at most one execution per Recheck wait, however many
// requests call it.
//
// w is the handler's ResponseWriter, or a writer that unwraps to it (an
// Unwrap() http.ResponseWriter method, as http.ResponseController
// expects). Failed is safe from any goroutine while the handler runs; like
// w itself, it must not be used after the handler has returned. It does
// nothing, and allocates nothing, when no guard on the path needs check.
func Failed(w http.ResponseWriter, check string) {
	for w != nil {
		if p, ok := w.(*passive); ok && slices.Contains(p.guard.checks, check) {
			p.guard.trigger.Trigger(check)
		}
		u, ok := w.(interface{ Unwrap() http.ResponseWriter })
		if !ok {
			return
		}
		w = u.Unwrap()
	}
}

// markRefused marks the guards' writers around w: the 503 being written is a
// guard's or a Shedder's own, not the dependency's.
func markRefused(w http.ResponseWriter) {
	for w != nil {
		if p, ok := w.(*passive); ok {
			p.refused = true
		}
		u, ok := w.(interface{ Unwrap() http.ResponseWriter })
		if !ok {
			return
		}
		w = u.Unwrap()
	}
}

// passive is the writer a Needs guard hands its handler when its gate can
// trigger checks. It notes the answer's first final status and keeps what
// handlers look for on a ResponseWriter (Flusher, Hijacker, ReaderFrom,
// Pusher); http.ResponseController reaches the rest through Unwrap. A
// guard's pool holds them, so guard is set once and only the other fields
// change.
type passive struct {
	http.ResponseWriter
	guard   *needs
	status  int  // the first final status; 0 before one is written
	refused bool // a guard or Shedder inside answered 503 of its own
}

var (
	_ http.Flusher  = (*passive)(nil)
	_ http.Hijacker = (*passive)(nil)
	_ io.ReaderFrom = (*passive)(nil)
	_ http.Pusher   = (*passive)(nil)
)

func (p *passive) WriteHeader(code int) {
	if p.status == 0 && (code >= 200 || code == http.StatusSwitchingProtocols) {
		p.status = code
	}
	p.ResponseWriter.WriteHeader(code)
}

func (p *passive) Write(b []byte) (int, error) {
	if p.status == 0 {
		p.status = http.StatusOK
	}
	return p.ResponseWriter.Write(b)
}

// ReadFrom keeps io.Copy's fast path (sendfile on a net/http connection).
func (p *passive) ReadFrom(src io.Reader) (int64, error) {
	if p.status == 0 {
		p.status = http.StatusOK
	}
	if rf, ok := p.ResponseWriter.(io.ReaderFrom); ok {
		return rf.ReadFrom(src)
	}
	return io.Copy(p.ResponseWriter, src)
}

func (p *passive) Flush() { _ = p.FlushError() }

// FlushError is what http.ResponseController's Flush calls first, so that
// its error is not lost on the way.
func (p *passive) FlushError() error {
	if p.status == 0 {
		p.status = http.StatusOK
	}
	return http.NewResponseController(p.ResponseWriter).Flush()
}

func (p *passive) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	return http.NewResponseController(p.ResponseWriter).Hijack()
}

func (p *passive) Push(target string, opts *http.PushOptions) error {
	if pusher, ok := p.ResponseWriter.(http.Pusher); ok {
		return pusher.Push(target, opts)
	}
	return http.ErrNotSupported
}

// Unwrap is the writer underneath, for http.ResponseController.
func (p *passive) Unwrap() http.ResponseWriter { return p.ResponseWriter }
