// Command testsum reads `go test -json` from standard input (several
// modules' runs, one after another) and prints what a person needs from a
// whole-repository run: each package's result, the full output of every
// failing test, every skipped test with its reason, and one closing line
// "N passed, N failed, N skipped". It exits 1 when anything failed,
// including a package that did not build, so a script can rely on it.
//
// It is the reporter of .ci/test-all; merchants never import it.
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
)

// event is one line of `go test -json` (cmd/test2json).
type event struct {
	Action  string
	Package string
	Test    string
	Output  string
	Elapsed float64
}

type key struct{ pkg, test string }

type summary struct {
	out                     map[key]*strings.Builder
	passed, failed, skipped int
	failures, skips         []string
	pkgFailed               bool
}

func main() {
	s := &summary{out: map[key]*strings.Builder{}}
	if err := s.read(os.Stdin, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "testsum:", err)
		os.Exit(2)
	}
	s.report(os.Stdout)
	if s.failed > 0 || s.pkgFailed {
		os.Exit(1)
	}
}

func (s *summary) read(r io.Reader, w io.Writer) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		line := sc.Bytes()
		var e event
		if len(line) == 0 || line[0] != '{' || json.Unmarshal(line, &e) != nil {
			// Not test2json: a build error printed by go itself, or the
			// script's own note. Pass it through.
			fmt.Fprintln(w, string(line))
			continue
		}
		k := key{e.Package, e.Test}
		switch e.Action {
		case "output", "build-output":
			b := s.out[k]
			if b == nil {
				b = new(strings.Builder)
				s.out[k] = b
			}
			b.WriteString(e.Output)
		case "pass":
			if e.Test != "" {
				s.passed++
			} else {
				fmt.Fprintf(w, "ok   %s (%.1fs)\n", e.Package, e.Elapsed)
			}
			delete(s.out, k)
		case "skip":
			if e.Test != "" {
				s.skipped++
				s.skips = append(s.skips, fmt.Sprintf("%s %s: %s", e.Package, e.Test, reason(s.out[k])))
			} else {
				fmt.Fprintf(w, "?    %s [no test files]\n", e.Package)
			}
			delete(s.out, k)
		case "fail":
			if e.Test != "" {
				s.failed++
				s.failures = append(s.failures, fmt.Sprintf("--- FAIL: %s %s\n%s", e.Package, e.Test, text(s.out[k])))
			} else {
				s.pkgFailed = true
				fmt.Fprintf(w, "FAIL %s\n", e.Package)
				// A panic or a time-out ends the package while a test is
				// still running: that test never gets its own "fail", and
				// its output is the one that says what happened.
				for _, t := range s.unfinished(e.Package) {
					s.failed++
					s.failures = append(s.failures, fmt.Sprintf("--- FAIL (did not finish): %s %s\n%s", e.Package, t, s.out[key{e.Package, t}].String()))
					delete(s.out, key{e.Package, t})
				}
				if b := s.out[k]; b != nil {
					s.failures = append(s.failures, fmt.Sprintf("--- FAIL: package %s\n%s", e.Package, b.String()))
				}
			}
			delete(s.out, k)
		}
	}
	return sc.Err()
}

// unfinished returns the tests of pkg that have output but no result yet,
// in name order.
func (s *summary) unfinished(pkg string) []string {
	var names []string
	for k := range s.out {
		if k.pkg == pkg && k.test != "" {
			names = append(names, k.test)
		}
	}
	sort.Strings(names)
	return names
}

func (s *summary) report(w io.Writer) {
	if len(s.skips) > 0 {
		sort.Strings(s.skips)
		fmt.Fprintf(w, "\nSkipped (%d): each says what it needs\n", len(s.skips))
		for _, l := range s.skips {
			fmt.Fprintln(w, "  "+l)
		}
	}
	for _, f := range s.failures {
		fmt.Fprintln(w)
		fmt.Fprint(w, f)
	}
	fmt.Fprintf(w, "\n%d passed, %d failed, %d skipped\n", s.passed, s.failed, s.skipped)
	if s.pkgFailed && s.failed == 0 {
		fmt.Fprintln(w, "a package failed outside any test (build error, panic or TestMain): see FAIL above")
	}
}

func text(b *strings.Builder) string {
	if b == nil {
		return ""
	}
	return b.String()
}

// reason is a skipped test's message: its output less the RUN/SKIP lines.
func reason(b *strings.Builder) string {
	var keep []string
	for _, l := range strings.Split(text(b), "\n") {
		t := strings.TrimSpace(l)
		if t == "" || strings.HasPrefix(t, "=== ") || strings.HasPrefix(t, "--- SKIP") {
			continue
		}
		keep = append(keep, t)
	}
	if len(keep) == 0 {
		return "(no reason given)"
	}
	return strings.Join(keep, " ")
}
