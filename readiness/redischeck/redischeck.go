// Package redischeck is a readiness check for Redis over the service's own
// go-redis client (any redis.UniversalClient: *redis.Client, a failover
// client, *redis.ClusterClient, *redis.Ring). It lives in a package of its
// own so that a service without Redis never compiles go-redis.
//
// The check sends PING through the client, so a probe never opens a
// connection of its own, then reads INFO persistence and INFO replication:
//
//   - a server still loading its dataset (a LOADING reply, or loading:1)
//     fails;
//   - a replica whose link to its master is down warns (MasterLinkDown
//     makes it fail): it answers, with data that may be old;
//   - a server at its client limit (maxclients: "ERR max number of clients
//     reached") has answered: it warns (Exhausted makes it fail), while a
//     server that does not answer fails;
//   - a refused password fails, and no error holds a secret;
//   - an INFO refused by the client's ACL user (NOPERM: a user made with
//     -@dangerous, or without +info) passes: the server answered the PING,
//     and the check goes without the state that section would have told
//     (a replica's link is then not looked at). Grant +info to the user to
//     have it looked at.
//
// The client's pool is reported as observed values: "connections" (in
// use), "open" (total), "idle" and "timeouts" (waits for a connection that
// timed out, since the client started).
//
// go-redis ignores a context's deadline unless the client is made with
// ContextTimeoutEnabled: true; without it a frozen server would hang the
// check for the client's ReadTimeout instead of its own timeout. New
// therefore refuses a *redis.Client, *redis.ClusterClient or *redis.Ring
// without it. Another UniversalClient must honour the context itself.
//
//	rdb := redis.NewClient(&redis.Options{Addr: "cache:6379", ContextTimeoutEnabled: true})
//	check, err := redischeck.New(rdb)
//	...
//	err = ready.Add("redis", check, probes.ComponentType("datastore"))
package redischeck

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/probekit/probes"
	"github.com/probekit/probes/internal/opt"
	"github.com/probekit/probes/redact"
)

// Option configures a Checker.
type Option func(*config) error

type config struct {
	check      []probes.CheckOption // With's, for Part
	owned      bool
	exhausted  probes.Status
	masterDown probes.Status
}

// Exhausted sets what a server at its client limit (maxclients) reports:
// probes.Warn (the default: the server answered, it is busy, and failing
// readiness would move this instance's load onto its peers, which share
// the server) or probes.Fail. A server that does not answer fails either
// way.
func Exhausted(s probes.Status) Option {
	return func(c *config) error {
		if s != probes.Warn && s != probes.Fail {
			return fmt.Errorf("Exhausted(%s): use probes.Warn or probes.Fail", s)
		}
		c.exhausted = s
		return nil
	}
}

// MasterLinkDown sets what a replica whose link to its master is down
// reports: probes.Warn (the default: it still serves reads, of data that
// grows old) or probes.Fail.
func MasterLinkDown(s probes.Status) Option {
	return func(c *config) error {
		if s != probes.Warn && s != probes.Fail {
			return fmt.Errorf("MasterLinkDown(%s): use probes.Warn or probes.Fail", s)
		}
		c.masterDown = s
		return nil
	}
}

// Checker checks Redis through a client. Create one with New.
// Owned makes the Checker own its client: Close closes it. The assembly
// (package app) closes a checker it owns after the server has stopped,
// bounded; a service without it calls Close from a server.AfterClose hook.
// Default: the client stays the service's to close.
func Owned() Option {
	return func(c *config) error { c.owned = true; return nil }
}

type Checker struct {
	client redis.UniversalClient
	cfg    config
}

var _ probes.Checker = (*Checker)(nil)

// New returns a Checker over client. It returns an error naming the option
// when an option is invalid, when client is nil, or when client is a
// go-redis client made without ContextTimeoutEnabled.
func New(client redis.UniversalClient, opts ...Option) (*Checker, error) {
	if client == nil {
		return nil, errors.New("redischeck: New(nil): need a redis.UniversalClient")
	}
	if enabled, known := contextTimeouts(client); known && !enabled {
		return nil, fmt.Errorf("redischeck: New(%T): the client ignores context deadlines, "+
			"so a frozen server would hang the check past its timeout: make it with ContextTimeoutEnabled: true", client)
	}
	cfg := config{exhausted: probes.Warn, masterDown: probes.Warn}
	if err := opt.Apply("redischeck", &cfg, opts); err != nil {
		return nil, err
	}
	return &Checker{client: client, cfg: cfg}, nil
}

// contextTimeouts reports whether client honours context deadlines, and
// whether that is known.
func contextTimeouts(client redis.UniversalClient) (enabled, known bool) {
	switch c := client.(type) {
	case *redis.Client:
		return c.Options().ContextTimeoutEnabled, true
	case *redis.ClusterClient:
		return c.Options().ContextTimeoutEnabled, true
	case *redis.Ring:
		return c.Options().ContextTimeoutEnabled, true
	}
	return false, false
}

// Check pings the server, reads its loading and replication state and
// reports the client's pool.
func (c *Checker) Check(ctx context.Context) error {
	defer c.observe(ctx) // after the ping, which may have opened a connection
	if err := c.client.Ping(ctx).Err(); err != nil {
		return redact.Error(c.pingFailed(ctx, err))
	}
	info, err := c.info(ctx, "persistence")
	if err != nil {
		return err
	}
	if info["loading"] == "1" {
		return fmt.Errorf("server loading its dataset (%s%% loaded)", info["loading_loaded_perc"])
	}
	info, err = c.info(ctx, "replication")
	if err != nil {
		return err
	}
	if info["role"] == "slave" && info["master_link_status"] != "up" {
		err := fmt.Errorf("replica's link to its master %s:%s is %s (for %ss)", info["master_host"], info["master_port"],
			info["master_link_status"], info["master_link_down_since_seconds"])
		if c.cfg.masterDown == probes.Warn {
			return fmt.Errorf("%w: %w", err, probes.ErrWarn)
		}
		return err
	}
	return nil
}

// info reads an INFO section into its name:value lines. A section the
// client's ACL user may not read (NOPERM: a user with -@dangerous, or
// without +info) reads as empty: the server has answered the PING, and
// the check goes without what the section would have told.
func (c *Checker) info(ctx context.Context, section string) (map[string]string, error) {
	text, err := c.client.Info(ctx, section).Result()
	if redis.HasErrorPrefix(err, "NOPERM") {
		return nil, nil
	}
	if err != nil {
		return nil, redact.Error(fmt.Errorf("INFO %s: %w", section, err))
	}
	return fields(text), nil
}

// observe reports the client's pool.
func (c *Checker) observe(ctx context.Context) {
	st := c.client.PoolStats()
	if st == nil {
		return
	}
	inUse := float64(st.TotalConns) - float64(st.IdleConns)
	probes.Observe(ctx, probes.Observation{Measurement: "connections", Value: max(inUse, 0), Unit: "connections"})
	probes.Observe(ctx, probes.Observation{Measurement: "open", Value: float64(st.TotalConns), Unit: "connections"})
	probes.Observe(ctx, probes.Observation{Measurement: "idle", Value: float64(st.IdleConns), Unit: "connections"})
	probes.Observe(ctx, probes.Observation{Measurement: "timeouts", Value: float64(st.Timeouts), Unit: "timeouts"})
}

// pingFailed tells the server's answers from its silence.
func (c *Checker) pingFailed(ctx context.Context, err error) error {
	msg := err.Error()
	var reply redis.Error
	if !errors.As(err, &reply) && ctx.Err() == nil {
		// A connection that broke (EOF, a reset, a broken pipe) may be a
		// server at maxclients: it writes its refusal and closes, and the
		// client fails writing its HELLO before reading why.
		if refusal := c.refusal(ctx); refusal != "" {
			err = fmt.Errorf("%s (%w)", refusal, err)
			msg = refusal
		}
	}
	switch {
	case strings.HasPrefix(msg, "LOADING"):
		return fmt.Errorf("server loading its dataset: %w", err)
	case strings.Contains(msg, "max number of clients reached"):
		// It answered, refusing a connection: at its maxclients.
		err = fmt.Errorf("server at its client limit (maxclients): %w", err)
		if c.cfg.exhausted == probes.Warn {
			return fmt.Errorf("%w: %w", err, probes.ErrWarn)
		}
		return err
	case strings.HasPrefix(msg, "WRONGPASS"), strings.HasPrefix(msg, "NOAUTH"), strings.HasPrefix(msg, "NOPERM"):
		return fmt.Errorf("server refused the client's credentials: %w", err)
	}
	return fmt.Errorf("PING: %w", err)
}

// refusal dials the server the way a *redis.Client does and returns what
// it says before it is asked anything: a server at maxclients writes "-ERR
// max number of clients reached" and closes at once; another says nothing.
// It waits at most refusalWait for it.
func (c *Checker) refusal(ctx context.Context) string {
	client, ok := c.client.(*redis.Client)
	if !ok {
		return "" // a cluster or ring client: which node refused is unknown
	}
	o := client.Options()
	if o.Dialer == nil {
		return ""
	}
	conn, err := o.Dialer(ctx, o.Network, o.Addr)
	if err != nil {
		return ""
	}
	defer conn.Close()
	deadline := time.Now().Add(refusalWait)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	if conn.SetReadDeadline(deadline) != nil {
		return ""
	}
	line, _ := bufio.NewReader(io.LimitReader(conn, 512)).ReadString('\n')
	if line, ok := strings.CutPrefix(strings.TrimSpace(line), "-"); ok && strings.Contains(line, "max number of clients") {
		return line
	}
	return ""
}

// refusalWait bounds how long refusal waits for a server to speak first.
const refusalWait = 100 * time.Millisecond

// fields parses an INFO section into its name:value lines.
func fields(info string) map[string]string {
	out := map[string]string{}
	for _, line := range strings.Split(info, "\n") {
		if k, v, ok := strings.Cut(strings.TrimSpace(line), ":"); ok {
			out[k] = v
		}
	}
	return out
}

// Owned reports whether c owns its client (the Owned option).
func (c *Checker) Owned() bool { return c.cfg.owned }

// Close closes the client when c owns it (Owned), and does nothing
// otherwise. Call it once the checks have stopped.
func (c *Checker) Close() error {
	if !c.cfg.owned {
		return nil
	}
	return c.client.Close()
}
