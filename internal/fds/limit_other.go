//go:build !unix

// Package fds tells how many file descriptors the process may hold, so
// that listeners can keep some back for what the process needs besides
// connections.
package fds

// Limit returns 0: the limit is not known here.
func Limit() uint64 { return 0 }
