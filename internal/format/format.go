// Package format writes the few values several surfaces show the same way.
package format

import (
	"fmt"
	"math"
	"time"
)

// Bytes writes n in binary units: "512 B", "7.5 MiB".
func Bytes(n uint64) string {
	if n < 1<<10 {
		return fmt.Sprintf("%d B", n)
	}
	exp := min(int(math.Log2(float64(n))/10), 6)
	return fmt.Sprintf("%.4g %ciB", float64(n)/math.Pow(1024, float64(exp)), "KMGTPE"[exp-1])
}

// Stamp writes t for a JSON document, in UTC with nanoseconds (RFC 3339),
// or "" for the zero time, which documents leave out.
func Stamp(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}
