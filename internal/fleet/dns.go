package fleet

// Asking DNS. With -resolver, the fleet asks that server itself (package
// dnsmessage): every name there and nowhere else, with no hosts file and
// no search list, so that an instance is only ever an address that server
// gave. Without it, the system's resolver (Go's, reading resolv.conf and
// the hosts file) is asked, as any program would.

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/net/dns/dnsmessage"
)

// lookup is what discovery asks of DNS. Each call says whether an answer
// it used was cut short (truncated: more records exist than it holds).
type lookup interface {
	srv(ctx context.Context, name string) ([]*net.SRV, bool, error)
	ips(ctx context.Context, name string) ([]netip.Addr, bool, error)
	ptr(ctx context.Context, ip netip.Addr) ([]string, error)
	// server names the DNS server asked, for messages.
	server() string
}

// udpTry bounds one UDP question to the server; a question is tried
// twice over UDP before it fails (a lost datagram), within the context.
const udpTry = 2 * time.Second

// direct asks one DNS server, and only it.
type direct struct{ addr string }

var _ lookup = (*direct)(nil)

func (d *direct) server() string { return d.addr }

func (d *direct) srv(ctx context.Context, name string) ([]*net.SRV, bool, error) {
	ans, cut, err := d.ask(ctx, name, dnsmessage.TypeSRV)
	var out []*net.SRV
	for _, r := range ans {
		if s, ok := r.Body.(*dnsmessage.SRVResource); ok {
			out = append(out, &net.SRV{Target: s.Target.String(), Port: s.Port, Priority: s.Priority, Weight: s.Weight})
		}
	}
	return out, cut, err
}

func (d *direct) ips(ctx context.Context, name string) ([]netip.Addr, bool, error) {
	var out []netip.Addr
	var cut bool
	var errs []error
	for _, t := range []dnsmessage.Type{dnsmessage.TypeA, dnsmessage.TypeAAAA} {
		ans, c, err := d.ask(ctx, name, t)
		cut = cut || c
		if err != nil {
			errs = append(errs, err)
		}
		for _, r := range ans {
			switch b := r.Body.(type) {
			case *dnsmessage.AResource:
				out = append(out, netip.AddrFrom4(b.A))
			case *dnsmessage.AAAAResource:
				out = append(out, netip.AddrFrom16(b.AAAA))
			}
		}
	}
	if len(out) > 0 {
		return out, cut, nil
	}
	for _, err := range errs {
		if de := (*net.DNSError)(nil); !errors.As(err, &de) || !de.IsNotFound {
			return nil, cut, err // a failure says more than "not found"
		}
	}
	return nil, cut, d.notFound(name)
}

func (d *direct) ptr(ctx context.Context, ip netip.Addr) ([]string, error) {
	ans, _, err := d.ask(ctx, reverseName(ip), dnsmessage.TypePTR)
	var out []string
	for _, r := range ans {
		if p, ok := r.Body.(*dnsmessage.PTRResource); ok {
			out = append(out, p.PTR.String())
		}
	}
	return out, err
}

func (d *direct) notFound(name string) error {
	return &net.DNSError{Err: "no such host", Name: name, Server: d.addr, IsNotFound: true}
}

// ask asks the server for the records of type t of name, taken as a fully
// qualified name: over UDP, then over TCP when the answer does not fit.
// It returns the answer's records of type t, and whether the answer was
// cut short even over TCP. No records is an error, IsNotFound.
func (d *direct) ask(ctx context.Context, name string, t dnsmessage.Type) ([]dnsmessage.Resource, bool, error) {
	fail := func(what string, temporary bool) error {
		return &net.DNSError{Err: what, Name: name, Server: d.addr, IsTemporary: temporary}
	}
	n, err := dnsmessage.NewName(strings.TrimSuffix(name, ".") + ".")
	if err != nil {
		return nil, false, fail("not a DNS name", false)
	}
	q := dnsmessage.Question{Name: n, Type: t, Class: dnsmessage.ClassINET}
	id := uint16(rand.Uint32())
	query, err := (&dnsmessage.Message{Header: dnsmessage.Header{ID: id, RecursionDesired: true}, Questions: []dnsmessage.Question{q}}).Pack()
	if err != nil {
		return nil, false, fail("not a DNS name", false)
	}
	var m dnsmessage.Message
	for try := 0; ; try++ {
		m, err = d.exchange(ctx, "udp", query, id, q)
		if err == nil || try == 1 || ctx.Err() != nil {
			break
		}
	}
	if err == nil && m.Truncated {
		m, err = d.exchange(ctx, "tcp", query, id, q)
	}
	if err != nil {
		if ctx.Err() != nil {
			err = ctx.Err()
		}
		var de *net.DNSError
		if errors.As(err, &de) {
			return nil, false, err
		}
		return nil, false, &net.DNSError{Err: err.Error(), Name: name, Server: d.addr, IsTimeout: errors.Is(err, context.DeadlineExceeded)}
	}
	switch m.RCode {
	case dnsmessage.RCodeSuccess:
	case dnsmessage.RCodeNameError:
		return nil, false, d.notFound(name)
	default:
		return nil, false, fail("the server answered "+strings.TrimPrefix(m.RCode.String(), "RCode"), m.RCode == dnsmessage.RCodeServerFailure)
	}
	var out []dnsmessage.Resource
	for _, r := range m.Answers {
		if r.Header.Type == t {
			out = append(out, r)
		}
	}
	if len(out) == 0 {
		return nil, m.Truncated, d.notFound(name)
	}
	return out, m.Truncated, nil
}

// exchange sends query over network and returns the answer to it.
func (d *direct) exchange(ctx context.Context, network string, query []byte, id uint16, q dnsmessage.Question) (dnsmessage.Message, error) {
	var m dnsmessage.Message
	deadline := time.Now().Add(udpTry)
	if network == "tcp" {
		deadline = time.Now().Add(dnsTimeout)
	}
	if dl, ok := ctx.Deadline(); ok && dl.Before(deadline) {
		deadline = dl
	}
	var dl net.Dialer
	c, err := dl.DialContext(ctx, network, d.addr)
	if err != nil {
		return m, err
	}
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { c.SetDeadline(time.Now()) }) //nolint:errcheck // best effort
	defer stop()
	if err := c.SetDeadline(deadline); err != nil {
		return m, err
	}
	if network == "udp" {
		if _, err := c.Write(query); err != nil {
			return m, err
		}
		b := make([]byte, 1500) // an answer over UDP holds 512 bytes, without EDNS
		for {
			n, err := c.Read(b)
			if err != nil {
				return m, err
			}
			if err := m.Unpack(b[:n]); err == nil && answers(&m, id, q) {
				return m, nil
			} // else a stray or stale datagram: wait for ours
		}
	}
	framed := binary.BigEndian.AppendUint16(make([]byte, 0, 2+len(query)), uint16(len(query)))
	if _, err := c.Write(append(framed, query...)); err != nil {
		return m, err
	}
	var size [2]byte
	if _, err := io.ReadFull(c, size[:]); err != nil {
		return m, err
	}
	b := make([]byte, binary.BigEndian.Uint16(size[:]))
	if _, err := io.ReadFull(c, b); err != nil {
		return m, err
	}
	if err := m.Unpack(b); err != nil {
		return m, fmt.Errorf("an answer that does not parse: %w", err)
	}
	if !answers(&m, id, q) {
		return m, errors.New("an answer to another question")
	}
	return m, nil
}

// answers reports whether m is the answer to the question q asked as id.
func answers(m *dnsmessage.Message, id uint16, q dnsmessage.Question) bool {
	return m.Response && m.ID == id && len(m.Questions) == 1 && m.Questions[0].Type == q.Type &&
		strings.EqualFold(m.Questions[0].Name.String(), q.Name.String())
}

// reverseName is the name of ip's PTR record.
func reverseName(ip netip.Addr) string {
	var b strings.Builder
	if ip.Is4() {
		a := ip.As4()
		fmt.Fprintf(&b, "%d.%d.%d.%d.in-addr.arpa.", a[3], a[2], a[1], a[0])
		return b.String()
	}
	a := ip.As16()
	const hex = "0123456789abcdef"
	for i := len(a) - 1; i >= 0; i-- {
		b.WriteByte(hex[a[i]&0xf])
		b.WriteByte('.')
		b.WriteByte(hex[a[i]>>4])
		b.WriteByte('.')
	}
	b.WriteString("ip6.arpa.")
	return b.String()
}

// system asks the system's resolver (Go's own, so that a truncated answer
// can be seen: see watch).
type system struct{ r *net.Resolver }

var _ lookup = (*system)(nil)

func newSystem() *system {
	return &system{r: &net.Resolver{PreferGo: true, Dial: watchDial}}
}

func (s *system) server() string { return "the system's resolver" }

func (s *system) srv(ctx context.Context, name string) ([]*net.SRV, bool, error) {
	var cut atomic.Bool
	_, recs, err := s.r.LookupSRV(context.WithValue(ctx, cutKey{}, &cut), "", "", name)
	return recs, cut.Load(), err
}

func (s *system) ips(ctx context.Context, name string) ([]netip.Addr, bool, error) {
	var cut atomic.Bool
	found, err := s.r.LookupNetIP(context.WithValue(ctx, cutKey{}, &cut), "ip", name)
	for i, a := range found {
		found[i] = a.Unmap()
	}
	return found, cut.Load(), err
}

func (s *system) ptr(ctx context.Context, ip netip.Addr) ([]string, error) {
	return s.r.LookupAddr(ctx, ip.String())
}

// cutKey is the context key of the flag a lookup's answers set when one
// of them comes cut short.
type cutKey struct{}

// watchDial dials the DNS server the resolver chose. Go's resolver asks
// again over TCP when an answer over UDP is truncated, but returns an
// answer truncated over TCP as if it were whole: over TCP, the
// connection is watched for the flag.
func watchDial(ctx context.Context, network, address string) (net.Conn, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, network, address)
	cut, _ := ctx.Value(cutKey{}).(*atomic.Bool)
	if err != nil || cut == nil || !strings.HasPrefix(network, "tcp") {
		return c, err // a UDP connection stays one: the resolver tells them by type
	}
	return &watchConn{Conn: c, cut: cut}, nil
}

// watchConn reads DNS messages over TCP (each a 2-byte length, then the
// message) and sets cut when one has its TC flag.
type watchConn struct {
	net.Conn
	cut  *atomic.Bool
	head [5]byte // of the message being read: its length, ID and first byte of flags
	n    int     // bytes of it read so far, length included
	size int     // its length, length included; 0 until known
}

func (c *watchConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	for _, x := range b[:n] {
		if c.n < len(c.head) {
			c.head[c.n] = x
		}
		c.n++
		if c.n == len(c.head) {
			c.size = 2 + int(binary.BigEndian.Uint16(c.head[:2]))
			if c.head[4]&0x02 != 0 { // TC, in the first byte of the flags
				c.cut.Store(true)
			}
		}
		if c.size > 0 && c.n >= c.size {
			c.n, c.size = 0, 0
		}
	}
	return n, err
}
