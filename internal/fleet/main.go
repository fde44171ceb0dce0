package fleet

// The command: flags, one round or a round every interval, printed or
// served.

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sync"
	"time"
)

// Defaults of the flags.
const (
	DefaultPort     = 8081
	DefaultTimeout  = time.Second
	DefaultParallel = 64
	DefaultShare    = 0.5
	DefaultEvery    = 2 * time.Second
)

// Exit codes of Main.
const (
	exitOK      = 0 // every instance reachable and ready, no failing check
	exitFaults  = 1 // anything else, a truncated discovery included
	exitUsage   = 2 // bad usage, or discovery failed
	clearScreen = "\x1b[H\x1b[2J"
)

const usage = `usage: probectl fleet [flags] NAME
       probectl fleet [flags] -targets host:port,host:port,...

Asks the deep view (/healthz?verbose) of every instance of a service, found
through DNS (the A/AAAA records of NAME, one instance a pod; its SRV
records when NAME starts with '_' or with -srv) or listed with -targets,
and prints each failing check as fleet-wide or local, then one row per
instance. Exits 0 when every instance is reachable and ready with no
failing check, 1 otherwise (a DNS answer cut short included: more
instances exist than were asked), 2 when discovery fails or on bad usage.

`

// options are the parsed flags.
type options struct {
	src      source
	timeout  time.Duration
	parallel int
	share    float64
	json     bool
	watch    bool
	every    time.Duration
	serve    string
	title    string
}

// Main runs `probectl fleet` with the arguments after "fleet" and returns
// the exit code: 0 when every instance is reachable and ready with no
// failing check, 1 otherwise (a truncated discovery too), 2 on bad usage
// or when discovery fails. With
// -watch or -serve it runs until ctx ends.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	o, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	if err != nil {
		fmt.Fprintln(stderr, "probectl fleet:", err)
		return exitUsage
	}
	p := newPoller(o.timeout, o.parallel)
	defer p.close()
	f := &fleet{src: &o.src, poller: p, share: o.share}
	found, err := f.src.discover(ctx)
	if err != nil {
		fmt.Fprintln(stderr, "probectl fleet: discovery:", err)
		return exitUsage
	}
	f.found = found
	switch {
	case o.serve != "":
		return serve(ctx, f, o, stderr)
	case o.watch:
		return watch(ctx, f, o, stdout, stderr)
	}
	r := f.round(ctx, false)
	if err := write(stdout, &r, o.json); err != nil {
		fmt.Fprintln(stderr, "probectl fleet:", err)
		return exitFaults
	}
	return code(&r)
}

func code(r *Round) int {
	if r.OK() {
		return exitOK
	}
	return exitFaults
}

func write(w io.Writer, r *Round, asJSON bool) error {
	if asJSON {
		return writeJSON(w, r)
	}
	return writeText(w, r)
}

// fleet is what a round needs: where the instances are, the last
// instances found and how to ask them.
type fleet struct {
	src    *source
	poller *poller
	share  float64
	found  found // last
}

// round asks the fleet once; with again, it discovers it again first
// (instances come and go) and, should that fail, asks the instances
// found before and says why in the round's Error.
func (f *fleet) round(ctx context.Context, again bool) Round {
	var failed error
	if again {
		if found, err := f.src.discover(ctx); err != nil {
			failed = err
		} else {
			f.found = found
		}
	}
	r := round(ctx, f.poller, f.found.targets, f.share)
	if failed != nil {
		r.Error = clean(failed.Error())
	}
	if f.found.truncated {
		r.Truncated = true
		r.Warnings = append(r.Warnings, fmt.Sprintf("discovery: answer truncated, %d of more instances listed", len(f.found.targets)))
	}
	return r
}

// watch prints a round every o.every until ctx ends, redrawn in place on
// a terminal, and returns the exit code of the last round.
func watch(ctx context.Context, f *fleet, o *options, stdout, stderr io.Writer) int {
	term := isTerminal(stdout)
	last := exitFaults
	t := time.NewTicker(o.every)
	defer t.Stop()
	for first := true; ; first = false {
		r := f.round(ctx, !first)
		if ctx.Err() != nil {
			return last // a round cut short says nothing about the fleet
		}
		last = code(&r)
		if term && !o.json {
			io.WriteString(stdout, clearScreen) //nolint:errcheck // the write below reports it
		}
		if err := write(stdout, &r, o.json); err != nil {
			fmt.Fprintln(stderr, "probectl fleet:", err)
			return exitFaults
		}
		select {
		case <-ctx.Done():
			return last
		case <-t.C:
		}
	}
}

// isTerminal reports whether w is a terminal (a character device).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// serve serves the fleet page on o.serve, asking the fleet every o.every
// in the background, until ctx ends.
func serve(ctx context.Context, f *fleet, o *options, stderr io.Writer) int {
	ln, err := net.Listen("tcp", o.serve)
	if err != nil {
		fmt.Fprintln(stderr, "probectl fleet: -serve:", err)
		return exitUsage
	}
	pg := newPage(o.title, o.every)
	srv := &http.Server{
		Handler:           pg,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      10 * time.Second,
		IdleTimeout:       60 * time.Second,
		MaxHeaderBytes:    16 << 10,
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(o.every)
		defer t.Stop()
		for first := true; ; first = false {
			r := f.round(ctx, !first)
			if ctx.Err() != nil {
				return
			}
			pg.update(&r)
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	fmt.Fprintf(stderr, "probectl fleet: serving the fleet page at http://%s/\n", ln.Addr())
	select {
	case <-ctx.Done():
	case err = <-served:
	}
	cancel()
	shut, done := context.WithTimeout(context.Background(), 5*time.Second)
	defer done()
	srv.Shutdown(shut) //nolint:errcheck // nothing more to do about it
	if err == nil {
		err = <-served
	}
	wg.Wait()
	if err != nil && !errors.Is(err, http.ErrServerClosed) {
		fmt.Fprintln(stderr, "probectl fleet: -serve:", err)
		return exitFaults
	}
	return exitOK
}

// parseFlags reads the flags, which may come before or after the name.
func parseFlags(args []string, stderr io.Writer) (*options, error) {
	fs := flag.NewFlagSet("probectl fleet", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, usage)
		fs.PrintDefaults()
	}
	o := &options{}
	targets := fs.String("targets", "", "a static list of instances, host:port,host:port,... (instead of NAME)")
	resolver := fs.String("resolver", "", "the DNS server to ask, HOST:PORT, instead of the system's: only it, names as written, no hosts file")
	port := fs.Int("port", DefaultPort, "the probe port, where the records carry none (A/AAAA records, -targets without one)")
	fs.BoolVar(&o.src.srv, "srv", false, "look up SRV records of NAME (each target's port is its probe port); the default for a NAME starting with '_'")
	fs.DurationVar(&o.timeout, "timeout", DefaultTimeout, "how long one instance may take to answer, through all its addresses together")
	fs.IntVar(&o.parallel, "parallel", DefaultParallel, "requests in flight at once, at most")
	fs.Float64Var(&o.share, "share", DefaultShare, "a failing check is fleet-wide when it fails on at least this share of the reachable instances (and on two)")
	fs.BoolVar(&o.json, "json", false, "print JSON (one document per round)")
	fs.BoolVar(&o.watch, "watch", false, "ask again every -every until interrupted, redrawing in place on a terminal")
	fs.DurationVar(&o.every, "every", DefaultEvery, "with -watch or -serve: how often to ask the fleet")
	fs.StringVar(&o.serve, "serve", "", "serve the fleet as a live page at this address (host:port) instead of printing it")
	var names []string
	for rest := args; ; {
		if err := fs.Parse(rest); err != nil {
			return nil, err
		}
		rest = fs.Args()
		if len(rest) == 0 {
			break
		}
		names, rest = append(names, rest[0]), rest[1:]
	}
	switch {
	case len(names) > 1:
		return nil, fmt.Errorf("one NAME at most, got %d: %q", len(names), names)
	case len(names) == 1 && *targets != "":
		return nil, errors.New("-targets and a NAME: give one of them")
	case len(names) == 0 && *targets == "":
		return nil, errors.New("no instances: give a NAME to look up, or -targets")
	case *port < 1 || *port > 65535:
		return nil, fmt.Errorf("-port %d: want 1 to 65535", *port)
	case o.timeout <= 0:
		return nil, fmt.Errorf("-timeout %s: must be positive", o.timeout)
	case o.parallel < 1:
		return nil, fmt.Errorf("-parallel %d: must be at least 1", o.parallel)
	case !(o.share > 0 && o.share <= 1):
		return nil, fmt.Errorf("-share %g: want more than 0, at most 1", o.share)
	case o.every <= 0:
		return nil, fmt.Errorf("-every %s: must be positive", o.every)
	case o.watch && o.serve != "":
		return nil, errors.New("-watch and -serve: give one of them (the page is live)")
	case *resolver != "" && *targets != "":
		return nil, errors.New("-resolver is for a NAME, not -targets")
	case o.src.srv && *targets != "":
		return nil, errors.New("-srv is for a NAME, not -targets")
	}
	o.src.port = *port
	if *targets != "" {
		t, err := parseTargets(*targets, *port)
		if err != nil {
			return nil, err
		}
		o.src.targets = t
		o.title = fmt.Sprintf("%d instances", len(t))
		return o, nil
	}
	o.src.name = names[0]
	o.title = clean(o.src.name)
	if len(o.src.name) > 0 && o.src.name[0] == '_' {
		o.src.srv = true
	}
	dns, server, err := lookupFor(*resolver)
	if err != nil {
		return nil, err
	}
	o.src.dns, o.src.server = dns, server
	return o, nil
}
