package main

import (
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	if code, ok := asHelper(); ok {
		os.Exit(code) // this binary runs as probe run or its child, for run_test.go
	}
	goleak.VerifyTestMain(m)
}

func upstream(t *testing.T) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var keepAlive atomic.Int64
	mux := http.NewServeMux()
	mux.HandleFunc("/ok", func(w http.ResponseWriter, r *http.Request) {
		if !r.Close {
			keepAlive.Add(1)
		}
		w.Write([]byte(`{"status":"pass"}` + "\n"))
	})
	mux.HandleFunc("/down", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusServiceUnavailable)
		w.Write([]byte(`{"status":"fail"}` + "\n"))
	})
	mux.HandleFunc("/moved", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/ok", http.StatusFound) })
	mux.HandleFunc("/moved-down", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/down", http.StatusFound) })
	mux.HandleFunc("/elsewhere", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "http://elsewhere.invalid/ok", http.StatusFound)
	})
	mux.HandleFunc("/loop", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/loop", http.StatusFound) })
	mux.HandleFunc("/stall", func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("partial"))
		w.(http.Flusher).Flush()
		<-r.Context().Done() // the rest of the body never comes
	})
	mux.HandleFunc("/huge", func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(strings.Repeat("x", 1<<20)))
	})
	ts := httptest.NewServer(mux)
	t.Cleanup(ts.Close)
	return ts, &keepAlive
}

func TestExitPaths(t *testing.T) {
	ts, keepAlive := upstream(t)
	// A server that accepts and never answers.
	silent, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		if c, err := silent.Accept(); err == nil {
			accepted <- c
		}
	}()
	closed, _ := net.Listen("tcp", "127.0.0.1:0")
	refused := closed.Addr().String()
	closed.Close()

	tests := []struct {
		name string
		args []string
		code int
		out  string
	}{
		{"2xx", []string{ts.URL + "/ok"}, 0, `200 OK from ` + ts.URL + `/ok: {"status":"pass"}`},
		{"503", []string{ts.URL + "/down"}, 1, `503 Service Unavailable from ` + ts.URL + `/down: {"status":"fail"}`},
		{"same-host redirect followed", []string{ts.URL + "/moved"}, 0, "200 OK from " + ts.URL + "/ok"},
		{"same-host redirect to a failure", []string{ts.URL + "/moved-down"}, 1, "503"},
		{"redirect elsewhere not followed", []string{ts.URL + "/elsewhere"}, 0, "not followed"},
		{"redirect loop", []string{ts.URL + "/loop"}, 1, "stopped after 10 redirects"},
		{"huge body", []string{ts.URL + "/huge"}, 0, "200 OK"},
		{"body stalls past the timeout", []string{"-timeout", "200ms", ts.URL + "/stall"}, 1, "reading the body"},
		{"connection refused", []string{"http://" + refused + "/readyz"}, 1, "connection refused"},
		{"never answers", []string{"-timeout", "100ms", "http://" + silent.Addr().String() + "/readyz"}, 1, "Timeout exceeded"},
		{"no URL", nil, 1, "usage: probe"},
		{"not a URL", []string{"localhost:8080/readyz"}, 1, "not an http or https URL"},
		{"bad flag", []string{"-bogus", ts.URL}, 1, "usage: probe"},
		{"zero timeout", []string{"-timeout", "0s", ts.URL}, 1, "usage: probe"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out strings.Builder
			code := run(tt.args, &out)
			if code != tt.code || !strings.Contains(out.String(), tt.out) {
				t.Errorf("got %d %q, want %d and %q", code, out.String(), tt.code, tt.out)
			}
			if lines := strings.Count(strings.TrimSpace(out.String()), "\n"); lines > 0 && tt.code == 0 {
				t.Errorf("output is %d lines, want one", lines+1)
			}
		})
	}
	if n := keepAlive.Load(); n != 0 {
		t.Errorf("%d requests asked for keep-alive, want none", n)
	}
	if c := <-accepted; c != nil {
		c.Close()
	}
}

// TestStaticBinary builds the probe as a container would and runs it.
func TestStaticBinary(t *testing.T) {
	ts, _ := upstream(t)
	bin := filepath.Join(t.TempDir(), "probe")
	build := exec.Command("go", "build", "-o", bin, ".")
	build.Env = append(build.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	for path, want := range map[string]int{"/ok": 0, "/down": 1} {
		cmd := exec.Command(bin, "-timeout", "2s", ts.URL+path)
		out, err := cmd.CombinedOutput()
		code := 0
		if exit, ok := err.(*exec.ExitError); ok {
			code = exit.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		if code != want {
			t.Errorf("probe %s: exit %d (%s), want %d", path, code, out, want)
		}
	}
}
