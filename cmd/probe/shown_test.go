package main

import (
	"bufio"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"unicode"
)

// hostile answers with secrets and terminal escapes wherever the probe
// prints what a server sent: the body, the Location, the status text.
func hostile(t *testing.T) *httptest.Server {
	t.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc("/body", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusServiceUnavailable)
		w.Write([]byte("db down: postgres://app:s3cret@db:5432/items \x1b[31mred\x1b[0m\x07 \xff\u202e\n"))
	})
	mux.HandleFunc("/long-body", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusServiceUnavailable)
		w.Write([]byte(strings.Repeat("\x1b", 5000)))
	})
	mux.HandleFunc("/location", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Location", "http://app:s3cret@elsewhere.invalid/login?token=t0ken-s3cret")
		w.WriteHeader(http.StatusTemporaryRedirect)
	})
	mux.HandleFunc("/long-location", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Location", "http://elsewhere.invalid/"+strings.Repeat("a", 5000))
		w.WriteHeader(http.StatusTemporaryRedirect)
	})
	mux.HandleFunc("/status", func(w http.ResponseWriter, r *http.Request) {
		c, buf, err := w.(http.Hijacker).Hijack()
		if err != nil {
			t.Error(err)
			return
		}
		defer c.Close()
		fmt.Fprintf(buf, "HTTP/1.1 503 \x1b[2Jpassword=s3cret %s\r\nContent-Length: 0\r\nConnection: close\r\n\r\n", strings.Repeat("y", 5000))
		buf.Flush()
	})
	mux.HandleFunc("/loop", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/loop?token=s3cret", http.StatusFound)
	})
	mux.HandleFunc("/bad-header", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Location", "/x?token=s3cret\x1b[2J")
		w.WriteHeader(http.StatusFound)
	})
	ts := httptest.NewServer(mux)
	t.Cleanup(ts.Close)
	return ts
}

func TestServerTextShown(t *testing.T) {
	ts := hostile(t)
	tests := []struct {
		name string
		path string
		code int
		out  string // what must still show
	}{
		{"body with a password and escapes", "/body", 1, `db down: postgres://app:xxxxx@db:5432/items \x1b[31mred\x1b[0m\a \xff\u202e`},
		{"long body", "/long-body", 1, `503 Service Unavailable`},
		{"location with a password", "/location", 0, "redirect to http://app:xxxxx@elsewhere.invalid/login?token=xxxxx not followed"},
		{"long location", "/long-location", 0, "not followed"},
		{"status text", "/status", 1, `503 \x1b[2Jpassword=xxxxx`},
		{"error text with a url", "/loop", 1, "loop?token=xxxxx"},
		{"error text with a header line", "/bad-header", 1, `malformed MIME header line: "Location: /x?token=xxxxx`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out strings.Builder
			code := run([]string{ts.URL + tt.path}, &out)
			got := out.String()
			if code != tt.code || !strings.Contains(got, tt.out) {
				t.Errorf("got %d %q, want %d and %q", code, got, tt.code, tt.out)
			}
			checkShown(t, got)
		})
	}
}

// checkShown fails t when the probe's output holds a secret, a control
// character other than the final newline, or an overlong line.
func checkShown(t *testing.T, got string) {
	t.Helper()
	if strings.Contains(got, "s3cret") {
		t.Errorf("output %q holds the secret", got)
	}
	if strings.ContainsFunc(strings.TrimSuffix(got, "\n"), func(c rune) bool { return !unicode.IsPrint(c) && c != ' ' }) {
		t.Errorf("output %q holds a control or unprintable character", got)
	}
	sc := bufio.NewScanner(strings.NewReader(got))
	for sc.Scan() {
		if n := len(sc.Text()); n > 1000 {
			t.Errorf("output line is %d bytes, want at most 1000", n)
		}
	}
}
