package grpchealth

import (
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/probekit/probes/internal/testenv/testutil"
)

// At the bound, connections that spoke and then went quiet make room for
// new ones, so a client that finishes its handshake and idles cannot keep
// a prober out; busy ones are never cut.
func TestBoundedEvictsQuietConnections(t *testing.T) {
	b, bud, err := bound(testutil.Listen(t), 2, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	accepted := make(chan net.Conn, 8)
	var served sync.WaitGroup // the accept loop and a reader per connection
	var mu sync.Mutex
	var all []net.Conn // every connection accepted, to end its reader
	served.Go(func() {
		for {
			c, err := b.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			all = append(all, c)
			mu.Unlock()
			served.Go(func() { io.Copy(io.Discard, c); c.Close() }) // reads, as a server does
			accepted <- c
		}
	})
	t.Cleanup(func() {
		b.Close()
		mu.Lock()
		for _, c := range all {
			c.Close() // ends its reader
		}
		mu.Unlock()
		served.Wait()
	})
	dial := func() net.Conn {
		c, err := net.Dial("tcp", b.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	idle := []net.Conn{dial(), dial()}
	for _, c := range idle {
		c.Write([]byte("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")) // the handshake's first bytes, then nothing
		<-accepted
	}
	testutil.Eventually(t, "both have spoken", func() bool { return bud.Held() == 2 && bud.Silent() == 0 })
	// Not quiet long enough yet: a third connection is refused.
	dial()
	testutil.Eventually(t, "the third refused", func() bool { return bud.Refused() == 1 })
	// Once they have been quiet for the bound, a new one takes a place.
	testutil.Eventually(t, "a new connection in place of a quiet one", func() bool {
		dial()
		select {
		case <-accepted:
			return true
		case <-time.After(20 * time.Millisecond):
			return false
		}
	})
	if bud.Evicted() == 0 {
		t.Error("no quiet connection was evicted")
	}
}
