package agent

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

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
	txn, err := render.Stage([]render.File{{Path: filepath.Join(dir, "b.conf"), Content: []byte("b\n"), UID: -1, GID: -1}})
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
