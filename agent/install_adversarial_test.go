package agent

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/sseconfd/sseconfd/render"
)

// TestStartKeepsAnotherAgentsTempFiles runs two agents that write
// different files of one directory (two apps' files in nginx's conf.d).
// One agent starting while the other is between Stage and Commit must not
// delete the other's staged file: that update would fail to install.
func TestStartKeepsAnotherAgentsTempFiles(t *testing.T) {
	dir := t.TempDir()
	_, url := startServer(t, "dev", map[string]any{"port": 8080})

	// Agent B has staged its file and is about to commit it.
	txn, err := render.Stage([]render.File{
		{Path: filepath.Join(dir, "b.conf"), Content: []byte("b\n"), UID: -1, GID: -1},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer txn.Abort()
	crashed := writeFile(t, dir, ".sseconfd.a.conf.4242", "left by a crash of agent A")

	// Agent A starts.
	tmpl := writeFile(t, dir, "a.tmpl", "port {{ .Settings.port }}\n")
	cfg := loadConfig(t, dir, fmt.Sprintf(`
[source]
url = %q
env = "dev"
[[template]]
source = %q
destination = %q
`, url, tmpl, filepath.Join(dir, "a.conf")))
	a, err := New(cfg, zap.NewNop(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Once(context.Background()); err != nil {
		t.Fatalf("Once: %v", err)
	}

	if err := txn.Commit(); err != nil {
		t.Errorf("agent B's Commit after agent A started: %v", err)
	}
	if _, err := os.Stat(crashed); err == nil {
		t.Errorf("agent A kept its own stale temporary file %s", crashed)
	}
}

// TestTemplateEditKeepsMissingKeyZero edits a template whose [[template]]
// sets missing_key = "zero" while the agent runs: the template parsed
// again must keep that option, or a key that was allowed to be absent
// fails every render from then on.
func TestTemplateEditKeepsMissingKeyZero(t *testing.T) {
	dir := t.TempDir()
	_, url := startServer(t, "dev", map[string]any{"port": 8080})
	tmpl := writeFile(t, dir, "app.tmpl", "A {{ .Settings.port }} [{{ .Settings.absent }}]\n")
	dest := filepath.Join(dir, "app.conf")
	cfg := loadConfig(t, dir, fmt.Sprintf(`
[source]
url = %q
env = "dev"
[[template]]
source = %q
destination = %q
missing_key = "zero"
`, url, tmpl, dest))
	log, logs := observedLogger()
	a, err := New(cfg, log, Options{})
	if err != nil {
		t.Fatal(err)
	}
	runAgent(t, a)
	eventually(t, 10*time.Second, fileHas(dest, "A 8080 []"))

	writeFile(t, dir, "app.tmpl", "B {{ .Settings.port }} [{{ .Settings.absent }}]\n")
	eventually(t, 10*time.Second, func() string {
		if msg := fileHas(dest, "B 8080 []")(); msg != "" {
			return msg + " (" + logText(logs) + ")"
		}
		return ""
	})
}

// TestFailedUpdateIsRetried lets an update fail for a reason outside the
// agent (a check that needs a file that is not there yet, as nginx -t
// needs a certificate), then removes the reason. The settings do not
// change, so the next event, reconnect or resync carries the same hash,
// which the stream drops as already handled: the machine stayed on the old
// files until the settings changed or someone sent SIGHUP. The agent now
// tries a failed update again after a delay (5 s, doubling).
func TestFailedUpdateIsRetried(t *testing.T) {
	dir := t.TempDir()
	_, url := startServer(t, "dev", map[string]any{"port": 8080})
	marker := filepath.Join(dir, "cert.pem")
	tmpl := writeFile(t, dir, "app.tmpl", "port {{ .Settings.port }}\n")
	dest := filepath.Join(dir, "app.conf")
	cfg := loadConfig(t, dir, fmt.Sprintf(`
[source]
url = %q
env = "dev"
resync_interval = "1s"
[[template]]
source = %q
destination = %q
reload = "app"
[[reload]]
name = "app"
check = "test -f %s"
command = "true"
`, url, tmpl, dest, marker))
	log, logs := observedLogger()
	a, err := New(cfg, log, Options{})
	if err != nil {
		t.Fatal(err)
	}
	runAgent(t, a)
	eventually(t, 10*time.Second, func() string {
		if logs.FilterMessage("update rejected").Len() == 0 {
			return "the first update was not rejected"
		}
		return ""
	})

	writeFile(t, dir, "cert.pem", "now it exists")
	eventually(t, 30*time.Second, fileHas(dest, "port 8080"))
}

// TestTemplateWatchFollowsSymlinkSwap updates a template the way
// Kubernetes updates a mounted ConfigMap: the template is a symlink
// through "..data", and an update swaps "..data" to a new directory by a
// rename. No event names the template itself; the agent must still see
// the new text. It must also see an edit of the file a symlink points to
// in another directory.
func TestTemplateWatchFollowsSymlinkSwap(t *testing.T) {
	dir := t.TempDir()
	_, url := startServer(t, "dev", map[string]any{"port": 8080})
	mount := filepath.Join(dir, "mount")
	for _, d := range []string{"v1", "v2"} {
		os.MkdirAll(filepath.Join(mount, d), 0o755)
	}
	writeFile(t, filepath.Join(mount, "v1"), "app.tmpl", "v1 {{ .Settings.port }}\n")
	writeFile(t, filepath.Join(mount, "v2"), "app.tmpl", "v2 {{ .Settings.port }}\n")
	must(t, os.Symlink("v1", filepath.Join(mount, "..data")))
	must(t, os.Symlink("..data/app.tmpl", filepath.Join(mount, "app.tmpl")))

	elsewhere := filepath.Join(dir, "elsewhere")
	os.MkdirAll(elsewhere, 0o755)
	writeFile(t, elsewhere, "other.tmpl", "o1 {{ .Settings.port }}\n")
	must(t, os.Symlink(filepath.Join(elsewhere, "other.tmpl"), filepath.Join(mount, "other.tmpl")))

	dest, other := filepath.Join(dir, "app.conf"), filepath.Join(dir, "other.conf")
	cfg := loadConfig(t, dir, fmt.Sprintf(`
[source]
url = %q
env = "dev"
[[template]]
source = %q
destination = %q
[[template]]
source = %q
destination = %q
`, url, filepath.Join(mount, "app.tmpl"), dest, filepath.Join(mount, "other.tmpl"), other))
	a, err := New(cfg, zap.NewNop(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	runAgent(t, a)
	eventually(t, 10*time.Second, fileHas(dest, "v1 8080"))

	must(t, os.Symlink("v2", filepath.Join(mount, "..data_tmp")))
	must(t, os.Rename(filepath.Join(mount, "..data_tmp"), filepath.Join(mount, "..data")))
	eventually(t, 10*time.Second, fileHas(dest, "v2 8080"))

	writeFile(t, elsewhere, "other.tmpl", "o2 {{ .Settings.port }}\n")
	eventually(t, 10*time.Second, fileHas(other, "o2 8080"))
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
