// Package admin is the operator's switch: a handler that cordons a service
// (takes it out of rotation by hand, for a time), lifts the cordon, and
// tells its state, meant for a Unix socket whose peers the kernel vouches
// for. cmd/probectl is its client.
//
// Nobody reaches it by accident:
//
//   - On a Unix socket (ListenUnix, Handler.Serving), each connection's
//     peer is read with SO_PEERCRED; only the service's own uid and root are
//     let in, or the uids given to AllowUIDs. Another uid is answered 403 as
//     it connects, before any request is read, and never takes one of the
//     connection slots of the peers let in. The socket file is created with
//     mode 0600, so the file system refuses other users first.
//   - Anywhere else (a TCP listener, a router of the service's own) a
//     request is let in only by the authorizer the service gives with
//     Authorize; there is no open default.
//   - Only POST changes state (GET on /cordon is 405), a change must be
//     application/json (a cross-site form post cannot be), its body is at
//     most MaxBody bytes, unknown fields are refused, and the reason is
//     short printable text (probes.CheckCordonReason), since it ends up in
//     notes, logs and HAProxy's line-based agent protocol.
//   - Every change, and every refusal, is logged with the peer's uid and
//     pid (or its address, over TCP).
//   - A cordon or uncordon asked over a Unix socket names its author
//     (probes.Author: the peer's uid and pid, its user name and its command
//     line, masked, looked up as it asks): the cordon carries it, and every
//     surface that shows the cordon's reason to authorised readers shows
//     who set it with it.
//
// The routes, relative to where the handler is mounted:
//
//	GET  /status    the deep view (/healthz?verbose) as authorised readers read it
//	POST /cordon    {"reason": "disk swap", "for": "30m"}   (for: ParseDuration, days too: "7d")
//	POST /uncordon  {}
package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"os"
	"os/user"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/probekit/probes/internal/logs"

	"github.com/probekit/probes"
	"github.com/probekit/probes/server"
)

// MaxBody is the largest request body the handler reads, in bytes.
const MaxBody = 4 << 10

// MinCordon is the shortest time limit a cordon asked for here may have: a
// shorter one is a slip ("1ms" for "1m"), not a decision.
const MinCordon = time.Second

// Peer is who sent a request over a Unix socket, as the kernel reports it.
type Peer struct {
	UID, GID uint32
	PID      int32
	// Unix reports that the credentials came from the kernel (SO_PEERCRED).
	Unix bool
}

type peerKey struct{}

// ConnContext records the peer's credentials of a Unix connection in the
// connection's context: set it as http.Server.ConnContext when serving the
// handler on a server of your own (Handler.Serving does it). Off Linux, and on
// other connections, it records nothing.
func ConnContext(ctx context.Context, c net.Conn) context.Context {
	if p, ok := peerOf(c); ok {
		return context.WithValue(ctx, peerKey{}, p)
	}
	return ctx
}

// PeerFrom returns the peer ConnContext recorded for a request's connection.
func PeerFrom(ctx context.Context) (Peer, bool) {
	p, ok := ctx.Value(peerKey{}).(Peer)
	return p, ok
}

// Option configures a Handler.
type Option func(*config) error

type config struct {
	log       *zap.Logger
	info      server.Info
	authorize func(*http.Request) bool
	uids      []uint32
}

// Slog is Logger for a service that logs through log/slog: the same lines,
// with their fields as slog attributes, go to l's handler. The last of
// Logger and Slog wins.
func Slog(l *slog.Logger) Option {
	return func(c *config) error {
		if l == nil {
			return errors.New("Slog(nil): need a logger")
		}
		c.log = logs.FromSlog(l)
		return nil
	}
}

// Logger sets where changes and refusals are logged; the default logs
// nothing. A cordon or uncordon made here is logged here only, with the
// peer who asked (server.Logger's lines leave it out).
func Logger(l *zap.Logger) Option {
	return func(c *config) error {
		if l == nil {
			return errors.New("Logger(nil): need a logger")
		}
		c.log = l
		return nil
	}
}

// Authorize lets in a request that did not come over a Unix socket with
// known credentials when f returns true: it is how the handler may be
// served over TCP. Without it, such requests are refused (403).
func Authorize(f func(*http.Request) bool) Option {
	return func(c *config) error {
		if f == nil {
			return errors.New("Authorize(nil): need a function")
		}
		c.authorize = f
		return nil
	}
}

// Service sets the service description of the deep view GET /status
// answers: give it the server.Info given to server.Register (server.Service),
// so that both answer the same document. Default: none.
func Service(info server.Info) Option {
	return func(c *config) error {
		c.info = info
		return nil
	}
}

// AllowUIDs lets Unix peers with these uids in, besides the service's own
// uid and root. The socket's mode must let them connect too (ListenUnix).
func AllowUIDs(uids ...uint32) Option {
	return func(c *config) error {
		c.uids = append(c.uids, uids...)
		return nil
	}
}

// Handler serves the admin routes for one lifecycle. Build it with New.
type Handler struct {
	lc   *probes.Lifecycle
	cfg  config
	deep *server.Handler // the deep view, for GET /status
}

// New returns the admin handler of lc. It fails when lc is nil or an
// option is invalid, with an error naming the option.
func New(lc *probes.Lifecycle, opts ...Option) (*Handler, error) {
	if lc == nil {
		return nil, errors.New("admin: New(nil): need a *probes.Lifecycle")
	}
	cfg := config{log: zap.NewNop(), uids: []uint32{0, uint32(os.Getuid())}}
	for _, o := range opts {
		if o == nil {
			continue
		}
		if err := o(&cfg); err != nil {
			return nil, fmt.Errorf("admin: %w", err)
		}
	}
	cfg.log = logs.Identified(cfg.log, lc.Identity())
	group, err := probes.NewGroup(lc, "healthz")
	if err != nil {
		return nil, fmt.Errorf("admin: %w", err)
	}
	deep, err := server.NewHandler(group, server.Service(cfg.info))
	if err != nil {
		return nil, fmt.Errorf("admin: %w", err)
	}
	// Operators read the status now and then: render it when asked (a
	// closed handler still answers, rendering what changed since), rather
	// than on every change, for as long as the lifecycle lives.
	deep.Close()
	return &Handler{lc: lc, cfg: cfg, deep: deep}, nil
}

// ServeHTTP refuses a request whose peer is not let in (403), then serves
// the route.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	who, ok := h.admit(r)
	if !ok {
		h.cfg.log.Warn("admin: request refused: peer not allowed", who,
			zap.String("method", r.Method), zap.String("path", r.URL.Path))
		answer(w, http.StatusForbidden, errorBody("refused: this peer may not use the admin socket"))
		return
	}
	rt, known := routes[r.URL.Path]
	switch {
	case !known:
		answer(w, http.StatusNotFound, errorBody("no such route; the admin routes are GET /status, POST /cordon and POST /uncordon"))
		return
	case r.Method != rt.method && !(rt.method == http.MethodGet && r.Method == http.MethodHead):
		w.Header().Set("Allow", rt.method)
		answer(w, http.StatusMethodNotAllowed, errorBody(fmt.Sprintf("%s %s: use %s", r.Method, r.URL.Path, rt.method)))
		return
	}
	if r.Method == http.MethodPost {
		if status, msg := acceptable(r); status != 0 {
			h.cfg.log.Warn("admin: request refused", who, zap.String("path", r.URL.Path), zap.String("why", msg))
			answer(w, status, errorBody(msg))
			return
		}
	}
	rt.serve(h, w, r, who)
}

// route is an admin path's one method and what serves it; who names the
// peer for the log.
type route struct {
	method string
	serve  func(h *Handler, w http.ResponseWriter, r *http.Request, who zap.Field)
}

var routes = map[string]route{
	"/status":   {http.MethodGet, (*Handler).status},
	"/cordon":   {http.MethodPost, (*Handler).cordon},
	"/uncordon": {http.MethodPost, (*Handler).uncordon},
}

// allowed reports whether a Unix peer with uid may come in.
func (h *Handler) allowed(uid uint32) bool { return slices.Contains(h.cfg.uids, uid) }

// field names a Unix peer for the log.
func (p Peer) field() zap.Field {
	return zap.Dict("peer", zap.Uint32("uid", p.UID), zap.Int32("pid", p.PID))
}

// admit says whether r may come in, and who sent it, for the log.
func (h *Handler) admit(r *http.Request) (zap.Field, bool) {
	if p, ok := PeerFrom(r.Context()); ok {
		return p.field(), h.allowed(p.UID)
	}
	f := zap.Dict("peer", zap.String("addr", r.RemoteAddr))
	return f, h.cfg.authorize != nil && h.cfg.authorize(r)
}

// acceptable checks what every change must be: JSON, not cross-site, with
// a body within MaxBody. It returns 0 when r is acceptable.
func acceptable(r *http.Request) (int, string) {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/json" {
		return http.StatusUnsupportedMediaType, "refused: a change must be sent as application/json"
	}
	if s := r.Header.Get("Sec-Fetch-Site"); s != "" && s != "same-origin" && s != "none" {
		return http.StatusForbidden, "refused: a cross-site request"
	}
	if r.ContentLength > MaxBody {
		return http.StatusRequestEntityTooLarge, "refused: body over " + strconv.Itoa(MaxBody) + " bytes"
	}
	return 0, ""
}

// decode reads r's JSON body into v: at most MaxBody bytes, one value, no
// unknown fields.
func decode(w http.ResponseWriter, r *http.Request, v any) (int, error) {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, MaxBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return http.StatusRequestEntityTooLarge, fmt.Errorf("body over %d bytes", MaxBody)
		}
		return http.StatusBadRequest, fmt.Errorf("body: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return http.StatusBadRequest, errors.New("body: more than one JSON value")
	}
	return 0, nil
}

// CordonRequest is the body of POST /cordon.
type CordonRequest struct {
	// Reason says why, in at most probes.MaxCordonReason printable bytes.
	Reason string `json:"reason"`
	// For is the time limit, as ParseDuration reads it ("30m", "7d"), at
	// least MinCordon and at most probes.MaxCordon.
	For string `json:"for"`
}

// CordonState is the cordon as the admin routes answer it.
type CordonState struct {
	Reason string    `json:"reason"`
	Since  time.Time `json:"since"`
	Until  time.Time `json:"until"`
	// Left is how long until the cordon lifts by itself, in seconds.
	Left float64 `json:"left"`
	// By is who set it; nil when not known.
	By *AuthorState `json:"by,omitempty"`
}

// AuthorState is who changed a cordon (probes.Author), as the admin
// routes and the deep view answer it.
type AuthorState struct {
	UID     uint32 `json:"uid"`
	User    string `json:"user,omitempty"`
	PID     int32  `json:"pid"`
	Command string `json:"command,omitempty"`
}

func authorState(a probes.Author) *AuthorState {
	if a.IsZero() {
		return nil
	}
	return &AuthorState{UID: a.UID, User: a.User, PID: a.PID, Command: a.Command}
}

func (h *Handler) state(c probes.Cordon) *CordonState {
	if c.IsZero() {
		return nil
	}
	left := max(c.Until.Sub(h.lc.Clock().Now()), 0)
	return &CordonState{Reason: c.Reason, Since: c.Since, Until: c.Until, Left: left.Seconds(), By: authorState(c.By)}
}

// ChangeResponse is the answer to POST /cordon and POST /uncordon: the
// cordon after the change (nil when there is none), the one before, and
// who made the change (nil when not known).
type ChangeResponse struct {
	Cordon *CordonState `json:"cordon"`
	Was    *CordonState `json:"was"`
	By     *AuthorState `json:"by,omitempty"`
}

// ErrorResponse is the answer to a refused request (4xx).
type ErrorResponse struct {
	Error string `json:"error"`
}

func errorBody(msg string) ErrorResponse { return ErrorResponse{Error: msg} }

func (h *Handler) cordon(w http.ResponseWriter, r *http.Request, who zap.Field) {
	var req CordonRequest
	if status, err := decode(w, r, &req); err != nil {
		h.refuse(w, who, "cordon", status, err.Error())
		return
	}
	if req.For == "" {
		h.refuse(w, who, "cordon", http.StatusBadRequest, `"for": missing; a cordon needs a time limit, such as "30m" or "7d"`)
		return
	}
	d, err := ParseDuration(req.For)
	if err != nil {
		h.refuse(w, who, "cordon", http.StatusBadRequest, fmt.Sprintf(`"for": %q is not a duration, such as "30m" or "7d"`, req.For))
		return
	}
	if d < MinCordon {
		h.refuse(w, who, "cordon", http.StatusBadRequest, fmt.Sprintf(`"for": %s; a cordon from here lasts at least %s`, d, MinCordon))
		return
	}
	ch, err := h.lc.CordonBy(author(r), req.Reason, d)
	if err != nil {
		h.refuse(w, who, "cordon", http.StatusBadRequest, err.Error())
		return
	}
	// The one line of this cordon: the server's log leaves a cordon made
	// by hand to whoever made it, since only here is the peer known.
	c := ch.Cordon
	fields := []zap.Field{who, byField(c.By), zap.String("reason", c.Reason), zap.Duration("for", d), zap.Time("until", c.Until)}
	if !ch.Was.IsZero() {
		fields = append(fields, zap.String("replaced", ch.Was.Reason))
	}
	h.cfg.log.Warn("admin: cordoned", fields...)
	answer(w, http.StatusOK, ChangeResponse{Cordon: h.state(c), Was: h.state(ch.Was), By: authorState(ch.By)})
}

func (h *Handler) uncordon(w http.ResponseWriter, r *http.Request, who zap.Field) {
	var req struct{}
	if r.ContentLength != 0 { // no body is as good as {}
		if status, err := decode(w, r, &req); err != nil {
			h.refuse(w, who, "uncordon", status, err.Error())
			return
		}
	}
	by := author(r)
	was, err := h.lc.UncordonBy(by)
	if err != nil {
		// Lifting a cordon that is not there is no error: the service is
		// where the operator wants it.
		answer(w, http.StatusOK, ChangeResponse{})
		return
	}
	h.cfg.log.Info("admin: uncordoned", who, byField(by), zap.String("reason", was.Reason), zap.Duration("cordoned_for", h.lc.Clock().Now().Sub(was.Since)))
	answer(w, http.StatusOK, ChangeResponse{Was: h.state(was), By: authorState(by)})
}

// author names the Unix peer of r for the cordon: its uid and pid from
// the kernel, its user name and command line looked up now, best effort
// (the process may be gone). A request that did not come over a Unix
// socket has no known author.
func author(r *http.Request) probes.Author {
	p, ok := PeerFrom(r.Context())
	if !ok {
		return probes.Author{}
	}
	a := probes.Author{UID: p.UID, PID: p.PID}
	if u, err := user.LookupId(strconv.FormatUint(uint64(p.UID), 10)); err == nil {
		a.User = u.Username
	}
	a.Command = commandLine(p.PID)
	return a
}

// commandLine reads the command line of process pid from /proc, its
// arguments joined by spaces: at most maxCmdline bytes, "" when it cannot
// be read. probes.Lifecycle.CordonBy masks and bounds it.
func commandLine(pid int32) string {
	if pid <= 0 {
		return ""
	}
	f, err := os.Open("/proc/" + strconv.FormatInt(int64(pid), 10) + "/cmdline")
	if err != nil {
		return ""
	}
	defer f.Close()
	b, _ := io.ReadAll(io.LimitReader(f, maxCmdline))
	return strings.TrimSpace(strings.ReplaceAll(string(b), "\x00", " "))
}

// maxCmdline bounds what is read of a peer's command line; it is cut
// shorter still (probes.MaxAuthorCommand) once masked.
const maxCmdline = 4 << 10

// byField names a cordon's author for the log; the peer field names the
// connection's.
func byField(a probes.Author) zap.Field {
	if a.IsZero() {
		return zap.Skip()
	}
	return zap.Dict("by", zap.String("user", a.User), zap.String("command", a.Command))
}

func (h *Handler) refuse(w http.ResponseWriter, who zap.Field, what string, status int, msg string) {
	h.cfg.log.Warn("admin: "+what+" refused", who, zap.String("why", msg))
	answer(w, status, errorBody(msg))
}

// status serves the deep view as an authorised reader reads it with
// ?verbose: admit let the peer in by its credentials (or the service's
// authorizer), and that is what authorises it, whatever the lifecycle's
// read policy says of HTTP requests. The answer is the deep view's own,
// its status code (200, or 503 when the deep view fails) included, so
// there is one document of the service's state, not one per surface.
func (h *Handler) status(w http.ResponseWriter, r *http.Request, _ zap.Field) {
	r = r.Clone(probes.WithAudience(r.Context(), probes.Authorized))
	r.URL.RawQuery = "verbose"
	// The deep view's aggregate, never one check's, whatever route of the
	// service's own mounted the handler.
	r.SetPathValue("gate", "")
	r.SetPathValue("check", "")
	h.deep.ServeHTTP(w, r)
}

func answer(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"error":"encoding the answer failed"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}
