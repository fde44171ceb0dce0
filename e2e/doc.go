// Package e2e holds the end-to-end test of graceful shutdown: two instances
// of the example service behind a real HAProxy, under load from wrk, through
// a rolling restart. It runs with the build tag e2e:
//
//	go test -tags e2e ./e2e
package e2e
