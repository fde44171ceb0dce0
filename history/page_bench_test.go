package history_test

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/probekit/probes"
	"github.com/probekit/probes/history"
	"github.com/probekit/probes/readiness"
	"github.com/probekit/probes/server"
)

// BenchmarkRender is one rendering of the page for a request.
func BenchmarkRender(b *testing.B) {
	f := newFixture(b)
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	req.Header.Set("Accept", "text/html")
	b.ReportAllocs()
	for b.Loop() {
		rec := httptest.NewRecorder()
		f.page.ServeHTTP(rec, req)
	}
}

// openStreams opens n event streams on url and returns their readers, each
// past its first event.
func openStreams(b *testing.B, url string, n int) []*bufio.Reader {
	b.Helper()
	rs := make([]*bufio.Reader, n)
	for i := range rs {
		c, err := net.Dial("tcp", strings.TrimPrefix(url, "http://"))
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { c.Close() })
		fmt.Fprintf(c, "GET /healthz?events HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n")
		rs[i] = bufio.NewReader(c)
		readEvent(b, rs[i])
	}
	return rs
}

func readEvent(b *testing.B, r *bufio.Reader) {
	for sawData := false; ; {
		line, err := r.ReadString('\n')
		if err != nil {
			b.Fatal(err)
		}
		if line == "\n" && sawData {
			return
		}
		sawData = sawData || strings.HasPrefix(line, "data: ")
	}
}

// service is a lifecycle with a readiness gate served by Register with
// the page, on a real listener.
func service(b *testing.B, maxStreams int) (*probes.Lifecycle, http.Handler, string) {
	lc := probes.NewLifecycle()
	if _, err := readiness.New(lc); err != nil {
		b.Fatal(err)
	}
	h, err := history.New(lc)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(h.Close)
	page, err := history.NewPage(lc, h, history.MaxStreams(maxStreams), history.Refresh(time.Hour))
	if err != nil {
		b.Fatal(err)
	}
	mux := http.NewServeMux()
	if _, err := server.Register(mux, lc, server.Browsers(page)); err != nil {
		b.Fatal(err)
	}
	srv := httptest.NewServer(mux)
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan error, 1)
	go func() { ran <- lc.Run(ctx) }() // the page's pushes are the lifecycle's work
	b.Cleanup(func() { cancel(); <-ran; page.Close(); srv.Close() })
	return lc, mux, srv.URL
}

// BenchmarkFanOut1000 is one phase move reaching 1,000 open pages: from the
// move to the last stream's event.
func BenchmarkFanOut1000(b *testing.B) {
	lc, _, url := service(b, 1000)
	rs := openStreams(b, url, 1000)
	ready := false
	b.ResetTimer()
	for b.Loop() {
		var err error
		if ready {
			err = lc.Rewarm("bench")
		} else if lc.Phase() == probes.Cold {
			err = lc.Start()
		} else {
			err = lc.MarkReady()
		}
		if err != nil {
			b.Fatal(err)
		}
		ready = lc.Phase() == probes.Ready
		for _, r := range rs {
			readEvent(b, r)
		}
	}
}

// BenchmarkProbeWith1000Streams is the readiness probe's own cost while
// 1,000 pages stream from the same mux; compare BenchmarkProbe in package
// server.
func BenchmarkProbeWith1000Streams(b *testing.B) {
	for _, streams := range []int{0, 1000} {
		b.Run(fmt.Sprintf("streams=%d", streams), func(b *testing.B) {
			lc, mux, url := service(b, 1000)
			if err := lc.Start(); err != nil {
				b.Fatal(err)
			}
			if err := lc.MarkReady(); err != nil {
				b.Fatal(err)
			}
			openStreams(b, url, streams)
			req := httptest.NewRequest(http.MethodGet, "/readyz", nil)
			req.Header.Set("Accept", "*/*")
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				rec := httptest.NewRecorder()
				mux.ServeHTTP(rec, req)
				if rec.Code != 200 {
					b.Fatal(rec.Code)
				}
			}
		})
	}
}
