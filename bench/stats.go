package main

import (
	"fmt"
	"math"
	"slices"
	"time"
)

// stats is the spread of a set of durations or other figures.
type stats[T time.Duration | float64] struct {
	n                           int
	min, median, p99, max, mean T
}

// summarize returns the spread of xs: the median of an even count is the mean of the middle
// two, the 99th percentile is the nearest rank (the smallest value with 99% of the samples at
// or below it).
func summarize[T time.Duration | float64](xs []T) stats[T] {
	if len(xs) == 0 {
		return stats[T]{}
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	m := s[len(s)/2]
	if len(s)%2 == 0 {
		m = (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	var sum T
	for _, d := range s {
		sum += d
	}
	p99 := s[max(0, min(int(math.Ceil(0.99*float64(len(s))))-1, len(s)-1))]
	return stats[T]{n: len(s), min: s[0], median: m, p99: p99, max: s[len(s)-1], mean: sum / T(len(s))}
}

// p95 is the 95th percentile of ds (nearest rank), 0 for none: the figure a page's time is
// judged by, where a few slow samples of twenty should not hide behind the median.
func p95(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[max(0, int(math.Ceil(0.95*float64(len(s))))-1)]
}

// median is the median of xs, 0 for none.
func median[T time.Duration | float64](xs []T) T { return summarize(xs).median }

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

// three formats a, b and c with f as "a / b / c", "–" when n is 0.
func three[T any](n int, f func(T) string, a, b, c T) string {
	if n == 0 {
		return "–"
	}
	return f(a) + " / " + f(b) + " / " + f(c)
}

// spread formats ds as "min / median / max".
func spread(ds []time.Duration) string {
	s := summarize(ds)
	return three(s.n, ms, s.min, s.median, s.max)
}

// ranks formats ds as "p50 / p99 / max".
func ranks(ds []time.Duration) string {
	s := summarize(ds)
	return three(s.n, ms, s.median, s.p99, s.max)
}

// secondsSpread is spread in seconds, for long times.
func secondsSpread(ds []time.Duration) string {
	s := summarize(ds)
	if s.n == 0 {
		return "–"
	}
	return fmt.Sprintf("%.2f / %.2f / %.2f s", s.min.Seconds(), s.median.Seconds(), s.max.Seconds())
}

// floatSpread formats the min, median and max of fs with a format per value.
func floatSpread(format string, fs []float64) string {
	s := summarize(fs)
	return three(s.n, func(f float64) string { return fmt.Sprintf(format, f) }, s.min, s.median, s.max)
}

// ratio formats a/b as "1.23×".
func ratio(a, b time.Duration) string {
	if b <= 0 {
		return "–"
	}
	return fmt.Sprintf("%.2f×", float64(a)/float64(b))
}
