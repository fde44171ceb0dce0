package probes

import "sync"

// Broadcast calls every subscribed function on each Notify. Gates use it to
// push their changes to the HTTP layer. The zero value is ready to use.
type Broadcast struct {
	mu     sync.Mutex
	fns    []subscriber // copied on write, so Notify ranges without the lock
	nextID int
}

type subscriber struct {
	id int
	fn func()
}

// Subscribe adds fn and returns a function that removes it.
func (b *Broadcast) Subscribe(fn func()) (cancel func()) {
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

// Notify calls every subscribed function on the calling goroutine, outside
// any lock.
func (b *Broadcast) Notify() {
	b.mu.Lock()
	fns := b.fns
	b.mu.Unlock()
	for _, s := range fns {
		s.fn()
	}
}
