package agent

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestWriteUnifiedDiff(t *testing.T) {
	tests := []struct {
		name, old, new, want string
	}{
		{"equal", "a\nb\n", "a\nb\n", ""},
		{"new file", "", "a\nb\n", "--- old\n+++ new\n@@ -0,0 +1,2 @@\n+a\n+b\n"},
		{"one line changed", "1\n2\n3\n4\n5\n6\n7\n8\n9\n", "1\n2\n3\n4\nfive\n6\n7\n8\n9\n",
			"--- old\n+++ new\n@@ -2,7 +2,7 @@\n 2\n 3\n 4\n-5\n+five\n 6\n 7\n 8\n"},
		{"no newline at end", "a\n", "a\nb",
			"--- old\n+++ new\n@@ -1 +1,2 @@\n a\n+b\n\\ No newline at end of file\n"},
		{"two hunks", "1\n2\n3\n4\n5\n6\n7\n8\n9\n10\n11\n12\n", "x\n2\n3\n4\n5\n6\n7\n8\n9\n10\n11\ny\n",
			"--- old\n+++ new\n@@ -1,4 +1,4 @@\n-1\n+x\n 2\n 3\n 4\n@@ -9,4 +9,4 @@\n 9\n 10\n 11\n-12\n+y\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var b bytes.Buffer
			if err := writeUnifiedDiff(&b, "old", "new", []byte(tc.old), []byte(tc.new)); err != nil {
				t.Fatal(err)
			}
			if b.String() != tc.want {
				t.Errorf("diff %q -> %q:\n%s\nwant:\n%s", tc.old, tc.new, b.String(), tc.want)
			}
		})
	}
}

// TestWriteUnifiedDiffApplies checks random edits with patch(1): the diff
// applied to the old text must give the new one.
func TestWriteUnifiedDiffApplies(t *testing.T) {
	if _, err := exec.LookPath("patch"); err != nil {
		t.Skip("patch(1) not installed; skipping the random diff check")
	}
	dir := t.TempDir()
	rng := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 50; i++ {
		old := randomText(rng)
		new := mutate(rng, old)
		var d bytes.Buffer
		if err := writeUnifiedDiff(&d, "f", "f", []byte(old), []byte(new)); err != nil {
			t.Fatal(err)
		}
		f := filepath.Join(dir, "f")
		if err := os.WriteFile(f, []byte(old), 0o644); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command("patch", "-s", "--no-backup-if-mismatch", f)
		cmd.Stdin = &d
		if out, err := cmd.CombinedOutput(); err != nil && d.Len() > 0 {
			t.Fatalf("case %d: patch: %v\n%s\ndiff:\n%s", i, err, out, d.String())
		}
		got, _ := os.ReadFile(f)
		if string(got) != new {
			t.Fatalf("case %d: patched %q, want %q\ndiff:\n%s", i, got, new, d.String())
		}
	}
}

func randomText(rng *rand.Rand) string {
	var lines []string
	for range rng.IntN(30) {
		lines = append(lines, fmt.Sprintf("line %d", rng.IntN(8)))
	}
	return strings.Join(lines, "\n") + "\n"
}

func mutate(rng *rand.Rand, s string) string {
	lines := strings.Split(strings.TrimSuffix(s, "\n"), "\n")
	for range rng.IntN(5) + 1 {
		k := rng.IntN(len(lines) + 1)
		switch rng.IntN(3) {
		case 0:
			lines = append(lines[:k], append([]string{"new"}, lines[k:]...)...)
		case 1:
			if k < len(lines) {
				lines = append(lines[:k], lines[k+1:]...)
			}
		default:
			if k < len(lines) {
				lines[k] = "changed"
			}
		}
	}
	return strings.Join(lines, "\n") + "\n"
}
