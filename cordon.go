package probes

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/probekit/probes/redact"
)

// Bounds of a cordon. A cordon always has a time limit, so that one an
// operator forgot lifts by itself; its reason goes into notes, logs and
// HAProxy's line-based agent protocol, so it is short printable text.
const (
	MaxCordon       = 7 * 24 * time.Hour
	MaxCordonReason = 200 // bytes
)

// Cordon is an operator's "out of rotation" (see Lifecycle.Cordon). The
// zero Cordon means not cordoned.
type Cordon struct {
	// Reason says why, as the operator gave it.
	Reason string
	// Since is when the cordon was set, and Until when it lifts by itself,
	// by the lifecycle's clock.
	Since, Until time.Time
	// By is who set it, as the transport that asked knew them (the admin
	// socket: the peer's credentials); zero when not known (Cordon).
	By Author
}

// MaxAuthorCommand bounds an Author's Command, in bytes.
const MaxAuthorCommand = 200

// Author is who changed a cordon: the process at the other end of the
// admin socket, as the kernel named it and as it could be looked up. Like
// the reason, it is for authorised readers only (see Cordon.For). The zero
// Author is unknown.
type Author struct {
	// UID is the peer's user id, and User its name when it could be looked
	// up ("" otherwise).
	UID  uint32
	User string
	// PID is the peer's process id.
	PID int32
	// Command is the peer's command line, its arguments joined by spaces,
	// masked (package redact), printable and at most MaxAuthorCommand
	// bytes; "" when it could not be read.
	Command string
}

// IsZero reports whether a is the zero Author: nobody known.
func (a Author) IsZero() bool { return a == Author{} }

// String names a in one line, such as
// "uid 1000 (alice), pid 4242: probectl cordon -reason disk swap", or ""
// for the zero Author.
func (a Author) String() string {
	if a.IsZero() {
		return ""
	}
	s := "uid " + strconv.FormatUint(uint64(a.UID), 10)
	if a.User != "" {
		s += " (" + a.User + ")"
	}
	s += ", pid " + strconv.FormatInt(int64(a.PID), 10)
	if a.Command != "" {
		s += ": " + a.Command
	}
	return s
}

// clean returns a fit to be shown anywhere: its texts printable, masked
// and bounded.
func (a Author) clean() Author {
	a.User = printable(a.User, 64)
	a.Command = printable(redact.String(a.Command), MaxAuthorCommand)
	return a
}

// printable returns s with each character that is not printable (a
// control character, a line break, a NUL between a command line's
// arguments) as a space, runs of spaces as one, without leading and
// trailing spaces, and cut to at most max bytes on a character boundary
// (with "…" at the end when cut).
func printable(s string, max int) string {
	s = strings.ToValidUTF8(s, "\ufffd")
	var b strings.Builder
	space := false
	for _, r := range s {
		if !unicode.IsPrint(r) || unicode.IsSpace(r) {
			space = b.Len() > 0
			continue
		}
		if space {
			b.WriteByte(' ')
			space = false
		}
		b.WriteRune(r)
	}
	s = b.String()
	if len(s) <= max {
		return s
	}
	const more = "…"
	cut := max - len(more)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	if cut <= 0 {
		return ""
	}
	return s[:cut] + more
}

// IsZero reports whether c is the zero Cordon: not cordoned.
func (c Cordon) IsZero() bool { return c.Reason == "" && c.Since.IsZero() }

// Note is the line gates add to their notes while c holds, such as
// "cordoned: disk swap (until 2026-12-01T10:45:00Z)".
func (c Cordon) Note() string {
	until := " (until " + c.Until.UTC().Format(time.RFC3339) + ")"
	if c.Reason == "" {
		return "cordoned" + until // as anonymous readers see it; see Report.For
	}
	return "cordoned: " + c.Reason + until
}

// CordonCause is why the cordon changed.
type CordonCause string

// The causes of a cordon change.
const (
	CauseCordoned   CordonCause = "cordoned"   // Cordon set or replaced it
	CauseUncordoned CordonCause = "uncordoned" // Uncordon lifted it
	CauseLifted     CordonCause = "lifted"     // its time limit ended it
)

// CordonCauses returns every CordonCause, for surfaces that count changes
// by cause from the start.
func CordonCauses() []CordonCause { return []CordonCause{CauseCordoned, CauseUncordoned, CauseLifted} }

// CountsIn reports whether c holds sway in phase p: a cordon is set, and p
// is Cold, Warming or Ready. From Draining on, the phase decides alone.
func (c Cordon) CountsIn(p Phase) bool { return !c.IsZero() && p <= Ready }

// CordonChange describes one change of the cordon, as listeners added with
// Lifecycle.SubscribeCordon receive it.
type CordonChange struct {
	// Cordon is the cordon after the change, zero when it is gone.
	Cordon Cordon
	// Was is the cordon before the change, zero when there was none.
	Was Cordon
	// Cause says what made the change.
	Cause CordonCause
	// At is when the change happened, by the lifecycle's clock.
	At time.Time
	// By is who made the change: who set the cordon, or who lifted it
	// (UncordonBy); zero when not known, and when its time limit ended it.
	By Author
}

// ErrNotCordoned is returned by Uncordon when there is no cordon to lift.
var ErrNotCordoned = errors.New("probes: not cordoned")

// CheckCordonReason returns an error unless reason can be a cordon's:
// 1 to MaxCordonReason bytes of valid UTF-8, every character printable (no
// control characters, no line breaks, no tabs), and not blank.
func CheckCordonReason(reason string) error {
	switch {
	case reason == "":
		return errors.New("probes: cordon reason: empty; say why the instance is out of rotation")
	case strings.TrimSpace(reason) == "":
		return errors.New("probes: cordon reason: blank; say why the instance is out of rotation")
	case len(reason) > MaxCordonReason:
		return fmt.Errorf("probes: cordon reason: %d bytes; at most %d", len(reason), MaxCordonReason)
	case !utf8.ValidString(reason):
		return errors.New("probes: cordon reason: not valid UTF-8")
	}
	for i, r := range reason {
		if !unicode.IsPrint(r) {
			return fmt.Errorf("probes: cordon reason: unprintable character %U at byte %d", r, i)
		}
	}
	return nil
}

// Cordon takes the service out of rotation by hand for at most d, with a
// reason: readiness fails (HTTP 503, gRPC NOT_SERVING), with the reason in
// its notes for authorised readers (see Report.For), while startup and liveness do not change and application
// routes go on serving. It is orthogonal to the phase:
//
//	phase                      readiness while cordoned
//	Cold, Warming              fail (and stays out once warm)
//	Ready                      fail; the reason for authorised readers
//	Draining, Stopped, Broken  as without the cordon
//
// A drain while cordoned runs as usual, and nothing Uncordon does can end
// or shorten it. Cordoning a cordoned service replaces the reason and the
// limit. The cordon lifts by itself after d (a forgotten cordon heals), or
// at Uncordon. d must be positive and at most MaxCordon; the reason must
// pass CheckCordonReason; secrets in it are masked (package redact)
// before anyone sees it. Listeners added with SubscribeCordon hear of
// every change, and Version grows with each. Cordon returns the change:
// the new cordon, and the one it replaced (zero when there was none).
//
// The time limit runs on real time (a timer), while Since and Until are
// read from the lifecycle's clock (WithClock): with a clock of a test's
// own, Until says when the cordon was meant to lift, not when it will.
func (l *Lifecycle) Cordon(reason string, d time.Duration) (CordonChange, error) {
	return l.CordonBy(Author{}, reason, d)
}

// CordonBy is Cordon on behalf of by, who is then the cordon's author
// (Cordon.By) and the change's (CordonChange.By), shown with the reason to
// authorised readers. Its texts are made printable, masked and bounded
// first (see Author).
func (l *Lifecycle) CordonBy(by Author, reason string, d time.Duration) (CordonChange, error) {
	if err := CheckCordonReason(reason); err != nil {
		return CordonChange{}, err
	}
	if d <= 0 || d > MaxCordon {
		return CordonChange{}, fmt.Errorf("probes: cordon for %s: the time limit must be above 0 and at most %s", d, MaxCordon)
	}
	reason = redact.String(reason) // for every reader, the log included
	l.mu.Lock()
	at := l.clock.Now()
	by = by.clean()
	return l.setCordon(&Cordon{Reason: reason, Since: at, Until: at.Add(d), By: by}, CauseCordoned, at, d, by), nil
}

// Uncordon lifts the cordon at once and returns it, or ErrNotCordoned when
// there is none. It changes nothing else: a drain goes on.
func (l *Lifecycle) Uncordon() (Cordon, error) { return l.UncordonBy(Author{}) }

// UncordonBy is Uncordon on behalf of by, who the change names as the one
// who lifted the cordon (CordonChange.By).
func (l *Lifecycle) UncordonBy(by Author) (Cordon, error) {
	by = by.clean()
	l.mu.Lock()
	was := l.cordon.Load()
	if was == nil {
		l.mu.Unlock()
		return Cordon{}, ErrNotCordoned
	}
	l.setCordon(nil, CauseUncordoned, l.clock.Now(), 0, by)
	return *was, nil
}

// Cordoned returns the present cordon, if any.
func (l *Lifecycle) Cordoned() (Cordon, bool) {
	if c := l.cordon.Load(); c != nil {
		return *c, true
	}
	return Cordon{}, false
}

// SubscribeCordon adds fn to the cordon's listeners and returns a function
// that removes it. fn receives every later change, in order with the
// transitions Subscribe's listeners receive, outside the lifecycle's lock,
// on the goroutine that made the change (the time limit's own goroutine for
// a cordon that lifts by itself).
func (l *Lifecycle) SubscribeCordon(fn func(CordonChange)) (cancel func()) {
	return l.cordoners.Add(fn)
}

// liftCordon ends c when its time limit is up, unless another change has
// replaced it since.
func (l *Lifecycle) liftCordon(c *Cordon) {
	l.mu.Lock()
	if l.cordon.Load() != c {
		l.mu.Unlock()
		return
	}
	l.setCordon(nil, CauseLifted, l.clock.Now(), 0, Author{})
}

// setCordon is called with l.mu held and returns with it released. It
// installs c (nil for none) with its time limit d, made by by, stops the
// previous limit, makes the change visible through Version, delivers it to the
// listeners, and returns it.
func (l *Lifecycle) setCordon(c *Cordon, cause CordonCause, at time.Time, d time.Duration, by Author) CordonChange {
	ch := CordonChange{Cause: cause, At: at, By: by}
	if was := l.cordon.Load(); was != nil {
		ch.Was = *was
	}
	if l.lift != nil {
		l.lift.Stop()
		l.lift = nil
	}
	if c != nil {
		ch.Cordon = *c
		l.lift = time.AfterFunc(d, func() { l.liftCordon(c) })
	}
	l.cordon.Store(c)
	l.state.Add(1 << seqShift)
	l.enqueue(event{change: ch, isCordon: true})
	return ch
}

// Basis is the part of a gate's report that comes from the lifecycle
// alone: the phase, since when, the cordon, and the verdict with its notes.
// The verdict, the notes and the cordon agree with the phase; Since is read
// just after it, so a move in between can make it the next phase's start.
type Basis struct {
	Phase  Phase
	Since  time.Time
	Cordon Cordon // zero when not cordoned
	Status Status
	Notes  []string
	Past   Past // the deep view's only (Health): see Lifecycle.SetPast
}

// Report starts gate k's report from b: its phase, since, cordon, base
// verdict and notes; the gate adds its checks or tasks.
func (b Basis) Report(k Kind) Report {
	return Report{Gate: k, Phase: b.Phase, Since: b.Since, Cordon: b.Cordon, Base: b.Status, Notes: b.Notes, Past: b.Past}
}

// Basis returns what gate k answers before it looks at any check: the
// phase x gate table (Kind.verdict) with the cordon's column. While
// cordoned in Cold, Warming or Ready, readiness fails and the deep view
// (Health) warns, with the cordon's Note after the phase's; in other
// phases, and for startup and liveness, the cordon changes nothing. The
// phase and the cordon are each read once, so Status, Notes and Cordon
// agree.
func (l *Lifecycle) Basis(k Kind) Basis {
	s := l.state.Load()
	p, started := Phase(s&0xff), s&startedBit != 0
	st, note := k.verdict(p, started)
	b := Basis{Phase: p, Since: l.Since(), Status: st, Notes: []string{note}}
	if k == Health {
		b.Past = l.Past()
	}
	c := l.cordon.Load()
	if c == nil {
		return b
	}
	b.Cordon = *c
	if !b.Cordon.CountsIn(p) || (k != Readiness && k != Health) {
		return b
	}
	if k == Readiness {
		b.Status = Fail
	} else {
		b.Status = Worst(st, Warn)
	}
	b.Notes = append(b.Notes, c.Note())
	return b
}
