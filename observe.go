package probes

import (
	"context"

	"github.com/probekit/probes/internal/spec"
)

// Observation is a value a check measured besides its response time, such as
// the connections in use of a pool. It appears in verbose health+json bodies
// as "<check>:<Measurement>". A value that is not finite (NaN, ±Inf) is
// rendered as null.
type Observation struct {
	// Measurement names what was measured, such as "connections".
	Measurement string
	// Value is the measured value.
	Value float64
	// Unit is the unit of Value, such as "%" or "connections".
	Unit string
	// Withheld reports that Value is not for this reader: a report made
	// for anonymous readers (Report.For) keeps what was measured and drops
	// the value.
	Withheld bool
}

// Observe records o for the check execution ctx belongs to; a later
// observation of the same measurement replaces an earlier one. Outside a
// check run by a gate it does nothing.
func Observe(ctx context.Context, o Observation) {
	if rec, ok := ctx.Value(spec.RecorderKey{}).(*spec.Recorder[Observation]); ok {
		rec.Add(o)
	}
}
