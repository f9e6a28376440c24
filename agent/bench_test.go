package agent

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"go.uber.org/zap"
)

// benchEvent returns the data of a stream event holding n settings.
func benchEvent(b *testing.B, n int) []byte {
	b.Helper()
	settings := make(map[string]any, n)
	for i := range n {
		k := fmt.Sprintf("key%06d", i)
		switch i % 4 {
		case 0:
			settings[k] = fmt.Sprintf("value-%06d-abcdefghij", i)
		case 1:
			settings[k] = i * 1000
		case 2:
			settings[k] = float64(i) + 0.25
		default:
			settings[k] = i%8 == 3
		}
	}
	data, err := json.Marshal(map[string]any{"settings": settings})
	if err != nil {
		b.Fatal(err)
	}
	return data
}

func benchmarkDecodeEvent(b *testing.B, n int) {
	data := benchEvent(b, n)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		snap, err := DecodeEvent(data)
		if err != nil {
			b.Fatal(err)
		}
		if len(snap.Settings) != n {
			b.Fatalf("DecodeEvent: %d settings, want %d", len(snap.Settings), n)
		}
	}
}

// BenchmarkDecodeEvent100 decodes and hashes an event of 100 settings.
func BenchmarkDecodeEvent100(b *testing.B) { benchmarkDecodeEvent(b, 100) }

// BenchmarkDecodeEvent10000 decodes and hashes an event of 10,000 settings.
func BenchmarkDecodeEvent10000(b *testing.B) { benchmarkDecodeEvent(b, 10000) }

// BenchmarkRenderAll renders the ten templates of the latency benchmark
// (each ranging over a 100-key map) as one update does.
func BenchmarkRenderAll(b *testing.B) {
	dir := b.TempDir()
	var cfg strings.Builder
	fmt.Fprintf(&cfg, "[source]\nurl = \"http://127.0.0.1:1\"\nenv = \"bench\"\n")
	for i := range 10 {
		src := writeFile(b, dir, fmt.Sprintf("t%d.tmpl", i),
			"{{range $k, $v := .Settings}}{{$k}} = {{$v}}\n{{end}}")
		fmt.Fprintf(&cfg, "[[template]]\nsource = %q\ndestination = %q\n", src,
			filepath.Join(dir, fmt.Sprintf("t%d.conf", i)))
	}
	a, err := New(loadConfig(b, dir, cfg.String()), zap.NewNop(), Options{})
	if err != nil {
		b.Fatal(err)
	}
	snap, err := DecodeEvent(benchEvent(b, 100))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		files, _, _, err := a.renderAll(snap)
		if err != nil || len(files) != 10 {
			b.Fatalf("renderAll: %d files, %v", len(files), err)
		}
	}
}
