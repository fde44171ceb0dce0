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
	targets  []string // static host:port list, or
	name     string   // a DNS name
	srv      bool     // look up SRV records of name, not A/AAAA
	port     int      // the probe port where the records carry none
	resolver *net.Resolver
	server   string // the DNS server resolver asks, "" for the system's
}

// discover returns the instances' addresses (host:port), without
// duplicates, in the order found.
func (s *source) discover(ctx context.Context) ([]string, error) {
	if s.name == "" {
		return s.targets, nil
	}
	ctx, cancel := context.WithTimeout(ctx, dnsTimeout)
	defer cancel()
	var addrs []string
	seen := map[string]bool{}
	add := func(host string, port int) error {
		a := net.JoinHostPort(host, strconv.Itoa(port))
		if !seen[a] {
			if len(addrs) == MaxInstances {
				return fmt.Errorf("%s: more than %d instances; ask a smaller set", s.name, MaxInstances)
			}
			seen[a] = true
			addrs = append(addrs, a)
		}
		return nil
	}
	if s.srv {
		_, recs, err := s.resolver.LookupSRV(ctx, "", "", s.name)
		if err != nil {
			return nil, s.lookupError(s.name, "SRV", err)
		}
		// The targets are names (a pod's, under a headless Service),
		// resolved through the same server so that -resolver holds, at
		// once. A target that no longer resolves (a pod deleted between
		// the two questions) is kept by its name: the poll shows it
		// unreachable, with the reason, and the rest go on.
		found := make([][]net.IPAddr, len(recs))
		sem := make(chan struct{}, srvLookups)
		var wg sync.WaitGroup
		for i, rec := range recs {
			wg.Add(1)
			sem <- struct{}{}
			go func() {
				defer func() { <-sem; wg.Done() }()
				found[i], _ = s.resolver.LookupIPAddr(ctx, strings.TrimSuffix(rec.Target, "."))
			}()
		}
		wg.Wait()
		for i, rec := range recs {
			if len(found[i]) == 0 {
				if err := add(strings.TrimSuffix(rec.Target, "."), int(rec.Port)); err != nil {
					return nil, err
				}
				continue
			}
			for _, ip := range found[i] {
				if err := add(ip.String(), int(rec.Port)); err != nil {
					return nil, err
				}
			}
		}
	} else {
		ips, err := s.resolver.LookupIPAddr(ctx, s.name)
		if err != nil {
			return nil, s.lookupError(s.name, "A/AAAA", err)
		}
		for _, ip := range ips {
			if err := add(ip.String(), s.port); err != nil {
				return nil, err
			}
		}
	}
	if len(addrs) == 0 {
		return nil, fmt.Errorf("%s: %w", s.name, errNoRecords)
	}
	return addrs, nil
}

// srvLookups bounds the SRV targets looked up at once.
const srvLookups = 32

func (s *source) lookupError(name, kind string, err error) error {
	var de *net.DNSError
	if errors.As(err, &de) {
		if de.IsNotFound {
			return fmt.Errorf("%s: %w of type %s", name, errNoRecords, kind)
		}
		if s.server != "" {
			// The resolver names the system's server, not the one it dialled.
			c := *de
			c.Server = s.server
			err = &c
		}
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

// resolverFor returns the resolver that asks server (host:port, or host
// for port 53), or the system's when server is "".
func resolverFor(server string) (*net.Resolver, string, error) {
	if server == "" {
		return net.DefaultResolver, "", nil
	}
	if _, _, err := net.SplitHostPort(server); err != nil {
		server = net.JoinHostPort(strings.Trim(server, "[]"), "53")
	}
	host, port, _ := net.SplitHostPort(server)
	if n, err := strconv.Atoi(port); host == "" || err != nil || n < 1 || n > 65535 {
		return nil, "", fmt.Errorf("-resolver %q: want HOST:PORT", server)
	}
	return &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, server)
	}}, server, nil
}
