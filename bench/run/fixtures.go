package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// markerPlaceholder stands for the marker in a prepared POST body.
const markerPlaceholder = "mXXXXXXX"

// value returns the i-th setting value: strings, integers, floats and
// booleans in turn, as a YAML-born settings map has them.
func value(i int) any {
	switch i % 4 {
	case 0:
		return fmt.Sprintf("value-%06d-abcdefghij", i)
	case 1:
		return i * 1000
	case 2:
		return float64(i) + 0.25
	default:
		return i%8 == 3
	}
}

// flatSettings has n keys key000000... and, if marker, a "marker" key.
func flatSettings(n int, marker bool) map[string]any {
	m := make(map[string]any, n+1)
	for i := range n {
		m[fmt.Sprintf("key%06d", i)] = value(i)
	}
	if marker {
		m["marker"] = markerPlaceholder
	}
	return m
}

// sections is how many sections nested settings of n keys have.
func sections(n int) int { return min(50, n) }

// nestedSettings spreads n keys over sections sec00...; key i goes to
// section i mod sections(n).
func nestedSettings(n int) map[string]any {
	m := map[string]any{}
	for s := range sections(n) {
		m[fmt.Sprintf("sec%02d", s)] = map[string]any{}
	}
	for i := range n {
		sec := m[fmt.Sprintf("sec%02d", i%sections(n))].(map[string]any)
		sec[fmt.Sprintf("key%06d", i)] = value(i)
	}
	return m
}

// postBody prepares POST /config bodies for env; fill puts a marker in.
type postBody []byte

func newPostBody(env string, settings map[string]any) (postBody, error) {
	return json.Marshal(map[string]any{"env": env, "settings": settings})
}

func (b postBody) fill(seq int) []byte {
	return bytes.Replace(b, []byte(markerPlaceholder), []byte(markerText(seq)), 1)
}

// The latency templates: ten files over the 100-key map, only the first
// of which prints the marker, so an update changes one file, as a
// one-setting change usually does. In the "mixed" set, the default, they
// are shaped like the templates shipped in templates/: the first ranges
// over the whole map (app.env), the other nine name eleven keys each
// (app.ini, nginx.conf). In the "range" set every file ranges over the
// whole map, a thousand lines rendered per update.
const (
	markerTemplate = "# file 0 of env {{.Env}}\n{{range $k, $v := .Settings}}{{$k}} = {{$v}}\n{{end}}"
	rangeTemplate  = "# file %d of env {{.Env}}\n{{range $k, $v := .Settings}}{{if ne $k \"marker\"}}{{$k}} = {{$v}}\n{{end}}{{end}}"
)

// agentSetup describes one agent config to write.
type agentSetup struct {
	dir         string            // holds config, templates, cache
	outDir      string            // destinations
	serverURL   string            // base URL
	env         string            // environment
	templates   map[string]string // destination base name → template text, in name order
	pidFile     string            // receiver's pid file; "" for no reload
	minInterval time.Duration     // reload min_interval
}

// write writes the templates and the config file and returns its path.
func (s agentSetup) write() (string, error) {
	var b strings.Builder
	fmt.Fprintf(&b, "[source]\nurl = %q\nenv = %q\nresync_interval = \"0s\"\nmax_event_bytes = \"64MiB\"\n\n",
		s.serverURL, s.env)
	fmt.Fprintf(&b, "[cache]\npath = %q\n\n[log]\nformat = \"json\"\nlevel = \"info\"\n\n",
		filepath.Join(s.dir, "cache", s.env+".json"))
	for _, name := range sortedKeys(s.templates) {
		src := filepath.Join(s.dir, "templates", name+".tmpl")
		if err := writeFile(src, s.templates[name]); err != nil {
			return "", err
		}
		fmt.Fprintf(&b, "[[template]]\nsource = %q\ndestination = %q\nmode = \"0644\"\n", src,
			filepath.Join(s.outDir, name))
		if s.pidFile != "" {
			b.WriteString("reload = \"app\"\n")
		}
		b.WriteString("\n")
	}
	if s.pidFile != "" {
		fmt.Fprintf(&b, "[[reload]]\nname = \"app\"\nsignal = \"SIGHUP\"\npid_file = %q\n", s.pidFile)
		if s.minInterval > 0 {
			fmt.Fprintf(&b, "min_interval = %q\n", s.minInterval.String())
		}
	}
	path := filepath.Join(s.dir, "sseconfd.toml")
	return path, writeFile(path, b.String())
}

// latencyTemplates returns the ten templates of a set, "mixed" or
// "range"; t00.conf holds the marker.
func latencyTemplates(set string) map[string]string {
	m := map[string]string{"t00.conf": markerTemplate}
	for i := 1; i < 10; i++ {
		name := fmt.Sprintf("t%02d.conf", i)
		if set == "range" {
			m[name] = fmt.Sprintf(rangeTemplate, i)
			continue
		}
		var b strings.Builder
		fmt.Fprintf(&b, "; file %d of env {{.Env}}\n[section%d]\n", i, i)
		for k := (i - 1) * 11; k < i*11; k++ {
			fmt.Fprintf(&b, "key%06d = {{.Settings.key%06d}}\n", k, k)
		}
		m[name] = b.String()
	}
	return m
}

func writeFile(path, text string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, []byte(text), 0o644)
}

// writeServerConfigs writes settings as application-<env>.yml (JSON is
// YAML) into dir/configs and returns that directory.
func writeServerConfigs(dir, env string, settings map[string]any) (string, error) {
	data, err := json.Marshal(settings)
	if err != nil {
		return "", err
	}
	configs := filepath.Join(dir, "configs")
	return configs, writeFile(filepath.Join(configs, "application-"+env+".yml"), string(data))
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
