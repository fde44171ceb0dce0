package admin

import (
	"fmt"
	"math"
	"time"
)

// ParseDuration reads a cordon's time limit, the "for" of POST /cordon
// and probectl's -for: what time.ParseDuration reads ("30m", "1h30m"), and
// days of 24 hours ("7d", "1d12h", "1.5d"), since a cordon may last up to
// probes.MaxCordon, seven days.
func ParseDuration(s string) (time.Duration, error) {
	in := s
	bad := func() (time.Duration, error) {
		return 0, fmt.Errorf("invalid duration %q: use numbers with units (ns, us, ms, s, m, h, d), such as \"30m\" or \"1d12h\"", in)
	}
	sign := ""
	if s != "" && (s[0] == '-' || s[0] == '+') {
		sign, s = s[:1], s[1:]
	}
	switch s {
	case "":
		return bad()
	case "0":
		return 0, nil
	}
	var total time.Duration
	for s != "" {
		// One number and its unit, signed as the whole: time.ParseDuration
		// reads it, a day as that many times 24 hours.
		i := 0
		for i < len(s) && (s[i] == '.' || '0' <= s[i] && s[i] <= '9') {
			i++
		}
		j := i
		for j < len(s) && s[j] != '.' && (s[j] < '0' || s[j] > '9') {
			j++
		}
		num, unit := s[:i], s[i:j]
		s = s[j:]
		if unit == "" {
			return bad()
		}
		var d time.Duration
		var err error
		if unit == "d" {
			d, err = time.ParseDuration(sign + num + "h")
			if d > math.MaxInt64/24 || d < math.MinInt64/24 {
				return bad()
			}
			d *= 24
		} else {
			d, err = time.ParseDuration(sign + num + unit)
		}
		if err != nil || d > 0 && d > math.MaxInt64-total || d < 0 && d < math.MinInt64-total {
			return bad()
		}
		total += d
	}
	return total, nil
}
