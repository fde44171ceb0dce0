package server

import (
	"container/list"
	"net"
	"net/http"
	"sync"
	"time"
)

// evicting bounds the connections of the probe listener without ever
// refusing a new one: at the bound, accepting a connection closes the one
// that has gone longest without a change of state (idle keep-alive, headers
// half sent, a body that never comes). A prober opens a connection per
// probe and is done with it in a millisecond, so its connection is always
// among the newest; whatever a client does with the connections it holds,
// the next probe is answered.
type evicting struct {
	max int

	mu    sync.Mutex
	order list.List // of net.Conn, the longest unchanged first
	at    map[net.Conn]*list.Element
}

// limit makes hs report its connections' states to e, chaining its own
// ConnState hook, and returns ln, which evicts at e's bound.
func (e *evicting) limit(hs *http.Server, ln net.Listener) net.Listener {
	e.at = make(map[net.Conn]*list.Element)
	user := hs.ConnState
	hs.ConnState = func(c net.Conn, st http.ConnState) {
		e.changed(c, st)
		if user != nil {
			user(c, st)
		}
	}
	return &evictListener{Listener: ln, e: e}
}

func (e *evicting) changed(c net.Conn, st http.ConnState) {
	e.mu.Lock()
	defer e.mu.Unlock()
	el, known := e.at[c]
	switch st {
	case http.StateNew:
		e.at[c] = e.order.PushBack(c)
	case http.StateClosed, http.StateHijacked:
		if known {
			e.order.Remove(el)
			delete(e.at, c)
		}
	default:
		if known {
			e.order.MoveToBack(el)
		}
	}
}

// makeRoom closes the connection unchanged longest while e holds its
// bound. The server calls ConnState (StateNew) before it accepts again,
// so the count is never behind.
func (e *evicting) makeRoom() {
	e.mu.Lock()
	var victims []net.Conn
	for e.order.Len() >= e.max {
		el := e.order.Front()
		c := e.order.Remove(el).(net.Conn)
		delete(e.at, c)
		victims = append(victims, c)
	}
	e.mu.Unlock()
	for _, c := range victims {
		// Closed outside the lock; its server sees the error and ends it.
		c.SetDeadline(time.Now()) //nolint:errcheck // closing anyway
		c.Close()                 //nolint:errcheck // evicted; nothing to report
	}
}

type evictListener struct {
	net.Listener
	e *evicting
}

func (l *evictListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.e.makeRoom()
	}
	return c, err
}
