package grpchealth

import (
	"net"
	"time"

	"github.com/probekit/probes/internal/budget"
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

// quietEvict is how long a connection that has spoken must have sent
// nothing before a new one may take its place at the bound.
const quietEvict = 10 * time.Second

// bound returns ln holding at most max connections. At the bound, a new
// connection takes the place of the oldest one that has not sent a byte (a
// client that connects and never speaks holds a descriptor until grpc-go's
// handshake timeout), or else of the one quiet longest, if it has sent
// nothing for quiet (a client that finished its handshake and idles); when
// every connection is busy, the new one is refused. A prober opens a
// connection per probe and speaks at once, so a flood of silent or idle
// connections never keeps it out.
func bound(ln net.Listener, max int, quiet time.Duration) (net.Listener, *budget.Budget, error) {
	b, err := budget.New(budget.Config{Max: max, Policy: budget.Policy{Evict: true, Quiet: quiet, SilentFirst: true}})
	if err != nil {
		return nil, nil, err
	}
	return budget.Listen(ln, b, nil), b, nil
}
