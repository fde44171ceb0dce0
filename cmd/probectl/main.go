// Command probectl is the operator's command for services built on probes:
// it takes one instance out of rotation by hand and puts it back, through
// the instance's admin socket (package admin), and tells its state.
//
//	probectl -socket /run/app/admin.sock status [-json]
//	probectl -socket /run/app/admin.sock cordon -reason "disk swap" -for 30m
//	probectl -socket /run/app/admin.sock uncordon
//	probectl fleet [-resolver HOST:PORT] [-port 8081] [-json] [-watch] [-serve ADDR] NAME
//	probectl fleet -targets 10.0.0.7:8081,10.0.0.8:8081
//
// -socket defaults to $ADMIN_SOCKET. A cordon always has a time limit
// (-for, 1h unless given, up to 7d; days count as 24h, as in 1d12h): a
// forgotten cordon lifts by itself.
//
// status reads GET /status, the service's deep view as authorised readers
// read it (/healthz?verbose, with the reasons), and prints it as a table
// (with the restarts and why the last instance ended, when the service
// keeps a state directory), or with -json the document as received.
//
// It exits 0 on success, 1 when the service refused (a peer it does not
// let in, a bad reason, every admin connection in use), and 2 for bad
// usage, an answer it cannot read or when the socket cannot be reached;
// every error says why. A failing service's status is an answer, not a
// refusal: status exits 0 whether the deep view answers 200 or 503.
//
// fleet finds the instances of a service through DNS (a headless
// Service's A/AAAA records, or SRV records; one instance a pod), or from
// -targets, asks each one's deep view at once, and prints one row per
// instance with the failing checks above, each told fleet-wide (a shared
// dependency) or local. It exits 0 when every instance is reachable and
// ready with no failing check, 1 otherwise (a DNS answer cut short too),
// and 2 when discovery fails. -serve ADDR serves the same as a live page.
// probectl fleet -h lists its flags.
//
// Build it static: CGO_ENABLED=0 go build ./cmd/probectl
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/probekit/probes"
	"github.com/probekit/probes/admin"
	"github.com/probekit/probes/internal/fleet"
	text "github.com/probekit/probes/internal/printable"
)

// Exit codes.
const (
	exitOK      = 0
	exitRefused = 1
	exitUsage   = 2
)

func main() {
	// Ctrl-C or SIGTERM ends a request, fleet -watch and fleet -serve
	// cleanly, with the exit code of what was seen last.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

const usage = `usage:
  probectl [-socket PATH] [-timeout 5s] status [-json]
  probectl [-socket PATH] [-timeout 5s] cordon -reason TEXT [-for 1h]
  probectl [-socket PATH] [-timeout 5s] uncordon
  probectl fleet [flags] NAME | -targets HOST:PORT,...   (probectl fleet -h)
-socket defaults to $ADMIN_SOCKET.
`

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("probectl", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, usage) }
	socket := fs.String("socket", getenv("ADMIN_SOCKET"), "the service's admin socket (env ADMIN_SOCKET)")
	timeout := fs.Duration("timeout", 5*time.Second, "how long the whole request may take")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	if fs.NArg() == 0 {
		fs.Usage()
		return exitUsage
	}
	cmd, rest := fs.Arg(0), fs.Args()[1:]
	if cmd == "fleet" {
		return fleet.Main(ctx, rest, stdout, stderr)
	}
	if *timeout <= 0 {
		fmt.Fprintf(stderr, "probectl: -timeout %s: must be positive\n", *timeout)
		return exitUsage
	}
	c := client{socket: *socket, timeout: *timeout, stdout: stdout, stderr: stderr}
	switch cmd {
	case "status":
		return c.status(ctx, rest)
	case "cordon":
		return c.cordon(ctx, rest)
	case "uncordon":
		return c.uncordon(ctx, rest)
	}
	fmt.Fprintf(stderr, "probectl: unknown command %q\n", cmd)
	fs.Usage()
	return exitUsage
}

type client struct {
	socket  string
	timeout time.Duration
	stdout  io.Writer
	stderr  io.Writer
}

// errUnreachable marks a failure to reach the socket: exit 2, not 1.
var errUnreachable = errors.New("cannot reach the admin socket")

// refusal is a non-2xx answer: the service's own words.
type refusal struct {
	status int
	msg    string
}

func (r *refusal) Error() string { return fmt.Sprintf("refused (%d): %s", r.status, r.msg) }

// do sends one request to the socket and decodes a 2xx answer into out.
func (c *client) do(ctx context.Context, method, path string, body, out any) error {
	b, err := c.send(ctx, method, path, body, func(res *http.Response) bool { return res.StatusCode/100 == 2 })
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("the answer is not what probectl expects (%w): %s", err, printable(string(b)))
	}
	return nil
}

// send sends one request to the socket and returns the body of an answer
// that answered accepts; any other is a refusal, in the service's words.
func (c *client) send(ctx context.Context, method, path string, body any, answered func(*http.Response) bool) ([]byte, error) {
	if c.socket == "" {
		return nil, fmt.Errorf("%w: no socket; give -socket PATH or set ADMIN_SOCKET", errUnreachable)
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://admin"+path, rd)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	hc := &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", c.socket)
		},
		DisableKeepAlives: true,
	}}
	res, err := hc.Do(req)
	if err != nil {
		if ctx.Err() == context.DeadlineExceeded {
			return nil, fmt.Errorf("%w %s: no answer within %s (-timeout)", errUnreachable, c.socket, c.timeout)
		}
		return nil, fmt.Errorf("%w %s: %v", errUnreachable, c.socket, errors.Unwrap(err))
	}
	defer res.Body.Close()
	b, err := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("%w %s: reading the answer: %v", errUnreachable, c.socket, err)
	}
	if !answered(res) {
		var e admin.ErrorResponse
		msg := strings.TrimSpace(string(b))
		if json.Unmarshal(b, &e) == nil && e.Error != "" {
			msg = e.Error
		}
		return nil, &refusal{status: res.StatusCode, msg: printable(msg)}
	}
	return b, nil
}

// flags is a subcommand's flag set: its errors say what is wrong, then the
// usage, once.
func (c *client) flags(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(c.stderr)
	fs.Usage = func() { fmt.Fprint(c.stderr, usage) }
	return fs
}

// fail prints err and returns its exit code.
func (c *client) fail(err error) int {
	fmt.Fprintln(c.stderr, "probectl:", err)
	var r *refusal
	if errors.As(err, &r) {
		return exitRefused
	}
	return exitUsage
}

func (c *client) status(ctx context.Context, args []string) int {
	fs := c.flags("status")
	asJSON := fs.Bool("json", false, "print the status as JSON, for machines")
	if err := fs.Parse(args); err != nil || fs.NArg() > 0 {
		if err == nil {
			fmt.Fprint(c.stderr, usage)
		}
		return exitUsage
	}
	b, err := c.send(ctx, http.MethodGet, "/status", nil, deepViewAnswer)
	if err != nil {
		return c.fail(err)
	}
	var dv deepView
	if err := json.Unmarshal(b, &dv); err != nil || dv.Status == "" {
		if err == nil {
			err = errors.New("no status")
		}
		return c.fail(fmt.Errorf("the answer is not a health+json deep view (%w): %s", err, printable(string(b))))
	}
	if *asJSON {
		_, _ = c.stdout.Write(b)
		return exitOK
	}
	printStatus(c.stdout, &dv, time.Now())
	return exitOK
}

// deepViewAnswer reports whether res is the deep view's answer: 200, or
// 503 when the deep view fails, which is the service's status and no
// refusal. The admin socket's own 503 (every connection in use) is JSON,
// not health+json, and stays a refusal.
func deepViewAnswer(res *http.Response) bool {
	mt, _, _ := mime.ParseMediaType(res.Header.Get("Content-Type"))
	return res.StatusCode == http.StatusOK || res.StatusCode == http.StatusServiceUnavailable && mt == "application/health+json"
}

func (c *client) cordon(ctx context.Context, args []string) int {
	fs := c.flags("cordon")
	reason := fs.String("reason", "", "why the instance is out of rotation (required; printable, at most 200 bytes)")
	limit := forFlag(time.Hour)
	fs.Var(&limit, "for", "how long until the cordon lifts by itself, in h, m, s or days (30m, 1d12h; at most 7d)")
	if err := fs.Parse(args); err != nil || fs.NArg() > 0 {
		if err == nil {
			fmt.Fprint(c.stderr, usage)
		}
		return exitUsage
	}
	if *reason == "" {
		fmt.Fprintln(c.stderr, "probectl: cordon: -reason is required: say why the instance is out of rotation")
		return exitUsage
	}
	var res admin.ChangeResponse
	if err := c.do(ctx, http.MethodPost, "/cordon", admin.CordonRequest{Reason: *reason, For: time.Duration(limit).String()}, &res); err != nil {
		return c.fail(err)
	}
	if res.Cordon == nil {
		return c.fail(errors.New("the service answered without a cordon"))
	}
	fmt.Fprintf(c.stdout, "cordoned: %s (lifts by itself at %s, in %s)\n", printable(res.Cordon.Reason),
		res.Cordon.Until.UTC().Format(time.RFC3339), seconds(res.Cordon.Left))
	if res.Was != nil {
		fmt.Fprintf(c.stdout, "replaced: %s\n", printable(res.Was.Reason))
	}
	return exitOK
}

// forFlag is cordon's -for: a duration as the admin socket reads it,
// days included ("7d").
type forFlag time.Duration

func (f *forFlag) String() string { return time.Duration(*f).String() }

func (f *forFlag) Set(s string) error {
	d, err := admin.ParseDuration(s)
	if err != nil {
		return err
	}
	*f = forFlag(d)
	return nil
}

func (c *client) uncordon(ctx context.Context, args []string) int {
	if len(args) > 0 {
		fmt.Fprint(c.stderr, usage)
		return exitUsage
	}
	var res admin.ChangeResponse
	if err := c.do(ctx, http.MethodPost, "/uncordon", struct{}{}, &res); err != nil {
		return c.fail(err)
	}
	if res.Was == nil {
		fmt.Fprintln(c.stdout, "not cordoned; nothing to do")
		return exitOK
	}
	by := ""
	if a := res.Was.By; a != nil {
		by = ", set by " + printable(probes.Author{UID: a.UID, User: a.User, PID: a.PID, Command: a.Command}.String())
	}
	fmt.Fprintf(c.stdout, "uncordoned (was: %s%s)\n", printable(res.Was.Reason), by)
	return exitOK
}

// deepView is what probectl status prints of the document GET /status
// answers: the deep view's health+json body (package server writes it), as
// authorised readers read it with ?verbose. It reads that document and
// keeps no model of its own.
type deepView struct {
	Status string            `json:"status"`
	Notes  []string          `json:"notes"`
	Phase  string            `json:"phase"`
	Since  string            `json:"since"`
	Gates  map[string]string `json:"gates"`
	Cordon *struct {
		Reason string             `json:"reason"`
		Until  string             `json:"until"`
		By     *admin.AuthorState `json:"by"`
	} `json:"cordon"`
	// Restarts and LastEnd say how many instances ran before this one in
	// its pod, and how (and why) the last one ended.
	Restarts int `json:"restarts"`
	LastEnd  *struct {
		Ended string `json:"ended"`
		At    string `json:"at"`
		Cause string `json:"cause"`
	} `json:"lastEnd"`
	// Checks are keyed "<gate>/<check>:<measurement>"; every entry of one
	// check carries the check's status, since, flapping and output.
	Checks map[string][]struct {
		Gate          string   `json:"gate"`
		Status        string   `json:"status"`
		Since         string   `json:"since"`
		Flapping      bool     `json:"flapping"`
		ObservedValue *float64 `json:"observedValue"`
		ObservedUnit  string   `json:"observedUnit"`
		Output        string   `json:"output"`
	} `json:"checks"`
}

// row is one check of a deep view, as the table shows it.
type row struct {
	gate, name, status, since, output string
	flapping                          bool
}

// rows gathers the deep view's entries into one row per check, sorted by
// name: a warm-up task (measurement "progress") that is not done shows how
// far it got.
func (d *deepView) rows() []row {
	byName := map[string]*row{}
	for key, entries := range d.Checks {
		name, measurement, _ := strings.Cut(key, ":")
		for _, e := range entries {
			gate := e.Gate
			if g, _, ok := strings.Cut(name, "/"); ok {
				gate = g
			}
			full := name
			if !strings.Contains(name, "/") { // a service from before canonical names
				full = gate + "/" + name
			}
			r := byName[full]
			if r == nil {
				r = &row{gate: gate, name: full, status: e.Status, since: e.Since, output: e.Output, flapping: e.Flapping}
				byName[full] = r
			}
			if measurement == "progress" && e.ObservedUnit == "%" && e.ObservedValue != nil && e.Status != "pass" {
				r.status = fmt.Sprintf("%s (%g%%)", e.Status, *e.ObservedValue)
			}
		}
	}
	out := make([]row, 0, len(byName))
	for _, r := range byName {
		out = append(out, *r)
	}
	slices.SortFunc(out, func(a, b row) int { return strings.Compare(a.name, b.name) })
	return out
}

// gateOrder lists the deep view's gates in the lifecycle's order, then any
// other, by name.
func (d *deepView) gateOrder(rows []row) []string {
	rank := map[string]int{"startup": 0, "liveness": 1, "readiness": 2}
	var gates []string
	for g := range d.Gates {
		gates = append(gates, g)
	}
	for _, r := range rows { // a check of a gate the document does not list
		if _, ok := d.Gates[r.gate]; !ok && !slices.Contains(gates, r.gate) {
			gates = append(gates, r.gate)
		}
	}
	slices.SortFunc(gates, func(a, b string) int {
		ra, oka := rank[a]
		rb, okb := rank[b]
		switch {
		case oka && okb:
			return ra - rb
		case oka:
			return -1
		case okb:
			return 1
		}
		return strings.Compare(a, b)
	})
	return gates
}

func printStatus(w io.Writer, d *deepView, now time.Time) {
	var buf bytes.Buffer
	defer func() {
		// The table's empty last cells leave trailing blanks; drop them.
		for line := range strings.Lines(buf.String()) {
			fmt.Fprintln(w, strings.TrimRight(line, " \n"))
		}
	}()
	tw := tabwriter.NewWriter(&buf, 0, 0, 2, ' ', 0)
	since := ""
	if t, ok := stamp(d.Since); ok {
		since = fmt.Sprintf(" since %s (%s)", t.Format(time.RFC3339), now.Sub(t).Round(time.Second))
	}
	fmt.Fprintf(tw, "phase\t%s%s\n", printable(d.Phase), since)
	if c := d.Cordon; c != nil {
		reason := c.Reason
		if reason == "" {
			reason = "cordoned"
		}
		until := printable(c.Until)
		if t, ok := stamp(c.Until); ok {
			until = fmt.Sprintf("%s, %s left", t.Format(time.RFC3339), max(t.Sub(now), 0).Round(time.Second))
		}
		fmt.Fprintf(tw, "cordon\t%s (until %s)\n", printable(reason), until)
		if a := c.By; a != nil {
			fmt.Fprintf(tw, "by\t%s\n", printable(probes.Author{UID: a.UID, User: a.User, PID: a.PID, Command: a.Command}.String()))
		}
	} else {
		fmt.Fprintf(tw, "cordon\tnone\n")
	}
	if d.Restarts > 0 || d.LastEnd != nil {
		last := ""
		if e := d.LastEnd; e != nil {
			how := "ended " + e.Ended
			switch e.Ended {
			case "stopped", "broken":
				how = e.Ended
			case "closed":
				how = "was closed"
			}
			last = ": the last " + printable(how)
			if t, ok := stamp(e.At); ok {
				last += fmt.Sprintf(" at %s (%s ago)", t.Format(time.RFC3339), now.Sub(t).Round(time.Second))
			}
			if e.Cause != "" {
				last += ": " + printable(e.Cause)
			}
		}
		fmt.Fprintf(tw, "restarts\t%d%s\n", d.Restarts, last)
	}
	// The notes are the deep view's (the phase, the cordon, the checks
	// behind its verdict), not a gate's.
	notes := ""
	if len(d.Notes) > 0 {
		notes = ": " + strings.Join(d.Notes, "; ")
	}
	fmt.Fprintf(tw, "status\t%s\n", printable(d.Status+notes))
	fmt.Fprintln(tw)
	fmt.Fprintln(tw, "GATE/CHECK\tSTATUS\tSINCE\tDETAIL")
	rows := d.rows()
	for _, g := range d.gateOrder(rows) {
		fmt.Fprintf(tw, "%s\t%s\t\t\n", printable(g), printable(d.Gates[g]))
		for _, r := range rows {
			if r.gate != g {
				continue
			}
			s, flap := "", ""
			if t, ok := stamp(r.since); ok {
				s = now.Sub(t).Round(time.Second).String()
			}
			if r.flapping {
				flap = " (flapping)"
			}
			fmt.Fprintf(tw, "  %s\t%s%s\t%s\t%s\n", printable(r.name), printable(r.status), flap, s, printable(r.output))
		}
	}
	tw.Flush()
}

// stamp reads a time of the deep view ("" is none).
func stamp(s string) (time.Time, bool) {
	t, err := time.Parse(time.RFC3339Nano, s)
	return t.UTC(), err == nil
}

func seconds(s float64) string {
	return (time.Duration(s * float64(time.Second))).Round(time.Second).String()
}

// printable is what the service sent, escaped so that it is shown and
// never obeyed (package printable), and cut to 500 bytes.
func printable(s string) string { return text.Escape(s, 500) }
