//go:build !unix

package server

// fdLimit returns 0: the limit is not known here, so MaxConns has no
// default bound.
func fdLimit() uint64 { return 0 }
