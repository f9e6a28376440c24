package main

import (
	"slices"
	"testing"
	"time"
)

func TestParseGoBench(t *testing.T) {
	out := []byte(`goos: linux
pkg: github.com/sseconfd/sseconfd/render
BenchmarkRender100-2   	    4342	    175143 ns/op	  12.81 MB/s	   16800 B/op	     240 allocs/op
BenchmarkInstall/3x4KiB-2   	  100	  1000 ns/op
PASS
`)
	got := parseGoBench(out)
	want := []GoBench{
		{Package: "github.com/sseconfd/sseconfd/render", Name: "BenchmarkRender100", N: 4342,
			NsPerOp: 175143, BytesPerOp: 16800, AllocsPerOp: 240},
		{Package: "github.com/sseconfd/sseconfd/render", Name: "BenchmarkInstall/3x4KiB", N: 100, NsPerOp: 1000},
	}
	if len(got) != len(want) {
		t.Fatalf("parseGoBench: %d results %+v, want %d", len(got), got, len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("parseGoBench result %d = %+v, want %+v", i, got[i], want[i])
		}
	}
}

func TestSummarize(t *testing.T) {
	var ds []time.Duration
	for i := 1; i <= 100; i++ {
		ds = append(ds, time.Duration(i)*time.Millisecond)
	}
	got := summarize(ds)
	want := Stats{N: 100, P50: 50, P90: 90, P99: 99, Max: 100}
	if got != want {
		t.Errorf("summarize(1..100ms) = %+v, want %+v", got, want)
	}
}

func TestProgressCountsOvertakenUpdates(t *testing.T) {
	p := newProgress(5)
	p.advance(0, 10)
	p.advance(3, 30) // 1 and 2 were overtaken by 3
	p.advance(2, 40) // older than what is on disk: ignored
	at, skipped := p.times()
	if want := []int64{10, 30, 30, 30, 0, 0}; !slices.Equal(at, want) || skipped != 2 {
		t.Errorf("times() = %v, %d; want %v, 2", at, skipped, want)
	}
	if !p.wait(3, time.Millisecond) || p.wait(4, time.Millisecond) {
		t.Errorf("wait: want 3 seen and 4 not")
	}
}
