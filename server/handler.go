package server

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/go-chi/chi/v5"

	"github.com/probekit/probes"
)

// Gate is what the HTTP layer needs of a gate: its current report, and a
// push on every change. *startup.Gate, *liveness.Gate and *readiness.Gate
// implement it.
type Gate interface {
	Report() probes.Report
	Subscribe(fn func()) (cancel func())
}

// HandlerOption configures the probe handlers.
type HandlerOption interface {
	applyHandler(*handlerConfig)
}

type handlerOptionFunc func(*handlerConfig)

func (f handlerOptionFunc) applyHandler(c *handlerConfig) { f(c) }

type handlerConfig struct {
	authorize func(*http.Request) bool
	info      Info
}

// Authorize sets the hook that decides whether a request may see error texts
// (health+json "output" fields and text-form reasons). Check names and statuses
// are always public. The default (and a nil f) authorises no request.
func Authorize(f func(*http.Request) bool) HandlerOption {
	return handlerOptionFunc(func(c *handlerConfig) { c.authorize = f })
}

// Service sets the service description every health+json body carries.
// Default: none.
func Service(info Info) HandlerOption {
	return handlerOptionFunc(func(c *handlerConfig) { c.info = info })
}

// Handler serves one gate over HTTP: its aggregate, and one check when the
// route that reaches it sets the {check} path wildcard, as Register's
// "/readyz/{check}" does.
//
// Responses are rendered when the gate changes, not per request, so a probe
// request without query parameters is an atomic load and a write; ?verbose
// JSON, ?exclude and single-check requests build a report per request. Methods other than GET and
// HEAD get 405; pass and warn give 200, fail 503.
type Handler struct {
	gate Gate
	path string // "readyz", for the text form's last line
	cfg  handlerConfig

	mu   sync.Mutex // serialises renders, so the newest report wins
	view atomic.Pointer[view]

	fails  atomic.Uint64 // failing answers of the gate, for DrainUntilProbed
	failed chan struct{} // nudged on each failing answer; capacity 1
}

var _ http.Handler = (*Handler)(nil)

// view is the gate's state rendered ahead of requests.
type view struct {
	code                    int
	json, text, verboseText []byte
	jsonLen, textLen        []string
	verboseTextLen          []string
}

// NewHandler returns the handler of g. path names the endpoint in the text
// form's closing line, such as "readyz".
func NewHandler(g Gate, path string, opts ...HandlerOption) *Handler {
	h := &Handler{gate: g, path: path, failed: make(chan struct{}, 1)}
	for _, o := range opts {
		if o != nil {
			o.applyHandler(&h.cfg)
		}
	}
	g.Subscribe(h.render)
	h.render()
	return h
}

func (h *Handler) render() {
	h.mu.Lock()
	defer h.mu.Unlock()
	rep := h.gate.Report()
	v := &view{
		code:        statusCode(rep.Status()),
		json:        renderJSON(&h.cfg.info, &rep, renderOptions{}),
		text:        renderText(&rep, h.path, renderOptions{}),
		verboseText: renderText(&rep, h.path, renderOptions{verbose: true}),
	}
	v.jsonLen, v.textLen, v.verboseTextLen = contentLength(v.json), contentLength(v.text), contentLength(v.verboseText)
	h.view.Store(v)
}

func statusCode(s probes.Status) int {
	if s.OK() {
		return http.StatusOK
	}
	return http.StatusServiceUnavailable
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
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		methodNotAllowed(w)
		return
	}
	if check := checkName(r); check != "" {
		h.serveCheck(w, r, check)
		return
	}
	text := wantsText(r)
	v := h.view.Load()
	if v.code != http.StatusOK {
		h.answeredFail()
	}
	switch q := r.URL.RawQuery; {
	case q == "verbose" && text && !h.authorized(r):
		write(w, r, v.code, hdrText, v.verboseText, v.verboseTextLen)
		return
	case q != "":
		h.serveQuery(w, r, text)
		return
	}
	if text {
		write(w, r, v.code, hdrText, v.text, v.textLen)
		return
	}
	write(w, r, v.code, hdrJSON, v.json, v.jsonLen)
}

func write(w http.ResponseWriter, r *http.Request, code int, ctype []string, b []byte, clen []string) {
	hdr := w.Header()
	hdr["Content-Type"] = ctype
	hdr["Cache-Control"] = hdrNoStore
	if r.Method == http.MethodHead {
		// net/http cannot know a HEAD response's length; tell it.
		if clen == nil {
			clen = contentLength(b)
		}
		hdr["Content-Length"] = clen
		w.WriteHeader(code)
		return
	}
	w.WriteHeader(code)
	w.Write(b) //nolint:errcheck // the client went away; nothing to do
}

func methodNotAllowed(w http.ResponseWriter) {
	hdr := w.Header()
	hdr["Allow"] = hdrAllow
	hdr["Content-Type"] = hdrText
	hdr["Cache-Control"] = hdrNoStore
	w.WriteHeader(http.StatusMethodNotAllowed)
	w.Write([]byte("method not allowed: use GET or HEAD\n")) //nolint:errcheck
}

// answeredFail counts a failing answer of the gate and nudges a waiting
// probe-aware drain.
func (h *Handler) answeredFail() {
	h.fails.Add(1)
	select {
	case h.failed <- struct{}{}:
	default:
	}
}

// wantsText reports whether the client prefers the text form: text/plain
// ranked above every JSON type by the Accept header's order and q-values.
// Without a preference the answer is health+json.
func wantsText(r *http.Request) bool {
	text, json := -1.0, -1.0
	for _, header := range r.Header["Accept"] {
		for part := range strings.SplitSeq(header, ",") {
			mediaType, params, _ := strings.Cut(part, ";")
			q := quality(params)
			switch mediaType = strings.TrimSpace(mediaType); {
			case strings.EqualFold(mediaType, "text/plain"):
				text = max(text, q)
			case strings.Contains(mediaType, "json"):
				json = max(json, q)
			}
		}
	}
	return text > 0 && text > json
}

// quality returns the q parameter of a media range's parameters, 1 if absent.
func quality(params string) float64 {
	for p := range strings.SplitSeq(params, ";") {
		k, v, ok := strings.Cut(strings.TrimSpace(p), "=")
		if ok && strings.EqualFold(k, "q") {
			if q, err := strconv.ParseFloat(strings.TrimSpace(v), 64); err == nil {
				return q
			}
			return 0
		}
	}
	return 1
}

// checkName returns the check a request names: the {check} path wildcard
// that Register's patterns set (chi sets it too), or "" for the gate itself.
func checkName(r *http.Request) string {
	if name := r.PathValue("check"); name != "" {
		return name
	}
	return chi.URLParam(r, "check")
}

func (h *Handler) authorized(r *http.Request) bool {
	return h.cfg.authorize != nil && h.cfg.authorize(r)
}

// serveQuery answers ?verbose and ?exclude=, rendering per request.
func (h *Handler) serveQuery(w http.ResponseWriter, r *http.Request, text bool) {
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		q = url.Values{} // a malformed query is answered as if absent
	}
	o := renderOptions{authz: h.authorized(r)}
	_, o.verbose = q["verbose"]
	rep := h.gate.Report()
	if ex := q["exclude"]; len(ex) > 0 {
		set := make(map[string]bool, len(ex))
		for _, name := range ex {
			set[name] = true
			if _, ok := rep.Check(name); !ok {
				o.unmatched = append(o.unmatched, name)
			}
		}
		o.skip = func(name string) bool { return set[name] }
	}
	code := statusCode(o.status(&rep))
	if text {
		write(w, r, code, hdrText, renderText(&rep, h.path, o), nil)
		return
	}
	write(w, r, code, hdrJSON, renderJSON(&h.cfg.info, &rep, o), nil)
}

// serveCheck answers for one check or warm-up task; 404 if there is none.
func (h *Handler) serveCheck(w http.ResponseWriter, r *http.Request, name string) {
	rep := h.gate.Report()
	authz := h.authorized(r)
	one := probes.Report{Gate: rep.Gate, Phase: rep.Phase}
	var st probes.Status
	var err error
	if c, ok := rep.Check(name); ok {
		st, err = c.Status, c.Err
		one.Checks = []probes.Result{c}
	} else if t, ok := findTask(&rep, name); ok {
		st, err = taskStatus(&t), t.Err
		one.Tasks = []probes.TaskState{t}
	} else {
		write(w, r, http.StatusNotFound, hdrText, []byte("no such check\n"), nil)
		return
	}
	one.Base = st
	if wantsText(r) {
		var b strings.Builder
		if st.OK() {
			b.WriteString("ok\n")
		} else {
			b.WriteString(name + " failed: " + reason(err, authz) + "\n")
		}
		write(w, r, statusCode(st), hdrText, []byte(b.String()), nil)
		return
	}
	write(w, r, statusCode(st), hdrJSON, renderJSON(&h.cfg.info, &one, renderOptions{verbose: true, authz: authz}), nil)
}

func findTask(rep *probes.Report, name string) (probes.TaskState, bool) {
	for _, t := range rep.Tasks {
		if t.Name == name {
			return t, true
		}
	}
	return probes.TaskState{}, false
}
