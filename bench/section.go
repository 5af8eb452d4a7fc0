package main

import (
	"context"
	"fmt"
	"io"
	"strings"
)

// section is one further measurement of the bench, run after the end-to-end scenarios on the
// same environment (stack, Git server, worker). Each lives in a file of its own.
type section interface {
	// title heads the section in the text output and in the markdown report.
	title() string
	// key names the section for -only ("webhooks", "rebuilds", ...).
	key() string
	// run measures; an error ends the bench.
	run(ctx context.Context, e *env, o options) error
	// text prints the figures (tables, findings) to the terminal.
	text(w io.Writer)
	// markdown writes the figures, with a paragraph on what is measured and how, for
	// docs/performance.md.
	markdown(w io.Writer)
	// benchstat writes the section's samples as benchstat lines ("BenchmarkX/sub 1 N ns/op").
	benchstat(w io.Writer)
}

// allSections lists the further measurements in the order they run and are reported; each
// constructor lives in the section's own file.
func allSections() []section {
	return []section{newWebhooksSection(), newScaleSection(), newRebuildsSection(), newThroughputSection(), newNetworkSection()}
}

// sectionEnabled reports whether -only names the section (by its key), or -only is empty.
func sectionEnabled(o options, key string) bool {
	if o.only == "" {
		return true
	}
	for _, k := range strings.Split(o.only, ",") {
		if strings.TrimSpace(k) == key {
			return true
		}
	}
	return false
}

// writeList writes one line per item, each after bullet ("*" in the text output, "-" in
// markdown).
func writeList(w io.Writer, bullet string, items []string) {
	for _, it := range items {
		fmt.Fprintf(w, "%s %s\n", bullet, it)
	}
}
