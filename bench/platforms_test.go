package main

import (
	"testing"
	"time"
)

func TestRunStepTimes(t *testing.T) {
	log := "#7 [linux/arm64 2/3] COPY stamp.txt /stamp.txt\n#7 DONE 0.1s\n" +
		"#8 [linux/arm64 3/3] RUN i=0; while\n#8 DONE 2.5s\n" +
		"#9 [linux/amd64 3/3] RUN i=0; while\n#9 DONE 0.3s\n" +
		"#10 [linux/amd64 2/3] RUN dd\n#10 CACHED\n" +
		"#11 [2/3] RUN dd\n#11 DONE 0.2s\n"
	got := runStepTimes(log, []string{"linux/amd64", "linux/arm64"})
	want := map[string]time.Duration{"linux/arm64": 2500 * time.Millisecond, "linux/amd64": 500 * time.Millisecond}
	if len(got) != len(want) || got["linux/arm64"] != want["linux/arm64"] || got["linux/amd64"] != want["linux/amd64"] {
		t.Fatalf("runStepTimes = %v, want %v", got, want)
	}
}
