package agent

import (
	"context"
	"fmt"
	"io/fs"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sseconfd/sseconfd/configserver"
)

// An update renders only the templates that read a key it changed (or
// whose keys cannot be told); the others are left alone once their file
// is known by its stat, and are rendered again when their file was edited.
func TestOnlyTemplatesWhoseKeysChangedRender(t *testing.T) {
	dir := t.TempDir()
	text := baseConfig("http://127.0.0.1:1") +
		templateBlock(t, dir, "a.conf", "a={{.Settings.a}}\n", "") +
		templateBlock(t, dir, "b.conf", "b={{.Settings.b.port}}\n", "") +
		templateBlock(t, dir, "all.conf", "{{range $k, $v := .Settings}}{{$k}}\n{{end}}", "")
	a, _ := newTestAgent(t, dir, text)
	paths := func(names ...string) []string {
		var out []string
		for _, n := range names {
			out = append(out, filepath.Join(dir, n))
		}
		return out
	}
	apply := func(settings map[string]any, want []string) {
		t.Helper()
		res := applySettings(t, a, settings)
		slices.Sort(res.Rendered)
		slices.Sort(want)
		if !slices.Equal(res.Rendered, want) {
			t.Fatalf("rendered %q, want %q", res.Rendered, want)
		}
	}
	b := func(port int64) map[string]any { return map[string]any{"port": port} }

	apply(map[string]any{"a": "1", "b": b(80)}, paths("a.conf", "all.conf", "b.conf"))
	// A file written within the last 3 s is read to be compared, not
	// trusted by its stat (a write in the same clock tick would not show).
	time.Sleep(3100 * time.Millisecond)
	apply(map[string]any{"a": "2", "b": b(80)}, paths("a.conf", "all.conf", "b.conf"))
	apply(map[string]any{"a": "3", "b": b(80)}, paths("a.conf", "all.conf"))
	// a.conf was written just now, so it is rendered and compared again.
	apply(map[string]any{"a": "3", "b": b(80), "c": true}, paths("a.conf", "all.conf"))
	if msg := fileHas(filepath.Join(dir, "b.conf"), "b=80\n")(); msg != "" {
		t.Fatal(msg)
	}

	// Someone edits b.conf: the next update, though b did not change, puts it back.
	if err := os.WriteFile(filepath.Join(dir, "b.conf"), []byte("b=1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	apply(map[string]any{"a": "4", "b": b(80), "c": true}, paths("a.conf", "all.conf", "b.conf"))
	if msg := fileHas(filepath.Join(dir, "b.conf"), "b=80\n")(); msg != "" {
		t.Fatal(msg)
	}
	// b changes inside: rendered (and a.conf, written just now, again).
	apply(map[string]any{"a": "4", "b": b(81), "c": true}, paths("a.conf", "all.conf", "b.conf"))
	if msg := fileHas(filepath.Join(dir, "b.conf"), "b=81\n")(); msg != "" {
		t.Fatal(msg)
	}
}

// A template that changes a settings map in place (sprig's set) changes
// only its own copy: the template after it in the same update, the
// snapshot that is hashed, cached and kept to compare the next update's
// keys against, all see what the server sent.
func TestTemplateCannotChangeSettingsForOthers(t *testing.T) {
	dir := t.TempDir()
	text := baseConfig("http://127.0.0.1:1") +
		templateBlock(t, dir, "a.conf", `{{$_ := set .Settings.db "port" 1}}a={{.Settings.db.port}}`+"\n", "") +
		templateBlock(t, dir, "b.conf", "b={{.Settings.db.port}}\n", "")
	a, _ := newTestAgent(t, dir, text)
	snap, err := NewSnapshot(map[string]any{"db": map[string]any{"port": int64(5432)}}, "test")
	if err != nil {
		t.Fatal(err)
	}
	hash := snap.Hash
	if _, err := a.Apply(context.Background(), snap); err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]string{"a.conf": "a=1\n", "b.conf": "b=5432\n"} {
		if msg := fileHas(filepath.Join(dir, path), want)(); msg != "" {
			t.Error(msg)
		}
	}
	again, err := NewSnapshot(snap.Settings, "test")
	if err != nil || again.Hash != hash {
		t.Errorf("the snapshot's settings changed while it was applied (hash %s, was %s)", again.Hash, hash)
	}
}

// Whatever the agent learns between updates that changes a file's output
// or its metadata renders it again, though no settings key changed: an
// edited template file (the watch), a config reload that changes the
// file's mode or its missing_key. The files are older than the racy
// window, so only their stat vouches for them.
func TestEditsBesideTheSettingsRender(t *testing.T) {
	dir := t.TempDir()
	_, url := startServer(t, "dev", map[string]any{"a": "1"})
	dest := filepath.Join(dir, "a.conf")
	config := func(extra string) string {
		return baseConfig(url) + templateBlock(t, dir, "a.conf", "a={{.Settings.a}}\n", "") + extra
	}
	a, logs := newTestAgent(t, dir, config(""))
	runAgent(t, a)
	eventually(t, 10*time.Second, fileHas(dest, "a=1\n"))
	// Past the racy window, an update compares the file and remembers its
	// stat: from then on the stat vouches for it.
	trust := func(n int) {
		t.Helper()
		time.Sleep(3100 * time.Millisecond)
		postHTTP(t, url, "dev", map[string]any{"a": "1", "other": n})
		eventually(t, 10*time.Second, func() string {
			if got := len(logs.FilterMessage("update changed nothing").All()); got < n {
				return fmt.Sprintf("%d updates that changed nothing logged, want %d", got, n)
			}
			return ""
		})
	}
	trust(1)

	writeFile(t, dir, "a.conf.tmpl", "edited a={{.Settings.a}}\n")
	eventually(t, 10*time.Second, fileHas(dest, "edited a=1\n"))
	trust(2)

	// templateBlock writes the template text again: put the edit back after.
	writeFile(t, dir, "sseconfd.toml", config("mode = \"0600\"\n"))
	writeFile(t, dir, "a.conf.tmpl", "edited a={{.Settings.a}}\n")
	if _, err := a.ReloadConfig(context.Background(), filepath.Join(dir, "sseconfd.toml")); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, func() string {
		fi, err := os.Stat(dest)
		if err != nil || fi.Mode().Perm() != 0o600 {
			return fmt.Sprintf("%s: mode %v (%v), want 0600", dest, fi.Mode(), err)
		}
		return fileHas(dest, "edited a=1\n")()
	})
}

// A rejected update (render error), then one rolled back by a failing
// check, then one that restores the values of the last good update: the
// files always hold the last good update's output, though their stats
// are trusted and the keys of the last update equal the good ones.
func TestRejectedAndRolledBackUpdatesLeaveNoStaleFile(t *testing.T) {
	dir := t.TempDir()
	ok := filepath.Join(dir, "ok")
	text := baseConfig("http://127.0.0.1:1") +
		templateBlock(t, dir, "a.conf", "a={{.Settings.a}}\n", "checked") +
		templateBlock(t, dir, "b.conf",
			`b={{if eq .Settings.b "bad"}}{{fail "no"}}{{end}}{{.Settings.b}}`+"\n", "") +
		fmt.Sprintf("\n[[reload]]\nname = \"checked\"\ncommand = \"true\"\ncheck = \"test -f %s\"\n", ok)
	a, _ := newTestAgent(t, dir, text)
	apply := func(settings map[string]any, wantErr bool) {
		t.Helper()
		snap, err := NewSnapshot(settings, "test")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := a.Apply(context.Background(), snap); (err != nil) != wantErr {
			t.Fatalf("Apply(%v) = %v, want error %v", settings, err, wantErr)
		}
	}
	want := func(a, b string) {
		t.Helper()
		for path, content := range map[string]string{"a.conf": "a=" + a + "\n", "b.conf": "b=" + b + "\n"} {
			if msg := fileHas(filepath.Join(dir, path), content)(); msg != "" {
				t.Fatal(msg)
			}
		}
	}
	writeFile(t, dir, "ok", "")
	apply(map[string]any{"a": "1", "b": "1"}, false)
	time.Sleep(3100 * time.Millisecond)
	apply(map[string]any{"a": "1", "b": "1", "c": "1"}, false) // the stats are trusted from here
	want("1", "1")

	apply(map[string]any{"a": "2", "b": "bad"}, true) // render fails: nothing written
	want("1", "1")
	os.Remove(ok)
	apply(map[string]any{"a": "3", "b": "3"}, true) // check fails: both files put back
	want("1", "1")
	writeFile(t, dir, "ok", "")
	apply(map[string]any{"a": "1", "b": "1"}, false)
	want("1", "1")
	apply(map[string]any{"a": "4", "b": "1"}, false)
	want("4", "1")
}

// Once its stat is trusted, a destination that is deleted, or replaced by
// a symlink to another file, or rewritten in place with the same size, is
// rendered again by the next update although its keys did not change.
func TestTrustedDestinationReplacedRenders(t *testing.T) {
	dir := t.TempDir()
	dest := filepath.Join(dir, "a.conf")
	text := baseConfig("http://127.0.0.1:1") + templateBlock(t, dir, "a.conf", "a={{.Settings.a}}\n", "")
	a, _ := newTestAgent(t, dir, text)
	n := 0
	update := func() {
		t.Helper()
		n++
		applySettings(t, a, map[string]any{"a": "1", "other": int64(n)})
		if msg := fileHas(dest, "a=1\n")(); msg != "" {
			t.Fatal(msg)
		}
	}
	trusted := func() {
		t.Helper()
		time.Sleep(3100 * time.Millisecond)
		update()
	}
	update()
	trusted()

	os.Remove(dest)
	update()
	trusted()

	other := writeFile(t, dir, "other.conf", "a=2\n")
	os.Remove(dest)
	if err := os.Symlink(other, dest); err != nil {
		t.Fatal(err)
	}
	update()
	trusted()

	if err := os.WriteFile(dest, []byte("a=9\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	update()
}

// A reconnect resends the settings the agent already applied: that is no
// update (no render, no reload, the file untouched), and the next real
// change applies. Snapshots from the agent's stream are handed over before
// they are hashed, so the repeat is told by comparing settings.
func TestReconnectWithSameSettingsAppliesNothing(t *testing.T) {
	cs := configserver.New()
	cs.KeepAlive = 50 * time.Millisecond
	post(t, cs, "dev", map[string]any{"port": 1, "name": "x"})
	srv := httptest.NewServer(cs)
	t.Cleanup(srv.Close)
	dir := t.TempDir()
	counter := filepath.Join(dir, "reloads")
	a, logs := newTestAgent(t, dir, baseConfig(srv.URL)+
		templateBlock(t, dir, "a.conf", "port={{.Settings.port}} name={{.Settings.name}}\n", "app")+
		fmt.Sprintf("[[reload]]\nname = \"app\"\ncommand = \"echo x >> %s\"\n", counter))
	stop := runAgent(t, a)
	defer stop()
	dest := filepath.Join(dir, "a.conf")
	eventually(t, 10*time.Second, fileHas(dest, "port=1 name=x"))
	before, err := os.Stat(dest)
	if err != nil {
		t.Fatal(err)
	}

	for i := range 3 {
		srv.CloseClientConnections()
		eventually(t, 10*time.Second, func() string {
			if n := len(logged(logs, "connected")); n < i+2 {
				return fmt.Sprintf("%d connections, want %d", n, i+2)
			}
			return ""
		})
	}
	if mid, err := os.Stat(dest); err != nil || !os.SameFile(before, mid) ||
		!mid.ModTime().Equal(before.ModTime()) {
		t.Errorf("the file was rewritten by a reconnect (%v)", err)
	}
	post(t, cs, "dev", map[string]any{"port": 2, "name": "x"})
	eventually(t, 10*time.Second, fileHas(dest, "port=2 name=x"))

	if n := len(logged(logs, "update applied")); n != 2 {
		t.Errorf("%d updates applied over three reconnects and one change, want 2", n)
	}
	if data, _ := os.ReadFile(counter); strings.Count(string(data), "x") != 2 {
		t.Errorf("reload command ran %d times, want 2 (start, change)", strings.Count(string(data), "x"))
	}
	after, _ := os.Stat(dest)
	if os.SameFile(before, after) {
		t.Error("the change was not written as a new file")
	}
	if v := metricValue(promText(t, a), "sseconfd_events_received_total"); v != "2" {
		t.Errorf("events_received_total = %s, want 2: the resent settings counted as news", v)
	}
}

// With a signal target to hold, the destinations of the skipped templates
// are checked on the goroutine that holds it, during the fsync: a file
// found edited there is rendered, and the update staged again with it,
// before anything is renamed. The target gets one SIGHUP an update.
func TestSkippedFileEditedDuringHoldIsPutBack(t *testing.T) {
	dir := t.TempDir()
	aConf, bConf := filepath.Join(dir, "a.conf"), filepath.Join(dir, "b.conf")
	pidFile, records := legacyApp(t, dir, aConf)
	text := baseConfig("http://127.0.0.1:1") +
		templateBlock(t, dir, "a.conf", "a={{.Settings.x}}\n", "app") +
		templateBlock(t, dir, "b.conf", "b={{.Settings.y}}\n", "app") + legacyTarget(pidFile)
	a, _ := newTestAgent(t, dir, text)
	sent := 0
	apply := func(x int, rendered, changed []string) {
		t.Helper()
		res := applySettings(t, a, map[string]any{"x": int64(x), "y": int64(1)})
		slices.Sort(res.Rendered)
		slices.Sort(res.Changed)
		if !slices.Equal(res.Rendered, rendered) || !slices.Equal(res.Changed, changed) {
			t.Fatalf("x=%d: rendered %q, changed %q; want %q, %q", x, res.Rendered, res.Changed, rendered, changed)
		}
		sent++
		eventually(t, 10*time.Second, func() string {
			if n := sighups(records()); n != sent {
				return fmt.Sprintf("x=%d: legacyapp got %d SIGHUPs, want %d", x, n, sent)
			}
			return ""
		})
		eventually(t, time.Second, lastRecordHas(records, "SIGHUP", fmt.Sprintf("a=%d\n", x)))
	}
	both, onlyA := []string{aConf, bConf}, []string{aConf}

	apply(1, both, both)
	time.Sleep(3100 * time.Millisecond) // b.conf's stat can be trusted from now on
	apply(2, both, onlyA)               // b.conf is read once to take its signature
	apply(3, onlyA, onlyA)              // and then skipped
	if err := os.WriteFile(bConf, []byte("b=edited\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	apply(4, both, both) // found edited while the target is held: put back
	if msg := fileHas(bConf, "b=1\n")(); msg != "" {
		t.Fatal(msg)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, ".sseconfd.*")); len(left) > 0 {
		t.Fatalf("temporary files left: %q", left)
	}
}

// Skipped files drifting in every way at once, in one update: one edited
// beside the changed file (same target), one removed (with backup), one
// edited behind a symlink (a target with check_staged and check). Each is
// put back in the same update; each target reloads once; the symlink stays
// a symlink. An update whose Stage fails puts nothing back and leaves no
// temporary file; the next one does.
func TestSkippedFilesDriftingEveryWay(t *testing.T) {
	dir := t.TempDir()
	aConf, bConf, cConf, dConf := filepath.Join(dir, "a.conf"), filepath.Join(dir, "b.conf"),
		filepath.Join(dir, "c.conf"), filepath.Join(dir, "d.conf")
	real := filepath.Join(dir, "real", "c.real")
	if err := os.Mkdir(filepath.Dir(real), 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Dir(real), "c.real", "")
	if err := os.Symlink(real, cConf); err != nil {
		t.Fatal(err)
	}
	sub := filepath.Join(dir, "sub")
	if err := os.Mkdir(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	checks, reloads := filepath.Join(dir, "checks"), filepath.Join(dir, "reloads")
	pidFile, records := legacyApp(t, dir, aConf)
	text := baseConfig("http://127.0.0.1:1") +
		templateBlock(t, dir, "a.conf", "a={{.Settings.x}}\n", "app") +
		templateBlock(t, dir, "b.conf", "b={{.Settings.y}}\n", "app") +
		templateBlock(t, dir, "c.conf", "c={{.Settings.y}}\n", "checked") +
		templateBlock(t, dir, "d.conf", "d={{.Settings.y}}\n", "") + "backup = true\n" +
		templateBlock(t, dir, "sub/e.conf", "e={{.Settings.x}}\n", "") + fmt.Sprintf(`
[[reload]]
name = "app"
signal = "SIGHUP"
pid_file = %q
process_name = "legacyapp"

[[reload]]
name = "checked"
check_staged = 'grep -q "^c=1$" "$SSECONFD_STAGED" && echo staged >> %s'
check = 'echo check >> %s'
command = 'echo reload >> %s'
`, pidFile, checks, checks, reloads)
	a, _ := newTestAgent(t, dir, text)
	hups := 0
	apply := func(x int, wantRendered []string, wantErr bool) {
		t.Helper()
		snap, err := NewSnapshot(map[string]any{"x": int64(x), "y": int64(1)}, "test")
		if err != nil {
			t.Fatal(err)
		}
		res, err := a.Apply(context.Background(), snap)
		if (err != nil) != wantErr {
			t.Fatalf("x=%d: err = %v, want an error: %v", x, err, wantErr)
		}
		if left, _ := filepath.Glob(filepath.Join(dir, "*", ".sseconfd.*")); len(left) > 0 {
			t.Fatalf("x=%d: temporary files left: %q", x, left)
		}
		if left, _ := filepath.Glob(filepath.Join(dir, ".sseconfd.*")); len(left) > 0 {
			t.Fatalf("x=%d: temporary files left: %q", x, left)
		}
		if wantErr {
			return
		}
		slices.Sort(res.Rendered)
		if !slices.Equal(res.Rendered, wantRendered) {
			t.Fatalf("x=%d: rendered %q, want %q", x, res.Rendered, wantRendered)
		}
		hups++
		eventually(t, 10*time.Second, func() string {
			if n := sighups(records()); n != hups {
				return fmt.Sprintf("x=%d: legacyapp got %d SIGHUPs, want %d", x, n, hups)
			}
			return ""
		})
	}
	eConf := filepath.Join(sub, "e.conf")
	all := []string{aConf, bConf, cConf, dConf, eConf}
	changed := []string{aConf, eConf}

	apply(1, all, false)
	time.Sleep(3100 * time.Millisecond) // the stats can be trusted from now on
	apply(2, all, false)                // read once to take their signatures
	apply(3, changed, false)            // and then skipped
	for _, f := range []string{bConf, real} {
		if err := os.WriteFile(f, []byte("edited\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Remove(dConf); err != nil {
		t.Fatal(err)
	}
	apply(4, all, false)
	for path, want := range map[string]string{aConf: "a=4\n", bConf: "b=1\n", cConf: "c=1\n", dConf: "d=1\n"} {
		if msg := fileHas(path, want)(); msg != "" {
			t.Fatal(msg)
		}
	}
	if fi, err := os.Lstat(cConf); err != nil || fi.Mode()&fs.ModeSymlink == 0 {
		t.Fatalf("c.conf is no longer a symlink: %v", err)
	}
	if b, _ := os.ReadFile(checks); string(b) != "staged\ncheck\nstaged\ncheck\n" {
		t.Fatalf("check_staged and check ran %q: want them once for each update that changed c", b)
	}
	if b, _ := os.ReadFile(reloads); string(b) != "reload\nreload\n" {
		t.Fatalf("the checked target reloaded %q: want once at the first update, once now", b)
	}

	// A failed Stage (e's directory is gone) installs nothing, an edited
	// skipped file included; the next update puts it back.
	if err := os.WriteFile(bConf, []byte("edited again\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(sub); err != nil {
		t.Fatal(err)
	}
	apply(5, nil, true)
	if msg := fileHas(aConf, "a=4\n")(); msg != "" {
		t.Fatal(msg)
	}
	if err := os.Mkdir(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	apply(6, all, false) // c and d too: written at x=4, their stats are not trusted yet
	if msg := fileHas(bConf, "b=1\n")(); msg != "" {
		t.Fatal(msg)
	}
	eventually(t, 10*time.Second, lastRecordHas(records, "SIGHUP", "a=6\n"))
}
