package fleet

// Asking the instances: one deep view each, concurrently, with a timeout
// per request and a bound on requests in flight.

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"sync"
	"time"
)

const (
	// maxBody bounds what is read of one deep view.
	maxBody = 1 << 20
	// maxText bounds each text taken from an instance, in bytes.
	maxText = 200
	// maxIdle bounds the connections kept between rounds (one per
	// instance): beyond it, instances are connected to afresh each round
	// rather than hold a file descriptor each.
	maxIdle = 4096
	// oldGate is the gate of a check whose entry names none (an instance
	// from before entries carried their gate): the deep view's own.
	oldGate = "health"
)

// Instance is what one instance said, or why it said nothing.
type Instance struct {
	// Address is where it was asked, host:port: the address that
	// answered, or the last one tried. An instance that has no address
	// (its name did not resolve) is listed as name:port, and not asked.
	Address string `json:"address"`
	// Name is the pod's name, from its SRV record or the PTR records of
	// its addresses, or else the instance its deep view names (its
	// probes.Identity's Instance); "" when it is known by an address only.
	Name string `json:"name,omitempty"`
	// Service and Release are the deep view's serviceId and releaseId:
	// which service answered, and which build of it; "" when it does not
	// say.
	Service string `json:"service,omitempty"`
	Release string `json:"release,omitempty"`
	// Addresses are every address of the pod, in the order they are tried:
	// one instance, asked once, through the first that takes a connection.
	Addresses []string `json:"addresses"`
	// Reachable says whether it answered with a deep view in time.
	Reachable bool `json:"reachable"`
	// Status is the deep view's top-level status: pass, warn or fail.
	Status string `json:"status"`
	// Phase is its lifecycle's phase: cold, warming, ready, draining,
	// stopped or broken.
	Phase string `json:"phase"`
	// Ready says whether its readiness gate does not fail: whether a
	// balancer keeps it in rotation.
	Ready bool `json:"ready"`
	// Readiness is the readiness gate's verdict (pass, warn or fail); ""
	// from an instance that does not say.
	Readiness string `json:"readiness"`
	// Cordon is the reason of the cordon, "" when not cordoned.
	Cordon string `json:"cordon"`
	// CordonUntil is when the cordon lifts by itself.
	CordonUntil string `json:"cordonUntil,omitempty"`
	// CordonBy is who set the cordon ("uid 1000 (alice), pid 4242:
	// probectl …"), when the instance tells the fleet's reader.
	CordonBy string `json:"cordonBy,omitempty"`
	// Restarts counts the instances that ran before it in its pod, as its
	// deep view says (a state directory on an emptyDir: history.StateDir);
	// 0 when it does not say.
	Restarts int `json:"restarts"`
	// LastEnded says how the last of them ended: stopped, broken, closed
	// or "without a word" (killed); "" when none did. LastCause says why,
	// when the instance tells the fleet view (an authorised reader).
	LastEnded string `json:"lastEnded,omitempty"`
	LastCause string `json:"lastCause,omitempty"`
	// Failing lists "<gate>/<name>" of the failing checks kept in Checks,
	// sorted.
	Failing []string `json:"failing"`
	// Checks are its checks with their status, sorted by name: at most
	// MaxChecks, the most severe kept (failing, then warning, then
	// passing; by name within each).
	Checks []Check `json:"checks"`
	// MoreChecks counts the checks not kept in Checks.
	MoreChecks int `json:"moreChecks"`
	// MoreFailing counts the failing checks among them, not in Failing.
	MoreFailing int `json:"moreFailing"`
	// Since is when the phase began, as the instance wrote it.
	Since string `json:"since"`
	// Error says why the instance is unreachable.
	Error string `json:"error"`
	// Took is how long the request took, in milliseconds.
	Took float64 `json:"tookMs"`
}

// Check is one check of an instance.
type Check struct {
	// Name is "<gate>/<name>", such as "readiness/postgres".
	Name string `json:"name"`
	// Status is the worst status of its entries: pass, warn or fail.
	Status string `json:"status"`
}

// healthy reports whether the instance counts as all well for the exit code.
func (in *Instance) healthy() bool {
	return in.Reachable && in.Ready && len(in.Failing) == 0 && in.MoreFailing == 0
}

// poller asks instances. Its client keeps connections between rounds;
// close it when done.
type poller struct {
	client   *http.Client
	timeout  time.Duration
	parallel int
}

func newPoller(timeout time.Duration, parallel int) *poller {
	tr := &http.Transport{
		Proxy:                  nil, // an instance is asked directly, never through a proxy from the environment
		DialContext:            (&net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:           maxIdle,
		MaxIdleConnsPerHost:    1,
		IdleConnTimeout:        90 * time.Second,
		ResponseHeaderTimeout:  timeout,
		DisableCompression:     true,
		MaxResponseHeaderBytes: 64 << 10,
	}
	return &poller{client: &http.Client{Transport: tr,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }},
		timeout: timeout, parallel: parallel}
}

func (p *poller) close() { p.client.CloseIdleConnections() }

// ask asks every target once, at most parallel at a time, and returns
// the instances in the order of targets. Each instance has the timeout
// from the moment its request starts, for all of its addresses together;
// a round never lasts longer than ceil(len(targets)/parallel) timeouts.
func (p *poller) ask(ctx context.Context, targets []target) []Instance {
	out := make([]Instance, len(targets))
	next := make(chan int)
	var wg sync.WaitGroup
	for range min(p.parallel, len(targets)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				out[i] = p.one(ctx, &targets[i])
			}
		}()
	}
	for i := range targets {
		next <- i
	}
	close(next)
	wg.Wait()
	return out
}

// one asks one instance: through its first address, and through the next
// should that one take no connection (refused, unreachable), while the
// timeout lasts. A target without an address is not asked at all.
func (p *poller) one(ctx context.Context, t *target) Instance {
	began := time.Now()
	fresh := func() Instance {
		return Instance{Address: t.id, Name: clean(t.name), Addresses: append([]string{}, t.addrs...),
			Failing: []string{}, Checks: []Check{}}
	}
	in := fresh()
	if len(t.addrs) == 0 {
		in.Error = clean(t.err)
		return in
	}
	ctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	var err error
	for _, a := range t.addrs {
		in = fresh()
		in.Address = a
		err = p.fetch(ctx, a, &in)
		if err == nil || !noConnection(err) || ctx.Err() != nil {
			break
		}
	}
	in.Took = float64(time.Since(began).Microseconds()) / 1000
	if err != nil {
		addr, took := in.Address, in.Took
		in = fresh()
		in.Address, in.Took, in.Error = addr, took, clean(err.Error())
	}
	return in
}

// noConnection reports whether err is a connection not made: the
// instance said nothing, so its other address may.
func noConnection(err error) bool {
	var oe *net.OpError
	return errors.As(err, &oe) && oe.Op == "dial"
}

// fetch asks addr for its deep view, within ctx.
func (p *poller) fetch(ctx context.Context, addr string, in *Instance) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/healthz?verbose", nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/health+json")
	req.Header.Set("User-Agent", "probectl-fleet")
	res, err := p.client.Do(req)
	if err != nil {
		if ue, ok := err.(*url.Error); ok { // it repeats the method and URL
			err = ue.Err
		}
		if errors.Is(err, context.DeadlineExceeded) {
			return fmt.Errorf("no answer within %s", p.timeout)
		}
		return err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK && res.StatusCode != http.StatusServiceUnavailable {
		return fmt.Errorf("HTTP %d: not a deep view", res.StatusCode)
	}
	err = parse(&limited{r: res.Body, left: maxBody}, in)
	switch {
	case errors.Is(err, errTooLarge):
		return fmt.Errorf("the deep view is larger than %d KiB", maxBody>>10)
	case errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("the body not read within %s", p.timeout)
	}
	return err
}
