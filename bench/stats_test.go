package main

import (
	"testing"
	"time"
)

func TestSummarize(t *testing.T) {
	ms := time.Millisecond
	tests := []struct {
		name string
		in   []time.Duration
		want summary
	}{
		{"empty", nil, summary{}},
		{"one", []time.Duration{5 * ms}, summary{n: 1, min: 5 * ms, median: 5 * ms, max: 5 * ms}},
		{"odd, unsorted", []time.Duration{9 * ms, 1 * ms, 4 * ms}, summary{n: 3, min: ms, median: 4 * ms, max: 9 * ms}},
		{"even: mean of the middle two", []time.Duration{8 * ms, 2 * ms, 4 * ms, 6 * ms}, summary{n: 4, min: 2 * ms, median: 5 * ms, max: 8 * ms}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := append([]time.Duration(nil), tt.in...)
			if got := summarize(tt.in); got != tt.want {
				t.Fatalf("summarize(%v) = %+v, want %+v", tt.in, got, tt.want)
			}
			for i := range in {
				if in[i] != tt.in[i] {
					t.Fatalf("summarize reordered its input: %v", tt.in)
				}
			}
		})
	}
}

// TestPhasesAddUp checks that a build's phases cover its client-observed time exactly, that
// the runs of clone, build and push count as work and the rest as orchestration or steps.
func TestPhasesAddUp(t *testing.T) {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	run := slipwayRun{
		total: 1000 * time.Millisecond,
		timeline: timeline{
			started: at(0),
			closed:  at(950),
			session: span{name: sessionCreation, scheduled: at(20), started: at(30)},
			signals: []time.Time{at(40)},
			activities: []span{
				{name: "Clone", scheduled: at(60), started: at(70), closed: at(300)},
				{name: "ResolveDockerfile", scheduled: at(320), started: at(330), closed: at(340)},
				{name: "Build", scheduled: at(360), started: at(370), closed: at(800)},
				{name: "Cleanup", scheduled: at(820), started: at(830), closed: at(900)},
			},
		},
	}
	var sum, dispatch time.Duration
	kinds := map[phaseKind]time.Duration{}
	for _, p := range run.phases() {
		if p.d < 0 {
			t.Errorf("phase %q is negative: %s", p.name, p.d)
		}
		sum += p.d
		kinds[p.kind] += p.d
		if p.dispatch {
			dispatch += p.d
		}
	}
	if sum != run.total {
		t.Fatalf("phases add up to %s, want %s", sum, run.total)
	}
	if want := (230 + 430) * time.Millisecond; kinds[kindWork] != want {
		t.Errorf("work = %s, want %s", kinds[kindWork], want)
	}
	if want := (10 + 70) * time.Millisecond; kinds[kindStep] != want {
		t.Errorf("steps = %s, want %s", kinds[kindStep], want)
	}
	if want := 50 * time.Millisecond; kinds[kindClient] != want {
		t.Errorf("client = %s, want %s", kinds[kindClient], want)
	}
	if want := 5 * 10 * time.Millisecond; dispatch != want {
		t.Errorf("dispatch = %s, want %s (session, Clone, ResolveDockerfile, Build, Cleanup)", dispatch, want)
	}
	if got, want := run.timeline.startToClone(), 70*time.Millisecond; got != want {
		t.Errorf("startToClone = %s, want %s", got, want)
	}
}

func TestShellQuote(t *testing.T) {
	tests := []struct{ in, want string }{
		{"--local", "--local"},
		{"type=image,name=127.0.0.1:5000/bench/raw:x,push=true", "type=image,name=127.0.0.1:5000/bench/raw:x,push=true"},
		{`{"a":"b c"}`, `'{"a":"b c"}'`},
		{"it's", `'it'\''s'`},
		{"", "''"},
	}
	for _, tt := range tests {
		if got := shellQuote(tt.in); got != tt.want {
			t.Errorf("shellQuote(%q) = %s, want %s", tt.in, got, tt.want)
		}
	}
}

func TestParseVertices(t *testing.T) {
	log := `==> build Dockerfile (context .)
#1 [internal] load build definition from Dockerfile
#1 DONE 0.0s

#4 importing cache manifest from 127.0.0.1:5000/bench/slipway:buildcache
#4 inferred cache manifest type: application/vnd.oci.image.manifest.v1+json done
#4 DONE 0.2s

#6 [internal] load build context
#6 transferring context: 49.56MB 1.0s done
#6 DONE 1.1s

#7 [2/4] COPY data/ /data
#7 DONE 0.1s

#10 exporting to oci image format
#10 exporting layers 0.2s done
#10 DONE 0.3s

#11 exporting cache to registry
#11 sending cache export 0.1s done
#11 DONE 1.5s
`
	got := parseVertices(log)
	want := map[string]time.Duration{
		vertexCacheImport: 200 * time.Millisecond,
		vertexContext:     1100 * time.Millisecond,
		vertexExport:      300 * time.Millisecond,
		vertexCacheExport: 1500 * time.Millisecond,
	}
	if len(got) != len(want) {
		t.Fatalf("parseVertices = %v, want %v", got, want)
	}
	for k, d := range want {
		if got[k] != d {
			t.Errorf("%s = %s, want %s", k, got[k], d)
		}
	}
}
