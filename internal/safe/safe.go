// Package safe runs user code so that a panic becomes an error instead of
// taking the process down.
package safe

import "fmt"

// Call runs fn and returns its error, or a *Panic if fn panics.
func Call(fn func() error) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = &Panic{Value: v}
		}
	}()
	return fn()
}

// Panic is the error Call returns for a panic: Value is what was passed to
// panic. Its text is "panic: " and the value, as fmt's %v prints it.
type Panic struct{ Value any }

func (p *Panic) Error() string { return fmt.Sprintf("panic: %v", p.Value) }

// WorkError is the error of a named piece of background work that failed
// (probes.Lifecycle.Go, a gate's checks or warm-up): Name names it, and
// its text is the name, ": " and Err's text.
type WorkError struct {
	Name string
	Err  error
}

func (e *WorkError) Error() string { return e.Name + ": " + e.Err.Error() }
func (e *WorkError) Unwrap() error { return e.Err }
