package fleet

// The fleet page: the last round, rendered once per round, for browsers.

import (
	"bytes"
	"github.com/probekit/probes/internal/look"
	"html/template"
	"math"
	"net/http"
	"sync/atomic"
	"time"
)

// page serves the last round as HTML at / and as JSON at /fleet.json.
type page struct {
	title   string
	refresh int // seconds
	cur     atomic.Pointer[rendered]
}

// rendered is one round, ready to send.
type rendered struct {
	html, json []byte
}

var _ http.Handler = (*page)(nil)

func newPage(title string, every time.Duration) *page {
	p := &page{title: title, refresh: max(1, int(math.Ceil(every.Seconds())))}
	p.update(nil)
	return p
}

// update renders r (nil: no round yet) for every request until the next.
func (p *page) update(r *Round) {
	var j bytes.Buffer
	if r != nil {
		writeJSON(&j, r) //nolint:errcheck // a bytes.Buffer does not fail
	}
	var b bytes.Buffer
	if err := pageTmpl.Execute(&b, pageData{Title: p.title, Refresh: p.refresh, Style: template.CSS(pageStyle), R: r}); err != nil {
		b.Reset()
		b.WriteString("<!doctype html><title>fleet</title><p>cannot render the page</p>")
	}
	p.cur.Store(&rendered{html: b.Bytes(), json: j.Bytes()})
}

// ServeHTTP answers GET and HEAD of / (the page) and /fleet.json.
func (p *page) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed: use GET or HEAD", http.StatusMethodNotAllowed)
		return
	}
	cur := p.cur.Load()
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	switch r.URL.Path {
	case "/":
		h.Set("Content-Type", "text/html; charset=utf-8")
		h.Set("Content-Security-Policy", pageCSP)
		h.Set("Referrer-Policy", "no-referrer")
		w.Write(cur.html) //nolint:errcheck // the client went away
	case "/fleet.json":
		if len(cur.json) == 0 {
			w.Header().Set("Retry-After", "1")
			http.Error(w, "the first round is not over yet", http.StatusServiceUnavailable)
			return
		}
		h.Set("Content-Type", "application/json")
		w.Write(cur.json) //nolint:errcheck // the client went away
	default:
		http.NotFound(w, r)
	}
}

type pageData struct {
	Title   string
	Refresh int
	Style   template.CSS
	R       *Round
}

// The page runs no script at all; links leave it to the instances' own
// pages.
var pageCSP = "default-src 'none'; style-src " + look.Hash(pageStyle) +
	"; script-src 'none'; img-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

var pageTmpl = template.Must(template.New("fleet").Funcs(template.FuncMap{
	"link": func(addr string) string { return "http://" + addr + "/healthz" },
	"age":  age,
	// left says how long until an RFC 3339 time, after now.
	"left": func(now time.Time, until string) string {
		t, err := time.Parse(time.RFC3339Nano, until)
		if err != nil {
			return "until " + until
		}
		return "lifts in " + age(t, now.Format(time.RFC3339Nano))
	},
}).Parse(`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="refresh" content="{{.Refresh}}">
<title>Fleet: {{.Title}}</title>
<style>{{.Style}}</style>
</head>
<body>
<header><h1>Fleet: {{.Title}}</h1>{{with .R}}<p id="round" role="status">asked {{len .Instances}} instances at <time>{{.At.Format "15:04:05"}}</time> UTC in {{printf "%.0f" .Took}} ms; {{.Reachable}} answered</p>{{end}}</header>
<main>
{{with .R}}{{if .Error}}<p class="fail" data-discovery-error>discovery: {{.Error}} (the instances found before are shown)</p>{{end}}{{range .Warnings}}<p class="warn" data-warning>{{.}}</p>{{end}}
<section aria-labelledby="h-faults">
<h2 id="h-faults">Failing checks</h2>
{{if .Faults}}<ul class="faults">{{range .Faults}}{{if eq .Scope "fleet-wide"}}<li data-fleet-wide="{{.Check}}" class="wide"><b class="fail">{{.Check}}</b> fleet-wide: failing on {{.Failing}} of {{.Of}}, a shared dependency</li>{{else}}<li data-local="{{.Check}}"><b class="fail">{{.Check}}</b> local: failing on {{.Failing}} of {{.Of}}</li>{{end}}{{end}}{{if .MoreFaults}}<li data-more-faults="{{.MoreFaults}}">and {{.MoreFaults}} more failing checks, {{.MoreFleetWide}} of them fleet-wide</li>{{end}}</ul>
{{else}}<p class="pass" data-no-faults>none</p>{{end}}
</section>
<section aria-labelledby="h-instances">
<h2 id="h-instances">Instances</h2>
<table>
<thead><tr><th scope="col">instance</th><th scope="col">phase</th><th scope="col">ready</th><th scope="col">cordon</th><th scope="col">checks</th><th scope="col">since</th><th scope="col">restarts</th></tr></thead>
<tbody>{{$at := .At}}{{range .Instances}}<tr data-instance="{{.Address}}" data-phase="{{.Phase}}" data-reachable="{{.Reachable}}"{{if .Cordon}} data-cordon="{{.Cordon}}"{{end}}>
<th scope="row"><a href="{{link .Address}}">{{.Address}}</a>{{if .Name}} <small data-name>{{.Name}}</small>{{end}}{{if .Release}} <small data-release>{{.Release}}</small>{{end}}</th>
{{if .Reachable}}<td class="ph-{{.Phase}}">{{.Phase}}</td>
<td class="{{if not .Ready}}fail{{else if eq .Readiness "warn"}}warn{{else}}pass{{end}}">{{if .Ready}}yes{{else}}no{{end}}{{if eq .Readiness "warn"}} <small>(warn)</small>{{end}}</td>
<td>{{if .Cordon}}<span class="cordon"{{with .CordonBy}} title="by {{.}}"{{end}}>{{.Cordon}}</span>{{with .CordonBy}} <small class="by" data-by="{{.}}">by {{.}}</small>{{end}}{{if .CordonUntil}} <small>{{left $at .CordonUntil}}</small>{{end}}{{end}}</td>
<td><ul class="checks">{{range .Checks}}<li data-check="{{.Name}}" data-status="{{.Status}}" class="{{.Status}}">{{.Name}}: <b>{{.Status}}</b></li>{{end}}{{if .MoreChecks}}<li data-more-checks="{{.MoreChecks}}">and {{.MoreChecks}} more{{if .MoreFailing}}, <b class="fail">{{.MoreFailing}} failing</b>{{end}}</li>{{end}}</ul></td>
<td>{{age $at .Since}}</td>
<td data-restarts="{{.Restarts}}"{{if .LastEnded}} data-last-ended="{{.LastEnded}}"{{end}}>{{.Restarts}}{{if .LastEnded}} <small class="{{if or (eq .LastEnded "stopped") (eq .LastEnded "closed")}}pass{{else}}fail{{end}}">{{.LastEnded}}</small>{{end}}{{if .LastCause}} <span class="reason">{{.LastCause}}</span>{{end}}</td>
{{else}}<td class="fail" colspan="6">unreachable: <span class="reason">{{.Error}}</span></td>{{end}}
</tr>{{end}}</tbody>
</table>
</section>
{{else}}<p role="status">asking the instances for the first time&hellip;</p>
{{end}}</main>
</body>
</html>
`))

// The shared look (package look), and the fleet page's own rules.
const pageStyle = look.Base + `body{max-width:72rem}
header p{margin:0;color:var(--none)}
ul.faults{padding-left:1.2rem}ul.faults li.wide{font-weight:600}
ul.checks{list-style:none;padding:0;margin:0;display:flex;flex-wrap:wrap;gap:.1rem 1rem}
.cordon{border:1px solid var(--warn);border-radius:.3rem;padding:0 .3rem;color:var(--warn)}`
