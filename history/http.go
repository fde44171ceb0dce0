package history

import (
	"bytes"
	"encoding/json"
	"net/http"

	"github.com/probekit/probes"
	"github.com/probekit/probes/internal/format"
)

// Handler serves the History as JSON for tools (GET and HEAD; anything else
// 405): the phase and since when, every transition kept (oldest first) and
// every check's rollups, and with StateDir the restarts and the instances
// before this one (oldest first). Reasons are shown only to the readers
// the lifecycle's read policy authorises (probes.Readers): the
// transitions' and the cause of each previous instance's end; subjects,
// statuses, counts, and when and how each instance ended are public.
//
//	{"phase":"ready","since":"...","transitions":[{"at":"...","subject":"readiness/postgres","from":"pass","to":"fail"}],
//	 "checks":{"readiness/postgres":{"since":"...","flapping":false,"minutes":[{"start":"...","pass":12,"warn":0,"fail":0,"p99Ms":1.6,"maxMs":2.1}],"quarters":[...]}},
//	 "restarts":1,"previous":[{"number":0,"service":"shop","release":"1.4.2","instance":"shop-7d9f-abcde","start":"...","end":"...",
//	   "ended":"broken","clean":false,"cause":"...","lastSeen":"...","transitions":[...]}]}
func (h *History) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed: use GET or HEAD", http.StatusMethodNotAllowed)
			return
		}
		body := h.document(h.lc.Audience(r))
		var b bytes.Buffer
		enc := json.NewEncoder(&b)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(body); err != nil {
			http.Error(w, "cannot encode the history", http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		w.Write(b.Bytes()) //nolint:errcheck // the client went away
	})
}

type document struct {
	Phase       string                 `json:"phase"`
	Since       string                 `json:"since,omitempty"`
	Transitions []transitionDoc        `json:"transitions"`
	Checks      map[string]checkSeries `json:"checks"`
	// With StateDir only.
	Restarts *int           `json:"restarts,omitempty"`
	Previous *[]previousDoc `json:"previous,omitempty"`
}

type previousDoc struct {
	Number      int             `json:"number"`
	Service     string          `json:"service,omitempty"`
	Release     string          `json:"release,omitempty"`
	Instance    string          `json:"instance,omitempty"`
	Node        string          `json:"node,omitempty"`
	Start       string          `json:"start,omitempty"`
	End         string          `json:"end,omitempty"`
	Ended       string          `json:"ended"`
	Clean       bool            `json:"clean"`
	Cause       string          `json:"cause,omitempty"`
	Seen        string          `json:"lastSeen,omitempty"`
	Transitions []transitionDoc `json:"transitions"`
}

type transitionDoc struct {
	At      string `json:"at"`
	Subject string `json:"subject"`
	From    string `json:"from"`
	To      string `json:"to"`
	Reason  string `json:"reason,omitempty"`
	By      string `json:"by,omitempty"` // a cordon's change: who made it
}

type checkSeries struct {
	Since    string      `json:"since,omitempty"`
	Flapping bool        `json:"flapping"`
	Minutes  []bucketDoc `json:"minutes"`
	Quarters []bucketDoc `json:"quarters"`
}

type bucketDoc struct {
	Start string  `json:"start"`
	Pass  uint32  `json:"pass"`
	Warn  uint32  `json:"warn"`
	Fail  uint32  `json:"fail"`
	P99   float64 `json:"p99Ms"`
	Max   float64 `json:"maxMs"`
}

func (h *History) document(a probes.Audience) document {
	d := document{Phase: h.lc.Phase().String(), Since: format.Stamp(h.lc.Since()), Checks: map[string]checkSeries{}}
	d.Transitions = transitionDocs(h.Transitions(), a)
	if h.files != nil {
		n := h.Restarts()
		prev := []previousDoc{}
		for _, in := range h.previous {
			in = in.For(a)
			id := in.Identity
			prev = append(prev, previousDoc{Number: in.Number, Service: id.Service, Release: id.Release, Instance: id.Instance, Node: id.Node,
				Start: format.Stamp(in.Start), End: format.Stamp(in.End), Ended: in.Ended, Clean: in.Clean(), Cause: in.Cause,
				Seen: format.Stamp(in.Seen), Transitions: transitionDocs(in.Transitions, a)})
		}
		d.Restarts, d.Previous = &n, &prev
	}
	for _, g := range h.lc.Gates() {
		rep := g.Report()
		for _, c := range rep.Checks {
			cs := checkSeries{Since: format.Stamp(c.Since), Flapping: c.Flapping, Minutes: []bucketDoc{}, Quarters: []bucketDoc{}}
			if sr, ok := h.Check(rep.Gate, c.Name); ok {
				cs.Minutes, cs.Quarters = bucketDocs(sr.Minutes), bucketDocs(sr.Quarters)
			}
			d.Checks[probes.CheckName(rep.Gate, c.Name)] = cs
		}
	}
	return d
}

func transitionDocs(ts []Transition, a probes.Audience) []transitionDoc {
	out := make([]transitionDoc, 0, len(ts))
	for _, t := range ts {
		t = t.For(a)
		out = append(out, transitionDoc{At: format.Stamp(t.At), Subject: t.Subject, From: t.From, To: t.To, Reason: t.Reason, By: t.By})
	}
	return out
}

func bucketDocs(bs []Bucket) []bucketDoc {
	out := make([]bucketDoc, len(bs))
	for i, b := range bs {
		out[i] = bucketDoc{Start: format.Stamp(b.Start), Pass: b.Pass, Warn: b.Warn, Fail: b.Fail,
			P99: float64(b.P99.Microseconds()) / 1000, Max: float64(b.Max.Microseconds()) / 1000}
	}
	return out
}
