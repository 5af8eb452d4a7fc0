package main

import (
	"regexp"
	"sort"
	"strconv"
)

// pushedLine is the Push step's last line in a build log: its registry requests and the bytes
// of their bodies.
var pushedLine = regexp.MustCompile(`==> pushed \S+ in \S+ \((\d+) registry requests, (\d+) bytes sent\)`)

// pushCounts reads what the Push step of a build sent from its log; ok is false when the log
// has no such line (a worker from before the count).
func pushCounts(log string) (requests, sent int64, ok bool) {
	m := pushedLine.FindStringSubmatch(log)
	if m == nil {
		return 0, 0, false
	}
	requests, _ = strconv.ParseInt(m[1], 10, 64)
	sent, _ = strconv.ParseInt(m[2], 10, 64)
	return requests, sent, true
}

// medianCount is the median of counts, "–" when there are none.
func medianCount(counts []int64) string {
	if len(counts) == 0 {
		return "–"
	}
	s := append([]int64(nil), counts...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return strconv.FormatInt(s[len(s)/2], 10)
}
