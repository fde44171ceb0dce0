package server

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"github.com/probekit/probes"
	"github.com/probekit/probes/internal/format"
	"github.com/probekit/probes/internal/printable"
)

// Info describes the service in every health+json body. Empty fields are left
// out.
type Info struct {
	// Version is the public version of the service's API, such as "1".
	Version string
	// ReleaseID is the version of the running build, such as "1.4.2".
	ReleaseID string
	// ServiceID identifies the service, such as "items-api".
	ServiceID string
	// Description is a human-friendly description of the service.
	Description string

	instance string // the lifecycle's Identity().Instance, for the deep view
}

// answer is one complete response, ready to write.
type answer struct {
	code  int
	ctype []string
	body  []byte
	clen  []string // Content-Length, for HEAD
}

func newAnswer(code int, ctype []string, body []byte) *answer {
	return &answer{code: code, ctype: ctype, body: body, clen: contentLength(body)}
}

func contentLength(b []byte) []string { return []string{strconv.Itoa(len(b))} }

func (a *answer) writeHeaders(w http.ResponseWriter) {
	hdr := w.Header()
	hdr["Content-Type"] = a.ctype
	hdr["Cache-Control"] = hdrNoStore
}

func (a *answer) write(w http.ResponseWriter, r *http.Request) {
	a.writeHeaders(w)
	if r.Method == http.MethodHead {
		// net/http cannot know a HEAD response's length; tell it.
		w.Header()["Content-Length"] = a.clen
		w.WriteHeader(a.code)
		return
	}
	w.WriteHeader(a.code)
	w.Write(a.body) //nolint:errcheck // the client went away; nothing to do
}

// pair is an answer in both forms.
type pair struct{ json, text *answer }

func (p pair) pick(text bool) *answer {
	if text {
		return p.text
	}
	return p.json
}

// view is a gate's state, with its aggregate answer rendered ahead of
// requests.
type view struct {
	code    int
	rep     probes.Report // what it was rendered from, as authorised readers see it
	pub     probes.Report // the same, as anonymous readers see it (Report.For)
	path    string
	info    *Info
	plain   pair
	secrets bool // authorised readers see more than anonymous ones
}

func newView(info *Info, rep *probes.Report, path string) *view {
	v := &view{code: statusCode(rep.Status()), rep: *rep, pub: rep.For(probes.Anonymous), path: path, info: info, secrets: rep.HasReasons()}
	v.plain = v.pair(renderOptions{})
	return v
}

// report is the report o renders: the authorised one or the public one.
func (v *view) report(o *renderOptions) *probes.Report {
	if o.authz {
		return &v.rep
	}
	return &v.pub
}

// detail is a gate's state with the answers that show its latest results
// rendered: ?verbose and each check's or task's own path, for anonymous
// readers.
type detail struct {
	view    *view
	verbose pair
	checks  map[string]pair

	authzOnce sync.Once
	authz     shown // the same answers with error texts; see authorised
}

// shown are the answers of one state for one audience.
type shown struct {
	plain, verbose pair
	checks         map[string]pair
}

// authorised returns the answers with reasons, rendered by the first
// authorised request that needs them and kept for the rest: a probe that
// may see reasons (an exec probe on loopback, say) costs a render per
// state, not per request.
func (d *detail) authorised() *shown {
	d.authzOnce.Do(func() {
		v := d.view
		d.authz = shown{
			plain:   v.pair(renderOptions{authz: true}),
			verbose: v.pair(renderOptions{verbose: true, authz: true}),
			checks:  make(map[string]pair, len(d.checks)),
		}
		for name := range d.checks {
			d.authz.checks[name] = v.checkPair(name, true)
		}
	})
	return &d.authz
}

func newDetail(v *view) *detail {
	d := &detail{
		view:    v,
		verbose: v.pair(renderOptions{verbose: true}),
		checks:  make(map[string]pair, len(v.rep.Checks)+len(v.rep.Tasks)),
	}
	for i := range v.rep.Checks {
		d.checks[v.rep.Checks[i].Name] = v.checkPair(v.rep.Checks[i].Name, false)
	}
	for i := range v.rep.Tasks {
		d.checks[v.rep.Tasks[i].Name] = v.checkPair(v.rep.Tasks[i].Name, false)
	}
	return d
}

func (v *view) pair(o renderOptions) pair {
	rep := v.report(&o)
	code := statusCode(o.status(rep))
	return pair{
		json: newAnswer(code, hdrJSON, renderJSON(v.info, rep, o)),
		text: newAnswer(code, hdrText, renderText(rep, v.path, o)),
	}
}

// renderQuery renders the answer to a query that excludes checks or may
// show error texts.
func renderQuery(v *view, q query, authz bool) pair {
	o := renderOptions{verbose: q.verbose, authz: authz}
	if len(q.exclude) > 0 {
		set := make(map[string]bool, len(q.exclude))
		for _, name := range q.exclude {
			set[name] = true
			_, isCheck := v.rep.Check(name)
			_, isTask := v.rep.Task(name)
			if !isCheck && !isTask {
				o.unmatched = append(o.unmatched, name)
			}
		}
		o.skip = func(name string) bool { return set[name] }
	}
	return v.pair(o)
}

// checkPair renders the answer of one check's or task's own path: the
// check's own verdict, not what it contributes to the gate, so that
// /readyz/postgres fails while PostgreSQL is down even when readiness
// only warns for it (a shared or non-critical check).
func (v *view) checkPair(name string, authz bool) pair {
	o := renderOptions{verbose: true, authz: authz, single: true}
	rep := v.report(&o)
	one := probes.Report{Gate: rep.Gate, Phase: rep.Phase}
	var st probes.Status
	var err error
	if c, ok := rep.Check(name); ok {
		st, err = c.Status, c.Err
		one.Checks = []probes.Result{c}
	} else if t, ok := rep.Task(name); ok {
		st, err = t.Status(), t.Err
		one.Tasks = []probes.TaskState{t}
	}
	one.Base = st
	code := statusCode(st)
	line := "ok\n"
	if !st.OK() {
		line = name + " failed: " + reason(err) + "\n"
	}
	return pair{
		json: newAnswer(code, hdrJSON, renderJSON(v.info, &one, o)),
		text: newAnswer(code, hdrText, []byte(line)),
	}
}

func statusCode(s probes.Status) int {
	if s.OK() {
		return http.StatusOK
	}
	return http.StatusServiceUnavailable
}

// body is the health+json document (draft-inadarei-api-health-check-06).
type body struct {
	Status      string             `json:"status"`
	Version     string             `json:"version,omitempty"`
	ReleaseID   string             `json:"releaseId,omitempty"`
	ServiceID   string             `json:"serviceId,omitempty"`
	Description string             `json:"description,omitempty"`
	Notes       []string           `json:"notes,omitempty"`
	Output      string             `json:"output,omitempty"`
	Checks      map[string][]entry `json:"checks,omitempty"`
	// Beyond the draft (which allows more members), in the deep view's
	// verbose body only: the instance (Identity().Instance), the phase and
	// since when, each gate's verdict, the cordon while there is one, and
	// the restarts and how the last instance ended once there was one
	// (probes.Lifecycle.Past). probectl status and fleet read them, with
	// each entry's gate.
	Instance string            `json:"instance,omitempty"`
	Phase    string            `json:"phase,omitempty"`
	Since    string            `json:"since,omitempty"`
	Gates    map[string]string `json:"gates,omitempty"`
	Cordon   *cordonMember     `json:"cordon,omitempty"`
	Restarts int               `json:"restarts,omitempty"`
	LastEnd  *lastEndMember    `json:"lastEnd,omitempty"`
}

// lastEndMember is how the instance before this one ended.
type lastEndMember struct {
	Ended string `json:"ended"`           // stopped, broken, closed, without a word
	At    string `json:"at,omitempty"`    // none when it ended without a word
	Cause string `json:"cause,omitempty"` // authorised readers only
}

type cordonMember struct {
	Reason string        `json:"reason,omitempty"` // authorised readers only
	By     *authorMember `json:"by,omitempty"`     // authorised readers only
	Since  string        `json:"since"`
	Until  string        `json:"until"`
}

// authorMember is who set the cordon (probes.Author).
type authorMember struct {
	UID     uint32 `json:"uid"`
	User    string `json:"user,omitempty"`
	PID     int32  `json:"pid"`
	Command string `json:"command,omitempty"`
}

type entry struct {
	Gate          string  `json:"gate,omitempty"` // beyond the draft, as Since
	ComponentType string  `json:"componentType,omitempty"`
	ObservedValue *number `json:"observedValue,omitempty"` // nil: withheld from the reader
	ObservedUnit  string  `json:"observedUnit,omitempty"`
	Status        string  `json:"status"`
	Time          string  `json:"time,omitempty"`
	// Since and Flapping go beyond the draft (which allows more fields):
	// when the check's verdict last changed, and whether it flaps.
	Since    string `json:"since,omitempty"`
	Flapping bool   `json:"flapping,omitempty"`
	Output   string `json:"output,omitempty"`
}

// number is an observed value; one JSON cannot hold (NaN, ±Inf) is null.
type number float64

func observed(f float64) *number { n := number(f); return &n }

// MarshalJSON writes n, or null when n is not finite.
func (n number) MarshalJSON() ([]byte, error) {
	f := float64(n)
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return []byte("null"), nil
	}
	return strconv.AppendFloat(nil, f, 'g', -1, 64), nil
}

// renderOptions say what one rendering includes.
type renderOptions struct {
	verbose   bool
	authz     bool                   // render the authorised report
	single    bool                   // one check's own path
	skip      func(name string) bool // ?exclude=
	unmatched []string               // excluded names that match nothing
}

func (o *renderOptions) status(rep *probes.Report) probes.Status {
	return rep.StatusExcluding(o.skip)
}

func (o *renderOptions) excluded(name string) bool { return o.skip != nil && o.skip(name) }

// unmatchedNotes warns of excluded names that match nothing, echoing a
// bounded number of them, each cut short.
func unmatchedNotes(names []string) []string {
	var notes []string
	for i, name := range names {
		if i == maxEchoed {
			notes = append(notes, fmt.Sprintf("warn: %d more excluded names match no check", len(names)-i))
			break
		}
		if len(name) > maxEchoedLength {
			name = name[:maxEchoedLength] + "..."
		}
		notes = append(notes, fmt.Sprintf("warn: some health checks cannot be excluded: no matches for %q", name))
	}
	return notes
}

// verdictNotes name the checks that make the gate fail or warn: names and
// statuses are public, so even the smallest body says why.
func verdictNotes(rep *probes.Report, o *renderOptions) []string {
	failing, warning := rep.Behind(o.skip)
	var flapping []string
	for i := range rep.Checks {
		if c := &rep.Checks[i]; c.Flapping && !o.excluded(c.Name) {
			flapping = append(flapping, c.Name)
		}
	}
	var notes []string
	if len(failing) > 0 {
		notes = append(notes, "failing: "+strings.Join(failing, ", "))
	}
	if len(warning) > 0 {
		notes = append(notes, "warning: "+strings.Join(warning, ", "))
	}
	if len(flapping) > 0 {
		notes = append(notes, "flapping: "+strings.Join(flapping, ", "))
	}
	return notes
}

func renderJSON(info *Info, rep *probes.Report, o renderOptions) []byte {
	st := o.status(rep)
	b := body{
		Status:      st.String(),
		Version:     info.Version,
		ReleaseID:   info.ReleaseID,
		ServiceID:   info.ServiceID,
		Description: info.Description,
	}
	if !o.single {
		b.Notes = append(append(append([]string(nil), rep.Notes...), verdictNotes(rep, &o)...), unmatchedNotes(o.unmatched)...)
	}
	if o.authz && !o.verbose && st != probes.Pass {
		b.Output = outputs(rep, &o)
	}
	deep := rep.Gate == probes.Health
	if o.verbose && !o.single && deep {
		b.Instance = info.instance
		b.Phase = rep.Phase.String()
		b.Since = format.Stamp(rep.Since)
		if len(rep.Gates) > 0 {
			b.Gates = make(map[string]string, len(rep.Gates))
			for _, g := range rep.Gates {
				b.Gates[g.Gate.String()] = g.Status.String()
			}
		}
		if c := rep.Cordon; !c.IsZero() {
			b.Cordon = &cordonMember{Reason: c.Reason, Since: format.Stamp(c.Since), Until: format.Stamp(c.Until)}
			if a := c.By; !a.IsZero() {
				b.Cordon.By = &authorMember{UID: a.UID, User: a.User, PID: a.PID, Command: a.Command}
			}
		}
		if p := rep.Past; !p.IsZero() {
			b.Restarts = p.Restarts
			b.LastEnd = &lastEndMember{Ended: p.Ended, At: format.Stamp(p.End), Cause: p.Cause}
		}
	}
	if o.verbose {
		b.Checks = make(map[string][]entry, len(rep.Checks)+len(rep.Tasks))
		for i := range rep.Checks {
			c := &rep.Checks[i]
			if o.excluded(c.Name) {
				continue
			}
			e := checkEntry(c)
			if deep {
				e.Gate = c.Gate.String()
			}
			if !c.Untimed {
				b.Checks[c.Name+":responseTime"] = []entry{e}
			}
			for _, ob := range c.Observations {
				e.ObservedValue, e.ObservedUnit = observed(ob.Value), ob.Unit
				if ob.Withheld {
					e.ObservedValue = nil
				}
				b.Checks[c.Name+":"+ob.Measurement] = []entry{e}
			}
		}
		for i := range rep.Tasks {
			t := &rep.Tasks[i]
			e := taskEntry(t)
			if deep {
				e.Gate = probes.Startup.String()
			}
			b.Checks[t.Name+":progress"] = []entry{e}
		}
	}
	return marshal(&b)
}

// outputs joins the error texts of the checks and tasks that are not
// passing, for the top-level output of an authorised non-verbose body.
func outputs(rep *probes.Report, o *renderOptions) string {
	var parts []string
	for i := range rep.Checks {
		c := &rep.Checks[i]
		if c.Err != nil && !o.excluded(c.Name) {
			parts = append(parts, c.Name+": "+c.Err.Error())
		}
	}
	for i := range rep.Tasks {
		if t := &rep.Tasks[i]; t.Err != nil {
			parts = append(parts, t.Name+": "+t.Err.Error())
		}
	}
	return strings.Join(parts, "; ")
}

func marshal(b *body) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(b); err != nil {
		// Nothing that goes in can fail to encode (non-finite numbers are
		// null); should it ever, answer the verdict rather than nothing.
		return []byte(`{"status":"` + b.Status + `"}` + "\n")
	}
	return buf.Bytes()
}

func checkEntry(c *probes.Result) entry {
	e := entry{
		ComponentType: c.ComponentType,
		ObservedValue: observed(float64(c.Duration.Microseconds()) / 1000),
		ObservedUnit:  "ms",
		Status:        c.Status.String(),
	}
	e.Time, e.Since = format.Stamp(c.Time), format.Stamp(c.Since)
	e.Flapping = c.Flapping
	e.Output = output(c.Err)
	return e
}

// taskEntry renders a warm-up task: pass once done, fail while its last
// attempt failed (it is being retried), and warn while it is in progress
// without having failed: loading is not failing.
func taskEntry(t *probes.TaskState) entry {
	st := t.Status()
	if !t.Done && t.Failures == 0 {
		st = probes.Warn
	}
	e := entry{
		ComponentType: "component",
		ObservedValue: observed(float64(int(t.Fraction*1000)) / 10),
		ObservedUnit:  "%",
		Status:        st.String(),
		Output:        output(t.Err),
	}
	return e
}

// renderText writes the Kubernetes text form: "ok" for a passing gate
// without ?verbose, else a line per check and a closing verdict line.
func renderText(rep *probes.Report, path string, o renderOptions) []byte {
	st := o.status(rep)
	if !o.verbose && st.OK() && len(o.unmatched) == 0 {
		return []byte("ok\n")
	}
	var b bytes.Buffer
	for _, note := range unmatchedNotes(o.unmatched) {
		b.WriteString(note + "\n")
	}
	// A cordon counts for readiness and the deep view, in the phases up to
	// Ready (see probes.Lifecycle.Basis); the phase's own line stays.
	cordoned := rep.Cordon.CountsIn(rep.Phase) && (rep.Gate == probes.Readiness || rep.Gate == probes.Health)
	if rep.Base.OK() || cordoned && rep.Phase == probes.Ready {
		fmt.Fprintf(&b, "[+]phase ok: %s\n", rep.Phase)
	} else {
		fmt.Fprintf(&b, "[-]phase failed: %s\n", rep.Phase)
	}
	if cordoned {
		b.WriteString("[-]" + rep.Cordon.Note() + "\n")
	}
	for i := range rep.Checks {
		c := &rep.Checks[i]
		if o.excluded(c.Name) {
			fmt.Fprintf(&b, "[+]%s excluded: ok\n", c.Name)
			continue
		}
		checkLine(&b, c)
	}
	for i := range rep.Tasks {
		t := &rep.Tasks[i]
		switch {
		case t.Done:
			fmt.Fprintf(&b, "[+]%s done\n", t.Name)
		case t.Failures > 0:
			fmt.Fprintf(&b, "[-]%s %d%%, retrying after %d failed attempts: %s\n", t.Name, int(t.Fraction*100), t.Failures, reason(t.Err))
		default:
			fmt.Fprintf(&b, "[-]%s in progress: %d%%\n", t.Name, int(t.Fraction*100))
		}
	}
	if st.OK() {
		fmt.Fprintf(&b, "%s check passed\n", path)
	} else {
		fmt.Fprintf(&b, "%s check failed\n", path)
	}
	return b.Bytes()
}

// checkLine writes a check's line of the text form. A failing check that
// only makes the gate warn (shared, or non-critical) says so, so that its
// line and the gate's closing "check passed" do not contradict each other.
func checkLine(b *bytes.Buffer, c *probes.Result) {
	switch {
	case c.Status == probes.Pass:
		fmt.Fprintf(b, "[+]%s ok\n", c.Name)
	case c.Status == probes.Warn:
		fmt.Fprintf(b, "[+]%s warn: %s\n", c.Name, reason(c.Err))
	case c.Contribution() == probes.Warn && !c.Critical:
		fmt.Fprintf(b, "[+]%s warn: failing, not critical: %s\n", c.Name, reason(c.Err))
	case c.Contribution() == probes.Warn:
		fmt.Fprintf(b, "[+]%s warn: failing, shared by the fleet, so this instance stays in rotation: %s\n", c.Name, reason(c.Err))
	default:
		fmt.Fprintf(b, "[-]%s failed: %s\n", c.Name, reason(c.Err))
	}
}

// reason is err's text for a line of the text form; a report made for
// anonymous readers holds probes.ErrWithheld, which says "reason withheld".
// The text is made one line whatever err holds (the checks' errors are
// already), so that a check keeps its one line.
func reason(err error) string {
	if err == nil {
		return "no reason given"
	}
	return printable.Line(err.Error())
}

// output is err's text for a health+json "output", or "" (left out) for no
// error or one withheld from the reader.
func output(err error) string {
	if err == nil || err == probes.ErrWithheld {
		return ""
	}
	return err.Error()
}
