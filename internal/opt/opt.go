// Package opt applies functional options: every package of the project
// declares its options as `type Option func(*config) error` and builds its
// configuration with Apply, so that validation and error wording are one
// piece of code.
package opt

import "fmt"

// Apply calls every non-nil option on c in order and returns the first
// error, prefixed with pkg ("startup: Deadline(-1s): ..."). Later options
// still run, so that the error names the first bad option whatever follows.
func Apply[C any, O ~func(*C) error](pkg string, c *C, opts []O) error {
	var first error
	for _, o := range opts {
		if o == nil {
			continue
		}
		if err := o(c); err != nil && first == nil {
			first = fmt.Errorf("%s: %w", pkg, err)
		}
	}
	return first
}
