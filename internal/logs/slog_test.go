package logs

import (
	"bytes"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
	"go.uber.org/zap"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestFromSlog(t *testing.T) {
	var buf bytes.Buffer
	l := FromSlog(slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo})))
	l.Debug("hidden")
	l.With(zap.String("service", "shop")).Named("server").Warn("drain over",
		zap.Duration("after", 1500*time.Millisecond), zap.Error(errors.New("boom")), zap.Int("n", 3),
		zap.Dict("peer", zap.Uint32("uid", 1000), zap.Int32("pid", 42)))
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 1 {
		t.Fatalf("%d lines, want 1 (debug is below the handler's level):\n%s", len(lines), buf.String())
	}
	var got map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &got); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"level": "WARN", "msg": "drain over", "service": "shop", "logger": "server",
		"after": float64(1500 * time.Millisecond), "error": "boom", "n": float64(3),
		"peer": map[string]any{"uid": float64(1000), "pid": float64(42)}}
	for k, v := range want {
		if g, _ := json.Marshal(got[k]); string(g) != mustJSON(v) {
			t.Errorf("%s: %s, want %s (line %s)", k, g, mustJSON(v), lines[0])
		}
	}
}

func mustJSON(v any) string { b, _ := json.Marshal(v); return string(b) }

func TestFromSlogNil(t *testing.T) {
	FromSlog(nil).Error("nowhere") // must not panic
}

// TestFromSlogConcurrent: the library logs from many goroutines at once.
func TestFromSlogConcurrent(t *testing.T) {
	var mu sync.Mutex
	var buf bytes.Buffer
	l := FromSlog(slog.New(slog.NewTextHandler(&lockedWriter{&mu, &buf}, nil))).With(zap.String("k", "v"))
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for range 100 {
				l.Info("line", zap.Int("g", i))
			}
		})
	}
	wg.Wait()
	if n := strings.Count(buf.String(), "\n"); n != 800 {
		t.Errorf("%d lines, want 800", n)
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	b  *bytes.Buffer
}

func (w *lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}
