package agent

import (
	"bytes"
	"fmt"
	"io"
	"math"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"
)

// metrics are the counters /metrics reports, in the Prometheus text
// format (version 0.0.4). They are guarded by the mutex of the status
// that holds them. Written here rather than with the Prometheus client
// library, whose registry and protobuf descriptors added about 3 MiB to
// the resident size of every agent (a tenth of an idle one's).
type metrics struct {
	version       string
	reconnects    uint64
	received      uint64
	rejected      map[string]uint64 // by reason
	applied       uint64
	applyRejected uint64
	lastApply     time.Time
	applyDuration histogram
	reloads       map[[2]string]uint64 // by target and result
	filesWritten  uint64
}

// rejectReasons are reported from the start, at zero.
var rejectReasons = []string{"invalid_json", "invalid_utf8", "no_settings", "wrong_type", "empty"}

func newMetrics(version string) metrics {
	m := metrics{version: version, rejected: map[string]uint64{}, reloads: map[[2]string]uint64{},
		applyDuration: newHistogram(0.001, 4, 8)}
	for _, r := range rejectReasons {
		m.rejected[r] = 0
	}
	return m
}

// histogram counts observations into buckets with upper bounds.
type histogram struct {
	bounds []float64
	counts []uint64 // per bucket, not cumulative
	sum    float64
	count  uint64
}

// newHistogram has n buckets from start, each factor times the last.
func newHistogram(start, factor float64, n int) histogram {
	h := histogram{bounds: make([]float64, n), counts: make([]uint64, n)}
	for i := range n {
		h.bounds[i] = start * math.Pow(factor, float64(i))
	}
	return h
}

func (h *histogram) observe(v float64) {
	if i, _ := slices.BinarySearch(h.bounds, v); i < len(h.bounds) {
		h.counts[i]++
	}
	h.sum += v
	h.count++
}

// write writes every metric; connected is the stream's state now.
func (m *metrics) write(w io.Writer, connected bool) {
	var b bytes.Buffer
	up := 0.0
	if connected {
		up = 1
	}
	metric(&b, "sseconfd_connected", "gauge", "1 while the event stream is connected, else 0.", up)
	metric(&b, "sseconfd_reconnects_total", "counter", "Connections made after the first.",
		float64(m.reconnects))
	metric(&b, "sseconfd_events_received_total", "counter",
		"Valid settings snapshots received that differ from the previous one (stream, resync or cache).",
		float64(m.received))
	header(&b, "sseconfd_events_rejected_total", "counter", "Stream events refused, by reason.")
	for _, reason := range sortedMapKeys(m.rejected) {
		sample(&b, "sseconfd_events_rejected_total", labels("reason", reason), float64(m.rejected[reason]))
	}
	metric(&b, "sseconfd_updates_applied_total", "counter",
		"Snapshots rendered and installed (including those that changed no file).", float64(m.applied))
	metric(&b, "sseconfd_updates_rejected_total", "counter",
		"Snapshots not applied: render, install or check failed.", float64(m.applyRejected))
	last := 0.0
	if !m.lastApply.IsZero() {
		last = float64(m.lastApply.UnixNano()) / 1e9
	}
	metric(&b, "sseconfd_last_apply_timestamp_seconds", "gauge", "Unix time of the last successful apply.", last)
	m.writeDuration(&b)
	header(&b, "sseconfd_reloads_total", "counter", "Reloads of targets, by target and result (ok, error).")
	keys := make([][2]string, 0, len(m.reloads))
	for k := range m.reloads {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b [2]string) int {
		return strings.Compare(a[0]+"\x00"+a[1], b[0]+"\x00"+b[1])
	})
	for _, k := range keys {
		sample(&b, "sseconfd_reloads_total", labels("result", k[1], "target", k[0]), float64(m.reloads[k]))
	}
	metric(&b, "sseconfd_files_written_total", "counter", "Destination files replaced.", float64(m.filesWritten))
	header(&b, "sseconfd_build_info", "gauge", "Always 1; the version is a label.")
	sample(&b, "sseconfd_build_info", labels("version", m.version), 1)
	writeProcess(&b)
	w.Write(b.Bytes())
}

func (m *metrics) writeDuration(b *bytes.Buffer) {
	const name = "sseconfd_apply_duration_seconds"
	h := &m.applyDuration
	header(b, name, "histogram", "Time to render, install, check and reload one snapshot.")
	var cum uint64
	for i, bound := range h.bounds {
		cum += h.counts[i]
		sample(b, name+"_bucket", labels("le", formatFloat(bound)), float64(cum))
	}
	sample(b, name+"_bucket", labels("le", "+Inf"), float64(h.count))
	sample(b, name+"_sum", "", h.sum)
	sample(b, name+"_count", "", float64(h.count))
}

// writeProcess writes the process metrics Prometheus clients usually
// give, from /proc/self, and the Go runtime's goroutine count and heap.
func writeProcess(b *bytes.Buffer) {
	if f, err := procStatFields("self"); err == nil {
		utime, _ := strconv.ParseFloat(f[statUtime], 64)
		stime, _ := strconv.ParseFloat(f[statStime], 64)
		metric(b, "process_cpu_seconds_total", "counter", "User and system CPU time spent, in seconds.",
			(utime+stime)/clockTicks)
		rss, _ := strconv.ParseFloat(f[statRSS], 64)
		metric(b, "process_resident_memory_bytes", "gauge", "Resident memory size in bytes.",
			rss*float64(os.Getpagesize()))
	}
	if _, start, err := procStat(os.Getpid()); err == nil {
		metric(b, "process_start_time_seconds", "gauge", "Start time of the process since the epoch, in seconds.",
			float64(start.UnixNano())/1e9)
	}
	if fds, err := os.ReadDir("/proc/self/fd"); err == nil {
		metric(b, "process_open_fds", "gauge", "Number of open file descriptors.", float64(len(fds)))
	}
	metric(b, "go_goroutines", "gauge", "Number of goroutines that currently exist.",
		float64(runtime.NumGoroutine()))
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	metric(b, "go_memstats_heap_inuse_bytes", "gauge", "Bytes in in-use heap spans.", float64(ms.HeapInuse))
	metric(b, "go_memstats_sys_bytes", "gauge", "Bytes obtained from the system.", float64(ms.Sys))
}

// metric writes one metric with a single sample and no labels.
func metric(b *bytes.Buffer, name, typ, help string, v float64) {
	header(b, name, typ, help)
	sample(b, name, "", v)
}

// header writes a family's HELP and TYPE lines; the help text escapes
// backslash and newline, as the text format asks.
func header(b *bytes.Buffer, name, typ, help string) {
	fmt.Fprintf(b, "# HELP %s %s\n# TYPE %s %s\n", name, helpEscaper.Replace(help), name, typ)
}

var helpEscaper = strings.NewReplacer(`\`, `\\`, "\n", `\n`)

func sample(b *bytes.Buffer, name, labels string, v float64) {
	fmt.Fprintf(b, "%s%s %s\n", name, labels, formatFloat(v))
}

// labels formats name="value" pairs, escaping the values as the text
// format asks (backslash, double quote, newline).
func labels(pairs ...string) string {
	var b strings.Builder
	b.WriteByte('{')
	for i := 0; i+1 < len(pairs); i += 2 {
		if i > 0 {
			b.WriteByte(',')
		}
		v := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`).Replace(pairs[i+1])
		fmt.Fprintf(&b, `%s="%s"`, pairs[i], v)
	}
	b.WriteByte('}')
	return b.String()
}

func formatFloat(v float64) string {
	switch {
	case math.IsInf(v, 1):
		return "+Inf"
	case math.IsInf(v, -1):
		return "-Inf"
	}
	return strconv.FormatFloat(v, 'g', -1, 64)
}

func sortedMapKeys(m map[string]uint64) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
