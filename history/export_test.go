package history

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/probekit/probes"
)

// RecordAt records one execution at now, for tests that drive the clock.
func (h *History) RecordAt(gate probes.Kind, check string, s probes.Status, d time.Duration, now time.Time) {
	h.record(key{gate, check}, s, d, now)
}

// AddTransition records t as the History records what it hears of.
func (h *History) AddTransition(t Transition) {
	h.mu.Lock()
	h.addLocked(t)
	h.mu.Unlock()
}

// Flush writes to the state directory what was recorded, now.
func (h *History) Flush() { h.files.flush(false) }

// Abandon leaves the state directory as a process killed outright leaves
// it: nothing more is written, not even the end.
func (h *History) Abandon() {
	h.cancel()
	h.files.abandon()
}

// NoSync writes the state directory without syncing it, for tests that
// write much.
func NoSync() Option { return func(c *config) error { c.nosync = true; return nil } }

// SegmentSize is one segment file's bound.
const SegmentSize = segmentSize

// ReadState reads a state directory as New does, writing nothing: how
// many instances it holds and the newest of them.
func ReadState(dir string) (int, []Instance, error) {
	var ev, ro [2][]byte
	for i := range 2 {
		for _, f := range []struct {
			name string
			to   *[]byte
		}{{"history-events", &ev[i]}, {"history-rollups", &ro[i]}} {
			b, err := os.ReadFile(filepath.Join(dir, fmt.Sprintf("%s.%d", f.name, i)))
			if err != nil && !errors.Is(err, fs.ErrNotExist) {
				return 0, nil, err
			}
			*f.to = b
		}
	}
	r, _, _ := recall(ev, ro)
	return int(r.restarts()), r.previous(), nil
}

// Recall reads segments as New does, for the fuzz test.
func Recall(events, rollups [2][]byte) (int, []Instance) {
	r, _, _ := recall(events, rollups)
	r.restored(time.Now())
	return int(r.restarts()), r.previous()
}

// RecordEnds returns where each whole record of a segment ends.
func RecordEnds(seg []byte) []int {
	var ends []int
	off := 0
	scan(seg, func(p []byte) {
		off += frameSize + len(p)
		ends = append(ends, off)
	})
	return ends
}
