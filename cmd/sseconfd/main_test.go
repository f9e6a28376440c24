package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sseconfd/sseconfd/configserver"
)

// bin is the sseconfd binary built by TestMain for these tests.
var bin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "sseconfd-cmd-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	bin = filepath.Join(dir, "sseconfd")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "go build: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// result is what one run of the binary printed and returned.
type result struct {
	stdout, stderr string
	code           int
}

// sseconfd runs the binary with args and waits for it (at most 30 s).
func sseconfd(t *testing.T, env []string, args ...string) result {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		<-done
		t.Fatalf("sseconfd %s: still running after 30s", strings.Join(args, " "))
	}
	return result{stdout.String(), stderr.String(), cmd.ProcessState.ExitCode()}
}

// startConfigServer serves env with settings on loopback; keep-alives
// every 50ms.
func startConfigServer(t *testing.T, env string, settings map[string]any) (*configserver.Server, string) {
	t.Helper()
	cs := configserver.New()
	cs.KeepAlive = 50 * time.Millisecond
	setSettings(t, cs, env, settings)
	srv := httptest.NewServer(cs)
	t.Cleanup(func() {
		srv.CloseClientConnections()
		srv.Close()
	})
	return cs, srv.URL
}

func setSettings(t *testing.T, cs *configserver.Server, env string, settings map[string]any) {
	t.Helper()
	raw, err := json.Marshal(settings)
	if err != nil {
		t.Fatal(err)
	}
	cs.Set(env, raw)
}

// writeConfig writes an agent config rendering one template in dir.
func writeConfig(t *testing.T, dir, url, extra string) (config, dest string) {
	t.Helper()
	tmpl := filepath.Join(dir, "app.tmpl")
	if err := os.WriteFile(tmpl, []byte("port={{ .Settings.port }}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	dest = filepath.Join(dir, "app.conf")
	text := fmt.Sprintf("[source]\nurl = %q\nenv = \"dev\"\n\n[[template]]\nsource = %q\ndestination = %q\n%s",
		url, tmpl, dest, extra)
	config = filepath.Join(dir, "sseconfd.toml")
	if err := os.WriteFile(config, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return config, dest
}

func TestHelpListsFlagsWithDefaults(t *testing.T) {
	tests := []struct {
		command string
		want    []string
	}{
		{"run", []string{"Usage: sseconfd run", "-config file", "(default /etc/sseconfd/sseconfd.toml)",
			"-dry-run", "(default false)", "-log-format", "-log-level", "SIGHUP"}},
		{"once", []string{"Usage: sseconfd once", "-config file", "-dry-run", "-log-format", "-log-level"}},
		{"render", []string{"Usage: sseconfd render", "-template file", "-settings file", "-env", "(default dev)"}},
		{"validate", []string{"Usage: sseconfd validate", "-config file", "(default /etc/sseconfd/sseconfd.toml)"}},
		{"version", []string{"Usage: sseconfd version"}},
	}
	for _, tc := range tests {
		t.Run(tc.command, func(t *testing.T) {
			r := sseconfd(t, nil, tc.command, "-h")
			if r.code != 0 {
				t.Fatalf("sseconfd %s -h: exit %d, want 0; stderr:\n%s", tc.command, r.code, r.stderr)
			}
			for _, w := range append(tc.want, "Exit codes: 0 ok, 1 runtime failure, 2 usage or config error") {
				if !strings.Contains(r.stdout, w) {
					t.Errorf("sseconfd %s -h lacks %q; got:\n%s", tc.command, w, r.stdout)
				}
			}
		})
	}
}

func TestExitCodes(t *testing.T) {
	dir := t.TempDir()
	_, url := startConfigServer(t, "dev", map[string]any{"port": 8080})
	good, _ := writeConfig(t, dir, url, "")
	down, _ := writeConfig(t, t.TempDir(), "http://127.0.0.1:1", "[backoff]\nmax_retries = 1\n")
	bad := filepath.Join(dir, "bad.toml")
	os.WriteFile(bad, []byte("[source]\nurl = 1\n"), 0o644)
	missingKey := filepath.Join(dir, "missing.tmpl")
	os.WriteFile(missingKey, []byte("{{ .Settings.nope }}"), 0o644)
	settings := filepath.Join(dir, "settings.json")
	os.WriteFile(settings, []byte(`{"port": 1}`), 0o644)

	tests := []struct {
		name string
		args []string
		want int
	}{
		{"no command", nil, exitUsage},
		{"unknown command", []string{"frobnicate"}, exitUsage},
		{"unknown flag", []string{"run", "-frob"}, exitUsage},
		{"stray argument", []string{"validate", "-config", good, "extra"}, exitUsage},
		{"help", []string{"-h"}, exitOK},
		{"version", []string{"version"}, exitOK},
		{"validate ok", []string{"validate", "-config", good}, exitOK},
		{"validate bad", []string{"validate", "-config", bad}, exitUsage},
		{"validate missing file", []string{"validate", "-config", filepath.Join(dir, "nope.toml")}, exitUsage},
		{"once ok", []string{"once", "-config", good}, exitOK},
		{"once server down", []string{"once", "-config", down}, exitFailure},
		{"run bad config", []string{"run", "-config", bad}, exitUsage},
		{"run gives up", []string{"run", "-config", down}, exitFailure},
		{"render ok", []string{"render", "-template", filepath.Join(dir, "app.tmpl"),
			"-settings", settings}, exitOK},
		{"render missing key", []string{"render", "-template", missingKey, "-settings", settings}, exitFailure},
		{"render without flags", []string{"render"}, exitUsage},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := sseconfd(t, nil, tc.args...)
			if r.code != tc.want {
				t.Errorf("sseconfd %s: exit %d, want %d\nstdout:\n%s\nstderr:\n%s",
					strings.Join(tc.args, " "), r.code, tc.want, r.stdout, r.stderr)
			}
		})
	}
}

// TestValidateFiveMistakes runs validate on a file with five different
// mistakes and requires all five on stderr, each with file and line.
func TestValidateFiveMistakes(t *testing.T) {
	dir := t.TempDir()
	broken := filepath.Join(dir, "broken.tmpl")
	os.WriteFile(broken, []byte("a\n{{ if .Settings.x }}\n"), 0o644)
	good := filepath.Join(dir, "good.tmpl")
	os.WriteFile(good, []byte("x\n"), 0o644)
	config := filepath.Join(dir, "sseconfd.toml")
	text := `[source]
url = "http://127.0.0.1:8080"
env = "dev"
idle_timout = "45s"

[[template]]
source = "` + broken + `"
destination = "` + filepath.Join(dir, "a.conf") + `"

[[template]]
source = "` + good + `"
destination = "` + filepath.Join(dir, "a.conf") + `"

[[template]]
source = "` + good + `"
destination = "` + filepath.Join(dir, "no", "such", "dir", "c.conf") + `"

[[reload]]
name = "nginx"
command = "true"
`
	os.WriteFile(config, []byte(text), 0o644)
	r := sseconfd(t, nil, "validate", "-config", config)
	if r.code != exitUsage {
		t.Fatalf("validate: exit %d, want 2; stderr:\n%s", r.code, r.stderr)
	}
	want := []string{
		config + `:4: source.idle_timout: unknown key (did you mean "idle_timeout"?)`,
		config + `:12: template[1].destination: ` + filepath.Join(dir, "a.conf") +
			` is also the destination of template[0]`,
		config + `:16: template[2].destination: directory ` + filepath.Join(dir, "no", "such", "dir") +
			` does not exist`,
		config + `:19: reload[0].name: no [[template]] names "nginx"`,
		broken + `:3: unexpected EOF`,
		"5 problems; nothing was started or written.",
	}
	for _, w := range want {
		if !strings.Contains(r.stderr, w) {
			t.Errorf("validate output lacks\n  %s\ngot:\n%s", w, r.stderr)
		}
	}
}

// TestOnceDryRunPrintsDiff requires a unified diff on stdout, nothing
// written, and no setting value in the logs.
func TestOnceDryRunPrintsDiff(t *testing.T) {
	dir := t.TempDir()
	_, url := startConfigServer(t, "dev", map[string]any{"port": 8443})
	config, dest := writeConfig(t, dir, url, "")
	os.WriteFile(dest, []byte("port=80\n"), 0o644)

	r := sseconfd(t, nil, "once", "-dry-run", "-log-format", "json", "-config", config)
	if r.code != 0 {
		t.Fatalf("once -dry-run: exit %d; stderr:\n%s", r.code, r.stderr)
	}
	wantDiff := "--- " + dest + " (on disk)\n+++ " + dest + " (rendered)\n@@ -1 +1 @@\n-port=80\n+port=8443\n"
	if r.stdout != wantDiff {
		t.Errorf("once -dry-run stdout:\n%s\nwant:\n%s", r.stdout, wantDiff)
	}
	if b, _ := os.ReadFile(dest); string(b) != "port=80\n" {
		t.Errorf("once -dry-run wrote %s: %q", dest, b)
	}
	if strings.Contains(r.stderr, "8443") || !strings.Contains(r.stderr, "dry run: nothing written") {
		t.Errorf("once -dry-run logs should name no value and say nothing was written:\n%s", r.stderr)
	}
}

// daemonProc is a running "sseconfd run" whose stderr the test reads.
type daemonProc struct {
	cmd    *exec.Cmd
	mu     sync.Mutex
	log    bytes.Buffer
	stdout syncBuffer
}

// syncBuffer is a bytes.Buffer that a process's output can be copied into
// while the test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func (d *daemonProc) Write(p []byte) (int, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.log.Write(p)
}

func (d *daemonProc) logs() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.log.String()
}

// startDaemon starts "sseconfd run" with JSON logs; it is stopped with
// SIGTERM at cleanup and must exit 0.
func startDaemon(t *testing.T, env []string, args ...string) *daemonProc {
	t.Helper()
	d := &daemonProc{cmd: exec.Command(bin, append([]string{"run", "-log-format", "json"}, args...)...)}
	d.cmd.Env = append(os.Environ(), env...)
	d.cmd.Stderr = d
	d.cmd.Stdout = &d.stdout
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- d.cmd.Wait() }()
	t.Cleanup(func() {
		d.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-exited:
			if err != nil {
				t.Errorf("sseconfd run after SIGTERM: %v; logs:\n%s", err, d.logs())
			}
		case <-time.After(10 * time.Second):
			d.cmd.Process.Kill()
			t.Errorf("sseconfd run did not stop within 10s of SIGTERM; logs:\n%s", d.logs())
		}
	})
	return d
}

// waitFor polls cond every 20ms for up to 10s.
func waitFor(t *testing.T, what string, cond func() bool, logs func() string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after 10s: still waiting for %s; logs:\n%s", what, logs())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func fileIs(path, want string) func() bool {
	return func() bool {
		b, err := os.ReadFile(path)
		return err == nil && string(b) == want
	}
}

// logLines decodes the JSON log lines, skipping any that do not parse.
func logLines(text string) []map[string]any {
	var out []map[string]any
	for _, line := range strings.Split(text, "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) == nil {
			out = append(out, m)
		}
	}
	return out
}

func countMsg(text, msg string) int {
	n := 0
	for _, l := range logLines(text) {
		if l["msg"] == msg {
			n++
		}
	}
	return n
}

// TestSIGHUP sends SIGHUP with a good new config (a second template, same
// source: no reconnect), then with a bad one (refused, the daemon goes on
// with the good one), then with a new env (reconnect).
func TestSIGHUP(t *testing.T) {
	dir := t.TempDir()
	cs, url := startConfigServer(t, "dev", map[string]any{"port": 8080})
	setSettings(t, cs, "prod", map[string]any{"port": 443})
	config, dest := writeConfig(t, dir, url, "")
	d := startDaemon(t, nil, "-config", config)
	waitFor(t, dest+" rendered", fileIs(dest, "port=8080\n"), d.logs)

	// A good new config: one more template, rendered at once from the last settings.
	second := filepath.Join(dir, "second.conf")
	good, _ := os.ReadFile(config)
	extra := fmt.Sprintf("\n[[template]]\nsource = %q\ndestination = %q\n",
		filepath.Join(dir, "app.tmpl"), second)
	os.WriteFile(config, append(good, extra...), 0o644)
	d.cmd.Process.Signal(syscall.SIGHUP)
	waitFor(t, second+" rendered after SIGHUP", fileIs(second, "port=8080\n"), d.logs)
	if n := countMsg(d.logs(), "connected"); n != 1 {
		t.Errorf("after a SIGHUP that kept [source]: %d connects, want 1", n)
	}

	// A bad new config: refused, every problem logged, the old one stays in force.
	os.WriteFile(config, []byte("[source]\nurl = \"http://x\"\nenv = \"dev\"\nbogus = 1\n"), 0o644)
	d.cmd.Process.Signal(syscall.SIGHUP)
	waitFor(t, "the refusal", func() bool { return strings.Contains(d.logs(), "config reload refused") }, d.logs)
	for _, w := range []string{"source.bogus: unknown key", "template: at least one [[template]] is required"} {
		if !strings.Contains(d.logs(), w) {
			t.Errorf("refusal does not name %q; logs:\n%s", w, d.logs())
		}
	}
	setSettings(t, cs, "dev", map[string]any{"port": 9090})
	waitFor(t, "updates still applied to both files", func() bool {
		return fileIs(dest, "port=9090\n")() && fileIs(second, "port=9090\n")()
	}, d.logs)

	// A new env: the stream reconnects to it.
	prod := bytes.ReplaceAll(append(good, extra...), []byte(`env = "dev"`), []byte(`env = "prod"`))
	os.WriteFile(config, prod, 0o644)
	d.cmd.Process.Signal(syscall.SIGHUP)
	waitFor(t, "prod rendered", func() bool {
		return fileIs(dest, "port=443\n")() && fileIs(second, "port=443\n")()
	}, d.logs)
	if n := countMsg(d.logs(), "connected"); n != 2 {
		t.Errorf("after a SIGHUP that changed the env: %d connects, want 2", n)
	}
}

// TestSdNotify listens on a unixgram socket as systemd does and requires
// READY=1 after the first apply, then WATCHDOG=1 pings from the main loop.
func TestSdNotify(t *testing.T) {
	dir := t.TempDir()
	_, url := startConfigServer(t, "dev", map[string]any{"port": 8080})
	config, dest := writeConfig(t, dir, url, "")
	sock := filepath.Join(dir, "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()

	d := startDaemon(t, []string{"NOTIFY_SOCKET=" + sock, "WATCHDOG_USEC=200000"}, "-config", config)
	var got []string
	buf := make([]byte, 512)
	for !slices.Contains(got, "WATCHDOG=1") {
		conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		n, err := conn.Read(buf)
		if err != nil {
			t.Fatalf("read notify socket: %v; got so far %q; logs:\n%s", err, got, d.logs())
		}
		got = append(got, string(buf[:n]))
		if string(buf[:n]) == "READY=1" {
			if b, err := os.ReadFile(dest); err != nil || string(b) != "port=8080\n" {
				t.Errorf("READY=1 came before %s was rendered: %q, %v", dest, b, err)
			}
		}
	}
	if got[0] != "READY=1" {
		t.Errorf("first notification %q, want READY=1 (all: %q)", got[0], got)
	}
}

// TestMakeInstall installs into a temporary DESTDIR and checks the unit
// with systemd-analyze verify where it is installed.
func TestMakeInstall(t *testing.T) {
	if _, err := exec.LookPath("make"); err != nil {
		t.Skip("make not installed; skipping the install test")
	}
	tmp := t.TempDir()
	root := filepath.Join(tmp, "root")
	cmd := exec.Command("make", "-s", "install", "DESTDIR="+root, "PREFIX=/usr",
		"BIN="+filepath.Join(tmp, "bin"))
	cmd.Dir = "../.."
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("make install: %v\n%s", err, out)
	}
	for _, f := range []string{
		"usr/bin/sseconfd", "etc/systemd/system/sseconfd.service",
		"etc/sseconfd/sseconfd.toml", "etc/sseconfd/sseconfd.toml.example",
		"etc/sseconfd/templates/nginx.conf.tmpl", "etc/sseconfd/templates/app.env.tmpl",
		"etc/sseconfd/templates/app.ini.tmpl",
	} {
		if _, err := os.Stat(filepath.Join(root, f)); err != nil {
			t.Errorf("make install did not install %s: %v", f, err)
		}
	}
	unit, err := os.ReadFile(filepath.Join(root, "etc/systemd/system/sseconfd.service"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(unit, []byte("ExecStart=/usr/bin/sseconfd run -config /etc/sseconfd/sseconfd.toml")) {
		t.Errorf("installed unit does not start /usr/bin/sseconfd:\n%s", unit)
	}

	if _, err := exec.LookPath("systemd-analyze"); err != nil {
		t.Skip("systemd-analyze not installed (Debian package systemd); skipping the unit check")
	}
	// verify checks that ExecStart exists: point it into DESTDIR.
	verify := filepath.Join(tmp, "sseconfd.service")
	unit = bytes.ReplaceAll(unit, []byte("ExecStart=/usr/bin/"), []byte("ExecStart="+root+"/usr/bin/"))
	os.WriteFile(verify, unit, 0o644)
	out, err := exec.Command("systemd-analyze", "verify", verify).CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Errorf("systemd-analyze verify %s: %v\n%s", verify, err, out)
	}
}

// TestSdNotifyFromCache starts with the server down and a cache from an
// earlier run: READY=1 comes after rendering from the cache.
func TestSdNotifyFromCache(t *testing.T) {
	dir := t.TempDir()
	_, url := startConfigServer(t, "dev", map[string]any{"port": 8080})
	cache := filepath.Join(dir, "cache.json")
	config, dest := writeConfig(t, dir, url, fmt.Sprintf("\n[cache]\npath = %q\n", cache))
	if r := sseconfd(t, nil, "once", "-config", config); r.code != 0 {
		t.Fatalf("once: exit %d\n%s", r.code, r.stderr)
	}
	os.Remove(dest)
	down, _ := writeConfig(t, dir, "http://127.0.0.1:1", fmt.Sprintf("\n[cache]\npath = %q\n", cache))

	sock := filepath.Join(dir, "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	d := startDaemon(t, []string{"NOTIFY_SOCKET=" + sock}, "-config", down)
	buf := make([]byte, 512)
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	n, err := conn.Read(buf)
	if err != nil || string(buf[:n]) != "READY=1" {
		t.Fatalf("notify socket: %q, %v; want READY=1; logs:\n%s", buf[:n], err, d.logs())
	}
	if b, err := os.ReadFile(dest); err != nil || string(b) != "port=8080\n" {
		t.Errorf("at READY=1 %s = %q, %v; want it rendered from the cache", dest, b, err)
	}
}

// TestRunDryRun prints a diff per update to stdout and writes nothing.
func TestRunDryRun(t *testing.T) {
	dir := t.TempDir()
	cs, url := startConfigServer(t, "dev", map[string]any{"port": 8080})
	config, dest := writeConfig(t, dir, url, "")
	d := startDaemon(t, nil, "-dry-run", "-config", config)
	first := "--- /dev/null\n+++ " + dest + " (rendered)\n@@ -0,0 +1 @@\n+port=8080\n"
	waitFor(t, "the first diff", func() bool { return d.stdout.String() == first }, d.logs)

	setSettings(t, cs, "dev", map[string]any{"port": 9090})
	second := first + "--- /dev/null\n+++ " + dest + " (rendered)\n@@ -0,0 +1 @@\n+port=9090\n"
	waitFor(t, "the second diff", func() bool { return d.stdout.String() == second }, d.logs)
	if _, err := os.Stat(dest); err == nil {
		t.Errorf("run -dry-run wrote %s", dest)
	}
	if strings.Contains(d.logs(), "9090") {
		t.Errorf("run -dry-run logged a setting value:\n%s", d.logs())
	}
}

// TestMakeInstallTrialPrefix installs under a prefix that is not a system
// one: everything lands under it, and the installed binary's -config
// default is the installed config.
func TestMakeInstallTrialPrefix(t *testing.T) {
	if _, err := exec.LookPath("make"); err != nil {
		t.Skip("make not installed; skipping the install test")
	}
	prefix := filepath.Join(t.TempDir(), "prefix")
	cmd := exec.Command("make", "-s", "install", "PREFIX="+prefix, "BIN="+filepath.Join(t.TempDir(), "bin"))
	cmd.Dir = "../.."
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("make install PREFIX=%s: %v\n%s", prefix, err, out)
	}
	config := filepath.Join(prefix, "etc/sseconfd/sseconfd.toml")
	for _, f := range []string{"bin/sseconfd", "lib/systemd/system/sseconfd.service",
		"etc/sseconfd/sseconfd.toml", "etc/sseconfd/templates/app.ini.tmpl"} {
		if _, err := os.Stat(filepath.Join(prefix, f)); err != nil {
			t.Errorf("make install PREFIX=%s did not install %s: %v", prefix, f, err)
		}
	}
	example, _ := os.ReadFile(config)
	if !bytes.Contains(example, []byte(prefix+"/etc/sseconfd/templates/app.ini.tmpl")) ||
		!bytes.Contains(example, []byte(prefix+"/var/lib/sseconfd/dev.json")) {
		t.Errorf("installed config does not point into the prefix:\n%s", example)
	}
	out, _ := exec.Command(filepath.Join(prefix, "bin/sseconfd"), "validate", "-h").Output()
	if !bytes.Contains(out, []byte("(default "+config+")")) {
		t.Errorf("installed sseconfd's -config default is not %s:\n%s", config, out)
	}
}

// TestLogFormat: JSON when stderr is not a terminal, console when the
// config asks for it, and the flag over the config.
func TestLogFormat(t *testing.T) {
	dir := t.TempDir()
	_, url := startConfigServer(t, "dev", map[string]any{"port": 1})
	plain, _ := writeConfig(t, dir, url, "")
	consoleDir := t.TempDir()
	console, _ := writeConfig(t, consoleDir, url, "\n[log]\nformat = \"console\"\n")
	tests := []struct {
		name     string
		args     []string
		wantJSON bool
	}{
		{"pipe means json", []string{"once", "-config", plain}, true},
		{"config says console", []string{"once", "-config", console}, false},
		{"flag over config", []string{"once", "-log-format", "json", "-config", console}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := sseconfd(t, nil, tc.args...)
			line := strings.SplitN(strings.TrimSpace(r.stderr), "\n", 2)[0]
			var m map[string]any
			isJSON := json.Unmarshal([]byte(line), &m) == nil
			if r.code != 0 || isJSON != tc.wantJSON || !strings.Contains(line, "update applied") {
				t.Errorf("sseconfd %s: exit %d, first log line %q; want JSON %v",
					strings.Join(tc.args, " "), r.code, line, tc.wantJSON)
			}
		})
	}
}
