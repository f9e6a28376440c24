package render

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// benchSettings is a flat map of n keys with strings, integers, floats
// and booleans in turn, as a YAML-born settings map has them.
func benchSettings(n int) map[string]any {
	m := make(map[string]any, n)
	for i := range n {
		k := fmt.Sprintf("key%06d", i)
		switch i % 4 {
		case 0:
			m[k] = fmt.Sprintf("value-%06d-abcdefghij", i)
		case 1:
			m[k] = int64(i * 1000)
		case 2:
			m[k] = Float(float64(i) + 0.25)
		default:
			m[k] = i%8 == 3
		}
	}
	return m
}

// rangeTemplate prints every setting as "key = value", env-file style.
const rangeTemplate = "# env {{.Env}}\n{{range $k, $v := .Settings}}{{$k}} = {{$v}}\n{{end}}"

func benchmarkRender(b *testing.B, keys int) {
	tmpl, err := Parse("bench.tmpl", rangeTemplate)
	if err != nil {
		b.Fatal(err)
	}
	data := Data{Settings: benchSettings(keys), Env: "bench"}
	out, err := tmpl.Render(data)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(out)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := tmpl.Render(data); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRender100 renders a template that ranges over 100 settings.
func BenchmarkRender100(b *testing.B) { benchmarkRender(b, 100) }

// BenchmarkRender10000 renders a template that ranges over 10,000 settings.
func BenchmarkRender10000(b *testing.B) { benchmarkRender(b, 10000) }

// benchFile renders the 100-key template into a File under dir.
func benchFile(b *testing.B, dir string, marker int) File {
	b.Helper()
	settings := benchSettings(100)
	settings["marker"] = fmt.Sprintf("m%07d", marker)
	tmpl, err := Parse("bench.tmpl", rangeTemplate)
	if err != nil {
		b.Fatal(err)
	}
	content, err := tmpl.Render(Data{Settings: settings, Env: "bench"})
	if err != nil {
		b.Fatal(err)
	}
	return File{Path: filepath.Join(dir, "app.conf"), Content: content, Mode: 0o644, UID: -1, GID: -1}
}

func stageCommit(b *testing.B, files ...File) {
	txn, err := Stage(files)
	if err != nil {
		b.Fatal(err)
	}
	if err := txn.Commit(); err != nil {
		b.Fatal(err)
	}
	txn.Abort()
}

// BenchmarkStageCommitUnchanged is the compare-and-install of a file whose
// content is already on disk: read and compare, nothing written.
func BenchmarkStageCommitUnchanged(b *testing.B) {
	f := benchFile(b, b.TempDir(), 0)
	stageCommit(b, f)
	b.ReportAllocs()
	for b.Loop() {
		stageCommit(b, f)
	}
}

// BenchmarkStageCommitChanged installs new content each time: temporary
// file, write, fsync, rename, directory fsync. It measures the disk.
func BenchmarkStageCommitChanged(b *testing.B) {
	dir := b.TempDir()
	files := [2]File{benchFile(b, dir, 1), benchFile(b, dir, 2)}
	stageCommit(b, files[0])
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		stageCommit(b, files[i%2])
	}
	if _, err := os.Stat(files[0].Path); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkStageCommit50Changed installs fifty changed files in one
// update, as a first apply of fifty templates does.
func BenchmarkStageCommit50Changed(b *testing.B) {
	dir := b.TempDir()
	files := make([]File, 50)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		for n := range files {
			content := fmt.Appendf(nil, "file %d update %d\n", n, i)
			files[n] = File{Path: filepath.Join(dir, fmt.Sprintf("f%02d.conf", n)),
				Content: content, Mode: 0o644, UID: -1, GID: -1}
		}
		txn, err := Stage(files)
		if err != nil {
			b.Fatal(err)
		}
		if err := txn.Commit(); err != nil {
			b.Fatal(err)
		}
		txn.Abort()
	}
}

// BenchmarkStageCommit10OneChanged is the install of the latency
// benchmark's update: ten destinations compared, one replaced.
func BenchmarkStageCommit10OneChanged(b *testing.B) {
	dir := b.TempDir()
	files := make([]File, 10)
	for n := range files {
		content := fmt.Appendf(nil, "file %d\n%s", n, make([]byte, 2048))
		files[n] = File{Path: filepath.Join(dir, fmt.Sprintf("f%02d.conf", n)), Content: content,
			Mode: 0o644, UID: -1, GID: -1}
	}
	stageCommit(b, files...)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		files[0].Content = fmt.Appendf(nil, "file 0 update %d\n", i)
		stageCommit(b, files...)
	}
}
