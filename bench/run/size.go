package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// Size is one case of the size benchmark: one `sseconfd once` process.
type Size struct {
	Shape       string  `json:"shape"` // "flat", "nested", or "named" (flat, every key named: a stress case)
	Keys        int     `json:"keys"`
	Templates   int     `json:"templates"`
	JSONBytes   int     `json:"json_bytes"`
	ApplyMS     float64 `json:"apply_ms"` // render + install, as the agent logs it
	ProcessMS   float64 `json:"process_ms"`
	MaxRSSKiB   int64   `json:"max_rss_kib"`
	RSSLimitKiB int64   `json:"rss_limit_kib"` // 3 x JSON size + 30 MiB
	OutputBytes int64   `json:"output_bytes"`
}

// runSizes runs `sseconfd once` for each shape, key count and template
// count against one server, each case with its own environment.
func runSizes(t *tools, keyCounts, templateCounts []int, logf func(string, ...any)) ([]Size, error) {
	dir, err := os.MkdirTemp("", "sseconfd-bench-size-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	configs := filepath.Join(dir, "configs")
	if err := os.MkdirAll(configs, 0o755); err != nil {
		return nil, err
	}
	srv, err := startServer(t, dir, configs, 15*time.Second)
	if err != nil {
		return nil, err
	}
	defer srv.stop()

	var out []Size
	for _, shape := range []string{"flat", "nested", "named"} {
		for _, keys := range keyCounts {
			if shape == "named" && keys != keyCounts[len(keyCounts)-1] {
				continue // the stress case: the most keys, many templates
			}
			env := fmt.Sprintf("size-%s-%d", shape, keys)
			size, err := postSettings(srv.url, env, shape, keys)
			if err != nil {
				return out, err
			}
			for _, nt := range templateCounts {
				if shape == "named" && nt == 1 {
					continue
				}
				s := Size{Shape: shape, Keys: keys, Templates: nt, JSONBytes: size,
					RSSLimitKiB: int64(3*size/1024 + 30*1024)}
				if err := s.run(t, dir, srv.url, env); err != nil {
					return out, fmt.Errorf("size %s/%d keys/%d templates: %w", shape, keys, nt, err)
				}
				logf("size %-6s %6d keys %2d templates: apply %.1fms, process %.1fms, max RSS %.1f MiB",
					shape, keys, nt, s.ApplyMS, s.ProcessMS, float64(s.MaxRSSKiB)/1024)
				out = append(out, s)
			}
		}
	}
	return out, nil
}

// postSettings stores the case's settings under env and returns their
// JSON size.
func postSettings(url, env, shape string, keys int) (int, error) {
	settings := flatSettings(keys, false)
	if shape == "nested" {
		settings = nestedSettings(keys)
	}
	raw, err := json.Marshal(settings)
	if err != nil {
		return 0, err
	}
	body := append(append([]byte(`{"env":"`+env+`","settings":`), raw...), '}')
	resp, err := http.Post(url+"/config", "application/json", bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("POST %s: HTTP %d", env, resp.StatusCode)
	}
	return len(raw), nil
}

// run writes the case's templates and config, runs `sseconfd once` on
// empty destinations and records its apply time and peak RSS.
func (s *Size) run(t *tools, dir, url, env string) error {
	caseDir := filepath.Join(dir, fmt.Sprintf("%s-%d-%d", s.Shape, s.Keys, s.Templates))
	outDir := filepath.Join(caseDir, "out")
	setup := agentSetup{dir: caseDir, outDir: outDir, serverURL: url, env: env,
		templates: sizeTemplates(s.Shape, s.Keys, s.Templates)}
	config, err := setup.write()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return err
	}

	// Started through the small rusage launcher: see bench/rusage for why
	// this process cannot read the peak RSS of its own child.
	usageFile := filepath.Join(caseDir, "usage.json")
	cmd := exec.Command(t.rusage, "-out", usageFile, t.sseconfd, "once", "-config", config)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("sseconfd once: %v\n%s", err, stderr.Bytes())
	}
	var u struct {
		MaxRSSKiB int64   `json:"max_rss_kib"`
		WallMS    float64 `json:"wall_ms"`
	}
	data, err := os.ReadFile(usageFile)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(data, &u); err != nil {
		return fmt.Errorf("read %s: %w", usageFile, err)
	}
	s.ProcessMS, s.MaxRSSKiB = u.WallMS, u.MaxRSSKiB
	if s.ApplyMS, err = appliedDuration(stderr.Bytes()); err != nil {
		return err
	}
	s.OutputBytes = dirSize(outDir)
	return nil
}

// appliedDuration reads the duration of the first "update applied" log line.
func appliedDuration(log []byte) (float64, error) {
	ds := parseApplied(log)
	if len(ds) == 0 {
		return 0, fmt.Errorf("no \"update applied\" line with a duration in the log:\n%s", log)
	}
	return ms(ds[0]), nil
}

// appliedDurations reads every "update applied" duration of a log file.
func appliedDurations(path string) []time.Duration {
	data, _ := os.ReadFile(path)
	return parseApplied(data)
}

// parseApplied returns the durations of the "update applied" lines of a
// JSON log: seconds as a number (zap's default), or a Go duration string.
func parseApplied(log []byte) []time.Duration {
	var ds []time.Duration
	sc := bufio.NewScanner(bytes.NewReader(log))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var line struct {
			Msg      string          `json:"msg"`
			Duration json.RawMessage `json:"duration"`
		}
		if json.Unmarshal(sc.Bytes(), &line) != nil || line.Msg != "update applied" {
			continue
		}
		var secs float64
		var text string
		if json.Unmarshal(line.Duration, &secs) == nil {
			ds = append(ds, time.Duration(secs*float64(time.Second)))
		} else if json.Unmarshal(line.Duration, &text) == nil {
			if d, err := time.ParseDuration(text); err == nil {
				ds = append(ds, d)
			}
		}
	}
	return ds
}

func dirSize(dir string) int64 {
	var n int64
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if fi, err := e.Info(); err == nil {
			n += fi.Size()
		}
	}
	return n
}

// sizeTemplates returns nt templates. Nested: template i ranges over
// section i (one template ranges over all sections, ini style), so that
// together they cover every key once. Flat: one template ranges over the
// whole map (env file style); with several, the others name twenty keys
// each, as config files that need particular settings do (the shape of
// the latency benchmark's templates and of those in templates/). Named,
// the stress case: template i names every nt-th key one by one, so the
// fifty templates name all 100,000 keys, 3.4 MB of template source.
func sizeTemplates(shape string, keys, nt int) map[string]string {
	m := map[string]string{}
	for i := range nt {
		name := fmt.Sprintf("f%02d.conf", i)
		switch {
		case shape == "nested" && nt == 1:
			m[name] = "{{range $s, $m := .Settings}}[{{$s}}]\n{{range $k, $v := $m}}{{$k}} = {{$v}}\n{{end}}{{end}}"
		case shape == "nested":
			sec := fmt.Sprintf("sec%02d", i%sections(keys))
			m[name] = "[" + sec + "]\n{{range $k, $v := .Settings." + sec + "}}{{$k}} = {{$v}}\n{{end}}"
		case shape == "named":
			m[name] = namedKeys(i, keys, nt)
		case i == 0:
			m[name] = "{{range $k, $v := .Settings}}{{$k}} = {{$v}}\n{{end}}"
		default:
			m[name] = twentyKeys(i, keys)
		}
	}
	return m
}

// twentyKeys is a template printing twenty keys by name, spread over the
// key space from key i on.
func twentyKeys(i, keys int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "[section%d]\n", i)
	for j := range 20 {
		k := (i + j*(keys/20+1)) % keys
		fmt.Fprintf(&b, "key%06d = {{.Settings.key%06d}}\n", k, k)
	}
	return b.String()
}

// namedKeys is a template printing keys i, i+nt, i+2nt... by name.
func namedKeys(i, keys, nt int) string {
	var b strings.Builder
	for k := i; k < keys; k += nt {
		fmt.Fprintf(&b, "key%06d = {{.Settings.key%06d}}\n", k, k)
	}
	if b.Len() == 0 {
		k := i % keys
		fmt.Fprintf(&b, "key%06d = {{.Settings.key%06d}}\n", k, k)
	}
	return b.String()
}
