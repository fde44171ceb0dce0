// Package broadcast pushes changes to subscribers and counts them, so that
// a reader can tell whether what it rendered is still current.
package broadcast

import (
	"sync"
	"sync/atomic"
)

// B calls every subscribed function on each Notify, after bumping its
// version. The zero value is ready to use.
type B struct {
	version atomic.Uint64

	mu     sync.Mutex
	fns    []subscriber // copied on write, so Notify ranges without the lock
	nextID int
}

type subscriber struct {
	id int
	fn func()
}

// Version counts the Notify calls so far. It is bumped before subscribers
// run, so a reader that sees an old version knows a change is on its way.
func (b *B) Version() uint64 { return b.version.Load() }

// Subscribe adds fn and returns a function that removes it; calling that
// function more than once is harmless.
func (b *B) Subscribe(fn func()) (cancel func()) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.nextID++
	id := b.nextID
	b.fns = append(b.fns[:len(b.fns):len(b.fns)], subscriber{id, fn})
	return func() {
		b.mu.Lock()
		defer b.mu.Unlock()
		kept := make([]subscriber, 0, len(b.fns))
		for _, s := range b.fns {
			if s.id != id {
				kept = append(kept, s)
			}
		}
		b.fns = kept
	}
}

// Len returns the number of subscribers.
func (b *B) Len() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.fns)
}

// Notify bumps the version and calls every subscribed function on the
// calling goroutine, outside any lock.
func (b *B) Notify() {
	b.version.Add(1)
	b.mu.Lock()
	fns := b.fns
	b.mu.Unlock()
	for _, s := range fns {
		s.fn()
	}
}
