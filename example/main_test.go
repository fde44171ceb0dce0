package main

import (
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
	"go.uber.org/zap"

	"github.com/probekit/probes/internal/pgtest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestParseConfig(t *testing.T) {
	tests := []struct {
		name string
		args []string
		env  map[string]string
		want config
		err  string
	}{
		{name: "defaults", want: config{addr: "127.0.0.1:8080", warmup: 3 * time.Second, deadline: 2 * time.Minute, drain: 5 * time.Second, shutdownTimeout: 10 * time.Second}},
		{name: "environment", env: map[string]string{"ADDR": ":9000", "WARMUP": "1s", "DRAIN": "0s", "DATABASE_URL": "postgres://x"},
			want: config{addr: ":9000", warmup: time.Second, deadline: 2 * time.Minute, shutdownTimeout: 10 * time.Second, databaseURL: "postgres://x"}},
		{name: "flags beat environment", args: []string{"-warmup", "2s", "-addr", ":1"}, env: map[string]string{"WARMUP": "9s"},
			want: config{addr: ":1", warmup: 2 * time.Second, deadline: 2 * time.Minute, drain: 5 * time.Second, shutdownTimeout: 10 * time.Second}},
		{name: "bad environment names the variable", env: map[string]string{"DRAIN": "soon"}, err: "DRAIN"},
		{name: "negative warm-up", args: []string{"-warmup", "-1s"}, err: "-warmup"},
		{name: "deadline before warm-up", args: []string{"-warmup", "3m"}, err: "-warmup-deadline 2m0s: must exceed"},
		{name: "negative drain probes", env: map[string]string{"DRAIN_PROBES": "-2"}, err: "-drain-probes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseConfig(tt.args, func(k string) string { return tt.env[k] })
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("got error %v, want one naming %s", err, tt.err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("got %+v, %v; want %+v", got, err, tt.want)
			}
		})
	}
}

func TestRun(t *testing.T) {
	// Find a free port, then let run listen on it.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, config{addr: addr, warmup: time.Second, deadline: time.Minute, shutdownTimeout: time.Second}, zap.NewNop())
	}()
	client := &http.Client{Timeout: 5 * time.Second}
	get := func(path string) (int, string) {
		res, err := client.Get("http://" + addr + path)
		if err != nil {
			return 0, err.Error()
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(b)
	}
	deadline := time.Now().Add(10 * time.Second)
	sawWarming, refused := false, false
	for {
		code, body := get("/readyz")
		if code == 503 && strings.Contains(body, "warming") {
			sawWarming = true
			switch c, _ := get("/api/items/7"); c {
			case 503:
				refused = true
			case 200:
				// Warm-up may have finished between the two requests; then
				// readiness must pass now. The API never serves before it.
				if after, _ := get("/readyz"); after != 200 {
					t.Errorf("API served 200 while readiness answers %d", after)
				}
			default:
				t.Errorf("API while warming: got %d, want 503", c)
			}
		}
		if code == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not ready within 5s: %d %s", code, body)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if !sawWarming || !refused {
		t.Errorf("while the cache loaded: saw readiness fail %v, saw the API refuse %v; want both", sawWarming, refused)
	}
	if code, body := get("/api/items/7"); code != 200 || !strings.Contains(body, `"name":"item 7"`) {
		t.Errorf("API when warm: got %d %s", code, body)
	}
	if code, _ := get("/api/items/100000"); code != 404 {
		t.Errorf("unknown item: got %d, want 404", code)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("run: %v", err)
	}
}

func TestRunWithPostgres(t *testing.T) {
	pg := pgtest.Start(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, config{addr: addr, deadline: time.Minute, shutdownTimeout: time.Second, databaseURL: pg.URL("pw")}, zap.NewNop())
	}()
	deadline := time.Now().Add(10 * time.Second)
	for {
		res, err := http.Get("http://" + addr + "/readyz/postgres")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == 200 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("postgres check not passing: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("run: %v", err)
	}
}
