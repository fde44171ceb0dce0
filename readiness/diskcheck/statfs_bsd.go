//go:build darwin || freebsd

package diskcheck

import (
	"fmt"
	"syscall"
)

func statfs(path string) (usage, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(path, &st); err != nil {
		return usage{}, fmt.Errorf("statfs %s: %w", path, err)
	}
	bs := uint64(st.Bsize)
	ffree := uint64(max(int64(st.Ffree), 0)) // signed on FreeBSD
	return usage{size: uint64(st.Blocks) * bs, free: uint64(max(int64(st.Bavail), 0)) * bs, files: uint64(st.Files), ffree: ffree}, nil
}
