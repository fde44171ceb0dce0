// Command bareprobes is the yardstick of BenchmarkProbeRunAtRest: the
// probe endpoints of a Go service written by hand, with nothing of this
// library. /startupz, /livez, /readyz and /healthz answer a small
// health+json body, and /metrics is client_golang's promhttp.Handler on
// its default registry (the Go and process collectors).
//
//	bareprobes 127.0.0.1:8081
//
// It is a program of its own, not the test binary re-executed: the test
// binary links everything the end-to-end tests use (a browser driver,
// gRPC, OpenTelemetry), which would make the yardstick larger than what it
// measures.
package main

import (
	"fmt"
	"net/http"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: bareprobes host:port")
		os.Exit(2)
	}
	mux := http.NewServeMux()
	for _, path := range []string{"/startupz", "/livez", "/readyz", "/healthz"} {
		mux.HandleFunc("GET "+path, func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "application/health+json")
			w.Header().Set("Cache-Control", "no-store")
			_, _ = w.Write([]byte(`{"status":"pass","serviceId":"bare","notes":["phase: ready"]}`))
		})
	}
	mux.Handle("GET /metrics", promhttp.Handler())
	srv := &http.Server{Addr: os.Args[1], Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	fmt.Fprintln(os.Stderr, srv.ListenAndServe())
	os.Exit(1)
}
