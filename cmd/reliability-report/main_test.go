package main

import (
	"io"
	"strings"
	"testing"
	"time"
)

// TestRender feeds test2json events, a long line split in two among them, and checks the
// document keeps the scenario, the figures, the note and each test's outcome.
func TestRender(t *testing.T) {
	in := strings.Join([]string{
		`{"Action":"run","Test":"TestChaosA"}`,
		`{"Action":"output","Test":"TestChaosA","Output":"    chaos_faults_test.go:56: reliability: {\"title\":\"Worker killed\",\"what\":\"The worker is killed.\"}\n"}`,
		`{"Action":"output","Test":"TestChaosA","Output":"    chaos_faults_test.go:111: reliability: {\"figure\":\"host attempts\","}`,
		`{"Action":"output","Test":"TestChaosA","Output":"\"value\":\"2 | 3\"}\n"}`,
		`{"Action":"output","Test":"TestChaosA","Output":"    chaos_faults_test.go:117: reliability: {\"note\":\"Most of the time is heartbeats.\"}\n"}`,
		`{"Action":"output","Test":"TestChaosA","Output":"    some other log line\n"}`,
		`{"Action":"pass","Test":"TestChaosA","Elapsed":22.31}`,
		`{"Action":"output","Test":"TestChaosB","Output":"    x.go:1: reliability: {\"title\":\"Registry down\",\"what\":\"Stops it.\"}\n"}`,
		`{"Action":"fail","Test":"TestChaosB","Elapsed":7}`,
		`{"Action":"fail","Elapsed":30}`,
	}, "\n")
	sections, failed, err := read(strings.NewReader(in), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if !failed {
		t.Error("failed = false, want true: TestChaosB failed")
	}
	var b strings.Builder
	render(&b, sections, time.Date(2026, 12, 3, 15, 26, 0, 0, time.UTC))
	for _, want := range []string{
		"Run of 2026-12-03 15:26 UTC",
		"## Worker killed: passed\n\n`TestChaosA`, passed in 22.3s. The worker is killed.",
		"| host attempts | 2 \\| 3 |",
		"\nMost of the time is heartbeats.\n",
		"## Registry down: FAILED\n\n`TestChaosB`, FAILED in 7s. Stops it.",
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("document lacks %q:\n%s", want, b.String())
		}
	}
	if strings.Contains(b.String(), "some other log line") {
		t.Error("document holds a log line that is not a report line")
	}
}

// TestReadRefusesFigureWithoutTitle checks that a figure logged before its scenario is an
// error, not a figure silently dropped.
func TestReadRefusesFigureWithoutTitle(t *testing.T) {
	in := `{"Action":"output","Test":"TestChaosA","Output":"reliability: {\"figure\":\"x\",\"value\":\"1\"}\n"}`
	if _, _, err := read(strings.NewReader(in), io.Discard); err == nil {
		t.Fatal("read accepted a figure before the scenario's title")
	}
}
