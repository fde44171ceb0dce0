// Package e2e holds the end-to-end test of graceful shutdown: two instances
// of the example service behind a real HAProxy, under load from wrk, through
// a rolling restart. It is a module of its own, so that the library's
// go.mod carries none of its dependencies (a browser driver among them),
// and runs with the build tag e2e:
//
//	cd e2e && go test -tags e2e ./...
package e2e
