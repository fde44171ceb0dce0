// Package versioned holds values built from a gate's state at one version,
// so that every surface (HTTP answers, route guards, gRPC statuses) reads a
// rendered value with one atomic load and renders again only after a change.
package versioned

import (
	"sync"
	"sync/atomic"
)

// Cache holds a value built from a gate's state at one version (Version or
// Revision), and builds it again on the first use after the version moved.
// Reading a current value is one atomic load; builds are serialised. The
// zero value is ready to use.
type Cache[T any] struct {
	mu  sync.Mutex
	cur atomic.Pointer[stamped[T]]
}

type stamped[T any] struct {
	version uint64
	value   T
}

// Load returns the value built at version, if that is the one held.
func (c *Cache[T]) Load(version uint64) (T, bool) {
	if s := c.cur.Load(); s != nil && s.version == version {
		return s.value, true
	}
	var zero T
	return zero, false
}

// Update builds the value unless the one held is current. The version is
// read before build reads the state, so a change during the build leaves
// the value old and the next use builds again.
func (c *Cache[T]) Update(version func() uint64, build func() T) T {
	c.mu.Lock()
	defer c.mu.Unlock()
	ver := version()
	if v, ok := c.Load(ver); ok {
		return v
	}
	v := build()
	c.cur.Store(&stamped[T]{version: ver, value: v})
	return v
}
