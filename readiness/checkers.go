package readiness

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"

	"github.com/probekit/probes"
	"github.com/probekit/probes/internal/opt"
	"github.com/probekit/probes/redact"
)

// Pinger is anything that answers Ping(ctx), such as *sql.DB,
// *pgxpool.Pool or most cache clients.
type Pinger interface {
	Ping(ctx context.Context) error
}

// Ping returns a Checker that pings p. It fails at construction when p is
// nil. A client whose Ping has another shape (go-redis returns a
// *StatusCmd) fits with a one-line CheckFunc instead:
//
//	probes.CheckFunc(func(ctx context.Context) error { return rdb.Ping(ctx).Err() })
func Ping(p Pinger) (probes.Checker, error) {
	if p == nil {
		return nil, errors.New("readiness: Ping(nil): need a Pinger")
	}
	return probes.CheckFunc(p.Ping), nil
}

// TCP returns a Checker that opens (and closes) a TCP connection to addr,
// a "host:port". It fails at construction when addr has no port.
func TCP(addr string) (probes.Checker, error) {
	if _, port, err := net.SplitHostPort(addr); err != nil || port == "" {
		return nil, fmt.Errorf("readiness: TCP(%q): want host:port", addr)
	}
	var d net.Dialer
	return probes.CheckFunc(func(ctx context.Context) error {
		conn, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			return err
		}
		return conn.Close()
	}), nil
}

// DNS returns a Checker that resolves host. It fails at construction when
// host is empty.
func DNS(host string) (probes.Checker, error) {
	if host == "" {
		return nil, errors.New("readiness: DNS(\"\"): want a host name")
	}
	return probes.CheckFunc(func(ctx context.Context) error {
		addrs, err := net.DefaultResolver.LookupHost(ctx, host)
		if err == nil && len(addrs) == 0 {
			err = fmt.Errorf("%s: no addresses", host)
		}
		return err
	}), nil
}

// HTTPOption configures an HTTP checker.
type HTTPOption func(*httpConfig) error

type httpConfig struct {
	lo, hi int
	client *http.Client
}

// ExpectStatus sets the range of status codes that pass, inclusive.
// Default 200 to 299.
func ExpectStatus(lo, hi int) HTTPOption {
	return func(c *httpConfig) error {
		if lo < 100 || hi > 599 || lo > hi {
			return fmt.Errorf("ExpectStatus(%d, %d): want 100 <= lo <= hi <= 599", lo, hi)
		}
		c.lo, c.hi = lo, hi
		return nil
	}
}

// Client sets the HTTP client. The default opens a connection per check, as
// the kubelet does (so an idle checker holds no goroutines), takes no proxy
// from the environment and follows no redirect (a redirect answers with its
// own status). The check's timeout bounds every request whatever the client.
func Client(hc *http.Client) HTTPOption {
	return func(c *httpConfig) error {
		if hc == nil {
			return errors.New("Client(nil): want a client")
		}
		c.client = hc
		return nil
	}
}

// maxBody is how much of a response body the HTTP checker reads, as much as
// the kubelet reads.
const maxBody = 10 << 10

// HTTP returns a Checker that GETs rawURL, typically an upstream service's
// own readiness endpoint, and passes when the status is in the expected range.
// It fails at construction when rawURL is not an absolute http or https URL,
// or an option is invalid.
func HTTP(rawURL string, opts ...HTTPOption) (probes.Checker, error) {
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("readiness: HTTP(%q): want an absolute http or https URL", redact.String(rawURL))
	}
	cfg := httpConfig{lo: 200, hi: 299}
	if err := opt.Apply("readiness", &cfg, opts); err != nil {
		return nil, err
	}
	if cfg.client == nil {
		cfg.client = &http.Client{
			// A transport of its own: http.DefaultTransport may have been
			// replaced (by tracing, say) and proxies from the environment
			// do not apply to a service's own dependencies.
			Transport:     &http.Transport{DisableKeepAlives: true, ForceAttemptHTTP2: true},
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
	target := u.String()
	return probes.CheckFunc(func(ctx context.Context) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
		if err != nil {
			return err
		}
		res, err := cfg.client.Do(req)
		if err != nil {
			return err
		}
		_, err = io.Copy(io.Discard, io.LimitReader(res.Body, maxBody))
		res.Body.Close()
		if err != nil {
			return fmt.Errorf("GET %s: reading the body: %w", u.Redacted(), err)
		}
		if res.StatusCode < cfg.lo || res.StatusCode > cfg.hi {
			return fmt.Errorf("GET %s: status %d, want %d to %d", u.Redacted(), res.StatusCode, cfg.lo, cfg.hi)
		}
		return nil
	}), nil
}
