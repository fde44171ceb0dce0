package probes

import (
	"context"
	"sync"
)

// Observation is a value a check measured besides its response time, such as
// the connections in use of a pool. It appears in verbose health+json bodies
// as "<check>:<Measurement>".
type Observation struct {
	// Measurement names what was measured, such as "connections".
	Measurement string
	// Value is the measured value.
	Value float64
	// Unit is the unit of Value, such as "%" or "connections".
	Unit string
}

type recorderKey struct{}

// recorder collects the observations of one execution. The timeout and the
// check's own goroutine may touch it at once.
type recorder struct {
	mu  sync.Mutex
	obs []Observation
}

// Observe records o for the check execution ctx belongs to; a later
// observation of the same measurement replaces an earlier one. Outside a
// check run by a Runner it does nothing.
func Observe(ctx context.Context, o Observation) {
	rec, ok := ctx.Value(recorderKey{}).(*recorder)
	if !ok {
		return
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	for i := range rec.obs {
		if rec.obs[i].Measurement == o.Measurement {
			rec.obs[i] = o
			return
		}
	}
	rec.obs = append(rec.obs, o)
}

func (r *recorder) snapshot() []Observation {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Observation(nil), r.obs...)
}
