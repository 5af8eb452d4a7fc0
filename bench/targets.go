package main

import (
	"fmt"
	"time"
)

// target is one of issue #16's goals for an e2e scenario: Slipway's median at or under ratio
// times the raw tools' median, or when ratio is 0 at most over above it.
type target struct {
	scenario string
	ratio    float64
	over     time.Duration
}

// e2eTargets are the goals the e2e part checks, each against both raw columns.
var e2eTargets = []target{
	{scenario: "large/changed", ratio: 0.8},
	{scenario: "small/changed", over: 150 * time.Millisecond},
	{scenario: "large/unchanged", ratio: 0.7},
}

// String is the goal as the table shows it.
func (t target) String() string {
	if t.ratio > 0 {
		return fmt.Sprintf("≤ %.1f× raw", t.ratio)
	}
	return "≤ raw " + signedMS(t.over)
}

// check says what Slipway's median s was against the raw median r and whether it met the
// target; "–" when either side has no runs.
func (t target) check(s, r time.Duration) (got, verdict string) {
	if s <= 0 || r <= 0 {
		return "–", "–"
	}
	met := s <= r+t.over
	got = signedMS(s - r)
	if t.ratio > 0 {
		met, got = float64(s) <= t.ratio*float64(r), ratio(s, r)
	}
	if met {
		return got, "met"
	}
	return got, "not met"
}

// targetsTable checks every target whose scenario ran against the raw tools and against the
// raw tools with Slipway's registry cache flags.
func targetsTable(all []*scenarioRuns) table {
	t := table{title: "Targets of issue #16 (medians)", header: []string{"scenario", "target",
		"Slipway vs raw", "met", "Slipway vs raw + cache", "met"}}
	for _, tg := range e2eTargets {
		for _, sc := range all {
			if sc.name != tg.scenario {
				continue
			}
			s := median(totals(sc.slipway))
			g1, v1 := tg.check(s, median(rawTotals(sc.raw)))
			g2, v2 := tg.check(s, median(rawTotals(sc.cached)))
			t.rows = append(t.rows, []string{sc.name, tg.String(), g1, v1, g2, v2})
		}
	}
	return t
}

// totals are the builds' client-observed times.
func totals(runs []buildRun) []time.Duration {
	var ds []time.Duration
	for _, b := range runs {
		ds = append(ds, b.total())
	}
	return ds
}

// rawTotals are the raw pairs' times.
func rawTotals(runs []rawRun) []time.Duration {
	var ds []time.Duration
	for _, r := range runs {
		ds = append(ds, r.total)
	}
	return ds
}
