// Package statuspage renders a lifecycle for people: a self-contained HTML
// page of the phase, the warm-up, every gate and check (status, since when,
// a latency sparkline and a strip of the last hour) and the recent
// transitions, rendered on the server and kept live by a server-sent event
// stream. It is what a browser gets from the deep view when
// server.Browsers(page) is given to server.Register; curl, the kubelet and
// monitors keep their JSON and text.
//
// The page loads nothing from elsewhere: its style and script are inline,
// allowed by hash in a strict Content-Security-Policy, and it works with
// JavaScript off (it is simply not live then). Streams have a budget of
// their own (MaxStreams): each is taken off the listener's connection
// count, written with a deadline, and dropped when its reader stalls, so
// that open pages never cost a probe.
//
// Testing contract: the phase element carries data-phase="<phase>"; a
// cordon's element data-cordon="<reason>"; each check data-check="<gate>/<name>" and data-status="pass|warn|fail" (and
// data-flapping when it flaps); each warm-up task data-task="<name>" and
// data-progress="<0-100>"; each timeline entry data-transition with
// data-subject, data-from and data-to.
//
// The package uses only the standard library.
package statuspage

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"html/template"
	"net"
	"net/http"

	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/probekit/probes"
	"github.com/probekit/probes/history"
	"github.com/probekit/probes/internal/opt"
)

// Defaults of the options.
const (
	DefaultMaxStreams = 100
	// DefaultRefresh is how often open pages get the figures that change
	// without a verdict changing (latencies, ages); a verdict change is
	// pushed at once.
	DefaultRefresh = 5 * time.Second
	writeTimeout   = 2 * time.Second
	// A stream ends after maxStreamLife (its page reconnects at once), is
	// kept alive every streamKeepAlive, and has a small send buffer, so
	// that a page that went away frees its place soon.
	maxStreamLife     = 10 * time.Minute
	streamKeepAlive   = 10 * time.Second
	streamWriteBuffer = 32 << 10
)

// Option configures a Page. An invalid value makes New return an error
// that names the option.
type Option func(*config) error

type config struct {
	maxStreams int
	refresh    time.Duration
	title      string
}

// MaxStreams bounds the live pages open at once; a stream beyond it gets
// 503, and its page stays as it was rendered. When the lifecycle's read
// policy can authorise readers (probes.Readers), a quarter of the places
// is kept for those it authorises. A page that was closed
// frees its place when a write to it fails (within two Refresh intervals);
// one whose reader vanished, within TCP keepalive's probes (about 10 s
// apart); every stream ends after ten minutes and its page reconnects.
// Default DefaultMaxStreams.
func MaxStreams(n int) Option {
	return func(c *config) error {
		if n < 1 {
			return fmt.Errorf("MaxStreams(%d): must be at least 1", n)
		}
		c.maxStreams = n
		return nil
	}
}

// Refresh sets how often open pages are sent the figures that change
// without a verdict changing. Default DefaultRefresh.
func Refresh(d time.Duration) Option {
	return func(c *config) error {
		if d <= 0 {
			return fmt.Errorf("Refresh(%s): must be positive", d)
		}
		c.refresh = d
		return nil
	}
}

// Title sets the page's title. Default "Service health".
func Title(s string) Option {
	return func(c *config) error { c.title = s; return nil }
}

// Page is the status page of one lifecycle. Create one with New; it is an
// http.Handler.
type Page struct {
	lc   *probes.Lifecycle
	hist *history.History
	cfg  config

	streams  atomic.Int64
	frag     atomic.Pointer[fragments]
	subsMu   sync.Mutex
	subs     map[chan struct{}]struct{}
	isClosed bool // guarded by subsMu

	nudge   chan struct{} // capacity 1: something changed
	done    chan struct{}
	stopped sync.WaitGroup // the render loop and every stream
	cancels []func()
	closed  sync.Once
}

// fragments are the live part of the page, framed as server-sent events,
// for unauthorised and authorised readers.
type fragments struct {
	public, authorized []byte
}

var _ http.Handler = (*Page)(nil)

// New returns the page of lc, with the transitions and rollups of hist
// (nil for none). It fails when lc is nil, or with an error naming the
// option when an option is invalid. Close it when done: it owns one
// goroutine, which renders for the open streams.
func New(lc *probes.Lifecycle, hist *history.History, opts ...Option) (*Page, error) {
	if lc == nil {
		return nil, errors.New("statuspage: New(nil, ...): need a *probes.Lifecycle")
	}
	cfg := config{maxStreams: DefaultMaxStreams, refresh: DefaultRefresh, title: "Service health"}
	if err := opt.Apply("statuspage", &cfg, opts); err != nil {
		return nil, err
	}
	p := &Page{lc: lc, hist: hist, cfg: cfg, subs: map[chan struct{}]struct{}{},
		nudge: make(chan struct{}, 1), done: make(chan struct{})}
	poke := func() {
		select {
		case p.nudge <- struct{}{}:
		default:
		}
	}
	// Every change but an execution (the figures those move are sent every
	// Refresh), of every gate, those built after the page included.
	p.cancels = append(p.cancels, lc.Watch(func(c probes.Change) {
		if c.Kind != probes.Executed {
			poke()
		}
	}))
	p.stopped.Add(1)
	go p.loop()
	return p, nil
}

// Close ends every stream and the page's goroutine, and returns once they
// have returned. Pages already open stay as they were last rendered.
// Streams are taken off the HTTP server, so its Shutdown does not end
// them: close the page when the server has stopped.
func (p *Page) Close() {
	p.closed.Do(func() {
		for _, c := range p.cancels {
			c()
		}
		p.subsMu.Lock()
		p.isClosed = true
		p.subsMu.Unlock()
		close(p.done)
		p.stopped.Wait()
	})
}

// loop renders once per change (or refresh) and tells every stream; with
// no stream open it renders nothing, and a stream that opens asks for a
// rendering (see serveStream).
func (p *Page) loop() {
	defer p.stopped.Done()
	t := time.NewTicker(p.cfg.refresh)
	defer t.Stop()
	for {
		select {
		case <-p.done:
			return
		case <-p.nudge:
		case <-t.C:
		}
		p.subsMu.Lock()
		open := len(p.subs)
		p.subsMu.Unlock()
		if open == 0 {
			p.frag.Store(nil) // stale from here on; nobody to send it to
			continue
		}
		p.render()
		p.subsMu.Lock()
		for c := range p.subs {
			select {
			case c <- struct{}{}:
			default: // a nudge not yet taken already says "send the latest"
			}
		}
		p.subsMu.Unlock()
	}
}

func (p *Page) render() {
	d := p.snapshot()
	// Framed once here, not per stream: a thousand open pages cost one
	// rendering and one framing per change. The authorised variant only
	// when someone can be authorised.
	pub := event(live(d, probes.Anonymous))
	auth := pub
	if p.lc.Authorizes() {
		auth = event(live(d, probes.Authorized))
	}
	p.frag.Store(&fragments{public: pub, authorized: auth})
}

// live renders the live part of the page: what a stream sends, and what
// a page request embeds.
func live(d snapshot, a probes.Audience) []byte {
	var b bytes.Buffer
	if err := tmpl.ExecuteTemplate(&b, "live", d.view(a)); err != nil {
		return []byte("<p>cannot render the page</p>")
	}
	return b.Bytes()
}

// ServeHTTP answers the page, or with ?events (or Accept:
// text/event-stream) its stream. Methods other than GET and HEAD get 405.
func (p *Page) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed: use GET or HEAD", http.StatusMethodNotAllowed)
		return
	}
	if r.URL.Query().Has("events") || strings.Contains(r.Header.Get("Accept"), "text/event-stream") {
		p.stream(w, r)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Security-Policy", csp)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	// Rendered for the request: a page is opened by a person, seldom, and
	// must show the present, not the last push.
	body := live(p.snapshot(), p.lc.Audience(r))
	var b bytes.Buffer
	if err := tmpl.ExecuteTemplate(&b, "page", pageData{Title: p.cfg.title, Style: template.CSS(style),
		Script: template.JS(script), Live: template.HTML(body)}); err != nil {
		http.Error(w, "cannot render the page", http.StatusInternalServerError)
		return
	}
	w.Write(b.Bytes()) //nolint:errcheck // the client went away
}

// stream serves server-sent events: the live part of the page, at once
// and after every change. The connection is taken from the server
// (hijacked), so that it counts against MaxStreams only, never against the
// listener's connections, and is written with a deadline: a reader that
// stalls is dropped.
func (p *Page) stream(w http.ResponseWriter, r *http.Request) {
	authz := p.lc.Audience(r) == probes.Authorized
	// A quarter of the places is kept for authorised readers, so that
	// anonymous pages cannot lock the operators out.
	limit := int64(p.cfg.maxStreams)
	if !authz && p.lc.Authorizes() {
		limit -= int64(p.cfg.maxStreams) / 4
	}
	if p.streams.Add(1) > limit {
		p.streams.Add(-1)
		w.Header().Set("Retry-After", "10")
		http.Error(w, "too many open status pages", http.StatusServiceUnavailable)
		return
	}
	defer p.streams.Add(-1)
	p.subsMu.Lock()
	if p.isClosed {
		p.subsMu.Unlock()
		http.Error(w, "the status page is closed", http.StatusServiceUnavailable)
		return
	}
	p.stopped.Add(1) // under the lock Close takes before it waits
	p.subsMu.Unlock()
	defer p.stopped.Done()
	conn, rw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		// HTTP/2 has no hijacking: the page stays as rendered.
		http.Error(w, "live updates need HTTP/1.1", http.StatusNotImplemented)
		return
	}
	defer conn.Close()
	if tc, ok := conn.(*net.TCPConn); ok {
		// A reader that vanished (no FIN, no RST) is found by keepalive;
		// a small send buffer makes one that stalls fail its writes soon.
		tc.SetKeepAlive(true)                  //nolint:errcheck // best effort
		tc.SetKeepAlivePeriod(streamKeepAlive) //nolint:errcheck // best effort
		tc.SetWriteBuffer(streamWriteBuffer)   //nolint:errcheck // best effort
	}
	life := time.NewTimer(maxStreamLife) // the page reconnects at once
	defer life.Stop()
	nudge := make(chan struct{}, 1)
	p.subsMu.Lock()
	p.subs[nudge] = struct{}{}
	p.subsMu.Unlock()
	select {
	case p.nudge <- struct{}{}: // render for this stream too
	default:
	}
	defer func() {
		p.subsMu.Lock()
		delete(p.subs, nudge)
		p.subsMu.Unlock()
	}()
	// A reader that leaves is noticed at the next write (every change, and
	// at least every Refresh): no goroutine per stream waits on its reads.
	write := func(b []byte) bool {
		conn.SetWriteDeadline(time.Now().Add(writeTimeout)) //nolint:errcheck // the write reports it
		if _, err := rw.Write(b); err != nil {
			return false
		}
		return rw.Flush() == nil
	}
	if !write([]byte("HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-store\r\nConnection: close\r\nX-Accel-Buffering: no\r\n\r\nretry: 1000\n\n")) {
		return
	}
	var last *fragments
	for {
		if f := p.frag.Load(); f != nil && f != last {
			last = f
			frag := f.public
			if authz {
				frag = f.authorized
			}
			if !write(frag) {
				return
			}
		}
		select {
		case <-nudge:
		case <-life.C:
			return
		case <-p.done:
			return
		}
	}
}

// event frames b as one server-sent event, a data: line per line. A lone
// carriage return ends a line in the event-stream format as a newline
// does: it becomes one, so that no text in the page (an error's, say) can
// start a field of its own (event:, retry:).
func event(b []byte) []byte {
	b = bytes.ReplaceAll(bytes.ReplaceAll(b, []byte("\r\n"), []byte("\n")), []byte("\r"), []byte("\n"))
	var out bytes.Buffer
	out.Grow(len(b) + len(b)/8)
	for line := range bytes.Lines(b) {
		out.WriteString("data: ")
		out.Write(bytes.TrimSuffix(line, []byte("\n")))
		out.WriteByte('\n')
	}
	out.WriteByte('\n')
	return out.Bytes()
}

// Streams returns how many streams are open.
func (p *Page) Streams() int { return int(p.streams.Load()) }

func hash(s string) string {
	sum := sha256.Sum256([]byte(s))
	return "'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"
}

var csp = "default-src 'none'; style-src " + hash(style) + "; script-src " + hash(script) +
	"; connect-src 'self'; img-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
