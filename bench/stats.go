package main

import (
	"fmt"
	"slices"
	"time"
)

// summary is the spread of a set of durations.
type summary struct {
	n                int
	min, median, max time.Duration
}

// summarize returns the min, median and max of ds; the median of an even count is the mean
// of the middle two.
func summarize(ds []time.Duration) summary {
	if len(ds) == 0 {
		return summary{}
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	m := s[len(s)/2]
	if len(s)%2 == 0 {
		m = (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return summary{n: len(s), min: s[0], median: m, max: s[len(s)-1]}
}

// median is the median of ds.
func median(ds []time.Duration) time.Duration { return summarize(ds).median }

// ms formats a duration in milliseconds, with a decimal below 10 ms where it matters.
func ms(d time.Duration) string {
	f := float64(d) / float64(time.Millisecond)
	if f > -10 && f < 10 {
		return fmt.Sprintf("%.1f ms", f)
	}
	return fmt.Sprintf("%.0f ms", f)
}

// signedMS is ms with a sign, for differences.
func signedMS(d time.Duration) string {
	if d > -50*time.Microsecond && d < 50*time.Microsecond {
		return "±0 ms"
	}
	if d >= 0 {
		return "+" + ms(d)
	}
	return ms(d)
}

// spread formats a summary as "min / median / max".
func spread(s summary) string {
	return ms(s.min) + " / " + ms(s.median) + " / " + ms(s.max)
}

// ratio formats a/b as "1.23×".
func ratio(a, b time.Duration) string {
	if b <= 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.2f×", float64(a)/float64(b))
}
