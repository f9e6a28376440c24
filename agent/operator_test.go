package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/sseconfd/sseconfd/configserver"
)

// freeAddr returns a loopback address that was free a moment ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// restartableServer serves cs on one loopback address that can be
// stopped and started again.
type restartableServer struct {
	cs   *configserver.Server
	addr string
	srv  *httptest.Server
}

func (r *restartableServer) start(t *testing.T) {
	t.Helper()
	ln, err := net.Listen("tcp", r.addr)
	if err != nil {
		t.Fatalf("listen again on %s: %v", r.addr, err)
	}
	r.srv = httptest.NewUnstartedServer(r.cs)
	r.srv.Listener.Close()
	r.srv.Listener = ln
	r.srv.Start()
}

func (r *restartableServer) stop() {
	r.srv.CloseClientConnections()
	r.srv.Close()
}

// getStatus fetches path from the status endpoint.
func getStatus(addr, path string) (int, string, error) {
	resp, err := http.Get("http://" + addr + path)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

func healthIs(addr string, code int) func() string {
	return func() string {
		got, body, err := getStatus(addr, "/healthz")
		if err != nil || got != code {
			return fmt.Sprintf("/healthz = %d %s (%v), want %d", got, body, err, code)
		}
		return ""
	}
}

// TestHealthzFollowsTheServer stops the config server until /healthz
// turns 503 with its reason, then starts it again until it is 200.
func TestHealthzFollowsTheServer(t *testing.T) {
	dir := t.TempDir()
	cs := configserver.New()
	cs.KeepAlive = 50 * time.Millisecond
	post(t, cs, "dev", map[string]any{"port": 1})
	rs := &restartableServer{cs: cs, addr: freeAddr(t)}
	rs.start(t)
	t.Cleanup(rs.stop)
	statusAddr := freeAddr(t)
	tmpl := writeFile(t, dir, "a.tmpl", "port={{ .Settings.port }}\n")
	cfg := loadConfig(t, dir, fmt.Sprintf(`
[source]
url = "http://%s"
env = "dev"
[backoff]
min = "20ms"
max = "100ms"
[status]
listen = %q
grace = "300ms"
[[template]]
source = %q
destination = %q
`, rs.addr, statusAddr, tmpl, filepath.Join(dir, "a.conf")))
	a, err := New(cfg, zap.NewNop(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	runAgent(t, a)
	eventually(t, 10*time.Second, fileHas(filepath.Join(dir, "a.conf"), "port=1"))
	eventually(t, 10*time.Second, healthIs(statusAddr, http.StatusOK))

	rs.stop()
	eventually(t, 10*time.Second, healthIs(statusAddr, http.StatusServiceUnavailable))
	_, body, _ := getStatus(statusAddr, "/healthz")
	var report map[string]any
	if err := json.Unmarshal([]byte(body), &report); err != nil {
		t.Fatalf("/healthz body is not JSON: %v\n%s", err, body)
	}
	for _, key := range []string{"reason", "since", "last_error", "last_apply"} {
		if report[key] == nil {
			t.Errorf("/healthz 503 body lacks %q:\n%s", key, body)
		}
	}
	if !strings.Contains(fmt.Sprint(report["reason"]), "not connected") {
		t.Errorf("/healthz reason = %q, want it to say not connected", report["reason"])
	}

	rs.start(t)
	eventually(t, 10*time.Second, healthIs(statusAddr, http.StatusOK))
}

// metricValue finds the value of one sample line of /metrics.
func metricValue(text, sample string) string {
	for _, line := range strings.Split(text, "\n") {
		if v, ok := strings.CutPrefix(line, sample+" "); ok {
			return v
		}
	}
	return "absent"
}

// TestMetricsMoveAfterAnUpdate checks the counters of /metrics before and
// after one update that rewrites a file and reloads its target.
func TestMetricsMoveAfterAnUpdate(t *testing.T) {
	dir := t.TempDir()
	cs, url := startServer(t, "dev", map[string]any{"port": 1})
	statusAddr := freeAddr(t)
	tmpl := writeFile(t, dir, "a.tmpl", "port={{ .Settings.port }}\n")
	dest := filepath.Join(dir, "a.conf")
	cfg := loadConfig(t, dir, fmt.Sprintf(`
[source]
url = %q
env = "dev"
[status]
listen = %q
[[template]]
source = %q
destination = %q
reload = "app"
[[reload]]
name = "app"
command = "true"
`, url, statusAddr, tmpl, dest))
	a, err := New(cfg, zap.NewNop(), Options{Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	runAgent(t, a)
	eventually(t, 10*time.Second, fileHas(dest, "port=1"))

	want := func(sample, value string) func() string {
		return func() string {
			_, text, err := getStatus(statusAddr, "/metrics")
			if got := metricValue(text, sample); err != nil || got != value {
				return fmt.Sprintf("%s = %s (%v), want %s", sample, got, err, value)
			}
			return ""
		}
	}
	eventually(t, 10*time.Second, want("sseconfd_updates_applied_total", "1"))
	for sample, value := range map[string]string{
		"sseconfd_connected":                                    "1",
		"sseconfd_events_received_total":                        "1",
		"sseconfd_files_written_total":                          "1",
		`sseconfd_reloads_total{result="ok",target="app"}`:      "1",
		"sseconfd_apply_duration_seconds_count":                 "1",
		`sseconfd_events_rejected_total{reason="invalid_json"}`: "0",
		`sseconfd_build_info{version="test"}`:                   "1",
	} {
		eventually(t, time.Second, want(sample, value))
	}

	post(t, cs, "dev", map[string]any{"port": 2})
	eventually(t, 10*time.Second, want("sseconfd_updates_applied_total", "2"))
	for sample, value := range map[string]string{
		"sseconfd_events_received_total":                   "2",
		"sseconfd_files_written_total":                     "2",
		`sseconfd_reloads_total{result="ok",target="app"}`: "2",
		"sseconfd_apply_duration_seconds_count":            "2",
		"sseconfd_updates_rejected_total":                  "0",
	} {
		eventually(t, time.Second, want(sample, value))
	}
	_, text, _ := getStatus(statusAddr, "/metrics")
	if v := metricValue(text, "sseconfd_last_apply_timestamp_seconds"); v == "absent" || v == "0" {
		t.Errorf("sseconfd_last_apply_timestamp_seconds = %s, want a time", v)
	}
}

// TestMetricsCountRejectedEvents serves a stream with one event that is
// not JSON, then a good one.
func TestMetricsCountRejectedEvents(t *testing.T) {
	stop := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, "data: {not json\n\ndata: {\"settings\":{\"port\":8080}}\n\n")
		w.(http.Flusher).Flush()
		select {
		case <-stop:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(func() { close(stop); srv.Close() })
	dir := t.TempDir()
	tmpl := writeFile(t, dir, "a.tmpl", "port={{ .Settings.port }}\n")
	cfg := loadConfig(t, dir, fmt.Sprintf("[source]\nurl = %q\nenv = \"dev\"\n[[template]]\n"+
		"source = %q\ndestination = %q\n",
		srv.URL, tmpl, filepath.Join(dir, "a.conf")))
	a, err := New(cfg, zap.NewNop(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	runAgent(t, a)
	eventually(t, 10*time.Second, fileHas(filepath.Join(dir, "a.conf"), "port=8080"))
	text := promText(t, a)
	if v := metricValue(text, `sseconfd_events_rejected_total{reason="invalid_json"}`); v != "1" {
		t.Errorf("invalid_json rejections = %s, want 1", v)
	}
}

// promText renders a's metrics through its handler.
func promText(t *testing.T, a *Agent) string {
	t.Helper()
	rec := httptest.NewRecorder()
	a.status.handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	return rec.Body.String()
}

// TestTemplateEditedByRename saves a template as editors do (write a
// temporary file, rename it over the template): the destination follows
// with the last settings; a broken template is logged and the file kept.
// The template directory is also the destination directory, so the
// agent's own temporary files land beside the template.
func TestTemplateEditedByRename(t *testing.T) {
	dir := t.TempDir()
	_, url := startServer(t, "dev", map[string]any{"port": 8080})
	tmpl := writeFile(t, dir, "a.tmpl", "port={{ .Settings.port }}\n")
	dest := filepath.Join(dir, "a.conf")
	cfg := loadConfig(t, dir, fmt.Sprintf("[source]\nurl = %q\nenv = \"dev\"\n[[template]]\n"+
		"source = %q\ndestination = %q\n",
		url, tmpl, dest))
	log, logs := observedLogger()
	a, err := New(cfg, log, Options{})
	if err != nil {
		t.Fatal(err)
	}
	runAgent(t, a)
	eventually(t, 10*time.Second, fileHas(dest, "port=8080\n"))
	if n := logs.FilterMessage("template changed").Len(); n != 0 {
		t.Errorf("the agent's own writes beside the template counted as %d template changes", n)
	}

	saveByRename := func(content string) {
		tmp := filepath.Join(dir, ".a.tmpl.swp")
		if err := os.WriteFile(tmp, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, tmpl); err != nil {
			t.Fatal(err)
		}
	}
	saveByRename("listen {{ .Settings.port }};\n")
	eventually(t, 10*time.Second, fileHas(dest, "listen 8080;\n"))

	saveByRename("listen {{ .Settings.port ;\n")
	eventually(t, 10*time.Second, func() string {
		if logs.FilterMessage("template not reloaded; keeping the previous version").Len() == 0 {
			return "no log of the broken template"
		}
		return ""
	})
	if b, _ := os.ReadFile(dest); string(b) != "listen 8080;\n" {
		t.Errorf("%s = %q after a broken template, want the previous content", dest, b)
	}
	entry := logs.FilterMessage("template not reloaded; keeping the previous version").All()[0]
	if got := entry.ContextMap()["file"]; got != tmpl {
		t.Errorf("broken template log names file %v, want %s", got, tmpl)
	}
}

// syncBuffer is a bytes.Buffer safe for the logger's concurrent writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) Sync() error { return nil }

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// jsonLogger logs everything, at debug level, as JSON into a buffer: what
// an operator's journal would hold, every field serialised.
func jsonLogger() (*zap.Logger, *syncBuffer) {
	buf := &syncBuffer{}
	enc := zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig())
	return zap.New(zapcore.NewCore(enc, buf, zap.DebugLevel)), buf
}

// TestNoSecretInLogs runs a whole agent with a secret setting through a
// template error that quotes it, a failing check that prints it, and a
// failing reload command that prints it, and greps every log line.
func TestNoSecretInLogs(t *testing.T) {
	const secret = "hunter2-very-secret"
	dir := t.TempDir()
	cs, url := startServer(t, "dev", map[string]any{"password": secret, "mode": "list"})
	tmpl := writeFile(t, dir, "a.tmpl", "mode={{ .Settings.mode }}\npassword={{ .Settings.password }}\n"+
		"{{ if eq .Settings.mode \"list\" }}{{ range .Settings.password }}x{{ end }}{{ end }}")
	dest := filepath.Join(dir, "a.conf")
	cfg := loadConfig(t, dir, fmt.Sprintf(`
[source]
url = %q
env = "dev"
[[template]]
source = %q
destination = %q
reload = "app"
[[reload]]
name = "app"
check = "if grep -q mode=check %[3]s; then cat %[3]s; exit 1; fi"
command = "cat %[3]s; echo %s >&2; exit 3"
`, url, tmpl, dest, secret))
	log, buf := jsonLogger()
	a, err := New(cfg, log, Options{})
	if err != nil {
		t.Fatal(err)
	}
	runAgent(t, a)
	logged := func(what string) func() string {
		return func() string {
			if !strings.Contains(buf.String(), what) {
				return "no log containing " + what
			}
			return ""
		}
	}

	eventually(t, 10*time.Second, logged("range can't iterate over"))
	post(t, cs, "dev", map[string]any{"password": secret, "mode": "check"})
	eventually(t, 10*time.Second, logged("update rolled back"))
	post(t, cs, "dev", map[string]any{"password": secret, "mode": "reload"})
	eventually(t, 10*time.Second, logged("reload failed"))

	if strings.Contains(buf.String(), secret) {
		t.Errorf("the secret reached the logs:\n%s", buf.String())
	}
	if !strings.Contains(buf.String(), "<redacted>") {
		t.Errorf("no redaction marker in the logs; did the failures quote anything?\n%s", buf.String())
	}
}

// TestIdleIsQuietAtInfo keeps a connected agent idle for 2 s of 50 ms
// keep-alives and requires no info line after its first apply.
func TestIdleIsQuietAtInfo(t *testing.T) {
	dir := t.TempDir()
	_, url := startServer(t, "dev", map[string]any{"port": 1})
	tmpl := writeFile(t, dir, "a.tmpl", "port={{ .Settings.port }}\n")
	cfg := loadConfig(t, dir, fmt.Sprintf("[source]\nurl = %q\nenv = \"dev\"\n[[template]]\n"+
		"source = %q\ndestination = %q\n",
		url, tmpl, filepath.Join(dir, "a.conf")))
	log, logs := observedLogger()
	a, err := New(cfg, log, Options{})
	if err != nil {
		t.Fatal(err)
	}
	runAgent(t, a)
	eventually(t, 10*time.Second, func() string {
		if logs.FilterMessage("update applied").Len() == 0 {
			return "no update applied yet"
		}
		return ""
	})
	before := logs.FilterLevelExact(zapcore.InfoLevel).Len()
	time.Sleep(2 * time.Second)
	if after := logs.FilterLevelExact(zapcore.InfoLevel).All(); len(after) != before {
		var msgs []string
		for _, e := range after[before:] {
			msgs = append(msgs, e.Message)
		}
		t.Errorf("idle agent logged at info: %q", msgs)
	}
	for _, e := range logs.FilterLevelExact(zapcore.InfoLevel).All() {
		if e.ContextMap()["env"] != "dev" {
			t.Errorf("info line %q has no env field: %v", e.Message, e.ContextMap())
		}
	}
}

// TestReloadConfig drives ReloadConfig as SIGHUP does: a good config with
// a new template renders it at once from the last settings without a
// reconnect; a bad one is refused and the old one stays in force; a new
// env reconnects.
func TestReloadConfig(t *testing.T) {
	dir := t.TempDir()
	cs, url := startServer(t, "dev", map[string]any{"port": 1})
	post(t, cs, "prod", map[string]any{"port": 2})
	tmpl := writeFile(t, dir, "a.tmpl", "port={{ .Settings.port }}\n")
	first, second := filepath.Join(dir, "a.conf"), filepath.Join(dir, "b.conf")
	text := fmt.Sprintf("[source]\nurl = %q\nenv = \"dev\"\n[[template]]\n"+
		"source = %q\ndestination = %q\n", url, tmpl, first)
	path := writeFile(t, dir, "sseconfd.toml", text)
	log, logs := observedLogger()
	a, err := Load(path, log, Options{})
	if err != nil {
		t.Fatal(err)
	}
	runAgent(t, a)
	eventually(t, 10*time.Second, fileHas(first, "port=1\n"))
	ctx := context.Background()

	text += fmt.Sprintf("[[template]]\nsource = %q\ndestination = %q\n", tmpl, second)
	writeFile(t, dir, "sseconfd.toml", text)
	if _, err := a.ReloadConfig(ctx, path); err != nil {
		t.Fatalf("ReloadConfig with a good config: %v", err)
	}
	eventually(t, 10*time.Second, fileHas(second, "port=1\n"))
	if n := logs.FilterMessage("connected").Len(); n != 1 {
		t.Errorf("%d connects after a reload that kept [source], want 1", n)
	}

	writeFile(t, dir, "sseconfd.toml", "[source]\nurl = 1\n")
	_, err = a.ReloadConfig(ctx, path)
	var ce *ConfigError
	if !errors.As(err, &ce) || !strings.Contains(err.Error(), "source.url: want a string") {
		t.Fatalf("ReloadConfig with a bad config = %v, want a ConfigError naming source.url", err)
	}
	post(t, cs, "dev", map[string]any{"port": 3})
	eventually(t, 10*time.Second, fileHas(second, "port=3\n"))

	writeFile(t, dir, "sseconfd.toml", strings.Replace(text, `env = "dev"`, `env = "prod"`, 1))
	if _, err := a.ReloadConfig(ctx, path); err != nil {
		t.Fatalf("ReloadConfig with a new env: %v", err)
	}
	eventually(t, 10*time.Second, fileHas(first, "port=2\n"))
	eventually(t, 10*time.Second, fileHas(second, "port=2\n"))
	if n := logs.FilterMessage("connected").Len(); n != 2 {
		t.Errorf("%d connects after a reload that changed the env, want 2", n)
	}
}

// TestReloadConfigReloadsAFixedTarget: a reload fails, the operator fixes
// the [[reload]] and sends SIGHUP; the files are current, yet the program
// must now be told.
func TestReloadConfigReloadsAFixedTarget(t *testing.T) {
	dir := t.TempDir()
	_, url := startServer(t, "dev", map[string]any{"port": 1})
	tmpl := writeFile(t, dir, "a.tmpl", "port={{ .Settings.port }}\n")
	marker := filepath.Join(dir, "reloaded")
	config := func(command string) string {
		return fmt.Sprintf("[source]\nurl = %q\nenv = \"dev\"\n[[template]]\nsource = %q\ndestination = %q\nreload = \"app\"\n"+
			"[[reload]]\nname = \"app\"\ncommand = %q\n", url, tmpl, filepath.Join(dir, "a.conf"), command)
	}
	path := writeFile(t, dir, "sseconfd.toml", config("exit 1"))
	log, logs := observedLogger()
	a, err := Load(path, log, Options{})
	if err != nil {
		t.Fatal(err)
	}
	runAgent(t, a)
	eventually(t, 10*time.Second, func() string {
		if logs.FilterMessage("reload failed").Len() == 0 {
			return "no failed reload yet"
		}
		return ""
	})

	writeFile(t, dir, "sseconfd.toml", config("echo reload >> "+marker))
	if _, err := a.ReloadConfig(context.Background(), path); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			for _, e := range logs.All() {
				t.Logf("%s %s %v", e.Level, e.Message, e.ContextMap())
			}
		}
	})
	eventually(t, 10*time.Second, fileHas(marker, "reload\n"))
}

// TestReloadConfigMovesStatus: a config reload with a new status.listen
// serves /healthz there and no longer on the old address.
func TestReloadConfigMovesStatus(t *testing.T) {
	dir := t.TempDir()
	_, url := startServer(t, "dev", map[string]any{"port": 1})
	tmpl := writeFile(t, dir, "a.tmpl", "port={{ .Settings.port }}\n")
	config := func(listen string) string {
		return fmt.Sprintf("[source]\nurl = %q\nenv = \"dev\"\n[status]\nlisten = %q\n"+
			"[[template]]\nsource = %q\ndestination = %q\n",
			url, listen, tmpl, filepath.Join(dir, "a.conf"))
	}
	first, second := freeAddr(t), freeAddr(t)
	path := writeFile(t, dir, "sseconfd.toml", config(first))
	a, err := Load(path, zap.NewNop(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	runAgent(t, a)
	eventually(t, 10*time.Second, healthIs(first, http.StatusOK))

	writeFile(t, dir, "sseconfd.toml", config(second))
	if _, err := a.ReloadConfig(context.Background(), path); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, healthIs(second, http.StatusOK))
	if _, _, err := getStatus(first, "/healthz"); err == nil {
		t.Errorf("the old status address %s still answers after the move", first)
	}
}
