package fleet

// Discovery: a static list, or DNS as a headless Kubernetes Service
// publishes its pods (A and AAAA records of the Service's name; SRV records
// of _port._proto.name).

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// MaxInstances bounds the instances one round asks, so that memory stays
// bounded whatever a DNS server answers.
const MaxInstances = 10000

// dnsTimeout bounds the lookups of one discovery.
const dnsTimeout = 5 * time.Second

// errNoRecords is discovery finding nothing.
var errNoRecords = errors.New("no records")

// source says where the instances are.
type source struct {
	targets []string // static host:port list, or
	name    string   // a DNS name
	srv     bool     // look up SRV records of name, not A/AAAA
	port    int      // the probe port where the records carry none
	dns     lookup   // how name is looked up
	server  string   // the DNS server asked (-resolver), "" for the system's
}

// target is one instance to ask: a pod, with every address it has.
type target struct {
	// id is how it is listed while it has no address: host:port.
	id string
	// name is the pod's name, from its SRV record or its addresses' PTR
	// records; "" when it is known by an address only.
	name string
	// addrs are where to ask it (host:port), in order: the next when one
	// cannot be connected to. None when name did not resolve.
	addrs []string
	// err says why there are no addrs.
	err string
}

// found is what one discovery found.
type found struct {
	targets []target
	// truncated says the answer was cut short: the DNS server has more
	// records than its answer held, so more instances exist.
	truncated bool
}

// static is the instances of a -targets list: each address one instance.
func static(addrs []string) []target {
	out := make([]target, len(addrs))
	for i, a := range addrs {
		out[i] = target{id: a, addrs: []string{a}}
	}
	return out
}

// discover finds the instances, one target a pod, in the order found.
// Discovered instances are addresses the DNS server gave, never names
// left for the system to resolve when they are dialled.
func (s *source) discover(ctx context.Context) (found, error) {
	if s.name == "" {
		return found{targets: static(s.targets)}, nil
	}
	ctx, cancel := context.WithTimeout(ctx, dnsTimeout)
	defer cancel()
	var f found
	var err error
	if s.srv {
		f, err = s.discoverSRV(ctx)
	} else {
		f, err = s.discoverHost(ctx)
	}
	if err != nil {
		return found{}, err
	}
	if len(f.targets) == 0 {
		return found{}, fmt.Errorf("%s: %w", s.name, errNoRecords)
	}
	return f, nil
}

// discoverSRV finds a pod in each SRV record: its target is the pod's
// name, resolved through the same server, at the record's port.
func (s *source) discoverSRV(ctx context.Context) (found, error) {
	recs, cut, err := s.dns.srv(ctx, s.name)
	if err != nil {
		return found{}, s.lookupError(s.name, "SRV", err)
	}
	type pod struct {
		name string
		port uint16
	}
	var pods []pod
	seen := map[pod]bool{}
	for _, rec := range recs {
		p := pod{strings.ToLower(strings.TrimSuffix(rec.Target, ".")), rec.Port}
		if !seen[p] {
			seen[p] = true
			pods = append(pods, p)
		}
	}
	if len(pods) > MaxInstances {
		return found{}, s.tooMany()
	}
	// Each name once, at most srvLookups at a time. A name that does not
	// resolve (a pod deleted between the two questions) is kept with the
	// reason: the poll lists it unreachable, and the rest go on.
	names := map[string]int{}
	var order []string
	for _, p := range pods {
		if _, ok := names[p.name]; !ok {
			names[p.name] = len(order)
			order = append(order, p.name)
		}
	}
	ips := make([][]netip.Addr, len(order))
	errs := make([]error, len(order))
	sem := make(chan struct{}, srvLookups)
	var wg sync.WaitGroup
	for i, name := range order {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			ips[i], _, errs[i] = s.dns.ips(ctx, name)
		}()
	}
	wg.Wait()
	f := found{truncated: cut}
	for _, p := range pods {
		i := names[p.name]
		t := target{id: net.JoinHostPort(p.name, strconv.Itoa(int(p.port))), name: p.name}
		for _, ip := range familyOrder(ips[i]) {
			t.addrs = append(t.addrs, net.JoinHostPort(ip.String(), strconv.Itoa(int(p.port))))
		}
		if len(t.addrs) == 0 {
			t.err = fmt.Sprintf("%s does not resolve through %s: %s", p.name, s.dns.server(), reason(errs[i]))
		}
		f.targets = append(f.targets, t)
	}
	return f, nil
}

// discoverHost finds the pods behind the A and AAAA records of a headless
// Service's name (see pods).
func (s *source) discoverHost(ctx context.Context) (found, error) {
	ips, cut, err := s.dns.ips(ctx, s.name)
	if err != nil {
		return found{}, s.lookupError(s.name, "A/AAAA", err)
	}
	ips = slices.Compact(slices.SortedFunc(slices.Values(ips), netip.Addr.Compare))
	if len(ips) > 2*MaxInstances {
		return found{}, s.tooMany()
	}
	f := found{truncated: cut}
	for _, p := range s.pods(ctx, ips) {
		t := target{name: p.name}
		for _, ip := range p.ips {
			t.addrs = append(t.addrs, net.JoinHostPort(ip.String(), strconv.Itoa(s.port)))
		}
		t.id = t.addrs[0]
		f.targets = append(f.targets, t)
	}
	if len(f.targets) > MaxInstances {
		return found{}, s.tooMany()
	}
	return f, nil
}

// pod is the addresses of one pod, under its name if it has one.
type pod struct {
	name string
	ips  []netip.Addr
}

// pods tells the pods behind a headless Service's addresses. A pod has at
// most one address of each family; a dual-stack pod has both, under one
// name. With one family only, each address is a pod. With both, the PTR
// records Kubernetes publishes for pod addresses pair them: addresses
// whose PTR records name the same pod are one (a name given to more than
// one address of a family names no pod). Addresses left unpaired in both
// families cannot be told apart: they are the same pods seen twice, and
// the family with more of them stands for those pods (IPv4 on a tie).
func (s *source) pods(ctx context.Context, ips []netip.Addr) []pod {
	var v4, v6 int
	for _, ip := range ips {
		if ip.Is4() {
			v4++
		} else {
			v6++
		}
	}
	if v4 == 0 || v6 == 0 {
		out := make([]pod, len(ips))
		for i, ip := range ips {
			out[i] = pod{ips: []netip.Addr{ip}}
		}
		return out
	}
	names := make([]string, len(ips))
	sem := make(chan struct{}, srvLookups)
	var wg sync.WaitGroup
	for i, ip := range ips {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			if n, err := s.dns.ptr(ctx, ip); err == nil && len(n) > 0 {
				names[i] = strings.ToLower(strings.TrimSuffix(n[0], "."))
			}
		}()
	}
	wg.Wait()
	type family struct {
		name string
		v4   bool
	}
	uses := map[family]int{}
	for i, n := range names {
		if n != "" {
			uses[family{n, ips[i].Is4()}]++
		}
	}
	var out []pod
	byName := map[string]int{}
	for i, ip := range ips {
		n := names[i]
		if n == "" || uses[family{n, ip.Is4()}] > 1 {
			out = append(out, pod{ips: []netip.Addr{ip}})
			continue
		}
		if j, ok := byName[n]; ok {
			out[j].ips = familyOrder(append(out[j].ips, ip))
			continue
		}
		byName[n] = len(out)
		out = append(out, pod{name: n, ips: []netip.Addr{ip}})
	}
	var only4, only6 int
	for _, p := range out {
		if len(p.ips) == 1 && p.ips[0].Is4() {
			only4++
		} else if len(p.ips) == 1 {
			only6++
		}
	}
	if only4 > 0 && only6 > 0 {
		drop6 := only4 >= only6
		out = slices.DeleteFunc(out, func(p pod) bool { return len(p.ips) == 1 && p.ips[0].Is4() != drop6 })
	}
	return out
}

// familyOrder puts IPv4 addresses first: every pod is asked through the
// same family first, the one every dual-stack cluster has.
func familyOrder(ips []netip.Addr) []netip.Addr {
	slices.SortStableFunc(ips, func(a, b netip.Addr) int {
		switch {
		case a.Is4() == b.Is4():
			return 0
		case a.Is4():
			return -1
		}
		return 1
	})
	return ips
}

// reason is why a lookup failed, without the name and server (said
// around it).
func reason(err error) string {
	var de *net.DNSError
	if errors.As(err, &de) {
		return de.Err
	}
	if err == nil {
		return "no records"
	}
	return err.Error()
}

func (s *source) tooMany() error {
	return fmt.Errorf("%s: more than %d instances; ask a smaller set", s.name, MaxInstances)
}

// srvLookups bounds the names (SRV targets, PTR records) looked up at once.
const srvLookups = 32

func (s *source) lookupError(name, kind string, err error) error {
	var de *net.DNSError
	if errors.As(err, &de) && de.IsNotFound {
		return fmt.Errorf("%s: %w of type %s", name, errNoRecords, kind)
	}
	return fmt.Errorf("%s: looking up %s: %w", name, kind, err)
}

// parseTargets reads the -targets list: host:port, or host with port.
func parseTargets(list string, port int) ([]string, error) {
	var out []string
	seen := map[string]bool{}
	for _, t := range strings.Split(list, ",") {
		t = strings.TrimSpace(t)
		if t == "" {
			continue
		}
		host, p, err := net.SplitHostPort(t)
		if err != nil {
			// A bare host, or a bare IPv6 address.
			host, p = strings.Trim(t, "[]"), strconv.Itoa(port)
			if _, err := netip.ParseAddr(host); strings.Contains(host, ":") && err != nil {
				return nil, fmt.Errorf("-targets: %q is not host, host:port or an IPv6 address", t)
			}
		}
		if strings.ContainsAny(host, "[]/ ?#@") {
			return nil, fmt.Errorf("-targets: %q is not host:port", t)
		}
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 || host == "" {
			return nil, fmt.Errorf("-targets: %q is not host:port", t)
		}
		a := net.JoinHostPort(host, p)
		if !seen[a] {
			seen[a] = true
			out = append(out, a)
		}
	}
	if len(out) == 0 {
		return nil, errors.New("-targets: the list is empty")
	}
	if len(out) > MaxInstances {
		return nil, fmt.Errorf("-targets: %d instances, more than %d", len(out), MaxInstances)
	}
	return out, nil
}

// lookupFor returns the lookup that asks server (host:port, or host for
// port 53) and only it, or the system's resolver when server is "".
func lookupFor(server string) (lookup, string, error) {
	if server == "" {
		return newSystem(), "", nil
	}
	if _, _, err := net.SplitHostPort(server); err != nil {
		server = net.JoinHostPort(strings.Trim(server, "[]"), "53")
	}
	host, port, _ := net.SplitHostPort(server)
	if n, err := strconv.Atoi(port); host == "" || err != nil || n < 1 || n > 65535 {
		return nil, "", fmt.Errorf("-resolver %q: want HOST:PORT", server)
	}
	return &direct{addr: server}, server, nil
}
