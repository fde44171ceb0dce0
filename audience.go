package probes

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/netip"
)

// Audience is who reads a rendering of the facts, as the lifecycle's read
// policy decides it for one reader (see Readers). Every surface renders a
// report through Report.For with its reader's audience, so what a reader
// may see is decided here, once, and not by each surface.
//
// Each transport maps its own credential to an audience: an HTTP request
// through the policy's function (Lifecycle.Audience); a peer on the admin
// socket, already let in by its credentials, is Authorized, which package
// admin says by serving the deep view with a request whose context
// WithAudience marks; gRPC, systemd's status line and the metrics are
// Anonymous. Who may change state (a cordon) is a separate decision, made
// by the admin surface.
type Audience uint8

const (
	// Anonymous readers see statuses, check and task names and the public
	// facts: the phase and since when, warm-up progress, that the service
	// is cordoned and until when, the service's identity, and how many
	// restarts it had and how the last one ended. Never a reason.
	Anonymous Audience = iota
	// Authorized readers see the reasons too: check and warm-up errors,
	// the cordon's reason and who set it, observed values, and why the previous instance
	// ended.
	Authorized
)

// String returns "anonymous" or "authorized".
func (a Audience) String() string {
	if a == Authorized {
		return "authorized"
	}
	return "anonymous"
}

// ErrWithheld stands in, in a report made for anonymous readers, for an
// error whose text they may not read: the check failed, and why is for
// authorised readers.
var ErrWithheld = errors.New("reason withheld")

// Readers sets the lifecycle's read policy: HTTP requests for which f
// returns true are Authorized, every other reader Anonymous. Every surface
// that answers HTTP (the probes, the deep view and its page, /history)
// asks it through Lifecycle.Audience. The default, and a nil f, authorises
// no request: reasons then reach only the log and the admin socket.
// FromLoopback is one such f.
func Readers(f func(*http.Request) bool) LifecycleOption {
	return func(l *Lifecycle) { l.readers = f }
}

type audienceKey struct{}

// WithAudience returns a copy of ctx that carries audience a, for a
// transport that has decided who its reader is its own way (the admin
// socket, by the peer's credentials) and then serves the reader through an
// HTTP surface: Lifecycle.Audience answers a for a request with this
// context, before and instead of the Readers policy. Only code in the
// server's process sets a request's context, so no remote client can claim
// an audience by what it sends. Any a but Authorized is Anonymous.
func WithAudience(ctx context.Context, a Audience) context.Context {
	if a != Authorized {
		a = Anonymous
	}
	return context.WithValue(ctx, audienceKey{}, a)
}

// Audience returns the audience of r: the one its context carries when a
// transport marked it with WithAudience, else the one the read policy set
// with Readers gives, Authorized when its function accepts r and Anonymous
// otherwise. A nil lifecycle or request is Anonymous.
func (l *Lifecycle) Audience(r *http.Request) Audience {
	if l == nil || r == nil {
		return Anonymous
	}
	if a, ok := r.Context().Value(audienceKey{}).(Audience); ok {
		return a
	}
	if l.readers == nil || !l.readers(r) {
		return Anonymous
	}
	return Authorized
}

// Authorizes reports whether a Readers policy is set, so that some HTTP
// readers may be authorised by it. It does not count readers a transport
// marks itself (WithAudience): every surface still asks Audience per
// request. The page keeps stream places for authorised readers only when it
// is true.
func (l *Lifecycle) Authorizes() bool { return l != nil && l.readers != nil }

// FromLoopback is a read policy for Readers that authorises requests from
// a loopback address (127.0.0.0/8, ::1): an operator who reaches the probe
// port through `kubectl port-forward` or an SSH tunnel arrives from
// loopback, while the kubelet and the balancers do not. Do not use it when
// a proxy in the same pod or host (a service-mesh sidecar, a local reverse
// proxy) forwards outside requests to the probe port: they would all come
// from loopback too.
func FromLoopback(r *http.Request) bool {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return false
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.Unmap().IsLoopback()
}

// For returns the report as audience a may read it. Authorized readers get
// r itself. Anonymous readers get a copy without reasons: each check's and
// task's error becomes ErrWithheld, each observation keeps what it
// measured but not its value (Withheld), the cordon
// keeps its times but not its reason nor its author, in Cordon and in the notes ("cordoned
// (until …)"), and Past keeps the restarts but not the cause. Statuses,
// names, the phase, progress and times stay, so the verdict is the same
// for both.
func (r Report) For(a Audience) Report {
	if a == Authorized || !r.HasReasons() {
		return r
	}
	if len(r.Checks) > 0 {
		checks := make([]Result, len(r.Checks))
		for i, c := range r.Checks {
			c.Err = withhold(c.Err)
			if len(c.Observations) > 0 {
				obs := make([]Observation, len(c.Observations))
				for j, o := range c.Observations {
					obs[j] = Observation{Measurement: o.Measurement, Unit: o.Unit, Withheld: true}
				}
				c.Observations = obs
			}
			checks[i] = c
		}
		r.Checks = checks
	}
	if len(r.Tasks) > 0 {
		tasks := make([]TaskState, len(r.Tasks))
		for i, t := range r.Tasks {
			t.Err = withhold(t.Err)
			tasks[i] = t
		}
		r.Tasks = tasks
	}
	r.Past = r.Past.For(a)
	if r.Cordon.Reason != "" || !r.Cordon.By.IsZero() {
		full := r.Cordon.Note()
		r.Cordon = r.Cordon.For(a)
		notes := make([]string, len(r.Notes))
		for i, n := range r.Notes {
			if n == full {
				n = r.Cordon.Note()
			}
			notes[i] = n
		}
		r.Notes = notes
	}
	return r
}

// For returns the cordon as audience a may read it: Anonymous readers get
// its times without its reason and without its author.
func (c Cordon) For(a Audience) Cordon {
	if a != Authorized {
		c.Reason, c.By = "", Author{}
	}
	return c
}

// For returns the change as audience a may read it: Anonymous readers get
// its cause and times, without the reasons and without the authors.
func (c CordonChange) For(a Audience) CordonChange {
	if a != Authorized {
		c.Cordon, c.Was, c.By = c.Cordon.For(a), c.Was.For(a), Author{}
	}
	return c
}

// HasReasons reports whether r holds anything For withholds from anonymous
// readers: an error, an observed value, a cordon's reason or the cause of
// the last instance's end.
func (r *Report) HasReasons() bool {
	if r.Cordon.Reason != "" || !r.Cordon.By.IsZero() || r.Past.Cause != "" {
		return true
	}
	for i := range r.Checks {
		if r.Checks[i].Err != nil || len(r.Checks[i].Observations) > 0 {
			return true
		}
	}
	for i := range r.Tasks {
		if r.Tasks[i].Err != nil {
			return true
		}
	}
	return false
}

func withhold(err error) error {
	if err == nil {
		return nil
	}
	return ErrWithheld
}
