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
// every check's rollups. Reasons are shown only to the readers the
// lifecycle's read policy authorises (probes.Readers); subjects, statuses
// and counts are public.
//
//	{"phase":"ready","since":"...","transitions":[{"at":"...","subject":"readiness/postgres","from":"pass","to":"fail"}],
//	 "checks":{"readiness/postgres":{"since":"...","flapping":false,"minutes":[{"start":"...","pass":12,"warn":0,"fail":0,"p99Ms":1.6,"maxMs":2.1}],"quarters":[...]}}}
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
}

type transitionDoc struct {
	At      string `json:"at"`
	Subject string `json:"subject"`
	From    string `json:"from"`
	To      string `json:"to"`
	Reason  string `json:"reason,omitempty"`
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
	for _, t := range h.Transitions() {
		t = t.For(a)
		td := transitionDoc{At: format.Stamp(t.At), Subject: t.Subject, From: t.From, To: t.To, Reason: t.Reason}
		d.Transitions = append(d.Transitions, td)
	}
	if d.Transitions == nil {
		d.Transitions = []transitionDoc{}
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

func bucketDocs(bs []Bucket) []bucketDoc {
	out := make([]bucketDoc, len(bs))
	for i, b := range bs {
		out[i] = bucketDoc{Start: format.Stamp(b.Start), Pass: b.Pass, Warn: b.Warn, Fail: b.Fail,
			P99: float64(b.P99.Microseconds()) / 1000, Max: float64(b.Max.Microseconds()) / 1000}
	}
	return out
}
