//go:build !unix

package main

import (
	"fmt"
	"io"
)

// runCommand is probe run, which needs process groups and Unix signals.
func runCommand(_ []string, _, stderr io.Writer) int {
	fmt.Fprintln(stderr, "probe run: needs a Unix system")
	return 125
}
