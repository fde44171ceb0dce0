// Package budget bounds what a surface holds at once (connections, streams)
// with one rule for what happens at the bound: refuse the newcomer, or cut
// a place held by someone quiet enough to make room for it, and optionally
// keep some places for a privileged class of holders.
//
// A Budget counts places; Track and Listen put one in front of a listener,
// for a *http.Server and for any other server.
package budget

import (
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"
)

// Class says which places a holder may take.
type Class uint8

const (
	// Common holders may take every place but the reserved ones.
	Common Class = iota
	// Privileged holders may take every place, the reserved ones too.
	Privileged
)

// Policy says what Acquire does when the budget is full. The zero Policy
// refuses the newcomer and never cuts a place held.
type Policy struct {
	// Evict lets a newcomer take the place of one held: the one that has
	// gone longest without a Touch (counting its Acquire as one).
	Evict bool
	// Quiet is how long a place must have gone without a Touch to be cut
	// (Evict only); a newcomer finding none is refused.
	Quiet time.Duration
	// SilentFirst cuts a place never touched before any other, the oldest
	// first, however recently it was acquired (Evict only): for
	// connections that hold a descriptor without ever speaking.
	SilentFirst bool
}

// Config is what New builds a Budget from.
type Config struct {
	// Max is how many places may be held at once; at least 1.
	Max int
	// Reserved is how many of Max only Privileged holders may take: a
	// Common holder is refused (or cuts) once Max-Reserved places are held.
	// Default 0; at most Max-1.
	Reserved int
	// Policy says what happens at the bound; the zero Policy refuses.
	Policy Policy
	// Now reads the clock that measures quiet. Default time.Now.
	Now func() time.Time
}

// Budget is a bound on places held at once. Its methods are safe for
// concurrent use.
type Budget struct {
	cfg              Config
	epoch            time.Time
	refused, evicted atomic.Uint64

	mu   sync.Mutex
	held []*Place // in no order; each knows its index
}

// New returns a budget for cfg, or an error saying what in cfg is wrong.
func New(cfg Config) (*Budget, error) {
	switch {
	case cfg.Max < 1:
		return nil, fmt.Errorf("budget: Max %d: need at least 1", cfg.Max)
	case cfg.Reserved < 0 || cfg.Reserved >= cfg.Max:
		return nil, fmt.Errorf("budget: Reserved %d: use 0 to %d", cfg.Reserved, cfg.Max-1)
	case cfg.Policy.Quiet < 0:
		return nil, errors.New("budget: a negative Quiet")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Budget{cfg: cfg, epoch: cfg.Now()}, nil
}

// Place is one place held in a Budget. Release it when done.
type Place struct {
	b       *Budget
	class   Class
	holder  io.Closer
	born    int64
	touched atomic.Int64 // stamp of the last Touch; 0: never
	i       int          // index in b.held; -1 once released; guarded by b.mu
}

// Acquire takes a place for a holder of class c, or reports false when the
// budget refuses it (counted in Refused). holder is what cutting the place
// closes, after setting a deadline in the past if it has SetDeadline so
// that a TLS close cannot block on a peer that does not read; a nil holder
// is never cut. A cut place is released then and there (counted in
// Evicted), and the cut happens before Acquire returns.
func (b *Budget) Acquire(c Class, holder io.Closer) (*Place, bool) {
	limit := b.cfg.Max
	if c == Common {
		limit -= b.cfg.Reserved
	}
	var now int64
	if b.cfg.Policy.Evict {
		now = b.stamp()
	}
	b.mu.Lock()
	var cut *Place
	if n := len(b.held); n >= limit {
		// A Common newcomer cannot make room by one cut while Privileged
		// holders fill the reserve beyond its limit.
		if n == limit && b.cfg.Policy.Evict {
			cut = b.victim(c, now)
		}
		if cut == nil {
			b.mu.Unlock()
			b.refused.Add(1)
			return nil, false
		}
		b.remove(cut)
	}
	p := &Place{b: b, class: c, holder: holder, born: now, i: len(b.held)}
	b.held = append(b.held, p)
	b.mu.Unlock()
	if cut != nil {
		b.evicted.Add(1)
		if d, ok := cut.holder.(interface{ SetDeadline(time.Time) error }); ok {
			_ = d.SetDeadline(time.Unix(1, 0))
		}
		_ = cut.holder.Close() // cut; nothing to report
	}
	return p, true
}

// victim returns the place to cut for a newcomer of class c at stamp now,
// or nil; a Common newcomer never cuts a Privileged holder. Called with
// b.mu held.
func (b *Budget) victim(c Class, now int64) *Place {
	pol := b.cfg.Policy
	var best *Place
	var bestAt int64
	bestSilent := false
	for _, p := range b.held {
		if p.holder == nil || p.class > c {
			continue
		}
		at := p.touched.Load()
		silent := at == 0
		if silent {
			at = p.born
		}
		switch {
		case pol.SilentFirst && silent:
			if !bestSilent || at < bestAt {
				best, bestAt, bestSilent = p, at, true
			}
		case bestSilent || now-at < int64(pol.Quiet):
		case best == nil || at < bestAt:
			best, bestAt = p, at
		}
	}
	return best
}

// remove takes p out of b.held. Called with b.mu held.
func (b *Budget) remove(p *Place) {
	last := len(b.held) - 1
	b.held[p.i], b.held[last].i = b.held[last], p.i
	b.held[last] = nil
	b.held = b.held[:last]
	p.i = -1
}

// stamp is the time since the budget was made, plus one, so that zero
// means "never". time.Now's reading is monotonic: a change of the wall
// clock neither makes a place quiet nor keeps it busy.
func (b *Budget) stamp() int64 { return int64(b.cfg.Now().Sub(b.epoch)) + 1 }

// Touch records that p's holder did something, so that p is not quiet; a
// no-op unless the policy evicts. It takes no lock: cheap enough for
// every read of a connection.
func (p *Place) Touch() {
	if p != nil && p.b.cfg.Policy.Evict {
		p.touched.Store(p.b.stamp())
	}
}

// Release gives p back and reports whether this call did: calls after the
// first, on a place already cut, and on a nil Place do nothing.
func (p *Place) Release() bool {
	if p == nil {
		return false
	}
	p.b.mu.Lock()
	defer p.b.mu.Unlock()
	if p.i < 0 {
		return false
	}
	p.b.remove(p)
	return true
}

// Held returns how many places are held now.
func (b *Budget) Held() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.held)
}

// Silent returns how many places held have never been touched.
func (b *Budget) Silent() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := 0
	for _, p := range b.held {
		if p.touched.Load() == 0 {
			n++
		}
	}
	return n
}

// Refused returns how many newcomers Acquire has refused.
func (b *Budget) Refused() uint64 { return b.refused.Load() }

// Evicted returns how many places Acquire has cut to make room.
func (b *Budget) Evicted() uint64 { return b.evicted.Load() }
