package render

import (
	"fmt"
	"path/filepath"
	"testing"
)

// BenchmarkInstall stages and commits three changed files per update, the
// full cost of an update on disk: writes, fsyncs, renames, directory fsync.
func BenchmarkInstall(b *testing.B) {
	for _, size := range []int{4 << 10, 1 << 20} {
		b.Run(fmt.Sprintf("3x%dKiB", size>>10), func(b *testing.B) {
			dir := b.TempDir()
			content := make([]byte, size)
			b.SetBytes(int64(3 * size))
			for i := 0; b.Loop(); i++ {
				content[0] = byte(i) // every update changes every file
				files := make([]File, 3)
				for n := range files {
					files[n] = File{Path: filepath.Join(dir, fmt.Sprintf("f%d.conf", n)), Content: content, UID: -1, GID: -1}
				}
				txn, err := Stage(files)
				if err != nil {
					b.Fatal(err)
				}
				if err := txn.Commit(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkStageUnchanged stages nine files that are already on disk, as
// an update that changes one file out of ten does for the other nine:
// compared by reading them back, or recognised by their stat signature.
func BenchmarkStageUnchanged(b *testing.B) {
	for _, mode := range []string{"reread", "signature"} {
		b.Run(mode, func(b *testing.B) {
			orig := racyWindow
			defer func() { racyWindow = orig }()
			racyWindow = 0
			if mode == "reread" {
				racyWindow = 1 << 62 // never trusted
			}
			dir := b.TempDir()
			files := make([]File, 9)
			for n := range files {
				content := []byte(fmt.Sprintf("; file %d\n%0900d\n", n, n))
				files[n] = File{Path: filepath.Join(dir, fmt.Sprintf("t%02d.conf", n)),
					Content: content, UID: -1, GID: -1}
			}
			for range 2 { // write, then compare once to take the signatures
				txn, err := Stage(files)
				if err != nil {
					b.Fatal(err)
				}
				if err := txn.Commit(); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportAllocs()
			for b.Loop() {
				txn, err := Stage(files)
				if err != nil || len(txn.Changed()) != 0 {
					b.Fatalf("Stage: changed %v, %v", txn.Changed(), err)
				}
			}
		})
	}
}
