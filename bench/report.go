package main

import (
	"fmt"
	"io"
	"runtime"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// table is one block of figures, already formatted: the renderer only lays it out.
type table struct {
	title  string
	header []string
	rows   [][]string
}

// sample is one line in Go's benchmark format, which benchstat reads.
type sample struct {
	name  string
	n     int
	vals  []float64
	units []string
}

// result is what one part of the bench measured: tables for people, samples for benchstat.
type result struct {
	key, title string
	tables     []table
	samples    []sample
}

// durations adds one ns/op sample per duration; above 50 it adds ten batches instead, each
// with its mean as ns/op and its 99th percentile as p99-ns, so benchstat still sees a spread.
func (r *result) durations(name string, ds []time.Duration) {
	if len(ds) <= 50 {
		for _, d := range ds {
			r.samples = append(r.samples, sample{name, 1, []float64{float64(d)}, []string{"ns/op"}})
		}
		return
	}
	size := len(ds) / 10
	for i := 0; i+size <= len(ds); i += size {
		b := ds[i : i+size]
		s := summarize(b)
		r.samples = append(r.samples, sample{name, len(b), []float64{float64(s.mean), float64(s.p99)}, []string{"ns/op", "p99-ns"}})
	}
}

// writeText prints every table, aligned, then the benchstat lines; with md, as markdown with
// the benchstat lines in a code block.
func writeText(w io.Writer, results []result, md bool) {
	h1, h2 := "\n== %s\n", "\n-- %s\n"
	if md {
		h1, h2 = "\n## %s\n", "\n### %s\n"
		fmt.Fprintf(w, "# Bench results\n\nWritten by `make bench` (`go run ./bench`); do not edit. "+
			"[performance.md](performance.md) says what is measured and what the figures mean.\n")
	}
	for _, r := range results {
		fmt.Fprintf(w, h1, r.title)
		for _, t := range r.tables {
			if t.title != "" {
				fmt.Fprintf(w, h2, t.title)
			}
			if !md {
				tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
				for _, row := range append([][]string{t.header}, t.rows...) {
					fmt.Fprintln(tw, strings.Join(row, "\t"))
				}
				tw.Flush()
				continue
			}
			fmt.Fprintf(w, "\n| %s |\n| %s |\n", strings.Join(t.header, " | "), strings.Join(slices.Repeat([]string{"---"}, len(t.header)), " | "))
			for _, row := range t.rows {
				fmt.Fprintf(w, "| %s |\n", strings.NewReplacer("|", `\|`, "\x00", " | ").Replace(strings.Join(row, "\x00")))
			}
		}
	}
	if md {
		fmt.Fprintf(w, "\n## Every sample (benchstat format)\n\n```\n")
		defer fmt.Fprintf(w, "```\n")
	} else {
		fmt.Fprintln(w)
	}
	writeBenchstat(w, results)
}

// writeBenchstat writes the samples in Go's benchmark format.
func writeBenchstat(w io.Writer, results []result) {
	fmt.Fprintf(w, "goos: %s\ngoarch: %s\npkg: github.com/slipway-dev/slipway/bench\n", runtime.GOOS, runtime.GOARCH)
	for _, r := range results {
		for _, s := range r.samples {
			fmt.Fprintf(w, "%s %d", s.name, s.n)
			for i, v := range s.vals {
				fmt.Fprintf(w, " %.0f %s", v, s.units[i])
			}
			fmt.Fprintln(w)
		}
	}
}
