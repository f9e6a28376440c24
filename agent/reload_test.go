package agent

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/zap/zaptest/observer"

	"github.com/sseconfd/sseconfd/render"
)

// startProcess starts name with args as a child of the test, stopped with
// SIGKILL (and reaped) at cleanup.
func startProcess(t testing.TB, name string, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(name, args...)
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	return cmd
}

// alive reports whether pid is a running process (not gone, not a zombie).
func alive(pid int) bool {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	s := string(stat)
	i := strings.LastIndexByte(s, ')')
	return i >= 0 && i+2 < len(s) && s[i+2] != 'Z'
}

// sighupContents returns the contents legacyapp read on each SIGHUP.
func sighupContents(records []legacyRecord) []string {
	var out []string
	for _, r := range records {
		if r.Reason == "SIGHUP" {
			out = append(out, r.Content)
		}
	}
	return out
}

// lastRecordHas returns a cond for eventually: legacyapp's newest read of
// its file, for reason, saw want.
func lastRecordHas(records func() []legacyRecord, reason, want string) func() string {
	return func() string {
		recs := records()
		for i := len(recs) - 1; i >= 0; i-- {
			if recs[i].Reason == reason {
				if recs[i].Content == want {
					return ""
				}
				return fmt.Sprintf("last %s read saw %q, want %q", reason, recs[i].Content, want)
			}
		}
		return fmt.Sprintf("no %s read yet in %d records", reason, len(recs))
	}
}

// reloadsLogged counts the reloads of target the agent reported done.
func reloadsLogged(logs *observer.ObservedLogs, target string) int {
	n := 0
	for _, e := range logs.AllUntimed() {
		switch e.Message {
		case "update applied":
			for _, f := range e.Context {
				if f.Key == "reloaded" && strings.Contains(fmt.Sprint(f.Interface), target) {
					n++
				}
			}
		case "deferred reload done":
			if e.ContextMap()["target"] == target {
				n++
			}
		}
	}
	return n
}

func TestConfirmPID(t *testing.T) {
	dir := t.TempDir()
	sleep := startProcess(t, "sleep", "600")

	// A copy of sleep with a name longer than comm's 15 bytes: only the
	// executable's base name can match it.
	long := filepath.Join(dir, "a-very-long-program-name")
	data, err := os.ReadFile(sleep.Path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(long, data, 0o755); err != nil {
		t.Fatal(err)
	}
	longSleep := startProcess(t, long, "600")

	gone := exec.Command("true")
	if err := gone.Run(); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name        string
		content     string // "" with noFile: no pid file at all
		noFile      bool
		processName string
		wantPID     int
		wantErr     string
	}{
		{name: "missing", noFile: true, wantErr: "no such file"},
		{name: "malformed", content: "12ab\n", wantErr: "does not hold a pid"},
		{name: "empty", content: "", wantErr: "does not hold a pid"},
		{name: "zero", content: "0\n", wantErr: "never a target"},
		{name: "init", content: "1\n", wantErr: "never a target"},
		{name: "own", content: strconv.Itoa(os.Getpid()), wantErr: "this agent"},
		{name: "gone", content: strconv.Itoa(gone.Process.Pid), wantErr: "stale pid file"},
		{name: "other program", content: strconv.Itoa(sleep.Process.Pid),
			processName: "nginx", wantErr: `not "nginx"`},
		{name: "comm matches", content: strconv.Itoa(sleep.Process.Pid), processName: "sleep",
			wantPID: sleep.Process.Pid},
		{name: "no name check", content: strconv.Itoa(sleep.Process.Pid) + "\n", wantPID: sleep.Process.Pid},
		{name: "exe base name matches", content: strconv.Itoa(longSleep.Process.Pid),
			processName: "a-very-long-program-name", wantPID: longSleep.Process.Pid},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			pidFile := filepath.Join(dir, tc.name+".pid")
			if !tc.noFile {
				writeFile(t, dir, tc.name+".pid", tc.content)
			}
			target := &Target{cfg: ReloadConfig{Name: "t", PIDFile: pidFile, ProcessName: tc.processName}}
			pid, err := target.confirmPID()
			if tc.wantErr != "" {
				if !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("confirmPID() = %d, %v; want ErrRefused containing %q", pid, err, tc.wantErr)
				}
				return
			}
			if err != nil || pid != tc.wantPID {
				t.Fatalf("confirmPID() = %d, %v; want %d", pid, err, tc.wantPID)
			}
		})
	}
}

func TestParseSignal(t *testing.T) {
	tests := []struct {
		name    string
		want    syscall.Signal
		wantErr bool
	}{
		{name: "SIGHUP", want: syscall.SIGHUP},
		{name: "SIGUSR1", want: syscall.SIGUSR1},
		{name: "usr2", want: syscall.SIGUSR2},
		{name: "SIGWINCH", want: syscall.SIGWINCH},
		{name: "SIGBOGUS", wantErr: true},
		{name: "", wantErr: true},
	}
	for _, tc := range tests {
		got, err := ParseSignal(tc.name)
		if (err != nil) != tc.wantErr || got != tc.want {
			t.Errorf("ParseSignal(%q) = %v, %v; want %v, error %v", tc.name, got, err, tc.want, tc.wantErr)
		}
	}
}

func TestReloadConfigValidation(t *testing.T) {
	tests := []struct {
		name    string
		reload  string
		apply   string
		wantErr string // "" = valid
	}{
		{name: "signal", reload: `signal = "SIGUSR1"` + "\npid_file = \"/run/x.pid\""},
		{name: "unknown signal", reload: `signal = "SIGNOPE"` + "\npid_file = \"/run/x.pid\"",
			wantErr: `unknown signal "SIGNOPE"`},
		{name: "exec", reload: `exec = "sleep 1"` + "\nmax_restarts = 0\nkill_timeout = \"1s\""},
		{name: "exec and command", reload: `exec = "sleep 1"` + "\ncommand = \"true\"", wantErr: "set only one of"},
		{name: "nothing", reload: `check = "true"`, wantErr: "set command, exec"},
		{name: "restarts not a number", reload: `exec = "sleep 1"` + "\nmax_restarts = \"many\"",
			wantErr: "max_restarts"},
		{name: "negative restarts", reload: `exec = "sleep 1"` + "\nmax_restarts = -1", wantErr: "max_restarts"},
		{name: "check_staged",
			reload: `command = "true"` + "\ncheck_staged = \"test -s \\\"$SSECONFD_STAGED\\\"\""},
		{name: "quiescence", reload: `command = "true"`, apply: "wait_min = \"1s\"\nwait_max = \"3s\""},
		{name: "wait_max too short", reload: `command = "true"`,
			apply: "wait_min = \"2s\"\nwait_max = \"1s\"", wantErr: "apply.wait_max"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			text := baseConfig("http://127.0.0.1:1") + "\n[apply]\n" + tc.apply + `
[[template]]
source = "/dev/null"
destination = "/tmp/x"
reload = "t"

[[reload]]
name = "t"
` + tc.reload + "\n"
			_, err := ParseConfig("test.toml", []byte(text))
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("ParseConfig: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("ParseConfig error = %v, want it to contain %q", err, tc.wantErr)
			}
		})
	}
}

func TestQuietUntil(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	sec := func(n float64) time.Time { return t0.Add(time.Duration(n * float64(time.Second))) }
	tests := []struct {
		name        string
		first, last time.Time
		want        time.Time
	}{
		{name: "single update waits wait_min", first: sec(0), last: sec(0), want: sec(1)},
		{name: "newer update extends the wait", first: sec(0), last: sec(2), want: sec(3)},
		{name: "never past wait_max", first: sec(0), last: sec(3.5), want: sec(4)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := quietUntil(tc.first, tc.last, time.Second, 4*time.Second)
			if !got.Equal(tc.want) {
				t.Errorf("quietUntil(%s, %s, 1s, 4s) = %s, want %s", tc.first, tc.last, got, tc.want)
			}
		})
	}
}

func TestRunCommand(t *testing.T) {
	tests := []struct {
		name    string
		command string
		env     []string
		wantOut string
		wantErr string
	}{
		{name: "success", command: "echo one; echo two >&2", wantOut: "one | two"},
		{name: "env", command: `echo "$SSECONFD_STAGED"`, env: []string{"SSECONFD_STAGED=/x/y"}, wantOut: "/x/y"},
		{name: "exit status and excerpt", command: "echo bad line; exit 3", wantErr: "exit status 3: bad line"},
		{name: "last lines only", command: "for i in 1 2 3 4 5 6 7; do echo l$i; done; exit 1",
			wantErr: "l3 | l4 | l5 | l6 | l7"},
		{name: "no output", command: "exit 2", wantErr: "exit status 2: no output"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, err := runCommand(context.Background(), tc.command, 10*time.Second, tc.env, nil)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("runCommand(%q) error = %v, want %q", tc.command, err, tc.wantErr)
				}
				return
			}
			if err != nil || out != tc.wantOut {
				t.Fatalf("runCommand(%q) = %q, %v; want %q", tc.command, out, err, tc.wantOut)
			}
		})
	}
}

// readPID waits for path to hold a pid and returns it.
func readPID(t testing.TB, path string) int {
	t.Helper()
	var pid int
	eventually(t, 10*time.Second, func() string {
		b, err := os.ReadFile(path)
		if err != nil {
			return err.Error()
		}
		if pid, err = strconv.Atoi(strings.TrimSpace(string(b))); err != nil {
			return fmt.Sprintf("%s holds %q", path, b)
		}
		return ""
	})
	return pid
}

func TestRunCommandTimeoutKillsGroup(t *testing.T) {
	pidFile := filepath.Join(t.TempDir(), "bg.pid")
	command := fmt.Sprintf("sleep 600 & echo $! > %s; wait", pidFile)

	_, err := runCommand(context.Background(), command, 300*time.Millisecond, nil, nil)
	if err == nil || !strings.Contains(err.Error(), "timed out after 300ms") {
		t.Fatalf("runCommand(%q) error = %v, want a timeout", command, err)
	}
	pid := readPID(t, pidFile)
	eventually(t, 10*time.Second, func() string {
		if alive(pid) {
			return fmt.Sprintf("background sleep %d of the timed-out command is still alive", pid)
		}
		return ""
	})
}

func TestRunCommandBackgroundHolderReturns(t *testing.T) {
	pidFile := filepath.Join(t.TempDir(), "bg.pid")
	command := fmt.Sprintf("sleep 600 & echo $! > %s", pidFile)
	done := make(chan error, 1)
	go func() {
		_, err := runCommand(context.Background(), command, time.Hour, nil, nil)
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("runCommand(%q) = %v, want success", command, err)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("runCommand(%q) still running after 10s: a background process holding its output hangs it",
			command)
	}
	pid := readPID(t, pidFile)
	if !alive(pid) {
		t.Errorf("background sleep %d was killed; a daemon a command starts must survive", pid)
	}
	syscall.Kill(pid, syscall.SIGKILL)
}

// atLeast returns a cond for eventually: count() reaches n.
func atLeast(count func() int, n int, what string) func() string {
	return func() string {
		if got := count(); got < n {
			return fmt.Sprintf("%d %s, want %d", got, what, n)
		}
		return ""
	}
}

// logHas returns a cond for eventually: an entry with msg was logged.
func logHas(logs *observer.ObservedLogs, msg string) func() string {
	return func() string {
		if len(logged(logs, msg)) == 0 {
			return fmt.Sprintf("no %q logged yet", msg)
		}
		return ""
	}
}

func TestLegacyAppOneSIGHUPPerUpdate(t *testing.T) {
	dir := t.TempDir()
	cs, url := startServer(t, "dev", map[string]any{"x": 1, "y": 1})
	appFile := filepath.Join(dir, "a.conf")
	pidFile := filepath.Join(dir, "legacyapp.pid")
	text := baseConfig(url) +
		templateBlock(t, dir, "a.conf", "a={{ .Settings.x }}", "app") +
		templateBlock(t, dir, "b.conf", "b={{ .Settings.x }}", "app") +
		templateBlock(t, dir, "other.conf", "y={{ .Settings.y }}", "") + legacyTarget(pidFile)
	a, logs := newTestAgent(t, dir, text)
	runAgent(t, a)
	eventually(t, 10*time.Second, fileHas(appFile, "a=1"))
	// Its reload (refused: no pid file yet) is over before the program starts.
	eventually(t, 10*time.Second, logHas(logs, "reload refused"))
	_, records := legacyApp(t, dir, appFile)

	// Both files of the target change: one SIGHUP.
	post(t, cs, "dev", map[string]any{"x": 2, "y": 1})
	eventually(t, 10*time.Second, lastRecordHas(records, "SIGHUP", "a=2"))
	eventually(t, 10*time.Second, fileHas(filepath.Join(dir, "b.conf"), "b=2"))

	// Only a file of no target changes: no SIGHUP. The next change shows it:
	// its SIGHUP must be the second, not the third.
	post(t, cs, "dev", map[string]any{"x": 2, "y": 2})
	eventually(t, 10*time.Second, fileHas(filepath.Join(dir, "other.conf"), "y=2"))
	post(t, cs, "dev", map[string]any{"x": 3, "y": 2})
	eventually(t, 10*time.Second, lastRecordHas(records, "SIGHUP", "a=3"))

	got := sighupContents(records())
	if want := []string{"a=2", "a=3"}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("legacyapp read %q on SIGHUP, want %q (one per changed update)", got, want)
	}
	// The kernel merges two SIGHUPs sent at once; the agent's count cannot.
	reloads := func() int { return reloadsLogged(logs, "app") }
	eventually(t, 10*time.Second, atLeast(reloads, 2, "reloads of app logged"))
	if n := reloadsLogged(logs, "app"); n != 2 {
		t.Errorf("agent logged %d reloads of app, want 2", n)
	}
}

func TestReloadOnStart(t *testing.T) {
	dir := t.TempDir()
	cs, url := startServer(t, "dev", map[string]any{"x": 1})
	appFile := filepath.Join(dir, "a.conf")
	config := func(onStart bool) string {
		return baseConfig(url) + templateBlock(t, dir, "a.conf", "a={{ .Settings.x }}", "app") + fmt.Sprintf(`
[[reload]]
name = "app"
signal = "SIGHUP"
pid_file = %q
reload_on_start = %v
`, filepath.Join(dir, "legacyapp.pid"), onStart)
	}

	// A first agent writes the file; the program starts after it.
	first, _ := newTestAgent(t, dir, config(false))
	stop := runAgent(t, first)
	eventually(t, 10*time.Second, fileHas(appFile, "a=1"))
	stop()
	_, records := legacyApp(t, dir, appFile)

	// Nothing changed and no reload_on_start: no reload.
	second, logs := newTestAgent(t, dir, config(false))
	stop = runAgent(t, second)
	eventually(t, 10*time.Second, logHas(logs, "update changed nothing"))
	stop()

	// reload_on_start: one SIGHUP although nothing changed.
	third, logs := newTestAgent(t, dir, config(true))
	runAgent(t, third)
	eventually(t, 10*time.Second, logHas(logs, "update applied"))
	if n := reloadsLogged(logs, "app"); n != 1 {
		t.Errorf("agent with reload_on_start logged %d reloads, want 1", n)
	}
	// Signals of one kind merge while one is pending: wait until the
	// program has read after the first before the update sends another.
	eventually(t, 10*time.Second, lastRecordHas(records, "SIGHUP", "a=1"))
	post(t, cs, "dev", map[string]any{"x": 2})
	eventually(t, 10*time.Second, lastRecordHas(records, "SIGHUP", "a=2"))
	if got, want := sighupContents(records()), []string{"a=1", "a=2"}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("legacyapp read %q on SIGHUP, want %q (reload_on_start, then the update)", got, want)
	}
}

func TestStalePIDFileRefused(t *testing.T) {
	dir := t.TempDir()
	cs, url := startServer(t, "dev", map[string]any{"x": 1})
	sleep := startProcess(t, "sleep", "600") // SIGHUP would kill it
	pidFile := writeFile(t, dir, "app.pid", strconv.Itoa(sleep.Process.Pid))
	text := baseConfig(url) +
		templateBlock(t, dir, "a.conf", "a={{ .Settings.x }}", "app") + legacyTarget(pidFile)
	a, logs := newTestAgent(t, dir, text)
	runAgent(t, a)
	eventually(t, 10*time.Second, logHas(logs, "reload refused"))
	post(t, cs, "dev", map[string]any{"x": 2})
	eventually(t, 10*time.Second, fileHas(filepath.Join(dir, "a.conf"), "a=2"))
	eventually(t, 10*time.Second, func() string {
		if n := len(logged(logs, "reload refused")); n < 2 {
			return fmt.Sprintf("%d reloads refused, want 2", n)
		}
		return ""
	})

	if !alive(sleep.Process.Pid) {
		t.Fatalf("sleep %d named by the stale pid file was signalled", sleep.Process.Pid)
	}
	e := logs.FilterMessage("reload refused").AllUntimed()[0]
	if msg := e.ContextMap()["error"].(string); !strings.Contains(msg, `is sleep/sleep, not "legacyapp"`) {
		t.Errorf("refusal logged as %q, want it to name the process found and the one wanted", msg)
	}
}

func TestMinIntervalBurst(t *testing.T) {
	dir := t.TempDir()
	_, url := startServer(t, "dev", map[string]any{"n": 0})
	appFile := filepath.Join(dir, "a.conf")
	// resync catches the last event should the server drop it for a slow reader.
	text := strings.Replace(baseConfig(url), `resync_interval = "0s"`, `resync_interval = "1s"`, 1) +
		templateBlock(t, dir, "a.conf", "n={{ .Settings.n }}", "app") +
		legacyTarget(filepath.Join(dir, "legacyapp.pid"), `min_interval = "1s"`)
	a, logs := newTestAgent(t, dir, text)
	runAgent(t, a)
	eventually(t, 10*time.Second, fileHas(appFile, "n=0"))
	// Its reload (refused: no pid file yet) is over before the program starts.
	eventually(t, 10*time.Second, logHas(logs, "reload refused"))
	_, records := legacyApp(t, dir, appFile)
	before := reloadsLogged(logs, "app")

	// 1,000 updates, paced over two seconds.
	const updates = 1000
	start := time.Now()
	for i := 1; i <= updates; i++ {
		postHTTP(t, url, "dev", map[string]any{"n": i})
		time.Sleep(time.Until(start.Add(time.Duration(i) * 2 * time.Second / updates)))
	}
	last := fmt.Sprintf("n=%d", updates)
	eventually(t, 10*time.Second, fileHas(appFile, last))
	eventually(t, 10*time.Second, lastRecordHas(records, "SIGHUP", last))

	got := sighupContents(records())
	reloads := reloadsLogged(logs, "app") - before
	t.Logf("posting took %s; %d reloads; legacyapp read %d times on SIGHUP, last %q",
		time.Since(start).Round(time.Millisecond), reloads, len(got), got[len(got)-1])
	if reloads > 4 || len(got) > 4 {
		t.Errorf("%d reloads logged, %d SIGHUPs seen for %d updates with min_interval 1s, want at most 4",
			reloads, len(got), updates)
	}
	// The last update's reload waited for the interval; it was not dropped.
	eventually(t, 10*time.Second, logHas(logs, "deferred reload done"))
}

// appliedHashes returns the hashes of the updates the agent logged applied.
func appliedHashes(logs *observer.ObservedLogs) []string {
	var out []string
	for _, e := range logs.FilterMessage("update applied").AllUntimed() {
		out = append(out, e.ContextMap()["hash"].(string))
	}
	return out
}

func TestQuiescenceAppliesOnlyNewest(t *testing.T) {
	dir := t.TempDir()
	cs, url := startServer(t, "dev", map[string]any{"n": 0})
	appFile := filepath.Join(dir, "a.conf")
	text := baseConfig(url) + "\n[apply]\nwait_min = \"1s\"\nwait_max = \"10s\"\n" +
		templateBlock(t, dir, "a.conf", "n={{ .Settings.n }}", "app") + fmt.Sprintf(`
[[reload]]
name = "app"
command = "echo reload >> %s"
`, filepath.Join(dir, "reloads"))
	a, logs := newTestAgent(t, dir, text)
	runAgent(t, a)
	eventually(t, 10*time.Second, fileHas(appFile, "n=0"))

	for i := 1; i <= 20; i++ {
		post(t, cs, "dev", map[string]any{"n": i})
	}
	eventually(t, 10*time.Second, fileHas(appFile, "n=20"))
	applied := func() int { return len(logged(logs, "update applied")) }
	eventually(t, 10*time.Second, atLeast(applied, 2, "updates applied"))

	newest, _ := NewSnapshot(map[string]any{"n": int64(20)}, "test")
	hashes := appliedHashes(logs)
	if len(hashes) != 2 || hashes[1] != newest.ShortHash() {
		t.Errorf("applied %v, want the first snapshot and then only the newest (%s)", hashes, newest.ShortHash())
	}
}

func TestQuiescenceWaitMax(t *testing.T) {
	dir := t.TempDir()
	cs, url := startServer(t, "dev", map[string]any{"n": 0})
	appFile := filepath.Join(dir, "a.conf")
	text := baseConfig(url) + "\n[apply]\nwait_min = \"500ms\"\nwait_max = \"1s\"\n" +
		templateBlock(t, dir, "a.conf", "n={{ .Settings.n }}", "")
	a, _ := newTestAgent(t, dir, text)
	runAgent(t, a)
	eventually(t, 10*time.Second, fileHas(appFile, "n=0"))

	// Updates every 50ms never leave 500ms of quiet: only wait_max lets one
	// through while they keep coming.
	deadline := time.Now().Add(10 * time.Second)
	for i := 1; ; i++ {
		post(t, cs, "dev", map[string]any{"n": i})
		time.Sleep(50 * time.Millisecond)
		if b, _ := os.ReadFile(appFile); string(b) != "n=0" {
			t.Logf("applied %q while update %d was the newest", b, i)
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("nothing applied during 10s of updates every 50ms; wait_max is 1s")
		}
	}
}

func TestCheckStagedRefusesBadFile(t *testing.T) {
	dir := t.TempDir()
	cs, url := startServer(t, "dev", map[string]any{"v": "ok-first"})
	appFile := filepath.Join(dir, "a.conf")
	reloads := filepath.Join(dir, "reloads")
	// The staged file must begin with "ok"; the command prints what it saw.
	text := baseConfig(url) + templateBlock(t, dir, "a.conf", "{{ .Settings.v }}", "app") + fmt.Sprintf(`
[[reload]]
name = "app"
check_staged = 'cat "$SSECONFD_STAGED"; test "$SSECONFD_DESTINATION" = %s && grep -q "^ok" "$SSECONFD_STAGED"'
command = "echo reload >> %s"
`, appFile, reloads)
	a, logs := newTestAgent(t, dir, text)
	runAgent(t, a)
	eventually(t, 10*time.Second, fileHas(appFile, "ok-first"))
	eventually(t, 10*time.Second, fileHas(reloads, "reload"))

	post(t, cs, "dev", map[string]any{"v": "secret-bad-value"})
	eventually(t, 10*time.Second, logHas(logs, "update rejected"))

	if b, _ := os.ReadFile(appFile); string(b) != "ok-first" {
		t.Errorf("%s holds %q after a failed staged check, want the old content", appFile, b)
	}
	msg := logs.FilterMessage("update rejected").AllUntimed()[0].ContextMap()["error"].(string)
	if !strings.Contains(msg, "update not installed") || strings.Contains(msg, "secret-bad-value") {
		t.Errorf("rejection logged as %q, want \"update not installed\" and the value redacted", msg)
	}
	if entries, _ := filepath.Glob(filepath.Join(dir, ".sseconfd.*")); len(entries) > 0 {
		t.Errorf("staged files left behind: %v", entries)
	}
	if b, _ := os.ReadFile(reloads); strings.Count(string(b), "reload") != 1 {
		t.Errorf("reload command ran %d times, want once (only the good update)",
			strings.Count(string(b), "reload"))
	}
}

func TestCheckRollsBack(t *testing.T) {
	dir := t.TempDir()
	cs, url := startServer(t, "dev", map[string]any{"v": "ok-first"})
	appFile := filepath.Join(dir, "a.conf")
	bFile := filepath.Join(dir, "b.conf")
	reloads := filepath.Join(dir, "reloads")
	text := baseConfig(url) +
		templateBlock(t, dir, "a.conf", "{{ .Settings.v }}", "app") +
		templateBlock(t, dir, "b.conf", "b {{ .Settings.v }}", "app") + fmt.Sprintf(`
[[reload]]
name = "app"
check = 'cat %s; grep -q "^ok" %s'
command = "echo reload >> %s"
`, appFile, appFile, reloads)
	a, logs := newTestAgent(t, dir, text)
	runAgent(t, a)
	eventually(t, 10*time.Second, fileHas(reloads, "reload"))

	post(t, cs, "dev", map[string]any{"v": "secret-bad-value"})
	eventually(t, 10*time.Second, logHas(logs, "update rejected"))

	for path, want := range map[string]string{appFile: "ok-first", bFile: "b ok-first"} {
		if b, _ := os.ReadFile(path); string(b) != want {
			t.Errorf("%s holds %q after a failed check, want it rolled back to %q", path, b, want)
		}
	}
	msg := logs.FilterMessage("update rejected").AllUntimed()[0].ContextMap()["error"].(string)
	if !strings.Contains(msg, "rolled back") || !strings.Contains(msg, "exit status 1") ||
		strings.Contains(msg, "secret-bad-value") {
		t.Errorf("rejection logged as %q, want exit status, \"rolled back\" and the value redacted", msg)
	}
	if b, _ := os.ReadFile(reloads); strings.Count(string(b), "reload") != 1 {
		t.Errorf("reload command ran %d times, want once (only the good update)",
			strings.Count(string(b), "reload"))
	}
}

func TestReloadCommandFailureIsLoggedRedacted(t *testing.T) {
	dir := t.TempDir()
	_, url := startServer(t, "dev", map[string]any{"v": "secret-value-1"})
	appFile := filepath.Join(dir, "a.conf")
	text := baseConfig(url) + templateBlock(t, dir, "a.conf", "{{ .Settings.v }}", "app") + fmt.Sprintf(`
[[reload]]
name = "app"
command = "cat %s; exit 4"
`, appFile)
	a, logs := newTestAgent(t, dir, text)
	runAgent(t, a)
	eventually(t, 10*time.Second, logHas(logs, "reload failed"))
	eventually(t, 10*time.Second, logHas(logs, "update applied"))

	msg := logs.FilterMessage("reload failed").AllUntimed()[0].ContextMap()["error"].(string)
	if !strings.Contains(msg, "exit status 4: <redacted>") {
		t.Errorf("reload failure logged as %q, want the exit status and the output redacted", msg)
	}
	if len(logged(logs, "update applied")) != 1 {
		t.Errorf("a failed reload must not reject the update")
	}
}

func TestReloadCommandOutputLoggedRedacted(t *testing.T) {
	dir := t.TempDir()
	_, url := startServer(t, "dev", map[string]any{"v": "secret-value-1"})
	appFile := filepath.Join(dir, "a.conf")
	text := baseConfig(url) + templateBlock(t, dir, "a.conf", "{{ .Settings.v }}", "app") + fmt.Sprintf(`
[[reload]]
name = "app"
command = "echo reloading with; cat %s"
`, appFile)
	a, logs := newTestAgent(t, dir, text)
	runAgent(t, a)
	eventually(t, 10*time.Second, logHas(logs, "reloaded"))

	got := logs.FilterMessage("reloaded").AllUntimed()[0].ContextMap()["result"]
	if want := "exit status 0: reloading with | <redacted>"; got != want {
		t.Errorf("reload logged result %q, want %q", got, want)
	}
}

// TestCommandOutputRedactedWhole checks that a value is hidden in a
// command's output before the output is cut into an excerpt: a value
// spanning lines, and one cut in half at the output limit, never show.
func TestCommandOutputRedactedWhole(t *testing.T) {
	const secret = "top\nsecret\nvalue-42"
	redact := func(s string) string { return render.Redact(s, map[string]any{"k": secret}) }
	_, err := runCommand(context.Background(), `printf 'before\ntop\nsecret\nvalue-42\nafter\n'; exit 1`,
		10*time.Second, nil, redact)
	if err == nil || strings.Contains(err.Error(), "secret") || !strings.Contains(err.Error(), "<redacted>") {
		t.Errorf("error %v, want the multi-line value redacted", err)
	}

	// Fill the output up to the limit so that the cut falls inside a value.
	pad := outputLimit - 10
	cmd := fmt.Sprintf(`head -c %d /dev/zero | tr '\\0' x; printf '\nABCDEFGHIJKLMNOPQRSTUVWXYZ\n'; exit 1`, pad)
	redactAlpha := func(s string) string {
		return render.Redact(s, map[string]any{"k": "ABCDEFGHIJKLMNOPQRSTUVWXYZ"})
	}
	_, err = runCommand(context.Background(), cmd, 10*time.Second, nil, redactAlpha)
	if err == nil || strings.Contains(err.Error(), "ABCDEFG") {
		t.Errorf("error %.200v, want no part of a value cut at the output limit", err)
	}
}

// TestDeferredNeverReloadedTargetFires: a deferred target that was never
// reloaded is due at once (its lastReload is the zero time); the timer
// used to stay unarmed for it, so the reload never came.
func TestDeferredNeverReloadedTargetFires(t *testing.T) {
	a := &Agent{targets: map[string]*Target{"x": {deferred: true}}, sched: newSchedule()}
	a.armReloadTimer()
	select {
	case <-a.sched.reload.C:
	case <-time.After(5 * time.Second):
		t.Fatal("armReloadTimer did not arm the timer for a deferred target never reloaded")
	}
}

// A process's start time comes from /proc: a child started now must be
// seen as started now, give or take the 10 ms ticks of /proc/PID/stat.
func TestProcStatStartTime(t *testing.T) {
	before := time.Now()
	cmd := exec.Command("sleep", "30")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	state, start, err := procStat(cmd.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	if state == 'Z' || state == 0 {
		t.Errorf("state %q, want a live process", state)
	}
	if d := start.Sub(before); d < -50*time.Millisecond || d > 2*time.Second {
		t.Errorf("start time %s is %s from when the child was started", start, d)
	}
}
