package history

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"html/template"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/probekit/probes"
	"github.com/probekit/probes/internal/accept"
	"github.com/probekit/probes/internal/budget"
	"github.com/probekit/probes/internal/look"
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

// PageOption configures a Page. An invalid value makes NewPage return an error
// that names the option.
type PageOption func(*pageConfig) error

type pageConfig struct {
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
func MaxStreams(n int) PageOption {
	return func(c *pageConfig) error {
		if n < 1 {
			return fmt.Errorf("MaxStreams(%d): must be at least 1", n)
		}
		c.maxStreams = n
		return nil
	}
}

// Refresh sets how often open pages are sent the figures that change
// without a verdict changing. Default DefaultRefresh.
func Refresh(d time.Duration) PageOption {
	return func(c *pageConfig) error {
		if d <= 0 {
			return fmt.Errorf("Refresh(%s): must be positive", d)
		}
		c.refresh = d
		return nil
	}
}

// Title sets the page's title. Default: the lifecycle's identity
// (probes.Identify) as "service release on instance", or "Service health"
// without one.
func Title(s string) PageOption {
	return func(c *pageConfig) error { c.title = s; return nil }
}

// Page is the status page of one lifecycle. Create one with NewPage; it is an
// http.Handler.
type Page struct {
	lc      *probes.Lifecycle
	hist    *History
	deep    *probes.Group // the deep view: the page answers with its status
	cfg     pageConfig
	streams *budget.Budget

	renderMu sync.Mutex                // one rendering at a time
	cur      atomic.Pointer[rendering] // the latest, shared by every reader

	subsMu   sync.Mutex
	subs     map[chan struct{}]struct{}
	isClosed bool // guarded by subsMu

	nudge  chan struct{} // capacity 1: something changed
	done   chan struct{} // closed when the page stops (Close, or the end of lc.Run)
	stop   sync.Once
	open   sync.WaitGroup // every stream
	cancel func()         // the page's Watch
}

// rendering is the page at one state of the deep view and one refresh tick,
// for both audiences: rendered once, and read by every page request and
// every stream until the next change or tick.
type rendering struct {
	version uint64 // the deep view's Version
	added   uint64 // the History's transitions recorded (see History.added)
	tick    int64  // the refresh tick (see Page.tick)
	code    int    // the deep view's status code
	public  *shown
	authed  *shown
}

// shown is one rendering for one audience: the live part, framed as a
// server-sent event, and inside the whole page.
type shown struct {
	event, page []byte
}

func (r *rendering) of(a probes.Audience) *shown {
	if a == probes.Authorized {
		return r.authed
	}
	return r.public
}

var _ http.Handler = (*Page)(nil)

// titleOf is the page's default title for a service of identity id.
func titleOf(id probes.Identity) string {
	if id.Service == "" {
		return "Service health"
	}
	t := id.Service
	if id.Release != "" {
		t += " " + id.Release
	}
	if id.Instance != "" {
		t += " on " + id.Instance
	}
	return t
}

// NewPage returns the page of lc, with the transitions and rollups of hist
// (nil for none). It fails when lc is nil, when lc's Run has already
// returned, or with an error naming the option when an option is invalid.
// Its work (pushing changes to open pages) is lc's: Run starts it and ends
// it, and every stream with it; Close ends them sooner.
func NewPage(lc *probes.Lifecycle, hist *History, opts ...PageOption) (*Page, error) {
	if lc == nil {
		return nil, errors.New("history: NewPage(nil, ...): need a *probes.Lifecycle")
	}
	cfg := pageConfig{maxStreams: DefaultMaxStreams, refresh: DefaultRefresh}
	if err := opt.Apply("history", &cfg, opts); err != nil {
		return nil, err
	}
	if cfg.title == "" {
		cfg.title = titleOf(lc.Identity())
	}
	deep, err := probes.NewGroup(lc, "healthz")
	if err != nil {
		return nil, fmt.Errorf("history: %w", err)
	}
	// A quarter of the places is kept for authorised readers, so that
	// anonymous pages cannot lock the operators out.
	reserved := 0
	if lc.Authorizes() {
		reserved = cfg.maxStreams / 4
	}
	streams, err := budget.New(budget.Config{Max: cfg.maxStreams, Reserved: reserved})
	if err != nil {
		return nil, fmt.Errorf("history: MaxStreams(%d): %w", cfg.maxStreams, err)
	}
	p := &Page{lc: lc, hist: hist, deep: deep, cfg: cfg, streams: streams, subs: map[chan struct{}]struct{}{},
		nudge: make(chan struct{}, 1), done: make(chan struct{})}
	// Every change but an execution (the figures those move are sent every
	// Refresh), of every gate, those built after the page included.
	p.cancel = lc.Watch(func(c probes.Change) {
		if c.Kind != probes.Executed {
			select {
			case p.nudge <- struct{}{}:
			default:
			}
		}
	})
	if err := lc.Go("status page", p.loop); err != nil {
		p.cancel()
		return nil, fmt.Errorf("history: %w", err)
	}
	return p, nil
}

// Close ends every stream and returns once they have returned. Pages
// already open stay as they were last rendered. Streams are taken off the
// HTTP server, so its Shutdown does not end them: the end of the
// lifecycle's Run does, or Close.
func (p *Page) Close() {
	p.halt()
	p.open.Wait()
}

// halt stops the page: no stream opens, and every open one ends.
func (p *Page) halt() {
	p.stop.Do(func() {
		p.cancel()
		p.subsMu.Lock()
		p.isClosed = true
		p.subsMu.Unlock()
		close(p.done)
	})
}

// loop tells every open stream of each new rendering: on a change at once,
// and every Refresh for the figures that move without one. With no stream
// open it renders nothing, and its Refresh ticker is stopped, so that an
// unwatched page does not wake the process: a stream that opens nudges it.
// It ends with the lifecycle's Run, and stops the page then.
func (p *Page) loop(ctx context.Context) error {
	defer p.halt()
	var t *time.Ticker
	var tick <-chan time.Time // t's, nil while no stream is open
	defer func() {
		if t != nil {
			t.Stop()
		}
	}()
	var told *rendering
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-p.done:
			return nil
		case <-p.nudge:
		case <-tick:
		}
		p.subsMu.Lock()
		open := len(p.subs)
		p.subsMu.Unlock()
		if open == 0 {
			if t != nil {
				t.Stop()
				t, tick = nil, nil
			}
			continue
		}
		if t == nil {
			t = time.NewTicker(p.cfg.refresh)
			tick = t.C
		}
		if r := p.current(); r != told {
			told = r
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
}

// added counts the transitions the History has recorded; 0 without one.
func (p *Page) added() uint64 {
	if p.hist == nil {
		return 0
	}
	return p.hist.added.Load()
}

// tick numbers the refresh interval now is in: a rendering is fresh for
// the deep view's version and the tick it was made in.
func (p *Page) tick() int64 { return time.Now().UnixNano() / int64(p.cfg.refresh) }

// current returns the latest rendering, rendering first when the deep
// view has changed or a refresh tick has passed since the last one.
func (p *Page) current() *rendering {
	// The History counts apart: a transition is recorded by a watcher of
	// its own, and may land after a rendering of the same version.
	fresh := func() (*rendering, uint64, uint64, int64) {
		ver, added, tick := p.deep.Version(), p.added(), p.tick()
		r := p.cur.Load()
		if r != nil && r.version == ver && r.added == added && r.tick == tick {
			return r, ver, added, tick
		}
		return nil, ver, added, tick
	}
	if r, _, _, _ := fresh(); r != nil {
		return r
	}
	p.renderMu.Lock()
	defer p.renderMu.Unlock()
	r, ver, added, tick := fresh() // the versions are read before the state they render
	if r != nil {
		return r
	}
	r = p.render(ver, added, tick)
	p.cur.Store(r)
	return r
}

func (p *Page) render(ver, added uint64, tick int64) *rendering {
	r := &rendering{version: ver, added: added, tick: tick, code: http.StatusOK}
	if !p.deep.Report().Status().OK() {
		r.code = http.StatusServiceUnavailable
	}
	d := p.snapshot()
	// Both audiences, always: a reader may be authorised by the read
	// policy or by the transport that brought it (probes.WithAudience).
	r.public = p.show(d, probes.Anonymous)
	r.authed = p.show(d, probes.Authorized)
	return r
}

// show renders d for audience a: the live part, framed as an event, and
// the whole page around it.
func (p *Page) show(d snapshot, a probes.Audience) *shown {
	var live bytes.Buffer
	if err := tmpl.ExecuteTemplate(&live, "live", d.view(a)); err != nil {
		live.Reset()
		live.WriteString("<p>cannot render the page</p>")
	}
	var page bytes.Buffer
	if err := tmpl.ExecuteTemplate(&page, "page", pageData{Title: p.cfg.title, Style: template.CSS(style),
		Script: template.JS(script), Live: template.HTML(live.String())}); err != nil {
		page.Reset()
		page.WriteString("<!doctype html><p>cannot render the page</p>")
	}
	return &shown{event: event(live.Bytes()), page: page.Bytes()}
}

// pageForms are the forms the page offers: the page, or its stream.
var pageForms = []accept.Form{accept.HTML, accept.Events}

// ServeHTTP answers the page with the deep view's status code (200 or
// 503), so that a monitor that reads the page sees what one that reads the
// JSON sees; or, for ?events or an Accept that prefers text/event-stream,
// its stream (200: a browser's EventSource gives up for good on any other).
// HEAD gets the headers, never a stream. Methods other than GET and HEAD
// get 405.
func (p *Page) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed: use GET or HEAD", http.StatusMethodNotAllowed)
		return
	}
	events := r.URL.Query().Has("events") || accept.Negotiate(r.Header["Accept"], pageForms...) == accept.Events
	if events && r.Method == http.MethodGet {
		p.stream(w, r)
		return
	}
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	if events { // HEAD: what the stream would say, without opening one
		h.Set("Content-Type", "text/event-stream")
		w.WriteHeader(http.StatusOK)
		return
	}
	cur := p.current()
	body := cur.of(p.lc.Audience(r)).page
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", csp)
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(cur.code)
	if r.Method == http.MethodGet {
		w.Write(body) //nolint:errcheck // the client went away
	}
}

// stream serves server-sent events: the live part of the page, at once
// (the latest rendering, without making anyone else's stream send again)
// and after every change. The connection is taken from the server
// (hijacked), so that it counts against MaxStreams only, never against the
// listener's connections, and is written with a deadline: a reader that
// stalls is dropped.
func (p *Page) stream(w http.ResponseWriter, r *http.Request) {
	aud := p.lc.Audience(r)
	class := budget.Common
	if aud == probes.Authorized {
		class = budget.Privileged
	}
	place, ok := p.streams.Acquire(class, nil)
	if !ok {
		w.Header().Set("Retry-After", "10")
		http.Error(w, "too many open status pages", http.StatusServiceUnavailable)
		return
	}
	defer place.Release()
	p.subsMu.Lock()
	if p.isClosed {
		p.subsMu.Unlock()
		http.Error(w, "the status page is closed", http.StatusServiceUnavailable)
		return
	}
	p.open.Add(1) // under the lock Close takes before it waits
	nudge := make(chan struct{}, 1)
	p.subs[nudge] = struct{}{}
	p.subsMu.Unlock()
	select {
	case p.nudge <- struct{}{}: // the loop starts its Refresh ticker
	default:
	}
	defer p.open.Done()
	defer func() {
		p.subsMu.Lock()
		delete(p.subs, nudge)
		p.subsMu.Unlock()
	}()
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
	sent := p.current()
	if !write(sent.of(aud).event) {
		return
	}
	for {
		select {
		case <-nudge:
		case <-life.C:
			return
		case <-p.done:
			return
		}
		if r := p.cur.Load(); r != sent {
			sent = r
			if !write(r.of(aud).event) {
				return
			}
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
func (p *Page) Streams() int { return p.streams.Held() }

var csp = "default-src 'none'; style-src " + look.Hash(style) + "; script-src " + look.Hash(script) +
	"; connect-src 'self'; img-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
