package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// legacyApp starts agent/testdata/legacyapp reading file; it returns the
// pid file path and a function reading its records.
func legacyApp(t *testing.T, dir, file string) (pidFile string, records func() []legacyRecord) {
	t.Helper()
	bin := buildProgram(t, "./agent/testdata/legacyapp")
	pidFile = filepath.Join(dir, "legacyapp.pid")
	recPath := filepath.Join(dir, "legacyapp.records")
	cmd := exec.Command(bin, "-file", file, "-pid-file", pidFile, "-records", recPath)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Signal(syscall.SIGTERM); cmd.Wait() })
	eventually(t, 10*time.Second, func() string {
		if _, err := os.Stat(pidFile); err != nil {
			return "legacyapp wrote no pid file: " + err.Error()
		}
		return ""
	})
	return pidFile, func() []legacyRecord { return readLegacyRecords(recPath) }
}

// readLegacyRecords reads the records legacyapp wrote to path so far.
func readLegacyRecords(path string) []legacyRecord {
	data, _ := os.ReadFile(path)
	var out []legacyRecord
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		var r legacyRecord
		if json.Unmarshal([]byte(line), &r) == nil {
			out = append(out, r)
		}
	}
	return out
}

type legacyRecord struct {
	Reads   int    `json:"reads"`
	Reason  string `json:"reason"`
	Content string `json:"content"`
}

func sighups(recs []legacyRecord) int {
	n := 0
	for _, r := range recs {
		if r.Reason == "SIGHUP" {
			n++
		}
	}
	return n
}

// TestEndToEnd drives the whole slice of issue 2: initial render, an update
// rewriting the file with its mode and one SIGHUP, an identical update
// with no write and no signal, and a missing key rejected with the old
// file kept.
func TestEndToEnd(t *testing.T) {
	dir := t.TempDir()
	cs, url := startServer(t, "dev", map[string]any{"ball_color": "blue", "ball_size": 25})
	dest := filepath.Join(dir, "app.ini")
	pidFile, records := legacyApp(t, dir, dest)
	tmpl := writeFile(t, dir, "app.ini.tmpl",
		"color = {{ .Settings.ball_color }}\nsize = {{ .Settings.ball_size }}\nenv = {{ .Env }}\n")
	cfg := loadConfig(t, dir, fmt.Sprintf(`
[source]
url = %q
env = "dev"
[[template]]
source = %q
destination = %q
mode = "0640"
reload = "app"
[[reload]]
name = "app"
signal = "SIGHUP"
pid_file = %q
process_name = "legacyapp"
`, url, tmpl, dest, pidFile))
	log, logs := observedLogger()
	a, err := New(cfg, log, Options{})
	if err != nil {
		t.Fatal(err)
	}
	runAgent(t, a)

	// Initial render and one SIGHUP.
	eventually(t, 10*time.Second, fileHas(dest, "color = blue\nsize = 25\nenv = dev\n"))
	eventually(t, 10*time.Second, func() string {
		if n := sighups(records()); n != 1 {
			return fmt.Sprintf("legacyapp got %d SIGHUPs, want 1 after the first render", n)
		}
		return ""
	})
	if fi, _ := os.Stat(dest); fi.Mode().Perm() != 0o640 {
		t.Errorf("%s mode = %v, want 0640", dest, fi.Mode().Perm())
	}

	// A changed setting: new content, read by the program after exactly one more SIGHUP.
	post(t, cs, "dev", map[string]any{"ball_color": "green", "ball_size": 25})
	eventually(t, 10*time.Second, fileHas(dest, "color = green"))
	eventually(t, 10*time.Second, func() string {
		recs := records()
		if n := sighups(recs); n != 2 {
			return fmt.Sprintf("legacyapp got %d SIGHUPs, want 2", n)
		}
		if last := recs[len(recs)-1]; !strings.Contains(last.Content, "color = green") {
			return fmt.Sprintf("legacyapp last read %q, want the green content", last.Content)
		}
		return ""
	})
	before, _ := os.Stat(dest)

	// An identical POST through HTTP: no broadcast, so no write and no signal.
	// A later real change proves the agent was still listening meanwhile.
	postHTTP(t, url, "dev", map[string]any{"ball_size": 25, "ball_color": "green"})
	post(t, cs, "dev", map[string]any{"ball_color": "green", "ball_size": 25, "unused": 1})
	eventually(t, 10*time.Second, func() string {
		if logs.FilterMessage("update changed nothing").Len() == 0 {
			return "no apply of the settings with an unused key yet"
		}
		return ""
	})
	after, _ := os.Stat(dest)
	if !after.ModTime().Equal(before.ModTime()) || !os.SameFile(before, after) {
		t.Errorf("%s was rewritten by an update that changed nothing", dest)
	}
	if n := sighups(records()); n != 2 {
		t.Errorf("legacyapp got %d SIGHUPs after updates that changed nothing, want still 2", n)
	}

	// A missing key: rejected, the old file kept, the error names template and key.
	post(t, cs, "dev", map[string]any{"ball_size": 30})
	eventually(t, 10*time.Second, func() string {
		if logs.FilterMessage("update rejected").Len() == 0 {
			return "no update rejected log"
		}
		return ""
	})
	entry := logs.FilterMessage("update rejected").All()[0]
	msg := fmt.Sprint(entry.ContextMap()["error"])
	if !strings.Contains(msg, "app.ini.tmpl") || !strings.Contains(msg, "ball_color") {
		t.Errorf("rejection error = %q, want it to name the template and the key ball_color", msg)
	}
	if b, _ := os.ReadFile(dest); !strings.Contains(string(b), "color = green\nsize = 25") {
		t.Errorf("%s = %q after a rejected update, want the last good content", dest, b)
	}
	if n := sighups(records()); n != 2 {
		t.Errorf("legacyapp got %d SIGHUPs after a rejected update, want still 2", n)
	}

	// The next good update applies, and its log line says the agent recovered.
	post(t, cs, "dev", map[string]any{"ball_color": "red", "ball_size": 30})
	eventually(t, 10*time.Second, fileHas(dest, "color = red\nsize = 30"))
	eventually(t, 10*time.Second, func() string {
		for _, e := range logs.FilterMessage("update applied").All() {
			if e.ContextMap()["recovered"] == true {
				return ""
			}
		}
		return "no update applied line with recovered=true after a rejected update"
	})
}

func TestOnceUnknownEnvironment(t *testing.T) {
	dir := t.TempDir()
	_, url := startServer(t, "dev", map[string]any{"a": 1})
	text := sourceConfig(url, "nosuchenv") + templateBlock(t, dir, "out", "{{ .Settings.a }}", "")
	a, _ := newTestAgent(t, dir, text)
	_, err := a.Once(context.Background())
	if err == nil || !strings.Contains(err.Error(), `"nosuchenv"`) ||
		!strings.Contains(err.Error(), url+"/config/nosuchenv") {
		t.Fatalf("Once against an unknown env = %v, want an error naming the env and the URL", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "out")); err == nil {
		t.Errorf("Once wrote a file for an unknown environment")
	}
}

// TestOnceFailsWhenTheReloadFails: once must not exit 0 when the program
// was not told (a reload command failed); the files stay installed.
func TestOnceFailsWhenTheReloadFails(t *testing.T) {
	dir := t.TempDir()
	_, url := startServer(t, "dev", map[string]any{"a": 1})
	text := baseConfig(url) + templateBlock(t, dir, "out", "a={{ .Settings.a }}\n", "app") +
		"\n[[reload]]\nname = \"app\"\ncommand = \"exit 3\"\n"
	a, _ := newTestAgent(t, dir, text)
	_, err := a.Once(context.Background())
	if err == nil || !strings.Contains(err.Error(), "reload of app failed") {
		t.Fatalf("Once with a failing reload command = %v, want an error naming the target", err)
	}
	if msg := fileHas(filepath.Join(dir, "out"), "a=1")(); msg != "" {
		t.Errorf("files of a once whose reload failed: %s, want them installed", msg)
	}
}
