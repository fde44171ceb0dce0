// Package haproxy speaks HAProxy's agent-check protocol from a lifecycle's
// state, so that a balancer hears of a cordon, a drain or a warm-up within
// one agent interval, and, with a load shedder, how much spare capacity the
// instance has.
//
// HAProxy connects to the agent port every agent-inter, reads one line and
// closes. The line the Agent sends:
//
//	ready up         in rotation (readiness passes or warns)
//	ready up 40%     the same, with the weight from spare capacity (Capacity)
//	drain #reason    cordoned (probes.Lifecycle.Cordon) or draining: no new traffic, the rest finishes
//	down #reason     cold, warming, stopped, broken, or readiness failing
//
// The in-rotation line says "ready" as well as "up" because HAProxy leaves
// DRAIN (and MAINT) only on "ready": after a cordon, "up" alone would leave
// the server draining. A percentage scales the weight on the server line,
// so give it `weight 100`: with the default weight 1 any share below 100 %
// rounds to 0, which drains the server.
//
//	backend app
//	    option httpchk GET /readyz
//	    server a 10.0.0.7:8080 check port 8081 weight 100 agent-check agent-port 8082 agent-inter 500ms
//
// Besides the standard library, the package uses only probes and package
// server (for Peer and Shedder), and the project's own escaping of text
// and connection budget.
package haproxy

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/probekit/probes"
	"github.com/probekit/probes/internal/budget"
	"github.com/probekit/probes/internal/printable"
	"github.com/probekit/probes/server"
)

// Defaults of the options.
const (
	DefaultFloor    = 10  // percent
	DefaultMaxConns = 256 // agent connections at once
	// DefaultSmoothing is the time constant of the weight's moving average.
	DefaultSmoothing = 2 * time.Second
)

// How often the spare capacity is sampled, and how long one agent
// connection may take.
const (
	sampleEvery = 100 * time.Millisecond
	connTimeout = 2 * time.Second
	lingerRead  = 100 * time.Millisecond
)

// Option configures an Agent.
type Option func(*config) error

type config struct {
	shedders  []*server.Shedder
	floor     int
	maxConns  int
	smoothing time.Duration
	linger    time.Duration // how long an answered connection is read after the line
}

// Capacity makes the in-rotation line carry a weight that follows the
// instance's spare capacity: the least spare share of the shedders' bounds
// (1 - in flight / bound), as a moving average (see Smoothing), never below
// the floor (see Floor). A busy instance gets less new traffic without
// leaving the rotation.
//
// Use it when requests differ a lot in cost or instances differ in speed,
// so that a count of connections says little about load. With similar
// requests, HAProxy's `balance leastconn` already sends less to a busy
// instance, and needs no agent weight.
func Capacity(shedders ...*server.Shedder) Option {
	return func(c *config) error {
		if len(shedders) == 0 {
			return errors.New("Capacity(): need at least one *server.Shedder")
		}
		for i, s := range shedders {
			if s == nil {
				return fmt.Errorf("Capacity: shedder %d is nil", i)
			}
		}
		c.shedders = append(c.shedders, shedders...)
		return nil
	}
}

// Floor sets the lowest weight Capacity reports, in percent (1 to 100;
// DefaultFloor): an instance that is busy now still gets some traffic, so
// that its weight can tell when it is free again.
func Floor(percent int) Option {
	return func(c *config) error {
		if percent < 1 || percent > 100 {
			return fmt.Errorf("Floor(%d): use 1 to 100 percent", percent)
		}
		c.floor = percent
		return nil
	}
}

// Smoothing sets the time constant of the weight's exponential moving
// average (DefaultSmoothing); at least 100 ms.
func Smoothing(d time.Duration) Option {
	return func(c *config) error {
		if d < sampleEvery {
			return fmt.Errorf("Smoothing(%s): at least %s", d, sampleEvery)
		}
		c.smoothing = d
		return nil
	}
}

// MaxConns bounds the agent connections served at once (DefaultMaxConns);
// beyond it a connection is closed at once, unanswered. HAProxy needs one
// per agent-inter per balancer.
func MaxConns(n int) Option {
	return func(c *config) error {
		if n < 1 {
			return fmt.Errorf("MaxConns(%d): must be at least 1", n)
		}
		c.maxConns = n
		return nil
	}
}

// Agent computes the agent line from a lifecycle and its readiness gate.
// Build it with New; serve it with Serving.
type Agent struct {
	ready  probes.Gate // lc's readiness, whenever it is built (probes.Lifecycle.View)
	cfg    config
	weight atomic.Int64 // percent, smoothed; with Capacity only

	mu    sync.Mutex
	spare float64 // the moving average
}

// New returns the agent of lc, reading readiness from lc's readiness gate
// (whenever it is built) or, while there is none, from the lifecycle
// alone. It fails when lc is nil or an option is invalid, naming the
// option.
func New(lc *probes.Lifecycle, opts ...Option) (*Agent, error) {
	if lc == nil {
		return nil, errors.New("haproxy: New(nil): need a *probes.Lifecycle")
	}
	cfg := config{floor: DefaultFloor, maxConns: DefaultMaxConns, smoothing: DefaultSmoothing, linger: lingerRead}
	for _, o := range opts {
		if o == nil {
			continue
		}
		if err := o(&cfg); err != nil {
			return nil, fmt.Errorf("haproxy: %w", err)
		}
	}
	a := &Agent{ready: lc.View(probes.Readiness), cfg: cfg, spare: 1}
	a.weight.Store(100)
	return a, nil
}

// Reply returns the line the agent sends now, without its newline.
func (a *Agent) Reply() string {
	rep := a.ready.Report()
	switch {
	case rep.Phase == probes.Draining:
		return "drain #draining: shutting down"
	case !rep.Cordon.IsZero() && rep.Phase == probes.Ready:
		return "drain #" + cordoned(rep.Cordon)
	}
	if st := rep.Status(); st == probes.Fail {
		return "down #" + line(why(&rep))
	}
	if a.cfg.shedders == nil {
		return "ready up"
	}
	return "ready up " + strconv.FormatInt(a.weight.Load(), 10) + "%"
}

// why is the short reason readiness fails: the failing checks, or the
// phase's note.
func why(rep *probes.Report) string {
	if failing, _ := rep.Behind(nil); len(failing) > 0 && rep.Base.OK() {
		return "failing: " + strings.Join(failing, ", ")
	}
	return strings.Join(rep.Notes, "; ")
}

// cordoned says why the agent drains a cordoned server: the reason, cut
// first, then who set it, as "cordoned: disk swap (by alice)" (the uid
// when the user has no name), within line's 200 bytes.
func cordoned(c probes.Cordon) string {
	by := ""
	switch {
	case c.By.User != "":
		by = " (by " + printable.Escape(c.By.User, 64) + ")"
	case !c.By.IsZero():
		by = " (by uid " + strconv.FormatUint(uint64(c.By.UID), 10) + ")"
	}
	return "cordoned: " + printable.Escape(c.Reason, 197-len("cordoned: ")-len(by)) + by
}

// line makes s safe for the one-line protocol (package printable): no
// line break or control character, at most 200 bytes with the "..." of a
// cut.
func line(s string) string { return printable.Escape(s, 197) }

// sample folds the shedders' spare capacity now into the moving average
// and publishes the weight. dt is the time since the last sample.
func (a *Agent) sample(dt time.Duration) {
	spare := 1.0
	for _, s := range a.cfg.shedders {
		used := min(max(float64(s.InFlight())/float64(s.Max()), 0), 1)
		spare = min(spare, 1-used)
	}
	alpha := 1 - math.Exp(-dt.Seconds()/a.cfg.smoothing.Seconds())
	a.mu.Lock()
	a.spare += alpha * (spare - a.spare)
	w := int64(math.Round(a.spare * 100))
	a.mu.Unlock()
	a.weight.Store(min(max(w, int64(a.cfg.floor)), 100))
}

// Serving returns a server.Peer that answers the agent on ln, for
// server.Also: it answers through the drain (saying "drain"), then stops
// with the HTTP server. Each connection gets its line at once and is closed
// within 2 s; beyond MaxConns at once, connections are closed unanswered.
func (a *Agent) Serving(ln net.Listener) (server.Peer, error) {
	if ln == nil {
		return nil, errors.New("haproxy: Serving(nil): need a listener")
	}
	b, err := budget.New(budget.Config{Max: a.cfg.maxConns}) // refusing beyond it
	if err != nil {
		return nil, fmt.Errorf("haproxy: MaxConns: %w", err)
	}
	return &peer{a: a, ln: ln, places: b, stop: make(chan struct{})}, nil
}

type peer struct {
	a      *Agent
	ln     net.Listener
	places *budget.Budget
	conns  sync.WaitGroup
	stop   chan struct{}
	once   sync.Once
}

func (p *peer) Serve() error {
	if p.a.cfg.shedders != nil {
		p.conns.Add(1)
		go p.sampler()
	}
	var backoff time.Duration
	for {
		c, err := p.ln.Accept()
		if err != nil {
			select {
			case <-p.stop:
				return nil
			default:
			}
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			// Out of file descriptors, say: wait a little, as net/http does.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			select {
			case <-time.After(backoff):
			case <-p.stop:
				return nil
			}
			continue
		}
		backoff = 0
		place, ok := p.places.Acquire(budget.Common, nil)
		if !ok {
			c.Close() // unanswered, unread
			continue
		}
		p.conns.Add(1)
		go p.answer(c, place)
	}
}

func (p *peer) answer(c net.Conn, place *budget.Place) {
	defer func() {
		c.Close()
		place.Release()
		p.conns.Done()
	}()
	_ = c.SetDeadline(time.Now().Add(connTimeout))
	if _, err := c.Write([]byte(p.a.Reply() + "\n")); err != nil {
		return
	}
	// Close our side first and read what the peer may have sent (an
	// agent-send string), so that the close sends no reset that could
	// destroy the line before HAProxy reads it.
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
	}
	_ = c.SetReadDeadline(time.Now().Add(p.a.cfg.linger))
	var buf [512]byte
	for {
		if _, err := c.Read(buf[:]); err != nil {
			return
		}
	}
}

func (p *peer) sampler() {
	defer p.conns.Done()
	t := time.NewTicker(sampleEvery)
	defer t.Stop()
	last := time.Now()
	for {
		select {
		case <-p.stop:
			return
		case now := <-t.C:
			p.a.sample(now.Sub(last))
			last = now
		}
	}
}

func (p *peer) halt() error {
	var err error
	p.once.Do(func() {
		close(p.stop)
		err = p.ln.Close()
	})
	return err
}

// Shutdown stops accepting and waits for the connections being answered,
// until ctx ends.
func (p *peer) Shutdown(ctx context.Context) error {
	_ = p.halt()
	done := make(chan struct{})
	go func() { p.conns.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Close stops at once; connections being answered end within their 2 s
// deadline.
func (p *peer) Close() error { return p.halt() }
