package logstore

import (
	"io"
	"os"
	"path/filepath"
	"testing"
)

func TestRunLogsAndRemove(t *testing.T) {
	s, err := New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range [][2]string{{"b1", "r1"}, {"b1", "r2"}, {"b2", "r3"}} {
		w, err := s.Append(r[0], r[1])
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(w, "x")
		w.Close()
	}
	logs, err := s.RunLogs()
	if err != nil || len(logs) != 3 {
		t.Fatalf("RunLogs = %+v, %v", logs, err)
	}
	byRun := map[string]RunLog{}
	for _, l := range logs {
		byRun[l.RunID] = l
	}
	if err := s.Remove(byRun["r1"]); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(s.Path("b1", "r2")); err != nil {
		t.Fatalf("removing r1 took r2: %v", err)
	}
	if err := s.Remove(byRun["r3"]); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Dir(s.Path("b2", "r3"))); !os.IsNotExist(err) {
		t.Fatalf("b2's folder outlived its last log: %v", err)
	}
	// A path outside the store is refused.
	if err := s.Remove(RunLog{RunID: "x", Path: "/etc/passwd"}); err == nil {
		t.Fatal("Remove accepted a path outside the store")
	}
}
