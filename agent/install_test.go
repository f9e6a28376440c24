package agent

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/zap/zaptest/observer"

	"github.com/sseconfd/sseconfd/render"
)

// installCase is a directory with templates "<name>.tmpl" that render
// "<name> {{.Settings.v}}", one reload target "app" whose check fails
// while the file "fail" exists and whose reload appends to "reloads".
type installCase struct {
	dir     string
	dests   string // directory of the destinations; dir unless a test moves them
	reloads string
	fail    string
}

func newInstallCase(t *testing.T) *installCase {
	t.Helper()
	dir := t.TempDir()
	return &installCase{dir: dir, dests: dir, reloads: filepath.Join(dir, "reloads"),
		fail: filepath.Join(dir, "fail")}
}

// path returns the destination of template name.
func (c *installCase) path(name string) string { return filepath.Join(c.dests, name+".conf") }

// config returns an agent config for url with one [[template]] per name;
// extra is TOML added to each template.
func (c *installCase) config(t *testing.T, url, extra string, names ...string) *Config {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "[source]\nurl = %q\nenv = \"dev\"\n[backoff]\nmin = \"50ms\"\nmax = \"200ms\"\n", url)
	fmt.Fprintf(&b, "[cache]\npath = %q\n", filepath.Join(c.dir, "cache", "dev.json"))
	for _, n := range names {
		writeFile(t, c.dir, n+".tmpl", n+" {{.Settings.v}}\n")
		fmt.Fprintf(&b, "[[template]]\nsource = %q\ndestination = %q\nreload = \"app\"\n%s\n",
			filepath.Join(c.dir, n+".tmpl"), c.path(n), extra)
	}
	fmt.Fprintf(&b, "[[reload]]\nname = \"app\"\n")
	fmt.Fprintf(&b, "check = 'if [ -e %s ]; then echo \"app: bad directive on line 7\" >&2; exit 1; fi'\n",
		c.fail)
	fmt.Fprintf(&b, "command = 'echo reload >> %s'\n", c.reloads)
	return loadConfig(t, c.dir, b.String())
}

// agent builds an Agent for cfg with an observed logger.
func (c *installCase) agent(t *testing.T, cfg *Config) (*Agent, *observer.ObservedLogs) {
	t.Helper()
	log, logs := observedLogger()
	a, err := New(cfg, log, Options{})
	if err != nil {
		t.Fatal(err)
	}
	return a, logs
}

// reloadCount returns how many times the reload command ran.
func (c *installCase) reloadCount() int {
	b, _ := os.ReadFile(c.reloads)
	return strings.Count(string(b), "reload\n")
}

func snapshot(t *testing.T, v string) Snapshot {
	t.Helper()
	s, err := DecodeSettings([]byte(fmt.Sprintf(`{"v": %q}`, v)), "stream")
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func wantFile(t *testing.T, path, content string) {
	t.Helper()
	if msg := fileHas(path, content)(); msg != "" {
		t.Error(msg)
	} else if b, _ := os.ReadFile(path); string(b) != content {
		t.Errorf("%s holds %q, want exactly %q", path, b, content)
	}
}

func wantMode(t *testing.T, path string, mode fs.FileMode, uid int) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != mode {
		t.Errorf("%s has mode %04o, want %04o", path, fi.Mode().Perm(), mode)
	}
	if got := int(fi.Sys().(*syscall.Stat_t).Uid); uid >= 0 && got != uid {
		t.Errorf("%s is owned by uid %d, want %d", path, got, uid)
	}
}

// logged returns the entries with message msg.
func logged(logs *observer.ObservedLogs, msg string) []observer.LoggedEntry {
	return logs.FilterMessage(msg).All()
}

// TestCheckFailureRollsBack applies an update of three files, one of them
// new, whose check fails: all three are put back as they were, nothing is
// reloaded, the check's output is logged, and the next update applies.
func TestCheckFailureRollsBack(t *testing.T) {
	c := newInstallCase(t)
	a, logs := c.agent(t, c.config(t, "http://127.0.0.1:1", "", "a", "b", "c"))
	writeFile(t, c.dir, "a.conf", "a old\n")
	writeFile(t, c.dir, "b.conf", "b old\n")
	os.Chmod(c.path("b"), 0o600)
	uid := -1
	if os.Geteuid() == 0 {
		os.Chown(c.path("a"), 65534, 65534)
		uid = 65534
	} else {
		t.Log("owner restore not tested: needs root (CI runs the tests as root)")
	}
	writeFile(t, c.dir, "fail", "")

	a.applyAndLog(context.Background(), snapshot(t, "v1"))

	wantFile(t, c.path("a"), "a old\n")
	wantMode(t, c.path("a"), 0o644, uid)
	wantFile(t, c.path("b"), "b old\n")
	wantMode(t, c.path("b"), 0o600, -1)
	if _, err := os.Stat(c.path("c")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("new %s survived the rollback: %v", c.path("c"), err)
	}
	if n := c.reloadCount(); n != 0 {
		t.Errorf("reloaded %d times after a failed check, want 0", n)
	}
	rejected := logged(logs, "update rejected")
	if len(rejected) != 1 ||
		!strings.Contains(rejected[0].ContextMap()["error"].(string), "bad directive on line 7") {
		t.Errorf("logged %v, want one \"update rejected\" quoting the check's output", rejected)
	}

	os.Remove(c.fail)
	a.applyAndLog(context.Background(), snapshot(t, "v2"))
	for _, n := range []string{"a", "b", "c"} {
		wantFile(t, c.path(n), n+" v2\n")
	}
	if n := c.reloadCount(); n != 1 {
		t.Errorf("reloaded %d times after the next update, want 1", n)
	}
}

// TestMetadataDriftNoReload changes only the mode (and owner, as root) of
// an applied file: the same update fixes them without rewriting the file
// and without a reload.
func TestMetadataDriftNoReload(t *testing.T) {
	c := newInstallCase(t)
	extra := "mode = \"0640\""
	uid := -1
	if os.Geteuid() == 0 {
		extra += "\nuser = \"65534\"\ngroup = \"65534\""
		uid = 65534
	} else {
		t.Log("owner drift not tested: needs root (CI runs the tests as root)")
	}
	a, logs := c.agent(t, c.config(t, "http://127.0.0.1:1", extra, "a"))
	s := snapshot(t, "v1")
	if _, err := a.Apply(context.Background(), s); err != nil {
		t.Fatal(err)
	}
	dest := c.path("a")
	os.Chmod(dest, 0o666)
	os.Chown(dest, 0, 0)
	past := time.Now().Add(-time.Hour).Truncate(time.Second)
	os.Chtimes(dest, past, past)
	before, _ := os.Stat(dest)

	res, err := a.Apply(context.Background(), s)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Changed) != 0 || len(res.Reloaded) != 0 {
		t.Errorf("Apply = changed %v, reloaded %v; want neither for a metadata drift", res.Changed, res.Reloaded)
	}
	wantMode(t, dest, 0o640, uid)
	after, _ := os.Stat(dest)
	if !os.SameFile(before, after) || !after.ModTime().Equal(before.ModTime()) {
		t.Errorf("%s was rewritten to fix its metadata (inode or mtime changed)", dest)
	}
	if n := c.reloadCount(); n != 1 {
		t.Errorf("reloaded %d times, want 1 (the first apply only)", n)
	}
	if got := logged(logs, render.NoticeMetadataFixed); len(got) != 1 {
		t.Errorf("logged %d %q warnings, want 1", len(got), render.NoticeMetadataFixed)
	}
}

func TestBackupKeepsPreviousVersion(t *testing.T) {
	c := newInstallCase(t)
	a, _ := c.agent(t, c.config(t, "http://127.0.0.1:1", "backup = true", "a"))
	for _, v := range []string{"v1", "v2", "v3"} {
		if _, err := a.Apply(context.Background(), snapshot(t, v)); err != nil {
			t.Fatal(err)
		}
	}
	wantFile(t, c.path("a"), "a v3\n")
	wantFile(t, filepath.Join(c.dir, ".a.conf.sseconfd-backup"), "a v2\n")
}

func TestCacheWrittenAfterApply(t *testing.T) {
	c := newInstallCase(t)
	cfg := c.config(t, "http://127.0.0.1:1", "", "a")
	a, _ := c.agent(t, cfg)
	s := snapshot(t, "v1")
	if _, err := a.Apply(context.Background(), s); err != nil {
		t.Fatal(err)
	}

	fi, err := os.Stat(cfg.Cache.Path)
	if err != nil {
		t.Fatalf("no cache after an applied update: %v", err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("cache has mode %04o, want 0600", fi.Mode().Perm())
	}
	got, err := ReadCache(cfg.Cache.Path, "dev")
	if err != nil || got.Hash != s.Hash {
		t.Errorf("ReadCache = %s, %v; want hash %s", got.ShortHash(), err, s.ShortHash())
	}
	if _, err := ReadCache(cfg.Cache.Path, "prod"); err == nil || !strings.Contains(err.Error(), "prod") {
		t.Errorf("ReadCache for another env: err = %v, want one naming the env", err)
	}
	entries, _ := os.ReadDir(filepath.Dir(cfg.Cache.Path))
	if len(entries) != 1 {
		t.Errorf("cache directory holds %d files, want only the cache", len(entries))
	}
}

// closedURL returns the URL of a loopback port nothing listens on.
func closedURL(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return "http://" + addr
}

// TestStartFromCache starts the agent with the server unreachable and a
// cache present: it renders from the cache, logs the cache's age, and
// renders again a destination it finds empty.
func TestStartFromCache(t *testing.T) {
	c := newInstallCase(t)
	cfg := c.config(t, closedURL(t), "", "a", "b")
	s := snapshot(t, "cached")
	s.Time = time.Now().Add(-2 * time.Hour)
	if err := WriteCache(cfg.Cache.Path, "dev", s); err != nil {
		t.Fatal(err)
	}
	writeFile(t, c.dir, "a.conf", "")           // empty after a crash
	writeFile(t, c.dir, "b.conf", "b cached\n") // already right
	a, logs := c.agent(t, cfg)

	runAgent(t, a)
	eventually(t, 10*time.Second, fileHas(c.path("a"), "a cached\n"))
	wantFile(t, c.path("b"), "b cached\n")
	entries := logged(logs, "server unreachable, rendering from cache")
	if len(entries) != 1 {
		t.Fatalf("logged %d \"rendering from cache\" entries, want 1", len(entries))
	}
	if age, ok := entries[0].ContextMap()["age"].(time.Duration); !ok || age < 2*time.Hour {
		t.Errorf("logged cache age %v, want about 2h", entries[0].ContextMap()["age"])
	}
}

func TestCorruptCacheIgnored(t *testing.T) {
	c := newInstallCase(t)
	cfg := c.config(t, closedURL(t), "", "a")
	os.MkdirAll(filepath.Dir(cfg.Cache.Path), 0o700)
	writeFile(t, filepath.Dir(cfg.Cache.Path), "dev.json", `{"env":"dev","settings":{"v":`)
	writeFile(t, c.dir, "a.conf", "a old\n")
	a, logs := c.agent(t, cfg)

	stop := runAgent(t, a)
	eventually(t, 10*time.Second, func() string {
		if len(logged(logs, "cache ignored")) == 0 {
			return "no \"cache ignored\" log"
		}
		return ""
	})
	stop()
	wantFile(t, c.path("a"), "a old\n")
	err := logged(logs, "cache ignored")[0].ContextMap()["error"]
	if !strings.Contains(fmt.Sprint(err), "corrupt") {
		t.Errorf("cache ignored because %v, want it called corrupt", err)
	}
}

// TestStaleTempsRemovedAtStart leaves temporary files beside a
// destination, beside a symlink's target and beside the cache.
func TestStaleTempsRemovedAtStart(t *testing.T) {
	c := newInstallCase(t)
	cfg := c.config(t, closedURL(t), "", "a", "b")
	real := filepath.Join(c.dir, "real")
	os.Mkdir(real, 0o755)
	writeFile(t, real, "b.conf", "b old\n")
	os.Symlink(filepath.Join(real, "b.conf"), c.path("b"))
	cacheDir := filepath.Dir(cfg.Cache.Path)
	os.MkdirAll(cacheDir, 0o700)
	stale := []string{
		writeFile(t, c.dir, ".sseconfd.a.conf.12345", "x"),
		writeFile(t, real, ".sseconfd.b.conf.67890", "x"),
		writeFile(t, cacheDir, ".sseconfd.dev.json.1", "x"),
	}
	backup := writeFile(t, c.dir, ".a.conf.sseconfd-backup", "a older\n")
	a, logs := c.agent(t, cfg)

	runAgent(t, a)()
	for _, p := range stale {
		if _, err := os.Stat(p); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("stale %s survived the start: %v", p, err)
		}
	}
	wantFile(t, backup, "a older\n")
	if n := len(logged(logs, "removed stale temporary file")); n != len(stale) {
		t.Errorf("logged %d removals, want %d", n, len(stale))
	}
}

// TestRestoreDrift edits and deletes a destination behind the agent's back:
// each is restored, with a warning naming it, without a reload; the
// agent's own writes for a new update trigger no restore.
func TestRestoreDrift(t *testing.T) {
	c := newInstallCase(t)
	cs, url := startServer(t, "dev", map[string]any{"v": "v1"})
	cfg := c.config(t, url, "restore_drift = true", "a", "b")
	real := filepath.Join(c.dir, "real")
	os.Mkdir(real, 0o755)
	writeFile(t, real, "b.conf", "")
	os.Symlink(filepath.Join(real, "b.conf"), c.path("b"))
	a, logs := c.agent(t, cfg)
	runAgent(t, a)
	dest := c.path("a")
	eventually(t, 10*time.Second, fileHas(dest, "a v1\n"))
	eventually(t, 10*time.Second, fileHas(c.path("b"), "b v1\n"))
	warnings := func() int { return len(logged(logs, "destination changed by someone else; restoring it")) }

	start := time.Now()
	writeFile(t, c.dir, "a.conf", "edited by hand\n")
	eventually(t, 10*time.Second, fileHas(dest, "a v1\n"))
	t.Logf("edit restored after %s", time.Since(start).Round(time.Millisecond))

	start = time.Now()
	os.Remove(dest)
	eventually(t, 10*time.Second, fileHas(dest, "a v1\n"))
	t.Logf("delete restored after %s", time.Since(start).Round(time.Millisecond))

	// Through a symlink: an edit of the file it points to.
	writeFile(t, real, "b.conf", "edited by hand\n")
	eventually(t, 10*time.Second, fileHas(c.path("b"), "b v1\n"))
	if fi, err := os.Lstat(c.path("b")); err != nil || fi.Mode()&fs.ModeSymlink == 0 {
		t.Errorf("%s is no longer a symlink after the restore: %v, %v", c.path("b"), fi, err)
	}

	eventually(t, 5*time.Second, func() string {
		if n := warnings(); n != 3 {
			return fmt.Sprintf("%d restore warnings, want 3", n)
		}
		return ""
	})
	var named []string
	for _, e := range logged(logs, "destination changed by someone else; restoring it") {
		named = append(named, fmt.Sprint(e.ContextMap()["file"]))
	}
	if want := []string{dest, dest, c.path("b")}; fmt.Sprint(named) != fmt.Sprint(want) {
		t.Errorf("restore warnings name %v, want %v", named, want)
	}

	post(t, cs, "dev", map[string]any{"v": "v2"})
	eventually(t, 10*time.Second, fileHas(c.path("b"), "b v2\n"))
	a.Do(context.Background(), func() {}) // let any drift check of the agent's own writes run
	time.Sleep(3 * driftDelay)
	a.Do(context.Background(), func() {})
	if n := warnings(); n != 3 {
		t.Errorf("%d restore warnings after the agent's own update, want still 3", n)
	}
	if n := c.reloadCount(); n != 2 {
		t.Errorf("reloaded %d times, want 2 (one per update, none per restore)", n)
	}
}

// TestRestoreDriftKeepsBackup restores an edited destination whose
// template also sets backup: the backup still holds the previous version.
func TestRestoreDriftKeepsBackup(t *testing.T) {
	c := newInstallCase(t)
	cs, url := startServer(t, "dev", map[string]any{"v": "v1"})
	a, _ := c.agent(t, c.config(t, url, "restore_drift = true\nbackup = true", "a"))
	runAgent(t, a)
	dest := c.path("a")
	eventually(t, 10*time.Second, fileHas(dest, "a v1\n"))
	post(t, cs, "dev", map[string]any{"v": "v2"})
	eventually(t, 10*time.Second, fileHas(dest, "a v2\n"))

	writeFile(t, c.dir, "a.conf", "edited by hand\n")
	eventually(t, 10*time.Second, fileHas(dest, "a v2\n"))
	wantFile(t, filepath.Join(c.dir, ".a.conf.sseconfd-backup"), "a v1\n")
}

// While Run runs, each destination it wrote has a spare temporary file
// beside it for the next update (render.PrepareSpares), which the next
// update writes; when Run returns, none is left.
func TestRunKeepsSparesUntilItStops(t *testing.T) {
	cs, url := startServer(t, "dev", map[string]any{"v": "1"})
	dir := t.TempDir()
	dest := filepath.Join(dir, "app.conf")
	a, _ := newTestAgent(t, dir, baseConfig(url)+templateBlock(t, dir, "app.conf", "v={{.Settings.v}}\n", ""))
	stop := runAgent(t, a)
	temps := func() []string {
		left, _ := filepath.Glob(filepath.Join(dir, ".sseconfd.app.conf.*"))
		return left
	}
	spareIs := func(want int) func() string {
		return func() string {
			if got := temps(); len(got) != want || (want == 1 && !slices.Equal(got, render.SparePaths())) {
				return fmt.Sprintf("temporary files %q, spares %q; want %d spare", got, render.SparePaths(), want)
			}
			return ""
		}
	}
	eventually(t, 5*time.Second, fileHas(dest, "v=1\n"))
	eventually(t, 5*time.Second, spareIs(1))
	first := temps()[0]
	post(t, cs, "dev", map[string]any{"v": "2"})
	eventually(t, 5*time.Second, fileHas(dest, "v=2\n"))
	eventually(t, 5*time.Second, func() string {
		if got := temps(); len(got) != 1 || got[0] == first {
			return fmt.Sprintf("temporary files %q: want a new spare (the first, %s, used up)", got, first)
		}
		return ""
	})
	stop()
	if left := temps(); len(left) > 0 {
		t.Fatalf("after Run returned: %q left", left)
	}
}
