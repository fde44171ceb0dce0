package grpchealth

import (
	"container/list"
	"net"
	"sync"
	"sync/atomic"

	"github.com/probekit/probes/internal/fds"
)

// defaultMaxConns is the default bound on the gRPC listener's connections:
// a quarter of the file-descriptor limit, so that a flood of connections
// that never speak leaves descriptors for the probe listener, the
// application listener and the database pool. 1024 when the limit is
// unknown.
func defaultMaxConns() int {
	if l := fds.Limit(); l > 0 && l < 1<<24 {
		return max(int(l/4), 16)
	}
	return 1024
}

// bounded holds at most max connections. At the bound, a new connection
// takes the place of the oldest one that has not sent a byte (a client
// that connects and never speaks holds a descriptor until grpc-go's
// handshake timeout); when every connection has spoken, the new one is
// refused. A prober opens a connection per probe and speaks at once, so a
// flood of silent connections never keeps it out.
type bounded struct {
	net.Listener
	max     int
	refused atomic.Uint64
	evicted atomic.Uint64

	mu    sync.Mutex
	conns list.List // of *boundedConn, oldest first
}

func (b *bounded) Accept() (net.Conn, error) {
	for {
		c, err := b.Listener.Accept()
		if err != nil {
			return nil, err
		}
		bc := &boundedConn{Conn: c, b: b}
		victim, ok := b.admit(bc)
		if victim != nil {
			b.evicted.Add(1)
			victim.Close() //nolint:errcheck // evicted; nothing to report
		}
		if ok {
			return bc, nil
		}
		b.refused.Add(1)
		c.Close() //nolint:errcheck // refused; nothing to report
	}
}

// admit adds bc unless the bound is reached and no silent connection can
// make room; it returns the connection to close for it, if any.
func (b *bounded) admit(bc *boundedConn) (victim *boundedConn, ok bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.conns.Len() >= b.max {
		for el := b.conns.Front(); el != nil; el = el.Next() {
			if c := el.Value.(*boundedConn); !c.spoke.Load() {
				b.conns.Remove(el)
				c.el = nil
				victim = c
				break
			}
		}
		if victim == nil {
			return nil, false
		}
	}
	bc.el = b.conns.PushBack(bc)
	return victim, true
}

func (b *bounded) remove(c *boundedConn) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if c.el != nil {
		b.conns.Remove(c.el)
		c.el = nil
	}
}

type boundedConn struct {
	net.Conn
	b     *bounded
	el    *list.Element // guarded by b.mu; nil once removed
	spoke atomic.Bool
	once  sync.Once
}

func (c *boundedConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 && !c.spoke.Load() {
		c.spoke.Store(true)
	}
	return n, err
}

func (c *boundedConn) Close() error {
	c.once.Do(func() { c.b.remove(c) })
	return c.Conn.Close()
}
