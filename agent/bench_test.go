package agent

import (
	"encoding/json"
	"fmt"
	"testing"
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
