// Package broadcast pushes changes to subscribers and counts them, so that
// a reader can tell whether what it rendered is still current.
package broadcast

import (
	"slices"
	"sync"
	"sync/atomic"
)

// List is a list of subscribed functions, copied on write so that a
// notifier ranges over a snapshot without holding the lock, and a function
// may subscribe or cancel while it is being called. The zero value is ready
// to use.
type List[F any] struct {
	mu     sync.Mutex
	fns    []F
	ids    []int
	nextID int
}

// Add subscribes fn and returns a function that removes it; calling that
// function more than once is harmless.
func (l *List[F]) Add(fn F) (cancel func()) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.nextID++
	id := l.nextID
	l.fns = append(l.fns[:len(l.fns):len(l.fns)], fn)
	l.ids = append(l.ids[:len(l.ids):len(l.ids)], id)
	return func() {
		l.mu.Lock()
		defer l.mu.Unlock()
		i := slices.Index(l.ids, id)
		if i < 0 {
			return
		}
		l.fns = slices.Concat(l.fns[:i], l.fns[i+1:])
		l.ids = slices.Concat(l.ids[:i], l.ids[i+1:])
	}
}

// Snapshot returns the functions subscribed now. The slice is never written
// to again; range over it without a lock.
func (l *List[F]) Snapshot() []F {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.fns
}

// Len returns the number of subscribed functions.
func (l *List[F]) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.fns)
}

// B calls every subscribed function on each Notify, after bumping its
// version. The zero value is ready to use.
type B struct {
	version atomic.Uint64
	subs    List[func()]
}

// Version counts the Notify calls so far. It is bumped before subscribers
// run, so a reader that sees an old version knows a change is on its way.
func (b *B) Version() uint64 { return b.version.Load() }

// Subscribe adds fn and returns a function that removes it; calling that
// function more than once is harmless.
func (b *B) Subscribe(fn func()) (cancel func()) { return b.subs.Add(fn) }

// Len returns the number of subscribers.
func (b *B) Len() int { return b.subs.Len() }

// Notify bumps the version and calls every subscribed function on the
// calling goroutine, outside any lock.
func (b *B) Notify() {
	b.version.Add(1)
	for _, fn := range b.subs.Snapshot() {
		fn()
	}
}
