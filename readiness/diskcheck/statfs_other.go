//go:build !linux && !darwin && !freebsd

package diskcheck

import (
	"fmt"
	"runtime"
)

func statfs(path string) (usage, error) {
	return usage{}, fmt.Errorf("%s: diskcheck cannot read free space on %s", path, runtime.GOOS)
}
