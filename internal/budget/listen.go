package budget

import (
	"net"
	"net/http"
	"sync"
)

// Refusal is what a listener does with a connection its budget refused;
// nil closes it unanswered.
type Refusal func(net.Conn)

// accept returns the next connection ln accepts that b lets in, as
// Common, with the place it holds; refused ones go to refuse.
func accept(ln net.Listener, b *Budget, refuse Refusal) (net.Conn, *Place, error) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return nil, nil, err
		}
		if p, ok := b.Acquire(Common, c); ok {
			return c, p, nil
		}
		if refuse != nil {
			refuse(c)
		} else {
			_ = c.Close() // refused; nothing to report
		}
	}
}

// Track makes hs hold a place of b for every connection it serves from ln,
// chaining hs's own ConnState hook, and returns the listener to serve.
// The connections are not wrapped (net/http looks for *tls.Conn, and a
// handler that hijacks one may look for *net.TCPConn): hs's hook releases
// a place when its connection closes or is hijacked, and a request or an
// answer touches it.
func Track(hs *http.Server, ln net.Listener, b *Budget, refuse Refusal) net.Listener {
	t := &tracked{Listener: ln, b: b, refuse: refuse, at: make(map[net.Conn]*Place)}
	user := hs.ConnState
	hs.ConnState = func(c net.Conn, st http.ConnState) {
		t.changed(c, st)
		if user != nil {
			user(c, st)
		}
	}
	return t
}

type tracked struct {
	net.Listener
	b      *Budget
	refuse Refusal

	mu sync.Mutex
	at map[net.Conn]*Place
}

// Accept records the place before it returns: the server calls its
// ConnState hook only after.
func (t *tracked) Accept() (net.Conn, error) {
	c, p, err := accept(t.Listener, t.b, t.refuse)
	if err == nil {
		t.mu.Lock()
		t.at[c] = p
		t.mu.Unlock()
	}
	return c, err
}

func (t *tracked) changed(c net.Conn, st http.ConnState) {
	gone := st == http.StateClosed || st == http.StateHijacked
	if !gone && (st == http.StateNew || !t.b.cfg.Policy.Evict) {
		return
	}
	t.mu.Lock()
	p := t.at[c]
	if gone {
		delete(t.at, c)
	}
	t.mu.Unlock()
	if gone {
		p.Release()
	} else {
		p.Touch()
	}
}

// Listen returns ln with every connection it accepts holding a place of
// b: a read that brings bytes touches it, and closing the connection
// releases it. For servers without a ConnState hook (gRPC, say).
func Listen(ln net.Listener, b *Budget, refuse Refusal) net.Listener {
	return &listener{Listener: ln, b: b, refuse: refuse}
}

type listener struct {
	net.Listener
	b      *Budget
	refuse Refusal
}

func (l *listener) Accept() (net.Conn, error) {
	c, p, err := accept(l.Listener, l.b, l.refuse)
	if err != nil {
		return nil, err
	}
	return &conn{Conn: c, p: p}, nil
}

type conn struct {
	net.Conn
	p *Place
}

func (c *conn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if n > 0 {
		c.p.Touch()
	}
	return n, err
}

func (c *conn) Close() error {
	c.p.Release()
	return c.Conn.Close()
}
