package main

import (
	"fmt"
	"math"
	"slices"
	"time"
)

// stats is the spread of a set of durations.
type stats struct {
	n                           int
	min, median, p99, max, mean time.Duration
}

// summarize returns the spread of ds: the median of an even count is the mean of the middle
// two, the 99th percentile is the nearest rank (the smallest value with 99% of the samples at
// or below it).
func summarize(ds []time.Duration) stats {
	if len(ds) == 0 {
		return stats{}
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	m := s[len(s)/2]
	if len(s)%2 == 0 {
		m = (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	var sum time.Duration
	for _, d := range s {
		sum += d
	}
	p99 := s[max(0, min(int(math.Ceil(0.99*float64(len(s))))-1, len(s)-1))]
	return stats{n: len(s), min: s[0], median: m, p99: p99, max: s[len(s)-1], mean: sum / time.Duration(len(s))}
}

// median is the median of ds.
func median(ds []time.Duration) time.Duration { return summarize(ds).median }

// ms formats a duration in milliseconds, with a decimal below 10 ms.
func ms(d time.Duration) string {
	f := float64(d) / float64(time.Millisecond)
	if f > -10 && f < 10 {
		return fmt.Sprintf("%.1f ms", f)
	}
	return fmt.Sprintf("%.0f ms", f)
}

// signedMS is ms with a sign, for differences.
func signedMS(d time.Duration) string {
	if d >= 0 {
		return "+" + ms(d)
	}
	return ms(d)
}

// spread formats ds as "min / median / max".
func spread(ds []time.Duration) string {
	if len(ds) == 0 {
		return "–"
	}
	s := summarize(ds)
	return ms(s.min) + " / " + ms(s.median) + " / " + ms(s.max)
}

// secondsSpread is spread in seconds, for long times.
func secondsSpread(ds []time.Duration) string {
	if len(ds) == 0 {
		return "–"
	}
	s := summarize(ds)
	return fmt.Sprintf("%.2f / %.2f / %.2f s", s.min.Seconds(), s.median.Seconds(), s.max.Seconds())
}

// ranks formats ds as "p50 / p99 / max".
func ranks(ds []time.Duration) string {
	if len(ds) == 0 {
		return "–"
	}
	s := summarize(ds)
	return ms(s.median) + " / " + ms(s.p99) + " / " + ms(s.max)
}

// ratio formats a/b as "1.23×".
func ratio(a, b time.Duration) string {
	if b <= 0 {
		return "–"
	}
	return fmt.Sprintf("%.2f×", float64(a)/float64(b))
}

// floatSpread formats the min, median and max of fs with a format per value.
func floatSpread(format string, fs []float64) string {
	if len(fs) == 0 {
		return "–"
	}
	return fmt.Sprintf(format+" / "+format+" / "+format, slices.Min(fs), medianFloat(fs), slices.Max(fs))
}

// medianFloat is the median of fs, 0 for none.
func medianFloat(fs []float64) float64 {
	if len(fs) == 0 {
		return 0
	}
	s := slices.Clone(fs)
	slices.Sort(s)
	if len(s)%2 == 0 {
		return (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return s[len(s)/2]
}
