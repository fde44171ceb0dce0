package readiness_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/probekit/probes"
	"github.com/probekit/probes/readiness"
)

func checkOnce(c probes.Checker) error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	return c.Check(ctx)
}

func TestTCP(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	accepted := make(chan struct{})
	go func() {
		defer close(accepted)
		if c, err := ln.Accept(); err == nil {
			c.Close()
		}
	}()
	up, err := readiness.TCP(addr)
	if err != nil {
		t.Fatal(err)
	}
	if err := checkOnce(up); err != nil {
		t.Errorf("listening: %v", err)
	}
	<-accepted
	ln.Close()
	if err := checkOnce(up); err == nil {
		t.Error("closed listener: got nil, want an error")
	}
	if _, err := readiness.TCP("no-port"); err == nil || !strings.Contains(err.Error(), `TCP("no-port")`) {
		t.Errorf("TCP without port: got %v", err)
	}
}

func TestDNS(t *testing.T) {
	c, err := readiness.DNS("localhost")
	if err != nil {
		t.Fatal(err)
	}
	if err := checkOnce(c); err != nil {
		t.Errorf("localhost: %v", err)
	}
	bad, _ := readiness.DNS("no-such-host.invalid")
	if err := checkOnce(bad); err == nil {
		t.Error(".invalid resolved")
	}
	if _, err := readiness.DNS(""); err == nil {
		t.Error(`DNS(""): got nil error`)
	}
}

func TestHTTP(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("/ok", func(w http.ResponseWriter, r *http.Request) {})
	mux.HandleFunc("/down", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(503) })
	mux.HandleFunc("/moved", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/ok", http.StatusFound) })
	mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() })
	ts := httptest.NewServer(mux)
	defer ts.Close()
	tests := []struct {
		name, path string
		opts       []readiness.HTTPOption
		want       string // "" for pass
	}{
		{"2xx passes", "/ok", nil, ""},
		{"503 fails", "/down", nil, "status 503, want 200 to 299"},
		{"redirect is not followed", "/moved", nil, "status 302"},
		{"redirect accepted when expected", "/moved", []readiness.HTTPOption{readiness.ExpectStatus(200, 399)}, ""},
		{"503 accepted when expected", "/down", []readiness.HTTPOption{readiness.ExpectStatus(503, 503)}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := readiness.HTTP(ts.URL+tt.path, tt.opts...)
			if err != nil {
				t.Fatal(err)
			}
			err = checkOnce(c)
			if (tt.want == "") != (err == nil) || err != nil && !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %v, want %q", err, tt.want)
			}
		})
	}

	slow, _ := readiness.HTTP(ts.URL + "/slow")
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := slow.Check(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("slow upstream: got %v, want the context's deadline", err)
	}

	for _, bad := range []struct {
		url  string
		opts []readiness.HTTPOption
		want string
	}{
		{"billing:8080/readyz", nil, "absolute http"},
		{"ftp://x/readyz", nil, "absolute http"},
		{"http://u:topsecret@x/%zz", nil, "xxxxx"},
		{"http://x/readyz", []readiness.HTTPOption{readiness.ExpectStatus(300, 200)}, "ExpectStatus(300, 200)"},
		{"http://x/readyz", []readiness.HTTPOption{readiness.Client(nil)}, "Client(nil)"},
	} {
		_, err := readiness.HTTP(bad.url, bad.opts...)
		if err == nil || !strings.Contains(err.Error(), bad.want) || strings.Contains(err.Error(), "topsecret") {
			t.Errorf("HTTP(%q): got %v, want an error mentioning %s", bad.url, err, bad.want)
		}
	}
}
