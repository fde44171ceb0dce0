package server

import (
	"cmp"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/probekit/probes"
	"github.com/probekit/probes/internal/accept"
	"github.com/probekit/probes/internal/opt"
	"github.com/probekit/probes/internal/versioned"
)

// HandlerOption configures the probe handlers.
type HandlerOption func(*handlerConfig) error

type handlerConfig struct {
	info     Info
	deepPath *string      // Register only; nil: HealthPath
	browsers http.Handler // Register's deep view only; see Browsers
}

// Browsers makes the deep view that Register mounts hand requests from
// browsers (those that prefer text/html to health+json and the text form,
// by q-value, or ask for a text/event-stream) to
// h, such as a history.Page, on the same URL: a person opening /healthz
// gets a page, while curl, the kubelet and monitors keep their JSON and
// text. It is Register's alone, and applies to the deep view only:
// NewHandler and Mount refuse it.
func Browsers(h http.Handler) HandlerOption {
	return func(c *handlerConfig) error {
		if h == nil {
			return errors.New("Browsers(nil): need a handler")
		}
		c.browsers = h
		return nil
	}
}

// The forms a probe answer offers, the deep view with Browsers, and a
// check's own path: health+json first, which a tie or an Accept nothing
// matches gets.
var (
	probeForms = []accept.Form{accept.JSON, accept.Text}
	pageForms  = []accept.Form{accept.JSON, accept.Text, accept.HTML, accept.Events}
)

// DeepView moves the deep view Register mounts from /healthz to path, or
// leaves it out when path is "" (for a service that serves /healthz itself).
// It is Register's alone: NewHandler and Mount refuse it.
func DeepView(path string) HandlerOption {
	return func(c *handlerConfig) error { c.deepPath = &path; return nil }
}

// Service sets the service description every health+json body carries.
// Default: serviceId and releaseId from the lifecycle's Identity (Service
// and Release), nothing else; the fields info leaves empty keep those.
func Service(info Info) HandlerOption {
	return func(c *handlerConfig) error { c.info = info; return nil }
}

// Handler serves one gate over HTTP: its aggregate, and one check or task
// when the route that reaches it sets the {check} path wildcard, as
// Register's "/readyz/{check}" does.
//
// The aggregate answer, in both forms, is rendered when the gate's verdict
// changes, not per request. A request compares the rendered version with the
// gate's and re-renders first if a change has not been rendered yet, so a
// move or a result is in the very next response, whatever the listeners are
// doing. Answers that show the latest details (?verbose and each check's own
// path) are rendered by the first request after any new result and read by
// the ones after it. What a request may read is the lifecycle's read policy's
// to say (probes.Readers): reasons go to authorised readers only. Only
// answers that differ per request are rendered for it (?exclude=); an
// authorised reader's answers are rendered once per state. Methods other than
// GET and HEAD get 405; pass and warn give 200, fail 503.
type Handler struct {
	gate   probes.Gate
	lc     *probes.Lifecycle // its read policy: see authorized
	path   string            // "readyz", for the text form's last line
	cfg    handlerConfig
	cancel func()

	views  versioned.Cache[*view]   // aggregate answers, by Version
	detail versioned.Cache[*detail] // detailed answers, by Revision

	probed probeFails // see DrainUntilProbed
}

var _ http.Handler = (*Handler)(nil)

// NewHandler returns the handler of g. It fails when g is nil.
func NewHandler(g probes.Gate, opts ...HandlerOption) (*Handler, error) {
	cfg, err := handlerOptions(opts)
	if err != nil {
		return nil, err
	}
	return newHandler(g, cfg)
}

// handlerOptions applies opts for a single handler, refusing DeepView,
// which only Register reads.
func handlerOptions(opts []HandlerOption) (handlerConfig, error) {
	var cfg handlerConfig
	if err := opt.Apply("server", &cfg, opts); err != nil {
		return cfg, err
	}
	if cfg.deepPath != nil {
		return cfg, fmt.Errorf("server: DeepView(%q): only Register mounts a deep view", *cfg.deepPath)
	}
	if cfg.browsers != nil {
		return cfg, errors.New("server: Browsers: only Register's deep view serves a page")
	}
	return cfg, nil
}

func newHandler(g probes.Gate, cfg handlerConfig) (*Handler, error) {
	if g == nil {
		return nil, errors.New("server: NewHandler(nil): need a gate")
	}
	h := &Handler{gate: g, lc: g.Lifecycle(), path: Path(g.Kind())[1:], cfg: cfg, probed: newProbeFails()}
	if h.lc != nil {
		id := h.lc.Identity()
		h.cfg.info.ServiceID = cmp.Or(h.cfg.info.ServiceID, id.Service)
		h.cfg.info.ReleaseID = cmp.Or(h.cfg.info.ReleaseID, id.Release)
		h.cfg.info.instance = id.Instance
	}
	if named, ok := g.(interface{ Name() string }); ok {
		h.path = named.Name() // a group
	}
	h.cancel = g.Subscribe(func() { h.render() })
	h.render()
	return h, nil
}

// Close stops the handler from following its gate's changes, for handlers
// built and thrown away while the gate lives on. A closed handler still
// answers, rendering per request whenever the gate has changed.
func (h *Handler) Close() { h.cancel() }

// current returns the view of the gate's present state.
func (h *Handler) current() *view {
	if v, ok := h.views.Load(h.gate.Version()); ok {
		return v
	}
	return h.render()
}

// render renders the gate's state unless the stored view is current.
func (h *Handler) render() *view {
	return h.views.Update(h.gate.Version, func() *view {
		rep := h.gate.Report()
		return newView(&h.cfg.info, &rep, h.path)
	})
}

// Shared header values; never appended to in place (their capacity equals
// their length), so sharing them between responses is safe.
var (
	hdrJSON    = []string{"application/health+json"}
	hdrText    = []string{"text/plain; charset=utf-8"}
	hdrNoStore = []string{"no-store"}
	hdrAllow   = []string{"GET, HEAD"}
)

// ServeHTTP answers a probe.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	v := h.current()
	if v.rep.Phase >= probes.Draining {
		markProbe(r) // only a drain tells probes from late requests; see Server.track
	}
	if r.ContentLength != 0 {
		// Answer now and close: net/http would otherwise read what is left
		// of the body before answering, and again before closing, waiting
		// on a client that may never send it.
		w.Header()["Connection"] = hdrClose
		http.NewResponseController(w).SetReadDeadline(time.Now()) //nolint:errcheck // a writer without a connection has no body to wait for
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		methodNotAllowed(w)
		return
	}
	name := r.PathValue("check")
	if gate := r.PathValue("gate"); gate != "" {
		name = gate + "/" + name // the deep view's canonical names
	}
	// The page shows the whole deep view: a query that changes the
	// verdict (?exclude=) is answered in JSON or text, so that the page
	// and the JSON never give two status codes for one URL.
	page := h.cfg.browsers != nil && name == "" && !strings.Contains(r.URL.RawQuery, "exclude")
	forms := probeForms
	if page {
		forms = pageForms
	}
	form := accept.Negotiate(r.Header["Accept"], forms...)
	if page && (form >= accept.HTML || r.URL.RawQuery != "" && r.URL.Query().Has("events")) {
		// A browser's: the page, or its stream. A page is monitoring,
		// like a probe (marked above), and gets the same method and
		// body rules.
		h.cfg.browsers.ServeHTTP(w, r)
		return
	}
	text := form == accept.Text
	if name != "" {
		h.serveCheck(w, r, name, text)
		return
	}
	if r.URL.RawQuery == "" {
		if v.code != http.StatusOK {
			h.probed.answered(r)
			if h.authorized(r) {
				if d := h.details(); d.view.secrets {
					d.authorised().plain.pick(text).write(w, r)
					return
				}
			}
		}
		v.plain.pick(text).write(w, r)
		return
	}
	d := h.details()
	q := parseQuery(r.URL.RawQuery)
	authz := d.view.secrets && h.authorized(r)
	switch {
	case len(q.exclude) > 0:
		renderQuery(d.view, q, authz).pick(text).write(w, r)
	case authz && q.verbose:
		d.authorised().verbose.pick(text).write(w, r)
	case authz:
		d.authorised().plain.pick(text).write(w, r)
	case q.verbose:
		d.verbose.pick(text).write(w, r)
	default: // only parameters a probe ignores
		d.view.plain.pick(text).write(w, r)
	}
}

// details returns the detailed answers of the gate's present state,
// rendering them first if anything in the report changed since the last
// time.
func (h *Handler) details() *detail {
	if d, ok := h.detail.Load(h.gate.Revision()); ok {
		return d
	}
	return h.detail.Update(h.gate.Revision, func() *detail {
		rep := h.gate.Report()
		return newDetail(newView(&h.cfg.info, &rep, h.path))
	})
}

func (h *Handler) serveCheck(w http.ResponseWriter, r *http.Request, name string, text bool) {
	d := h.details()
	p, ok := d.checks[name]
	if !ok {
		notFound.write(w, r)
		return
	}
	if d.view.secrets && h.authorized(r) {
		p = d.authorised().checks[name]
	}
	p.pick(text).write(w, r)
}

// authorized asks the lifecycle's read policy whether r reads reasons.
func (h *Handler) authorized(r *http.Request) bool {
	return h.lc.Audience(r) == probes.Authorized
}

var (
	notFound = newAnswer(http.StatusNotFound, hdrText, []byte("no such check\n"))
	refused  = newAnswer(http.StatusMethodNotAllowed, hdrText, []byte("method not allowed: use GET or HEAD\n"))
)

func methodNotAllowed(w http.ResponseWriter) {
	w.Header()["Allow"] = hdrAllow
	refused.writeHeaders(w)
	w.WriteHeader(refused.code)
	w.Write(refused.body) //nolint:errcheck // the client went away; nothing to do
}

// MethodNotAllowed answers any request with the probe contract's 405 (with
// Allow and Cache-Control). chi answers methods it does not know (FOO) with
// its own 405 before any route runs; give it this one with
// r.MethodNotAllowed(server.MethodNotAllowed) so probe paths keep the contract.
func MethodNotAllowed(w http.ResponseWriter, _ *http.Request) { methodNotAllowed(w) }
