package history

import (
	"fmt"
	"html/template"
	"strings"
	"time"

	"github.com/probekit/probes"
	"github.com/probekit/probes/internal/look"
)

// snapshot is what one rendering shows, read once for both variants.
type snapshot struct {
	phase       probes.Phase
	since       time.Time
	cordon      probes.Cordon
	gates       []probes.Report
	transitions []Transition
	series      map[string]Series // "gate/check"
	past        probes.Past
	previous    []Instance
	now         time.Time // by the lifecycle's clock, for the warm-up's estimate
}

func (p *Page) snapshot() snapshot {
	f := p.lc.Facts()
	s := snapshot{phase: f.Phase, since: f.Since, cordon: f.Cordon, gates: f.Gates, series: map[string]Series{}, past: f.Past, now: p.lc.Clock().Now()}
	for _, rep := range s.gates {
		if p.hist == nil {
			break
		}
		for _, c := range rep.Checks {
			if sr, ok := p.hist.Check(rep.Gate, c.Name); ok {
				s.series[probes.CheckName(rep.Gate, c.Name)] = sr
			}
		}
	}
	if p.hist != nil {
		s.transitions = p.hist.Transitions()
		s.previous = p.hist.previous
	}
	return s
}

type liveData struct {
	Phase, Since string
	Cordon       *cordonView
	Warming      *warmingView // a warm-up under way, with no failed attempt
	Shared       []string     // failing shared checks readiness only warns for
	Gates        []gateView
	Tasks        []taskView
	Checks       []checkView
	Transitions  []transitionView
	Past         *pastView
	Previous     []previousView // newest first
}

// pastView is the line under the phase: how many restarts, and how the
// last instance ended.
type pastView struct {
	Restarts          int
	Ended, End, Cause string
	Clean             bool
}

type previousView struct {
	Number                                             int
	Release, Instance, Start, End, Seen, Ended, Phrase string
	Cause                                              string
	Clean                                              bool
	Transitions                                        []transitionView // the newest instance's only, newest first
}

// gateView is a gate's verdict; Shown is what the page says of it:
// "warming" for startup and readiness failing only because a normal
// warm-up is under way, its verdict otherwise.
type gateView struct{ Name, Status, Shown string }

// warmingView is the warm-up's estimate: progress per second so far, from
// the phase's start, and when it should end at that pace.
type warmingView struct {
	Progress   int    // percent, of the task with the most time left
	Rate       string // such as "2.5% a second"
	Left, Done string // "" before any progress
	left       time.Duration
}

type cordonView struct{ Reason, By, Since, Until string }

type taskView struct {
	Name, State, Reason string
	Progress            int
	Left                string // at its pace so far; "" when done or not started
}

type checkView struct {
	Gate, Name, Status, Since, Reason, P99, Points string
	Flapping, Critical                             bool
	Shared                                         bool // a failing shared dependency: readiness only warns
	Strip                                          []stripCell
}

type stripCell struct {
	X     int
	Class string
	Title string
}

type transitionView struct{ At, Subject, From, To, Reason, By string }

// view is the snapshot as the template shows it to audience a: reasons
// only for authorised readers (probes.Report.For).
func (s snapshot) view(a probes.Audience) liveData {
	d := liveData{Phase: s.phase.String(), Since: when(s.since)}
	if c := s.cordon.For(a); !c.IsZero() {
		d.Cordon = &cordonView{Reason: c.Reason, By: c.By.String(), Since: when(c.Since), Until: when(c.Until)}
	}
	reason := func(err error) string {
		if err == nil {
			return ""
		}
		return err.Error() // "reason withheld" for anonymous readers
	}
	warming := s.warming()
	if warming {
		d.Warming = &warmingView{}
	}
	elapsed := s.now.Sub(s.since)
	for i := range s.gates {
		shown := s.gates[i].For(a)
		rep := &shown
		g := gateView{Name: rep.Gate.String(), Status: rep.Status().String()}
		g.Shown = g.Status
		if warming && rep.Status() == probes.Fail && (rep.Gate == probes.Startup || rep.Gate == probes.Readiness) {
			g.Shown = "warming"
		}
		d.Gates = append(d.Gates, g)
		for _, t := range rep.Tasks {
			state := "in progress"
			switch {
			case t.Done:
				state = "done"
			case t.Failures > 0:
				state = fmt.Sprintf("retrying after %d failed attempts", t.Failures)
			}
			v := taskView{Name: t.Name, State: state, Progress: int(t.Progress() * 100), Reason: reason(t.Err)}
			if left, ok := estimate(t.Progress(), elapsed); ok && warming && !t.Done {
				v.Left = "about " + left.String() + " left"
				if w := d.Warming; w.Left == "" || left > w.left {
					w.left, w.Left = left, v.Left
					w.Progress, w.Rate = v.Progress, fmt.Sprintf("%.2g%% a second", 100*t.Progress()/elapsed.Seconds())
					w.Done = when(s.now.Add(left))
				}
			}
			d.Tasks = append(d.Tasks, v)
		}
		for j := range rep.Checks {
			c := &rep.Checks[j]
			v := checkView{Gate: rep.Gate.String(), Name: c.Name, Status: c.Status.String(), Flapping: c.Flapping,
				Critical: c.Critical, Reason: reason(c.Err)}
			if rep.Gate == probes.Readiness && c.Shared && c.EverPassed && c.Status == probes.Fail {
				v.Shared = true
				d.Shared = append(d.Shared, c.Name)
			}
			v.Since = when(c.Since)
			if sr, ok := s.series[probes.CheckName(rep.Gate, c.Name)]; ok {
				v.Points, v.P99, v.Strip = spark(sr.Minutes)
			}
			d.Checks = append(d.Checks, v)
		}
	}
	d.Transitions = newestFirst(s.transitions, 50, a)
	if p := s.past.For(a); !p.IsZero() {
		d.Past = &pastView{Restarts: p.Restarts, Ended: ended(p.Ended), End: when(p.End), Cause: p.Cause, Clean: p.Clean()}
	}
	for i := len(s.previous) - 1; i >= 0; i-- {
		in := s.previous[i].For(a)
		v := previousView{Number: in.Number, Release: in.Identity.Release, Instance: in.Identity.Instance, Start: when(in.Start),
			End: when(in.End), Seen: when(in.Seen), Ended: in.Ended, Phrase: ended(in.Ended), Cause: in.Cause, Clean: in.Clean()}
		if len(d.Previous) == 0 {
			v.Transitions = newestFirst(in.Transitions, maxPreviousShown, a)
		}
		d.Previous = append(d.Previous, v)
	}
	return d
}

// warming reports whether a normal warm-up is under way: the phase is Cold
// or Warming and no warm-up task has failed an attempt.
func (s snapshot) warming() bool {
	if s.phase != probes.Cold && s.phase != probes.Warming {
		return false
	}
	for i := range s.gates {
		for _, t := range s.gates[i].Tasks {
			if t.Failures > 0 {
				return false
			}
		}
	}
	return true
}

// estimate is how long a task with progress p after elapsed has left, at
// its pace so far (progress per second), rounded to the second; false
// before any progress.
func estimate(p float64, elapsed time.Duration) (time.Duration, bool) {
	if p <= 0 || p >= 1 || elapsed <= 0 {
		return 0, false
	}
	left := time.Duration(float64(elapsed) * (1 - p) / p)
	return max(left.Round(time.Second), time.Second), true
}

// maxPreviousShown bounds the transitions of the last instance the page
// shows.
const maxPreviousShown = 10

// newestFirst is the newest n of ts as the page shows them to a.
func newestFirst(ts []Transition, n int, a probes.Audience) []transitionView {
	var out []transitionView
	for i := len(ts) - 1; i >= 0 && len(out) < n; i-- {
		t := ts[i].For(a)
		out = append(out, transitionView{At: t.At.UTC().Format("2006-01-02 15:04:05.000 UTC"), Subject: t.Subject, From: t.From, To: t.To, Reason: t.Reason, By: t.By})
	}
	return out
}

// ended says how an instance ended, in a few words.
func ended(how string) string {
	switch how {
	case probes.EndedStopped:
		return "stopped"
	case probes.EndedBroken:
		return "broke"
	case probes.EndedClosed:
		return "was closed"
	case probes.EndedSilent:
		return "ended without a word (killed, out of memory, or its machine went down)"
	}
	return how
}

// spark turns the last hour into a polyline of p99 per minute (120 x 24),
// the hour's worst p99, and a strip of one cell per minute coloured by the
// worst outcome in it.
func spark(minutes []Bucket) (points, p99 string, strip []stripCell) {
	var worst time.Duration
	for _, b := range minutes {
		worst = max(worst, b.P99)
	}
	var pts []string
	for i, b := range minutes {
		cell := stripCell{X: i * 2, Class: "none", Title: b.Start.UTC().Format("2006-01-02 15:04 UTC")}
		switch {
		case b.Fail > 0:
			cell.Class = "fail"
		case b.Warn > 0:
			cell.Class = "warn"
		case b.Pass > 0:
			cell.Class = "pass"
		}
		if n := b.Executions(); n > 0 {
			cell.Title += fmt.Sprintf(": %d pass, %d warn, %d fail", b.Pass, b.Warn, b.Fail)
			y := 23.0
			if worst > 0 {
				y = 23 - 22*float64(b.P99)/float64(worst)
			}
			pts = append(pts, fmt.Sprintf("%d,%.1f", i*2, y))
		}
		strip = append(strip, cell)
	}
	if worst > 0 {
		p99 = worst.Round(10 * time.Microsecond).String()
	}
	return strings.Join(pts, " "), p99, strip
}

// when writes t for the page: absolute, since a rendering is shared by
// every reader until the next change or refresh, and an age would be stale
// in it.
func when(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format("2006-01-02 15:04:05 UTC")
}

type pageData struct {
	Title  string
	Style  template.CSS
	Script template.JS
	Live   template.HTML
}

var tmpl = template.Must(template.New("").Parse(`{{define "page"}}<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Title}}</title>
<style>{{.Style}}</style>
</head>
<body>
<header><h1>{{.Title}}</h1><p id="conn" role="status" aria-live="polite">live updates need JavaScript</p></header>
<main id="live" aria-live="polite">{{.Live}}</main>
<script>{{.Script}}</script>
</body>
</html>
{{end}}{{define "live"}}<section aria-labelledby="h-phase">
<h2 id="h-phase">Phase</h2>
<p class="phase"><strong data-phase="{{.Phase}}" class="ph-{{.Phase}}">{{.Phase}}</strong>{{if .Since}} since <time>{{.Since}}</time>{{end}}</p>
{{with .Cordon}}<p class="warn" data-cordon="{{.Reason}}"><b>cordoned</b> by hand at <time>{{.Since}}</time>{{with .By}} by <span class="by" data-by="{{.}}">{{.}}</span>{{end}}{{if .Reason}}: <span class="reason">{{.Reason}}</span>{{end}}. Readiness fails until it is lifted, or by itself at <time>{{.Until}}</time>.</p>{{end}}
{{with .Past}}<p class="past{{if not .Clean}} warn{{end}}" data-restarts="{{.Restarts}}"><b>{{.Restarts}} restart{{if ne .Restarts 1}}s{{end}}</b>: the last instance {{.Ended}}{{if .End}} at <time>{{.End}}</time>{{end}}{{if .Cause}}: <span class="reason">{{.Cause}}.</span>{{else}}.{{end}}</p>{{end}}
{{with .Warming}}<p class="warming" data-warming{{if .Left}} data-left="{{.Left}}"{{end}}><b>warming up</b>: startup and readiness fail until the warm-up ends, as they should; the balancer sends no traffic here yet.{{if .Left}} At its pace so far ({{.Rate}}), {{.Left}}, done by about <time>{{.Done}}</time>.{{else}} No progress to estimate from yet.{{end}}</p>{{end}}
{{if .Shared}}<p class="warn" data-shared-failing>{{range $i, $n := .Shared}}{{if $i}}, {{end}}<b>readiness/{{$n}}</b>{{end}} fail{{if eq (len .Shared) 1}}s{{end}}, but this instance <b>stays in rotation</b>: {{if eq (len .Shared) 1}}it is a dependency{{else}}they are dependencies{{end}} every replica shares (probes.Shared), so {{if eq (len .Shared) 1}}it fails{{else}}they fail{{end}} for all of them at once, and taking them all out would turn a partial outage into a total one. Readiness warns instead; the routes that need {{if eq (len .Shared) 1}}it{{else}}them{{end}} fail on their own.</p>{{end}}
<ul class="gates">{{range .Gates}}<li data-gate="{{.Name}}" data-status="{{.Status}}" class="{{.Shown}}">{{.Name}}: <b>{{.Shown}}</b></li>{{end}}</ul>
</section>
{{if .Tasks}}<section aria-labelledby="h-warm">
<h2 id="h-warm">Warm-up</h2>
<ul class="tasks">{{range .Tasks}}<li data-task="{{.Name}}" data-progress="{{.Progress}}"><label>{{.Name}} <progress max="100" value="{{.Progress}}">{{.Progress}}%</progress> {{.Progress}}% {{.State}}{{with .Left}}, <span data-left>{{.}}</span>{{end}}</label>{{if .Reason}} <span class="reason">{{.Reason}}</span>{{end}}</li>{{end}}</ul>
</section>{{end}}
<section aria-labelledby="h-checks">
<h2 id="h-checks">Checks</h2>
<table>
<thead><tr><th scope="col">check</th><th scope="col">status</th><th scope="col">since</th><th scope="col">p99, last hour</th><th scope="col">last hour</th></tr></thead>
<tbody>{{range .Checks}}<tr data-check="{{.Gate}}/{{.Name}}" data-status="{{.Status}}"{{if .Flapping}} data-flapping{{end}}>
<th scope="row">{{.Gate}}/{{.Name}}{{if not .Critical}} <small>(non-critical)</small>{{end}}</th>
<td class="{{.Status}}"><b>{{.Status}}</b>{{if .Flapping}} <span class="flap" title="its outcomes keep changing">flapping</span>{{end}}{{if .Shared}} <span class="shared" data-shared title="a dependency every replica shares: readiness warns, the instance stays in rotation">shared: stays in rotation</span>{{end}}{{if .Reason}}<br><span class="reason">{{.Reason}}</span>{{end}}</td>
<td>{{if .Since}}<time>{{.Since}}</time>{{end}}</td>
<td>{{if .Points}}<svg class="spark" viewBox="0 0 120 24" width="120" height="24" role="img" aria-label="p99 latency per minute, at most {{.P99}}"><polyline points="{{.Points}}"/></svg> {{.P99}}{{end}}</td>
<td>{{if .Strip}}<svg class="strip" viewBox="0 0 120 8" width="120" height="8" role="img" aria-label="outcomes per minute over the last hour">{{range .Strip}}<rect x="{{.X}}" y="0" width="2" height="8" class="{{.Class}}"><title>{{.Title}}</title></rect>{{end}}</svg>{{end}}</td>
</tr>{{end}}</tbody>
</table>
{{if .Checks}}<p class="legend" data-legend>Last hour, one cell a minute, the newest at the right, coloured by the worst outcome in it: <span class="key pass"></span> pass <span class="key warn"></span> warn <span class="key fail"></span> fail <span class="key none"></span> no execution. The p99 line is per minute, up to the hour's worst, never above its longest execution.</p>{{end}}
</section>
<section aria-labelledby="h-time">
<h2 id="h-time">Timeline</h2>
<ol class="timeline" reversed>{{range .Transitions}}<li data-transition data-subject="{{.Subject}}" data-from="{{.From}}" data-to="{{.To}}"><time>{{.At}}</time> {{.Subject}}: {{.From}} &rarr; <b class="{{.To}}">{{.To}}</b>{{if .Reason}} <span class="reason">{{.Reason}}</span>{{end}}{{with .By}} <span class="by" data-by="{{.}}">by {{.}}</span>{{end}}</li>{{else}}<li>nothing yet</li>{{end}}</ol>
</section>
{{if .Previous}}<section aria-labelledby="h-prev">
<h2 id="h-prev">Previous instance{{if gt (len .Previous) 1}}s{{end}}</h2>
<ol class="previous">{{range .Previous}}<li data-previous="{{.Number}}" data-ended="{{.Ended}}"{{if .Clean}} data-clean{{end}}>#{{.Number}}{{with .Release}} {{.}}{{end}}{{with .Instance}} on {{.}}{{end}}: <time>{{.Start}}</time> to {{if .End}}<time>{{.End}}</time>{{else}}? (last heard of at <time>{{.Seen}}</time>){{end}}, <b class="{{if .Clean}}pass{{else}}fail{{end}}">{{.Phrase}}</b>{{if .Cause}}: <span class="reason">{{.Cause}}</span>{{end}}
{{if .Transitions}}<ol class="timeline" reversed>{{range .Transitions}}<li data-previous-transition data-subject="{{.Subject}}" data-from="{{.From}}" data-to="{{.To}}"><time>{{.At}}</time> {{.Subject}}: {{.From}} &rarr; <b class="{{.To}}">{{.To}}</b>{{if .Reason}} <span class="reason">{{.Reason}}</span>{{end}}{{with .By}} <span class="by" data-by="{{.}}">by {{.}}</span>{{end}}</li>{{end}}</ol>{{end}}</li>{{end}}</ol>
</section>{{end}}
{{end}}`))

// style is the shared look (package look) and the status page's own rules.
const style = look.Base + `body{max-width:60rem}
#conn{margin:0;color:var(--none)}.offline #conn{color:var(--fail)}
ul.gates,ul.tasks{list-style:none;padding:0;display:flex;flex-wrap:wrap;gap:.3rem 1.2rem}
.flap{border:1px solid var(--warn);border-radius:.3rem;padding:0 .3rem;color:var(--warn)}
svg.spark polyline{fill:none;stroke:currentColor;stroke-width:1}
svg.strip rect.pass{fill:var(--pass)}svg.strip rect.warn{fill:var(--warn)}svg.strip rect.fail{fill:var(--fail)}svg.strip rect.none{fill:#8883}
ol.timeline{padding-left:1.5rem}time{color:var(--none)}
table{max-width:100%}th,td{overflow-wrap:anywhere}
.reason,.by{display:inline-block;max-width:40rem;white-space:normal;overflow-wrap:anywhere}
.warming,.gates li.warming{color:var(--none)}
.shared{border:1px solid var(--warn);border-radius:.3rem;padding:0 .3rem;color:var(--warn)}
.legend{font-size:.85em;color:var(--none)}.key{display:inline-block;width:.7em;height:.7em;vertical-align:middle}
.key.pass{background:var(--pass)}.key.warn{background:var(--warn)}.key.fail{background:var(--fail)}.key.none{background:#8883}`

const script = `(function(){var m=document.getElementById("live"),c=document.getElementById("conn");
if(!window.EventSource||!m)return;c.textContent="connecting";
var u=location.pathname+(location.search?location.search+"&":"?")+"events",s=new EventSource(u);
s.onopen=function(){document.body.classList.remove("offline");c.textContent="live"};
s.onmessage=function(e){m.innerHTML=e.data};
s.onerror=function(){document.body.classList.add("offline");c.textContent="reconnecting"};})();`
