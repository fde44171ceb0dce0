// Package safe runs user code so that a panic becomes an error instead of
// taking the process down.
package safe

import "fmt"

// Call runs fn and returns its error, or an error carrying the panic value
// if fn panics.
func Call(fn func() error) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("panic: %v", v)
		}
	}()
	return fn()
}
