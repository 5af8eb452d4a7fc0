// Command reliability-report renders docs/reliability.md from `go test -json` output of the
// chaos tests (make chaos): each test logs "reliability: {json}" lines naming its scenario, its
// figures and notes, and the test's own pass or fail event gives the outcome and the time. It
// echoes the tests' output as it reads it and exits 1 when a test failed.
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"time"
)

// event is one line of `go test -json` (cmd/test2json).
type event struct {
	Action  string
	Test    string
	Output  string
	Elapsed float64
}

// section is what one test reported.
type section struct {
	test, title, what string
	figures           [][2]string
	notes             []string
	outcome           string
	elapsed           time.Duration
}

func main() {
	out := flag.String("out", "docs/reliability.md", "markdown file to write")
	flag.Parse()
	sections, failed, err := read(os.Stdin, os.Stdout)
	if err != nil {
		fmt.Fprintln(os.Stderr, "reliability-report:", err)
		os.Exit(2)
	}
	f, err := os.Create(*out)
	if err == nil {
		render(f, sections, time.Now())
		err = f.Close()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "reliability-report:", err)
		os.Exit(2)
	}
	if failed {
		os.Exit(1)
	}
}

// read collects the reported sections in the order their tests ended, echoing every output line
// to echo; failed says whether any test or package failed.
func read(r io.Reader, echo io.Writer) (done []*section, failed bool, err error) {
	open := map[string]*section{}
	partial := map[string]string{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for sc.Scan() {
		var ev event
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			// go test prints build failures as plain text.
			fmt.Fprintln(echo, sc.Text())
			continue
		}
		switch ev.Action {
		case "output":
			fmt.Fprint(echo, ev.Output)
			// test2json splits long lines into several events; join them back.
			text := partial[ev.Test] + ev.Output
			for {
				line, rest, ok := strings.Cut(text, "\n")
				if !ok {
					break
				}
				text = rest
				if err := parseLine(open, ev.Test, line); err != nil {
					return nil, true, err
				}
			}
			partial[ev.Test] = text
		case "pass", "fail", "skip":
			failed = failed || ev.Action == "fail"
			if s := open[ev.Test]; s != nil {
				s.outcome = map[string]string{"pass": "passed", "fail": "FAILED", "skip": "skipped"}[ev.Action]
				s.elapsed = time.Duration(ev.Elapsed * float64(time.Second))
				done = append(done, s)
				delete(open, ev.Test)
			}
		}
	}
	for _, s := range open {
		s.outcome = "did not finish"
		done = append(done, s)
	}
	return done, failed, sc.Err()
}

// parseLine records a "reliability: {json}" line of test's output into its section.
func parseLine(open map[string]*section, test, line string) error {
	_, obj, ok := strings.Cut(line, "reliability: {")
	if !ok || test == "" {
		return nil
	}
	var f map[string]string
	if err := json.Unmarshal([]byte("{"+obj), &f); err != nil {
		return fmt.Errorf("%s: reading report line %q: %w", test, line, err)
	}
	s := open[test]
	switch {
	case f["title"] != "":
		open[test] = &section{test: test, title: f["title"], what: f["what"]}
	case s == nil:
		return fmt.Errorf("%s: report line before the scenario's title: %q", test, line)
	case f["note"] != "":
		s.notes = append(s.notes, f["note"])
	default:
		s.figures = append(s.figures, [2]string{f["figure"], f["value"]})
	}
	return nil
}

// render writes the document.
func render(w io.Writer, sections []*section, now time.Time) {
	fmt.Fprintf(w, "# Reliability\n\nWritten by `make chaos`: the fault, load and hostile-input tests in `e2e/chaos_*_test.go`\n"+
		"(build tag `chaos`) log what they measure, and `cmd/reliability-report` renders their `go test -json`\n"+
		"output into this file, on the real local stack (Temporal dev server on SQLite, buildkitd with runc,\n"+
		"the distribution registry, the worker and gateway binaries). Nothing here is typed by hand; run\n"+
		"`make chaos` again to refresh it.\n\n"+
		"Run of %s on %d cores (%s, %s/%s). Times are wall-clock on a machine shared with other work:\n"+
		"they describe this run, and no test asserts on them.\n",
		now.UTC().Format("2006-01-02 15:04 MST"), runtime.NumCPU(), runtime.Version(), runtime.GOOS, runtime.GOARCH)
	for _, s := range sections {
		fmt.Fprintf(w, "\n## %s: %s\n\n`%s`, %s in %s. %s\n\n", s.title, s.outcome, s.test, s.outcome,
			s.elapsed.Round(100*time.Millisecond), s.what)
		if len(s.figures) > 0 {
			fmt.Fprintf(w, "| figure | value |\n| --- | --- |\n")
			for _, f := range s.figures {
				fmt.Fprintf(w, "| %s | %s |\n", f[0], strings.ReplaceAll(f[1], "|", `\|`))
			}
		}
		for _, n := range s.notes {
			fmt.Fprintf(w, "\n%s\n", n)
		}
	}
}
