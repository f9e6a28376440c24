package agent

import (
	"bytes"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// /metrics must parse as the Prometheus text format: HELP and TYPE before
// each family's samples, label values escaped, values that parse as
// floats, histogram buckets cumulative up to +Inf = _count.
func TestMetricsTextFormat(t *testing.T) {
	s := newStatus("v1 \"quoted\"\\ \nline")
	s.streamEvent(StreamEvent{Connected: true})
	s.streamEvent(StreamEvent{Connected: true, Rejected: "invalid_json"})
	for _, d := range []time.Duration{500 * time.Microsecond, 3 * time.Millisecond, 2 * time.Second, time.Hour} {
		s.applyDone("abc", Result{Duration: d, Changed: []string{"/x"}}, nil)
	}
	s.reloadDone(`we"ird`, nil)
	var b strings.Builder
	s.m.write(&b, true)
	text := b.String()

	sampleRE := regexp.MustCompile(`^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[a-zA-Z_][a-zA-Z0-9_]*="(?:\\.|[^"\\])*"` +
		`(?:,[a-zA-Z_][a-zA-Z0-9_]*="(?:\\.|[^"\\])*")*\})? (\S+)$`)
	typed := map[string]string{}
	samples := map[string]float64{}
	for _, line := range strings.Split(strings.TrimSuffix(text, "\n"), "\n") {
		if f, ok := strings.CutPrefix(line, "# TYPE "); ok {
			name, typ, _ := strings.Cut(f, " ")
			typed[name] = typ
			continue
		}
		if strings.HasPrefix(line, "# HELP ") {
			continue
		}
		m := sampleRE.FindStringSubmatch(line)
		if m == nil {
			t.Fatalf("line %q is not a sample", line)
		}
		family := m[1]
		for _, suffix := range []string{"_bucket", "_sum", "_count"} {
			if base, ok := strings.CutSuffix(family, suffix); ok && typed[base] == "histogram" {
				family = base
			}
		}
		if typed[family] == "" {
			t.Errorf("sample %q before its TYPE", line)
		}
		v, err := strconv.ParseFloat(strings.Replace(m[3], "+Inf", "Inf", 1), 64)
		if err != nil {
			t.Errorf("sample %q: value: %v", line, err)
		}
		samples[m[1]+m[2]] = v
	}

	want := map[string]float64{
		"sseconfd_connected": 1, "sseconfd_updates_applied_total": 4, "sseconfd_files_written_total": 4,
		`sseconfd_events_rejected_total{reason="invalid_json"}`: 1,
		`sseconfd_events_rejected_total{reason="empty"}`:        0,
		`sseconfd_reloads_total{result="ok",target="we\"ird"}`:  1,
		`sseconfd_build_info{version="v1 \"quoted\"\\ \nline"}`: 1,
		`sseconfd_apply_duration_seconds_bucket{le="0.001"}`:    1,
		`sseconfd_apply_duration_seconds_bucket{le="0.004"}`:    2,
		`sseconfd_apply_duration_seconds_bucket{le="4.096"}`:    3,
		`sseconfd_apply_duration_seconds_bucket{le="+Inf"}`:     4,
		"sseconfd_apply_duration_seconds_count":                 4,
	}
	for k, v := range want {
		if got, ok := samples[k]; !ok || got != v {
			t.Errorf("%s = %v (present %v), want %v", k, got, ok, v)
		}
	}
	for _, name := range []string{"process_resident_memory_bytes", "process_start_time_seconds",
		"process_open_fds", "go_goroutines"} {
		if samples[name] <= 0 {
			t.Errorf("%s = %v, want > 0", name, samples[name])
		}
	}
	if _, ok := samples["process_cpu_seconds_total"]; !ok {
		t.Error("process_cpu_seconds_total absent")
	}
	if start := samples["process_start_time_seconds"]; time.Since(time.Unix(int64(start), 0)) > time.Hour {
		t.Errorf("process_start_time_seconds = %v, not about now", start)
	}
	checkFamilies(t, text)
}

// checkFamilies checks the rules of the text format that a line alone
// does not show: each family has one HELP and one TYPE, both before its
// samples, and its samples are not interleaved with another family's.
func checkFamilies(t *testing.T, text string) {
	t.Helper()
	seen := map[string]bool{}
	current := ""
	for _, line := range strings.Split(strings.TrimSuffix(text, "\n"), "\n") {
		if f, ok := strings.CutPrefix(line, "# HELP "); ok {
			name, _, _ := strings.Cut(f, " ")
			if seen[name] {
				t.Errorf("family %s appears twice", name)
			}
			seen[name], current = true, name
			continue
		}
		if f, ok := strings.CutPrefix(line, "# TYPE "); ok {
			if name, _, _ := strings.Cut(f, " "); name != current {
				t.Errorf("TYPE of %s not right after its HELP", name)
			}
			continue
		}
		name := strings.TrimRight(strings.SplitN(line, "{", 2)[0], " 0123456789.e+-InfNa")
		if name != current && name != current+"_bucket" && name != current+"_sum" && name != current+"_count" {
			t.Errorf("sample %q is not in the family %s above it", line, current)
		}
	}
}

// HELP text escapes backslash and newline, as the text format asks; any
// other character, a double quote included, is written as it is.
func TestMetricsHelpEscaped(t *testing.T) {
	var b bytes.Buffer
	header(&b, "x", "gauge", "a \\ b\nc \"d\"")
	want := "# HELP x a \\\\ b\\nc \"d\"\n# TYPE x gauge\n"
	if b.String() != want {
		t.Errorf("header = %q, want %q", b.String(), want)
	}
}
