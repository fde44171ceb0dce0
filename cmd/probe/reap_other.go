//go:build unix && !linux

package main

import "errors"

// becomeSubreaper fails: child subreapers are Linux's.
func becomeSubreaper() error { return errors.New("a child subreaper needs Linux") }
