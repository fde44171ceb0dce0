package fleet

// Reading a deep view: as a stream of tokens, keeping what the fleet
// shows and no more, so that a hostile body (1 MiB of tiny checks) costs
// a bounded part of memory and of the output.

import (
	"encoding/json"
	"errors"
	"fmt"
	"hash/maphash"
	"io"
	"slices"
	"strings"

	"github.com/probekit/probes"
	"github.com/probekit/probes/internal/printable"
)

const (
	// MaxChecks bounds the checks kept of one instance; the others are
	// counted (Instance.MoreChecks, MoreFailing).
	MaxChecks = 64
	// maxCheckName bounds a check's name, "<gate>/<name>", in bytes.
	maxCheckName = 120
	// maxTracked bounds the checks of one deep view told apart to count
	// them: beyond it (no real service has that many), the entries of
	// further checks are counted each as a check of its own.
	maxTracked = 4096
)

// errTooLarge is a body longer than maxBody.
var errTooLarge = errors.New("the body is too large")

// limited reads at most left bytes of r, and fails with errTooLarge when r
// has more.
type limited struct {
	r    io.Reader
	left int
}

func (l *limited) Read(p []byte) (int, error) {
	if l.left <= 0 {
		var one [1]byte
		n, err := l.r.Read(one[:])
		if n > 0 {
			err = errTooLarge
		}
		return 0, err
	}
	if len(p) > l.left {
		p = p[:l.left]
	}
	n, err := l.r.Read(p)
	l.left -= n
	return n, err
}

// Statuses by rank, best first: anything unknown is worse than a warning,
// and a failure the worst.
const (
	rankPass = iota
	rankWarn
	rankOther
	rankFail
)

func rank(s string) int {
	switch s {
	case "pass":
		return rankPass
	case "warn":
		return rankWarn
	case "fail":
		return rankFail
	}
	return rankOther
}

// parse reads a deep view from r into in. It reads the members status,
// notes, phase, since, gates (readiness), cordon (reason, until),
// restarts, lastEnd (ended, cause) and, in each entry of checks, status
// and gate; it skips anything else, keeping nothing of it. Reading errors are returned wrapped (errors.Is finds
// errTooLarge, a deadline).
func parse(r io.Reader, in *Instance) error {
	dec := json.NewDecoder(r)
	var status, phase, note, since, readiness, service, release, self string
	var hasReadiness bool
	var cordon *[2]string // reason, until
	var by author
	var restarts int
	var lastEnd [2]string // ended, cause
	checks := newCheckSet()
	member := func(k string) error {
		var err error
		switch k {
		case "status":
			status, err = str(dec)
		case "phase":
			phase, err = str(dec)
		case "serviceId":
			service, err = str(dec)
		case "releaseId":
			release, err = str(dec)
		case "instance":
			self, err = str(dec)
		case "since":
			since, err = str(dec)
		case "notes":
			err = each(dec, func() error {
				n, err := str(dec)
				if p, ok := strings.CutPrefix(n, "phase: "); ok && note == "" {
					note, _, _ = strings.Cut(p, ";")
				}
				return err
			})
		case "gates":
			err = members(dec, func(gate string) error {
				if gate != "readiness" {
					return skip(dec)
				}
				hasReadiness = true
				var err error
				readiness, err = str(dec)
				return err
			})
		case "cordon":
			var c [2]string
			var null bool
			null, err = object(dec, func(k string) (err error) {
				switch k {
				case "reason":
					c[0], err = str(dec)
				case "until":
					c[1], err = str(dec)
				case "by":
					_, err = object(dec, func(k string) (err error) {
						switch k {
						case "uid":
							by.uid, err = count(dec)
						case "user":
							by.user, err = str(dec)
						case "pid":
							by.pid, err = count(dec)
						case "command":
							by.command, err = str(dec)
						default:
							err = skip(dec)
						}
						return err
					})
				default:
					err = skip(dec)
				}
				return err
			})
			if !null {
				cordon = &c
			}
		case "restarts":
			restarts, err = count(dec)
		case "lastEnd":
			err = members(dec, func(k string) (err error) {
				switch k {
				case "ended":
					lastEnd[0], err = str(dec)
				case "cause":
					lastEnd[1], err = str(dec)
				default:
					err = skip(dec)
				}
				return err
			})
		case "checks":
			err = members(dec, func(key string) error {
				name, _, _ := strings.Cut(key, ":")
				return each(dec, func() error {
					// Decode, not tokens: it skips the other members
					// (observedValue, time...) without allocating.
					var e struct{ Status, Gate string }
					if err := dec.Decode(&e); err != nil {
						return err
					}
					full := name // the deep view names checks "<gate>/<check>"
					if !strings.Contains(name, "/") {
						// An instance from before canonical names.
						if e.Gate == "" {
							e.Gate = oldGate
						}
						full = e.Gate + "/" + name
					}
					checks.add(printable.Escape(clean(full), maxCheckName), e.Status)
					return nil
				})
			})
		default:
			err = skip(dec)
		}
		if err != nil {
			return fmt.Errorf("%s: %w", clean(k), err)
		}
		return nil
	}
	if err := members(dec, member); err != nil {
		return fmt.Errorf("not a health+json deep view: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		if err == nil {
			err = errors.New("more after the deep view")
		}
		return fmt.Errorf("not a health+json deep view: %w", err)
	}
	if status == "" {
		return errors.New("not a health+json deep view: no status")
	}
	in.Reachable = true
	in.Status = clean(status)
	in.Phase = clean(phase)
	if in.Phase == "" {
		in.Phase = clean(note)
	}
	in.Since = clean(since)
	in.Service, in.Release = clean(service), clean(release)
	if in.Name == "" {
		in.Name = clean(self)
	}
	if hasReadiness {
		in.Readiness = clean(readiness)
		in.Ready = readiness != "fail"
	} else {
		in.Ready = status != "fail"
	}
	if cordon != nil {
		in.Cordon = clean(cordon[0])
		if in.Cordon == "" {
			in.Cordon = "cordoned"
		}
		in.CordonUntil = clean(cordon[1])
		in.CordonBy = clean(by.String())
	}
	in.Restarts, in.LastEnded, in.LastCause = restarts, clean(lastEnd[0]), clean(lastEnd[1])
	checks.fill(in)
	return nil
}

// checkSet keeps the MaxChecks most severe checks of a deep view (worst
// status first, then by name) and counts them all, in memory bounded
// whatever the deep view holds: the kept checks, and the worst status of
// at most maxTracked checks by a hash of their names.
//
// A check's status is the worst of its entries, which may come anywhere
// in the body. One dropped for a worse one never belongs among the kept at
// the end: those that dropped it only get worse. When a later entry makes
// it worse, it is taken again with its worst status, known by its hash.
type checkSet struct {
	seed      maphash.Seed
	worst     map[uint64]int8 // by hash of the name
	kept      []kept
	untracked int // entries of checks beyond maxTracked
	failing   int // of them, failing
}

type kept struct {
	name, status string
	rank         int
}

func newCheckSet() *checkSet {
	return &checkSet{seed: maphash.MakeSeed(), worst: map[uint64]int8{}}
}

// below reports whether a ranks below b: less severe, or as severe and
// later by name.
func below(a, b *kept) bool {
	return a.rank < b.rank || a.rank == b.rank && a.name > b.name
}

func (c *checkSet) add(name, status string) {
	r := rank(status)
	h := maphash.String(c.seed, name)
	if w, ok := c.worst[h]; ok {
		r = max(r, int(w))
		c.worst[h] = int8(r)
	} else if len(c.worst) < maxTracked {
		c.worst[h] = int8(r)
	} else {
		c.untracked++
		if r == rankFail {
			c.failing++
		}
	}
	for i := range c.kept {
		if k := &c.kept[i]; k.name == name {
			if r > k.rank {
				k.rank, k.status = r, clean(status)
			}
			return
		}
	}
	c.kept = append(c.kept, kept{name: name, status: clean(status), rank: r})
	if len(c.kept) > MaxChecks {
		low := 0
		for i := range c.kept {
			if below(&c.kept[i], &c.kept[low]) {
				low = i
			}
		}
		c.kept = slices.Delete(c.kept, low, low+1)
	}
}

// fill sets in's checks, failing checks and counts of the others.
func (c *checkSet) fill(in *Instance) {
	slices.SortFunc(c.kept, func(a, b kept) int { return strings.Compare(a.name, b.name) })
	failing := c.failing
	for _, w := range c.worst {
		if w == rankFail {
			failing++
		}
	}
	for _, k := range c.kept {
		in.Checks = append(in.Checks, Check{Name: k.name, Status: k.status})
		if k.rank == rankFail {
			in.Failing = append(in.Failing, k.name)
		}
	}
	in.MoreChecks = len(c.worst) + c.untracked - len(in.Checks)
	in.MoreFailing = failing - len(in.Failing)
}

// The decoding helpers read one value from dec each, and fail on a value
// of another type than they read.

// str reads a string (null: "").
// author is who set a cordon, as the deep view's cordon.by says (an
// authorised reading only).
type author struct {
	uid, pid      int
	user, command string
}

// String is probes.Author.String's line, or "" when the view named nobody.
func (a author) String() string {
	if a == (author{}) {
		return ""
	}
	return probes.Author{UID: uint32(a.uid), User: a.user, PID: int32(a.pid), Command: a.command}.String()
}

func str(dec *json.Decoder) (string, error) {
	t, err := dec.Token()
	if err != nil {
		return "", err
	}
	switch v := t.(type) {
	case string:
		return v, nil
	case nil:
		return "", nil
	case json.Delim:
		return "", fmt.Errorf("got %s, want a string", v)
	}
	return "", fmt.Errorf("got %v, want a string", t)
}

// maxCount bounds a count read from an instance.
const maxCount = 1<<31 - 1

// count reads a count: a whole number from 0 to maxCount (null: 0).
func count(dec *json.Decoder) (int, error) {
	t, err := dec.Token()
	if err != nil {
		return 0, err
	}
	switch v := t.(type) {
	case nil:
		return 0, nil
	case float64:
		if v < 0 || v > maxCount || v != float64(int(v)) {
			return 0, fmt.Errorf("got %v, want a count", v)
		}
		return int(v), nil
	case json.Delim:
		return 0, fmt.Errorf("got %s, want a number", v)
	}
	return 0, fmt.Errorf("got %v, want a number", t)
}

// members reads an object (null: none), calling fn with each key, which
// must read the value.
func members(dec *json.Decoder, fn func(key string) error) error {
	_, err := object(dec, fn)
	return err
}

// object is members, and says whether the value was null.
func object(dec *json.Decoder, fn func(key string) error) (bool, error) {
	return orNull(dec, '{', func() error {
		for dec.More() {
			t, err := dec.Token()
			if err != nil {
				return err
			}
			if err := fn(t.(string)); err != nil { // a key is a string
				return err
			}
		}
		return nil
	})
}

// each reads an array (null: none), calling fn for each element, which
// must read it.
func each(dec *json.Decoder, fn func() error) error {
	_, err := orNull(dec, '[', func() error {
		for dec.More() {
			if err := fn(); err != nil {
				return err
			}
		}
		return nil
	})
	return err
}

// orNull reads null, or an object or array opening with open whose
// contents fn reads, and says which.
func orNull(dec *json.Decoder, open json.Delim, fn func() error) (bool, error) {
	t, err := dec.Token()
	if err != nil {
		return false, err
	}
	if t == nil {
		return true, nil
	}
	if d, ok := t.(json.Delim); !ok || d != open {
		return false, fmt.Errorf("got %v, want %s", t, open)
	}
	if err := fn(); err != nil {
		return false, err
	}
	_, err = dec.Token() // the closing delimiter: the decoder checks it matches
	return false, err
}

// skip reads a value of any type, keeping nothing of it.
func skip(dec *json.Decoder) error {
	depth := 0
	for {
		t, err := dec.Token()
		if err != nil {
			return err
		}
		if d, ok := t.(json.Delim); ok {
			if d == '{' || d == '[' {
				depth++
			} else {
				depth--
			}
		}
		if depth == 0 {
			return nil
		}
	}
}
