package probes_test

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/probekit/probes"
)

func TestFromLoopback(t *testing.T) {
	for _, tt := range []struct {
		remote string
		want   bool
	}{
		{"127.0.0.1:5555", true},
		{"127.8.9.10:1", true},
		{"[::1]:80", true},
		{"[::ffff:127.0.0.1]:80", true},
		{"10.0.0.7:5555", false},
		{"[2001:db8::1]:80", false},
		{"127.0.0.1", false}, // no port: not what net/http sets
		{"", false},
	} {
		r := httptest.NewRequest(http.MethodGet, "/readyz", nil)
		r.RemoteAddr = tt.remote
		if got := probes.FromLoopback(r); got != tt.want {
			t.Errorf("FromLoopback(%q): got %v, want %v", tt.remote, got, tt.want)
		}
	}
}

// The read policy is the lifecycle's: nobody by default, and whom Readers
// says once set.
func TestAudience(t *testing.T) {
	op := httptest.NewRequest(http.MethodGet, "/", nil)
	op.Header.Set("X-Op", "yes")
	anon := httptest.NewRequest(http.MethodGet, "/", nil)
	isOp := func(r *http.Request) bool { return r.Header.Get("X-Op") == "yes" }
	var nilLC *probes.Lifecycle
	// A transport that let its reader in by credentials of its own (the
	// admin socket) marks the request's context.
	marked := func(r *http.Request, a probes.Audience) *http.Request {
		return r.WithContext(probes.WithAudience(r.Context(), a))
	}
	tests := []struct {
		name     string
		lc       *probes.Lifecycle
		r        *http.Request
		want     probes.Audience
		policies bool
	}{
		{"no policy: nobody", probes.NewLifecycle(), op, probes.Anonymous, false},
		{"nil policy: nobody", probes.NewLifecycle(probes.Readers(nil)), op, probes.Anonymous, false},
		{"policy says yes", probes.NewLifecycle(probes.Readers(isOp)), op, probes.Authorized, true},
		{"policy says no", probes.NewLifecycle(probes.Readers(isOp)), anon, probes.Anonymous, true},
		{"no request", probes.NewLifecycle(probes.Readers(isOp)), nil, probes.Anonymous, true},
		{"no lifecycle", nilLC, op, probes.Anonymous, false},
		{"marked authorised, no policy", probes.NewLifecycle(), marked(anon, probes.Authorized), probes.Authorized, false},
		{"marked authorised, policy says no", probes.NewLifecycle(probes.Readers(isOp)), marked(anon, probes.Authorized), probes.Authorized, true},
		{"marked anonymous, policy says yes", probes.NewLifecycle(probes.Readers(isOp)), marked(op, probes.Anonymous), probes.Anonymous, true},
		{"marked with an unknown audience", probes.NewLifecycle(), marked(anon, probes.Audience(7)), probes.Anonymous, false},
		{"marked, no lifecycle", nilLC, marked(op, probes.Authorized), probes.Anonymous, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.lc.Audience(tt.r); got != tt.want {
				t.Errorf("Audience: got %s, want %s", got, tt.want)
			}
			if got := tt.lc.Authorizes(); got != tt.policies {
				t.Errorf("Authorizes: got %v, want %v", got, tt.policies)
			}
		})
	}
}

// An anonymous reader's report keeps every status, name, time and the
// verdict, and loses every reason; an authorised reader's is the report.
func TestReportFor(t *testing.T) {
	until := time.Date(2026, 12, 1, 10, 45, 0, 0, time.UTC)
	c := probes.Cordon{Reason: "disk swap", Since: until.Add(-time.Hour), Until: until}
	cause := errors.New("dial 10.0.0.7: refused")
	rep := probes.Report{
		Gate: probes.Readiness, Phase: probes.Ready, Base: probes.Fail, Cordon: c,
		Notes: []string{"phase: ready", c.Note()},
		Checks: []probes.Result{
			{Name: "db", Critical: true, Status: probes.Fail, Err: cause, Duration: time.Millisecond,
				Observations: []probes.Observation{{Measurement: "connections", Value: 7, Unit: "connections"}}},
			{Name: "cache", Critical: true, Status: probes.Pass},
		},
		Tasks: []probes.TaskState{{Name: "warm", Fraction: 0.5, Failures: 1, Err: cause}},
	}
	if got := rep.For(probes.Authorized); !slices.Equal(got.Notes, rep.Notes) || got.Checks[0].Err != cause || got.Cordon != c {
		t.Errorf("authorised: %+v, want the report itself", got)
	}
	pub := rep.For(probes.Anonymous)
	if pub.Status() != rep.Status() || pub.Phase != rep.Phase || len(pub.Checks) != 2 || len(pub.Tasks) != 1 {
		t.Fatalf("anonymous: %+v, want the same verdict, phase, checks and tasks", pub)
	}
	if want := []string{"phase: ready", "cordoned (until 2026-12-01T10:45:00Z)"}; !slices.Equal(pub.Notes, want) {
		t.Errorf("anonymous notes: %q, want %q", pub.Notes, want)
	}
	if pub.Cordon.Reason != "" || pub.Cordon.Until != until || pub.Cordon.IsZero() {
		t.Errorf("anonymous cordon: %+v, want its times without its reason", pub.Cordon)
	}
	db := pub.Checks[0]
	if db.Err != probes.ErrWithheld || db.Duration != time.Millisecond || db.Status != probes.Fail {
		t.Errorf("anonymous db: %+v, want its status and time, the error withheld", db)
	}
	if o := db.Observations; len(o) != 1 || o[0].Measurement != "connections" || o[0].Value != 0 || !o[0].Withheld {
		t.Errorf("anonymous observations: %+v, want the measurement without its value", o)
	}
	if pub.Checks[1].Err != nil || pub.Tasks[0].Err != probes.ErrWithheld {
		t.Errorf("anonymous: a passing check's error %v, the task's %v", pub.Checks[1].Err, pub.Tasks[0].Err)
	}
	// The report itself is untouched: For copies what it changes.
	if rep.Checks[0].Err != cause || rep.Checks[0].Observations[0].Value != 7 || rep.Notes[1] != c.Note() || rep.Tasks[0].Err != cause {
		t.Errorf("For changed the report it was given: %+v", rep)
	}
}

// A cordon's reason is masked before anyone sees it.
func TestCordonReasonMasked(t *testing.T) {
	lc := probes.NewLifecycle()
	ch, err := lc.Cordon("rotating password=hunter2 on node-7", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	defer lc.Uncordon() //nolint:errcheck // lifts the timer
	if c, _ := lc.Cordoned(); c.Reason != ch.Cordon.Reason || c.Reason != "rotating password=xxxxx on node-7" {
		t.Errorf("cordon reason %q (returned %q), want the password masked", c.Reason, ch.Cordon.Reason)
	}
}

// A cordon's author goes with its reason: set by CordonBy and named by the
// change, its command line masked, printable and bounded, and withheld
// from anonymous readers with the reason.
func TestCordonAuthor(t *testing.T) {
	lc := probes.NewLifecycle()
	changes := make(chan probes.CordonChange, 2)
	defer lc.SubscribeCordon(func(c probes.CordonChange) { changes <- c })()
	by := probes.Author{UID: 1000, User: "alice", PID: 4242,
		Command: "deploy --token=s3cr3t-value-1234\x00--verbose\n" + strings.Repeat("x", 400)}
	ch, err := lc.CordonBy(by, "disk swap", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	got := ch.Cordon.By
	switch {
	case got.UID != 1000 || got.User != "alice" || got.PID != 4242 || ch.By != got:
		t.Errorf("author %+v (change by %+v), want uid 1000, alice, pid 4242 on both", got, ch.By)
	case strings.Contains(got.Command, "s3cr3t"):
		t.Errorf("command %q holds the secret", got.Command)
	case !strings.HasPrefix(got.Command, "deploy --token=") || strings.ContainsAny(got.Command, "\x00\n"):
		t.Errorf("command %q, want it printable, its arguments spaced", got.Command)
	case len(got.Command) > probes.MaxAuthorCommand:
		t.Errorf("command of %d bytes, want at most %d", len(got.Command), probes.MaxAuthorCommand)
	}
	if c := <-changes; c.By != got {
		t.Errorf("listener heard author %+v, want %+v", c.By, got)
	}
	rep := lc.Basis(probes.Health).Report(probes.Health)
	if a := rep.For(probes.Anonymous); !a.Cordon.By.IsZero() || a.Cordon.Reason != "" {
		t.Errorf("anonymous cordon %+v, want neither reason nor author", a.Cordon)
	}
	if a := rep.For(probes.Authorized); a.Cordon.By != got {
		t.Errorf("authorised cordon author %+v, want %+v", a.Cordon.By, got)
	}
	lifter := probes.Author{UID: 0, PID: 7, Command: "probectl uncordon"}
	if _, err := lc.UncordonBy(lifter); err != nil {
		t.Fatal(err)
	}
	c := <-changes
	if c.Cause != probes.CauseUncordoned || c.By != lifter || c.Was.By != got {
		t.Errorf("uncordon change %+v, want lifted by %+v, was by %+v", c, lifter, got)
	}
	if a := c.For(probes.Anonymous); !a.By.IsZero() || !a.Was.By.IsZero() || a.Was.Reason != "" {
		t.Errorf("anonymous change %+v, want no authors, no reason", a)
	}
	if s := lifter.String(); s != "uid 0, pid 7: probectl uncordon" {
		t.Errorf("String() = %q", s)
	}
}
