package agent

import (
	"fmt"
	"io"
	"strings"
)

// diffContext is how many unchanged lines surround each change, as in
// "diff -u".
const diffContext = 3

// maxDiffCells bounds the work of the line matching: past it (two files
// of some thousands of changed lines each) the diff shows the whole old
// file removed and the whole new one added, which is still a valid diff.
const maxDiffCells = 4 << 20

// edit is one line of a diff: ' ' kept, '-' removed, '+' added. a and b
// count the lines of the old and new text before it.
type edit struct {
	kind byte
	text string // with its "\n", if it has one
	a, b int
}

// writeUnifiedDiff writes the unified diff from old to new, headed by the
// two names; nothing when they are equal.
func writeUnifiedDiff(w io.Writer, oldName, newName string, old, new []byte) error {
	edits := diffLines(splitLines(string(old)), splitLines(string(new)))
	if !hasChange(edits) {
		return nil
	}
	var b strings.Builder
	fmt.Fprintf(&b, "--- %s\n+++ %s\n", oldName, newName)
	for _, h := range hunks(edits) {
		writeHunk(&b, h)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func splitLines(s string) []string {
	lines := strings.SplitAfter(s, "\n")
	if lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1]
	}
	return lines
}

func hasChange(edits []edit) bool {
	for _, e := range edits {
		if e.kind != ' ' {
			return true
		}
	}
	return false
}

// diffLines matches a and b by their longest common subsequence, after
// setting aside the common head and tail.
func diffLines(a, b []string) []edit {
	head := 0
	for head < len(a) && head < len(b) && a[head] == b[head] {
		head++
	}
	tail := 0
	for tail < len(a)-head && tail < len(b)-head && a[len(a)-1-tail] == b[len(b)-1-tail] {
		tail++
	}
	var out []edit
	for i := 0; i < head; i++ {
		out = append(out, edit{' ', a[i], i, i})
	}
	out = append(out, diffMiddle(a[head:len(a)-tail], b[head:len(b)-tail], head)...)
	for i := 0; i < tail; i++ {
		ai, bi := len(a)-tail+i, len(b)-tail+i
		out = append(out, edit{' ', a[ai], ai, bi})
	}
	return out
}

// diffMiddle diffs the differing middle parts; off is the common head's
// length, added to every line count.
func diffMiddle(a, b []string, off int) []edit {
	n, m := len(a), len(b)
	var out []edit
	if n*m > maxDiffCells {
		for i := range a {
			out = append(out, edit{'-', a[i], off + i, off})
		}
		for j := range b {
			out = append(out, edit{'+', b[j], off + n, off + j})
		}
		return out
	}
	// lcs[i][j] is the length of the longest common subsequence of a[i:] and b[j:].
	lcs := make([][]int32, n+1)
	for i := range lcs {
		lcs[i] = make([]int32, m+1)
	}
	for i := n - 1; i >= 0; i-- {
		for j := m - 1; j >= 0; j-- {
			if a[i] == b[j] {
				lcs[i][j] = lcs[i+1][j+1] + 1
			} else {
				lcs[i][j] = max(lcs[i+1][j], lcs[i][j+1])
			}
		}
	}
	i, j := 0, 0
	for i < n || j < m {
		switch {
		case i < n && j < m && a[i] == b[j]:
			out = append(out, edit{' ', a[i], off + i, off + j})
			i, j = i+1, j+1
		case i < n && (j == m || lcs[i+1][j] >= lcs[i][j+1]):
			out = append(out, edit{'-', a[i], off + i, off + j})
			i++
		default:
			out = append(out, edit{'+', b[j], off + i, off + j})
			j++
		}
	}
	return out
}

// hunks groups the changes with their context; changes closer than twice
// the context share a hunk.
func hunks(edits []edit) [][]edit {
	var out [][]edit
	i := 0
	for {
		for i < len(edits) && edits[i].kind == ' ' {
			i++
		}
		if i == len(edits) {
			return out
		}
		// Changes more than 2*diffContext apart start a new hunk, so this
		// context never reaches back into the previous hunk.
		start := max(i-diffContext, 0)
		last := i
		for j := i; j < len(edits); j++ {
			if edits[j].kind != ' ' {
				last = j
			} else if j-last > 2*diffContext {
				break
			}
		}
		stop := min(last+diffContext+1, len(edits))
		out = append(out, edits[start:stop])
		i = stop
	}
}

func writeHunk(b *strings.Builder, h []edit) {
	aCount, bCount := 0, 0
	for _, e := range h {
		if e.kind != '+' {
			aCount++
		}
		if e.kind != '-' {
			bCount++
		}
	}
	fmt.Fprintf(b, "@@ -%s +%s @@\n", hunkRange(h[0].a, aCount), hunkRange(h[0].b, bCount))
	for _, e := range h {
		b.WriteByte(e.kind)
		b.WriteString(e.text)
		if !strings.HasSuffix(e.text, "\n") {
			b.WriteString("\n\\ No newline at end of file\n")
		}
	}
}

// hunkRange writes "start,count" as diff -u does: an empty range starts at
// the line before it.
func hunkRange(before, count int) string {
	if count == 0 {
		return fmt.Sprintf("%d,0", before)
	}
	if count == 1 {
		return fmt.Sprintf("%d", before+1)
	}
	return fmt.Sprintf("%d,%d", before+1, count)
}
