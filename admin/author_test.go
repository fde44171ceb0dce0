package admin_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/probekit/probes"
	"github.com/probekit/probes/history"
	"github.com/probekit/probes/internal/testenv/testutil"
	"github.com/probekit/probes/readiness"
	"github.com/probekit/probes/server"
)

// authorSecret is in the command line of the process that cordons in
// TestAuthorOnEverySurface; no surface may show it.
const authorSecret = "hunter2hunter2"

// TestAuthorClient is the other process of TestAuthorOnEverySurface: run
// with AUTHOR_SOCKET set, it cordons, then lifts, over that socket.
func TestAuthorClient(t *testing.T) {
	socket := os.Getenv("AUTHOR_SOCKET")
	if socket == "" {
		t.Skip("the client side of TestAuthorOnEverySurface")
	}
	f := &fixture{socket: socket}
	if code, body := f.send(t, "POST", "/"+os.Getenv("AUTHOR_DO"), "application/json", os.Getenv("AUTHOR_BODY")); code != 200 {
		t.Fatalf("%s: %d %s", os.Getenv("AUTHOR_DO"), code, body)
	}
}

// A cordon set over the real Unix socket by another process names it (its
// uid, user, pid and command line, the secret in the command line masked)
// to authorised readers of every surface that shows the reason, and to no
// anonymous reader.
func TestAuthorOnEverySurface(t *testing.T) {
	isOp := func(r *http.Request) bool { return r.Header.Get("X-Op") == "yes" }
	lc := probes.NewLifecycle(probes.Readers(isOp))
	ready, err := readiness.New(lc)
	if err != nil {
		t.Fatal(err)
	}
	hist, err := history.New(lc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(hist.Close)
	page, err := history.NewPage(lc, hist)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(page.Close)
	testutil.Ready(t, lc)
	mux := http.NewServeMux()
	if _, err := server.Register(mux, lc); err != nil {
		t.Fatal(err)
	}
	mux.Handle("/history", hist.Handler())
	mux.Handle("/status", page)
	ts := httptest.NewServer(mux)
	t.Cleanup(ts.Close)
	f := serveAdmin(t, lc, ready)

	pid := cordonFrom(t, f.socket, "cordon", `{"reason":"disk swap","for":"30m"}`)

	c, ok := lc.Cordoned()
	if !ok || c.By.PID != int32(pid) || c.By.UID != uint32(os.Getuid()) {
		t.Fatalf("cordon %+v, want it set by pid %d, uid %d", c, pid, os.Getuid())
	}
	if strings.Contains(c.By.Command, authorSecret) || !strings.Contains(c.By.Command, "TestAuthorClient") {
		t.Fatalf("command %q: want the other process's, its secret masked", c.By.Command)
	}
	by := c.By.String()
	pidText := `"pid":` + itoa(pid)
	for _, s := range []struct {
		name, url string
		authz     bool
		want      string // what an authorised reader finds, and an anonymous one does not
	}{
		{"deep view", "/healthz?verbose", true, pidText},
		{"history", "/history", true, jsonString(by)},
		{"page", "/status", true, "TestAuthorClient"},
	} {
		for _, op := range []bool{false, true} {
			body := read(t, ts.URL+s.url, op)
			if strings.Contains(body, authorSecret) {
				t.Errorf("%s (authorised %v) shows the secret:\n%s", s.name, op, body)
			}
			if got := strings.Contains(body, s.want); got != op {
				t.Errorf("%s (authorised %v): holds %q: got %v, want %v\n%s", s.name, op, s.want, got, op, body)
			}
			if !op && strings.Contains(body, "disk swap") {
				t.Errorf("%s: anonymous readers see the reason:\n%s", s.name, body)
			}
		}
	}
	_, _, status := get(t, f.client(), "GET", "http://admin/status")
	if !strings.Contains(status, pidText) || strings.Contains(status, authorSecret) {
		t.Errorf("admin status: want the author, without the secret:\n%s", status)
	}

	lifter := cordonFrom(t, f.socket, "uncordon", `{}`)
	var doc struct {
		Transitions []struct{ Subject, To, By string }
	}
	if err := json.Unmarshal([]byte(read(t, ts.URL+"/history", true)), &doc); err != nil {
		t.Fatal(err)
	}
	last := doc.Transitions[len(doc.Transitions)-1]
	if last.Subject != "cordon" || last.To != "none" || !strings.Contains(last.By, "pid "+itoa(lifter)+":") {
		t.Errorf("last transition %+v, want the uncordon, by pid %d", last, lifter)
	}
}

// cordonFrom runs TestAuthorClient in a process of its own, with a secret
// in its command line, to POST body to /do on socket; it returns its pid.
func cordonFrom(t *testing.T, socket, do, body string) int {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestAuthorClient$", "password="+authorSecret)
	cmd.Env = append(os.Environ(), "AUTHOR_SOCKET="+socket, "AUTHOR_DO="+do, "AUTHOR_BODY="+body)
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("the other process: %v\n%s", err, out.String())
	}
	return cmd.Process.Pid
}

func read(t *testing.T, url string, op bool) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if op {
		req.Header.Set("X-Op", "yes")
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return string(b)
}

func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return strings.Trim(string(b), `"`)
}

func itoa(n int) string { b, _ := json.Marshal(n); return string(b) }
