package history

import (
	"time"

	"github.com/probekit/probes"
)

// RecordAt records one execution at now, for tests that drive the clock.
func (h *History) RecordAt(gate probes.Kind, check string, s probes.Status, d time.Duration, now time.Time) {
	h.record(key{gate, check}, s, d, now)
}
