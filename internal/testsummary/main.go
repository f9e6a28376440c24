// Command testsummary reads "go test -json" on stdin and prints what a
// person needs from a whole run: one line per package, every skipped test
// with its reason (so "nginx not installed" is never silent), the full
// output of every failed test, and a closing count. It exits 1 if anything
// failed. "make test" pipes the tests through it.
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"strings"
)

// event is one line of "go test -json" (see "go doc test2json").
type event struct {
	Action     string
	ImportPath string // of build-output and build-fail
	Package    string
	Test       string
	Output     string
	Elapsed    float64
}

type summary struct {
	output                  map[string][]string // package/test → its output lines
	passed, failed, skipped int
	skips, failures         []string
	badPackages             []string
}

func main() {
	s := &summary{output: map[string][]string{}}
	sc := bufio.NewScanner(os.Stdin)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for sc.Scan() {
		var e event
		if json.Unmarshal(sc.Bytes(), &e) != nil {
			fmt.Println(sc.Text()) // build errors come as plain text
			continue
		}
		s.add(e)
	}
	s.print()
	if s.failed > 0 || len(s.badPackages) > 0 {
		os.Exit(1)
	}
}

func (s *summary) add(e event) {
	key := e.Package + " " + e.Test
	switch e.Action {
	case "build-output":
		fmt.Print(e.Output)
	case "build-fail":
		s.badPackages = append(s.badPackages, e.ImportPath)
	case "output":
		s.output[key] = append(s.output[key], e.Output)
	case "pass", "fail", "skip":
		if e.Test == "" {
			s.packageDone(e)
			return
		}
		s.testDone(e, key)
	}
}

func (s *summary) packageDone(e event) {
	switch e.Action {
	case "pass":
		fmt.Printf("ok  \t%s\t%.3fs\n", e.Package, e.Elapsed)
	case "fail":
		fmt.Printf("FAIL\t%s\t%.3fs\n", e.Package, e.Elapsed)
		s.badPackages = append(s.badPackages, e.Package)
		for _, line := range s.output[e.Package+" "] {
			fmt.Print("    ", line) // a panic or build failure outside any test
		}
	case "skip":
		fmt.Printf("?   \t%s\t[no test files]\n", e.Package)
	}
}

func (s *summary) testDone(e event, key string) {
	switch e.Action {
	case "pass":
		s.passed++
	case "skip":
		s.skipped++
		s.skips = append(s.skips, fmt.Sprintf("SKIP %s %s: %s", e.Package, e.Test, skipReason(s.output[key])))
	case "fail":
		s.failed++
		s.failures = append(s.failures, fmt.Sprintf("--- FAIL %s %s\n%s", e.Package, e.Test,
			strings.Join(s.output[key], "")))
	}
	delete(s.output, key)
}

// skipReason is the message given to t.Skip: the indented lines of the
// test's output other than the RUN and SKIP headers.
func skipReason(lines []string) string {
	var parts []string
	for _, l := range lines {
		t := strings.TrimSpace(l)
		if t == "" || strings.HasPrefix(t, "=== ") || strings.HasPrefix(t, "--- SKIP") {
			continue
		}
		parts = append(parts, t)
	}
	if len(parts) == 0 {
		return "(no reason given)"
	}
	return strings.Join(parts, " ")
}

func (s *summary) print() {
	sort.Strings(s.skips)
	if len(s.skips) > 0 {
		fmt.Printf("\n%d tests skipped:\n", len(s.skips))
		for _, l := range s.skips {
			fmt.Println("  " + l)
		}
	}
	for _, f := range s.failures {
		fmt.Println()
		fmt.Print(f)
	}
	fmt.Printf("\n%d passed, %d failed, %d skipped\n", s.passed, s.failed, s.skipped)
}
