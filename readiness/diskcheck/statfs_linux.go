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
	// Linux counts blocks in fragments (f_frsize); f_bsize is the preferred
	// I/O size, equal on most filesystems but not all.
	bs := uint64(st.Frsize)
	if bs == 0 {
		bs = uint64(st.Bsize)
	}
	return usage{size: uint64(st.Blocks) * bs, free: uint64(st.Bavail) * bs, files: uint64(st.Files), ffree: uint64(st.Ffree)}, nil
}
