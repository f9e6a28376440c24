package main

import (
	"math"
	"sort"
	"time"
)

// Stats summarises latencies in milliseconds.
type Stats struct {
	N   int     `json:"n"`
	P50 float64 `json:"p50_ms"`
	P90 float64 `json:"p90_ms"`
	P99 float64 `json:"p99_ms"`
	Max float64 `json:"max_ms"`
}

// summarize computes nearest-rank percentiles of ds.
func summarize(ds []time.Duration) Stats {
	if len(ds) == 0 {
		return Stats{}
	}
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	pct := func(p float64) float64 {
		i := int(math.Ceil(p*float64(len(s)))) - 1
		return ms(s[max(i, 0)])
	}
	return Stats{N: len(s), P50: pct(0.50), P90: pct(0.90), P99: pct(0.99), Max: ms(s[len(s)-1])}
}

func ms(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e6 }

// median returns the median of xs (the mean of the middle two if even).
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// medianStats takes the median of each statistic over rounds.
func medianStats(rounds []Stats) Stats {
	pick := func(f func(Stats) float64) float64 {
		xs := make([]float64, len(rounds))
		for i, r := range rounds {
			xs[i] = f(r)
		}
		return median(xs)
	}
	return Stats{
		N:   int(pick(func(s Stats) float64 { return float64(s.N) })),
		P50: pick(func(s Stats) float64 { return s.P50 }),
		P90: pick(func(s Stats) float64 { return s.P90 }),
		P99: pick(func(s Stats) float64 { return s.P99 }),
		Max: pick(func(s Stats) float64 { return s.Max }),
	}
}
