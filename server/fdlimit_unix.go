//go:build unix

package server

import "syscall"

// fdLimit returns the process's soft limit on open files, 0 if unknown.
func fdLimit() uint64 {
	var l syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
		return 0
	}
	return uint64(l.Cur) //nolint:unconvert // int64 on some platforms
}
