package server_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/probekit/probes"
	"github.com/probekit/probes/internal/testenv/testutil"
	"github.com/probekit/probes/liveness"
	"github.com/probekit/probes/readiness"
	"github.com/probekit/probes/server"
)

// probeServer runs a ready service with its probes on a listener of their
// own and returns the probe listener's address.
func probeServer(t *testing.T) string {
	t.Helper()
	lc := probes.NewLifecycle()
	if _, err := liveness.New(lc); err != nil {
		t.Fatal(err)
	}
	if _, err := readiness.New(lc); err != nil {
		t.Fatal(err)
	}
	probeMux := http.NewServeMux()
	if _, err := server.Register(probeMux, lc); err != nil {
		t.Fatal(err)
	}
	probeLn := testutil.Listen(t)
	srv, err := server.New(&http.Server{Handler: http.NewServeMux()}, lc, server.Listener(testutil.Listen(t)),
		server.ProbeListener(probeLn, probeMux), server.DrainDelay(0), server.Signals())
	if err != nil {
		t.Fatal(err)
	}
	testutil.Ready(t, lc)
	testutil.Background(t, srv.Run)
	addr := probeLn.Addr().String()
	testutil.Eventually(t, "probe listener serving", func() bool { return status("http://"+addr+"/readyz") == 200 })
	return addr
}

// hold opens n connections to addr and leaves each as attack leaves it; it
// closes them at the end of the test.
func hold(t *testing.T, addr string, n int, attack func(net.Conn) error) {
	t.Helper()
	for i := range n {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			t.Fatalf("connection %d: %v", i, err)
		}
		t.Cleanup(func() { c.Close() })
		if err := attack(c); err != nil {
			t.Fatalf("connection %d: %v", i, err)
		}
	}
}

// idle completes one request and keeps the connection alive, unused.
func idle(c net.Conn) error {
	if _, err := io.WriteString(c, "GET /livez HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		return err
	}
	c.SetReadDeadline(time.Now().Add(2 * time.Second))
	res, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return err
	}
	io.Copy(io.Discard, res.Body)
	return res.Body.Close()
}

// slowloris sends the start of a request and never the rest.
func slowloris(c net.Conn) error {
	_, err := io.WriteString(c, "GET /livez HTTP/1.1\r\nHost: x\r\nX-Slow: ")
	return err
}

// Whatever a client does with connections it holds to the probe listener,
// a new probe connection is answered at once: the kubelet opens one per
// probe, and failing them restarts the pod.
func TestProbeListenerKeepsAnswering(t *testing.T) {
	for _, tc := range []struct {
		name   string
		attack func(net.Conn) error
	}{
		{"idle keep-alive", idle},
		{"slowloris", slowloris},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr := probeServer(t)
			hold(t, addr, 1000, tc.attack)
			c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: time.Second}
			for i := range 50 {
				res, err := c.Get(fmt.Sprintf("http://%s/livez", addr))
				if err != nil {
					t.Fatalf("probe %d with 1000 %s connections held: %v", i, tc.name, err)
				}
				res.Body.Close()
				if res.StatusCode != 200 {
					t.Fatalf("probe %d with 1000 %s connections held: got %d, want 200", i, tc.name, res.StatusCode)
				}
			}
		})
	}
}

// Paths that http.ServeMux would redirect to their clean form get 404 on
// the probe listener: the kubelet takes a 3xx for a pass.
func TestProbeListenerNeverRedirects(t *testing.T) {
	addr := probeServer(t)
	for _, path := range []string{"//readyz", "/./readyz", "/x/../readyz", "/readyz/.", "//livez/", "/readyz//x"} {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			t.Fatal(err)
		}
		// Written by hand: the client would clean the path itself.
		fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", path)
		c.SetReadDeadline(time.Now().Add(2 * time.Second))
		res, err := http.ReadResponse(bufio.NewReader(c), nil)
		c.Close()
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		if res.StatusCode != 404 {
			t.Errorf("GET %s: got %d, want 404", path, res.StatusCode)
		}
	}
	if code := status("http://" + addr + "/readyz"); code != 200 {
		t.Errorf("GET /readyz: got %d, want 200", code)
	}
}
