package main

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"math"
	"net/http"
	"time"
)

// report is GET /api/report: a summary of the cache that costs about a
// fixed amount of CPU per request, to show load shedding and probe
// priority under load.
type report struct {
	c      *cache
	rounds int // hashing rounds that take about the cost on one core
}

// newReport measures how many hashing rounds take cost on this machine, so
// that each request burns that CPU time whatever else the machine does.
func newReport(c *cache, cost time.Duration) *report {
	rp := &report{c: c}
	if cost <= 0 {
		return rp
	}
	const probe = 1 << 12
	per := time.Duration(math.MaxInt64)
	for range 5 { // the fastest of five: the others were interrupted
		began := time.Now()
		burn(probe)
		per = min(per, max(time.Since(began)/probe, time.Nanosecond))
	}
	rp.rounds = max(1, int(cost/per))
	return rp
}

// burn hashes n times and returns the last sum's first byte.
func burn(n int) byte {
	var sum [sha256.Size]byte
	for i := range n {
		binary.LittleEndian.PutUint64(sum[:], uint64(i))
		sum = sha256.Sum256(sum[:])
	}
	return sum[0]
}

func (rp *report) serve(w http.ResponseWriter, r *http.Request) {
	items := rp.c.items.Load()
	if items == nil {
		http.Error(w, "cache not loaded", http.StatusServiceUnavailable)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{ //nolint:errcheck // the client went away
		"items":  len(*items),
		"digest": burn(rp.rounds),
	})
}
