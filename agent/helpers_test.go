package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/sseconfd/sseconfd/configserver"
)

// startServer runs the stand-in config server on loopback with env set to
// settings (skipped when settings is nil). Its streams send keep-alives
// every 50ms.
func startServer(t testing.TB, env string, settings map[string]any) (*configserver.Server, string) {
	t.Helper()
	cs := configserver.New()
	cs.KeepAlive = 50 * time.Millisecond
	if settings != nil {
		post(t, cs, env, settings)
	}
	srv := httptest.NewServer(cs)
	t.Cleanup(func() {
		srv.CloseClientConnections()
		srv.Close()
	})
	return cs, srv.URL
}

// post stores settings for env on cs, as POST /config would.
func post(t testing.TB, cs *configserver.Server, env string, settings map[string]any) {
	t.Helper()
	raw, err := json.Marshal(settings)
	if err != nil {
		t.Fatal(err)
	}
	cs.Set(env, raw)
}

// postHTTP sends POST /config to the server at baseURL.
func postHTTP(t testing.TB, baseURL, env string, settings map[string]any) {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"env": env, "settings": settings})
	resp, err := http.Post(baseURL+"/config", "application/json", strings.NewReader(string(body)))
	if err != nil {
		t.Fatalf("POST /config: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST /config: HTTP %d", resp.StatusCode)
	}
}

// writeFile writes content to dir/name and returns the path.
func writeFile(t testing.TB, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// loadConfig parses a TOML config text, failing the test on error.
func loadConfig(t testing.TB, dir, text string) *Config {
	t.Helper()
	p := writeFile(t, dir, "sseconfd.toml", text)
	cfg, err := LoadConfig(p)
	if err != nil {
		t.Fatalf("LoadConfig:\n%s\nerror: %v", text, err)
	}
	return cfg
}

// observedLogger returns a logger at debug level whose entries the test can read.
func observedLogger() (*zap.Logger, *observer.ObservedLogs) {
	core, logs := observer.New(zap.DebugLevel)
	return zap.New(core), logs
}

// runAgent starts a.Run in the background; the returned stop cancels it and
// fails the test unless Run returns within 5 s.
func runAgent(t testing.TB, a *Agent) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case <-done:
			case <-time.After(5 * time.Second):
				t.Errorf("Agent.Run did not return within 5s of cancel")
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// eventually polls cond every 10ms until it returns "" (done) or limit
// passes; then it fails the test with cond's last message.
func eventually(t testing.TB, limit time.Duration, cond func() string) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		msg := cond()
		if msg == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %s: %s", limit, msg)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// fileHas returns a cond for eventually: path contains want.
func fileHas(path, want string) func() string {
	return func() string {
		b, err := os.ReadFile(path)
		if err != nil {
			return err.Error()
		}
		if !strings.Contains(string(b), want) {
			return fmt.Sprintf("%s holds %q, want it to contain %q", path, b, want)
		}
		return ""
	}
}

var buildOnce sync.Map // program path → *buildResult

type buildResult struct {
	once sync.Once
	path string
	err  error
}

// removeBuilds deletes the directories of buildProgram; TestMain calls it
// after the tests.
func removeBuilds() {
	buildOnce.Range(func(_, v any) bool {
		if r := v.(*buildResult); r.path != "" {
			os.RemoveAll(filepath.Dir(r.path))
		}
		return true
	})
}

// buildProgram compiles the Go package pkg (relative to the module root)
// once per test binary and returns the executable's path.
func buildProgram(t testing.TB, pkg string) string {
	t.Helper()
	v, _ := buildOnce.LoadOrStore(pkg, &buildResult{})
	r := v.(*buildResult)
	r.once.Do(func() {
		dir, err := os.MkdirTemp("", "sseconfd-build-")
		if err != nil {
			r.err = err
			return
		}
		r.path = filepath.Join(dir, filepath.Base(pkg))
		cmd := exec.Command("go", "build", "-o", r.path, pkg)
		cmd.Dir = ".."
		if out, err := cmd.CombinedOutput(); err != nil {
			r.err = fmt.Errorf("go build %s: %v\n%s", pkg, err, out)
		}
	})
	if r.err != nil {
		t.Fatal(r.err)
	}
	return r.path
}

// baseConfig is the [source] and [backoff] part of a test config.
func baseConfig(url string) string { return sourceConfig(url, "dev") }

// sourceConfig is baseConfig for another environment.
func sourceConfig(url, env string) string {
	return fmt.Sprintf(`
[source]
url = %q
env = %q
resync_interval = "0s"

[backoff]
min = "10ms"
max = "100ms"
`, url, env)
}

// newTestAgent builds an Agent from config text; its logs are observed.
func newTestAgent(t testing.TB, dir, text string) (*Agent, *observer.ObservedLogs) {
	t.Helper()
	cfg := loadConfig(t, dir, text)
	log, logs := observedLogger()
	a, err := New(cfg, log, Options{})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return a, logs
}

// legacyTarget is a [[reload]] named "app" sending SIGHUP to the
// legacyapp whose pid file is pidFile; extra lines are added to it.
func legacyTarget(pidFile string, extra ...string) string {
	block := fmt.Sprintf("\n[[reload]]\nname = \"app\"\nsignal = \"SIGHUP\"\n"+
		"pid_file = %q\nprocess_name = \"legacyapp\"\n", pidFile)
	for _, line := range extra {
		block += line + "\n"
	}
	return block
}

// applySettings applies settings to a as a snapshot of origin "test".
func applySettings(t testing.TB, a *Agent, settings map[string]any) Result {
	t.Helper()
	snap, err := NewSnapshot(settings, "test")
	if err != nil {
		t.Fatal(err)
	}
	res, err := a.Apply(context.Background(), snap)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// templateBlock is one [[template]] rendering source text to dir/dest.
func templateBlock(t testing.TB, dir, dest, text, reload string) string {
	t.Helper()
	src := writeFile(t, dir, dest+".tmpl", text)
	return fmt.Sprintf("\n[[template]]\nsource = %q\ndestination = %q\nreload = %q\n",
		src, filepath.Join(dir, dest), reload)
}
