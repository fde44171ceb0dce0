package haproxy

import "time"

// Linger sets how long an answered connection keeps its place while the
// peer says nothing, so that a test can hold places for as long as it
// needs them.
func Linger(d time.Duration) Option {
	return func(c *config) error { c.linger = d; return nil }
}
