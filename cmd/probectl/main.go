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
// (-for, 1h unless given): a forgotten cordon lifts by itself.
//
// It exits 0 on success, 1 when the service refused (a peer it does not
// let in, a bad reason), and 2 for bad usage or when the socket cannot be
// reached; every error says why.
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
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

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
	if c.socket == "" {
		return fmt.Errorf("%w: no socket; give -socket PATH or set ADMIN_SOCKET", errUnreachable)
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://admin"+path, rd)
	if err != nil {
		return err
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
			return fmt.Errorf("%w %s: no answer within %s (-timeout)", errUnreachable, c.socket, c.timeout)
		}
		return fmt.Errorf("%w %s: %v", errUnreachable, c.socket, errors.Unwrap(err))
	}
	defer res.Body.Close()
	b, err := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("%w %s: reading the answer: %v", errUnreachable, c.socket, err)
	}
	if res.StatusCode/100 != 2 {
		var e admin.ErrorResponse
		msg := strings.TrimSpace(string(b))
		if json.Unmarshal(b, &e) == nil && e.Error != "" {
			msg = e.Error
		}
		return &refusal{status: res.StatusCode, msg: printable(msg)}
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("the answer is not what probectl expects (%v): %s", err, printable(string(b)))
	}
	return nil
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
	var st admin.Status
	if err := c.do(ctx, http.MethodGet, "/status", nil, &st); err != nil {
		return c.fail(err)
	}
	if *asJSON {
		enc := json.NewEncoder(c.stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(st)
		return exitOK
	}
	printStatus(c.stdout, &st, time.Now())
	return exitOK
}

func (c *client) cordon(ctx context.Context, args []string) int {
	fs := c.flags("cordon")
	reason := fs.String("reason", "", "why the instance is out of rotation (required; printable, at most 200 bytes)")
	limit := fs.Duration("for", time.Hour, "how long until the cordon lifts by itself")
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
	if err := c.do(ctx, http.MethodPost, "/cordon", admin.CordonRequest{Reason: *reason, For: limit.String()}, &res); err != nil {
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
	fmt.Fprintf(c.stdout, "uncordoned (was: %s)\n", printable(res.Was.Reason))
	return exitOK
}

func printStatus(w io.Writer, st *admin.Status, now time.Time) {
	var buf bytes.Buffer
	defer func() {
		// The table's empty last cells leave trailing blanks; drop them.
		for line := range strings.Lines(buf.String()) {
			fmt.Fprintln(w, strings.TrimRight(line, " \n"))
		}
	}()
	tw := tabwriter.NewWriter(&buf, 0, 0, 2, ' ', 0)
	since := ""
	if !st.Since.IsZero() {
		since = fmt.Sprintf(" since %s (%s)", st.Since.UTC().Format(time.RFC3339), now.Sub(st.Since).Round(time.Second))
	}
	fmt.Fprintf(tw, "phase\t%s%s\n", printable(st.Phase), since)
	if c := st.Cordon; c != nil {
		fmt.Fprintf(tw, "cordon\t%s (until %s, %s left)\n", printable(c.Reason), c.Until.UTC().Format(time.RFC3339), seconds(c.Left))
	} else {
		fmt.Fprintf(tw, "cordon\tnone\n")
	}
	fmt.Fprintln(tw)
	fmt.Fprintln(tw, "GATE/CHECK\tSTATUS\tSINCE\tDETAIL")
	for _, g := range st.Gates {
		fmt.Fprintf(tw, "%s\t%s\t\t%s\n", printable(g.Gate), printable(g.Status), printable(strings.Join(g.Notes, "; ")))
		for _, t := range g.Tasks {
			state := fmt.Sprintf("%d%%", int(t.Progress*100))
			if t.Done {
				state = "done"
			}
			fmt.Fprintf(tw, "  %s/%s\t%s\t\t%s\n", printable(g.Gate), printable(t.Name), state, printable(t.Error))
		}
		for _, c := range g.Checks {
			s, flap := "", ""
			if !c.Since.IsZero() {
				s = now.Sub(c.Since).Round(time.Second).String()
			}
			if c.Flapping {
				flap = " (flapping)"
			}
			fmt.Fprintf(tw, "  %s/%s\t%s%s\t%s\t%s\n", printable(g.Gate), printable(c.Name), printable(c.Status), flap, s, printable(c.Error))
		}
	}
	tw.Flush()
}

func seconds(s float64) string {
	return (time.Duration(s * float64(time.Second))).Round(time.Second).String()
}

// printable is what the service sent, escaped so that it is shown and
// never obeyed (package printable), and cut to 500 bytes.
func printable(s string) string { return text.Escape(s, 500) }
