package grpchealth

import (
	"container/list"
	"net"
	"sync"
	"sync/atomic"
	"time"

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
// handshake timeout), or else of the one quiet longest, if it has sent
// nothing for quietEvict (a client that finished its handshake and idles);
// when every connection is busy, the new one is refused. A prober opens a
// connection per probe and speaks at once, so a flood of silent or idle
// connections never keeps it out.
type bounded struct {
	net.Listener
	max     int
	quiet   time.Duration // quietEvict, but in tests
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
		var quiet *list.Element
		quietSince := time.Now().Add(-b.quiet).UnixNano()
		for el := b.conns.Front(); el != nil; el = el.Next() {
			c := el.Value.(*boundedConn)
			if c.lastRead.Load() == 0 { // never spoke
				quiet = el
				break
			}
			if last := c.lastRead.Load(); last < quietSince && (quiet == nil || last < quiet.Value.(*boundedConn).lastRead.Load()) {
				quiet = el
			}
		}
		if quiet == nil {
			return nil, false
		}
		victim = quiet.Value.(*boundedConn)
		b.conns.Remove(quiet)
		victim.el = nil
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
	b        *bounded
	el       *list.Element // guarded by b.mu; nil once removed
	lastRead atomic.Int64  // Unix ns of the last read that brought bytes; 0: never spoke
	once     sync.Once
}

// quietEvict is how long a connection that has spoken must have sent
// nothing before a new one may take its place at the bound.
const quietEvict = 10 * time.Second

func (c *boundedConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 {
		c.lastRead.Store(time.Now().UnixNano())
	}
	return n, err
}

func (c *boundedConn) Close() error {
	c.once.Do(func() { c.b.remove(c) })
	return c.Conn.Close()
}
