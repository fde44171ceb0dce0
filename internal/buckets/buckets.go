// Package buckets holds the latency buckets that package metrics and
// package otelprobes give a check's duration histogram, and the rule a
// service's own buckets must follow, so that the two exports agree.
package buckets

import (
	"errors"
	"fmt"
	"math"
)

// Default returns the default upper bounds, in seconds: 100 µs to 10 s. A
// healthy local dependency answers in well under a millisecond, and a
// check's timeout is 1 s by default. The slice is new at each call.
func Default() []float64 {
	return []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}
}

// Check returns an error, naming the option as Buckets(...), unless upper
// holds at least one bound, each finite and positive, in increasing order.
func Check(upper []float64) error {
	if len(upper) == 0 {
		return errors.New("Buckets(): need at least one bucket")
	}
	for i, b := range upper {
		if math.IsNaN(b) || math.IsInf(b, 0) || b <= 0 {
			return fmt.Errorf("Buckets(%v): bound %v is not a positive finite number of seconds", upper, b)
		}
		if i > 0 && b <= upper[i-1] {
			return fmt.Errorf("Buckets(%v): bounds must increase, %v follows %v", upper, b, upper[i-1])
		}
	}
	return nil
}
