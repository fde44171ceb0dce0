//go:build unix

// Package fds tells how many file descriptors the process may hold, so
// that listeners can keep some back for what the process needs besides
// connections.
package fds

import "syscall"

// Limit returns the process's soft limit on open files, 0 if unknown.
func Limit() uint64 {
	var l syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
		return 0
	}
	return uint64(l.Cur) //nolint:unconvert // int64 on some platforms
}
