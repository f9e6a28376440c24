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
