package agent

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// findNginx returns the nginx binary from PATH or /usr/sbin. Without one
// the test is skipped, or fails when SSECONFD_REQUIRE_NGINX=1 (CI).
func findNginx(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("nginx")
	if err != nil {
		if _, statErr := os.Stat("/usr/sbin/nginx"); statErr == nil {
			return "/usr/sbin/nginx"
		}
		msg := fmt.Sprintf("nginx not installed: not in PATH nor /usr/sbin (%v); install the Debian package nginx",
			err)
		if os.Getenv("SSECONFD_REQUIRE_NGINX") == "1" {
			t.Fatal(msg + ", SSECONFD_REQUIRE_NGINX=1 requires it")
		}
		t.Skip(msg)
	}
	return path
}

// nginx is an nginx started by a test from its own prefix directory.
type nginx struct {
	bin     string
	dir     string // prefix: nginx.conf, conf.d/, nginx.pid, error.log, temp dirs
	conf    string
	pidFile string
	port    int
	cmd     *exec.Cmd
}

// nginxConf is the main config: everything inside dir, one worker, the
// server blocks from dir/conf.d/*.conf. "user" is unset: as root the
// workers run as nobody, otherwise as the test's user.
const nginxConf = `worker_processes 1;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log;
events { worker_connections 64; }
http {
    access_log off;
    client_body_temp_path %[1]s/client_body_temp;
    proxy_temp_path %[1]s/proxy_temp;
    fastcgi_temp_path %[1]s/fastcgi_temp;
    uwsgi_temp_path %[1]s/uwsgi_temp;
    scgi_temp_path %[1]s/scgi_temp;
    include %[1]s/conf.d/*.conf;
}
`

// nginxServer is a server block answering every request with body.
const nginxServer = `server {
    listen 127.0.0.1:%d;
    location / {
        default_type text/plain;
        return 200 "%s\n";
    }
}
`

// startNginx writes a prefix directory whose server block answers
// "initial", starts nginx in the foreground as the test's child, and waits
// until it answers. Cleanup sends SIGQUIT, then kills its process group.
func startNginx(t *testing.T, bin string) *nginx {
	t.Helper()
	n := &nginx{bin: bin, dir: t.TempDir(), port: freePort(t)}
	n.conf = filepath.Join(n.dir, "nginx.conf")
	n.pidFile = filepath.Join(n.dir, "nginx.pid")
	if err := os.Mkdir(filepath.Join(n.dir, "conf.d"), 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, n.dir, "nginx.conf", fmt.Sprintf(nginxConf, n.dir))
	writeFile(t, n.dir, "conf.d/app.conf", fmt.Sprintf(nginxServer, n.port, "initial"))

	n.cmd = exec.Command(bin, "-p", n.dir, "-c", n.conf, "-g", "daemon off;")
	n.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	out, err := os.Create(filepath.Join(n.dir, "stderr.log"))
	if err != nil {
		t.Fatal(err)
	}
	n.cmd.Stdout, n.cmd.Stderr = out, out
	if err := n.cmd.Start(); err != nil {
		t.Fatalf("start nginx: %v", err)
	}
	t.Cleanup(func() { n.stop(t); out.Close() })
	eventually(t, 10*time.Second, n.serves("initial"))
	return n
}

// stop sends SIGQUIT (graceful shutdown) and waits; after 10 s it kills the
// process group, so that no worker is left behind.
func (n *nginx) stop(t *testing.T) {
	n.cmd.Process.Signal(syscall.SIGQUIT)
	done := make(chan struct{})
	go func() { n.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Errorf("nginx did not quit within 10s of SIGQUIT; killing it")
		syscall.Kill(-n.cmd.Process.Pid, syscall.SIGKILL)
		<-done
	}
	syscall.Kill(-n.cmd.Process.Pid, syscall.SIGKILL) // workers, should any remain
}

// get returns the body nginx serves on /, over a new connection.
func (n *nginx) get() (string, error) {
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := client.Get(fmt.Sprintf("http://127.0.0.1:%d/", n.port))
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("HTTP %d: %s", resp.StatusCode, b)
	}
	return strings.TrimSuffix(string(b), "\n"), err
}

// serves returns a cond for eventually: nginx answers with body and runs
// a single worker. After SIGHUP nginx starts new workers, then tells the old
// ones to finish: until they have exited, either may answer.
func (n *nginx) serves(body string) func() string {
	return func() string {
		got, err := n.get()
		if err != nil {
			return fmt.Sprintf("GET: %v", err)
		}
		if got != body {
			return fmt.Sprintf("nginx serves %q, want %q", got, body)
		}
		if w := n.workers(); w != 1 {
			return fmt.Sprintf("nginx serves %q but runs %d workers; old ones are still finishing", got, w)
		}
		return ""
	}
}

// workers counts the live children of the nginx master.
func (n *nginx) workers() int {
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	count := 0
	for _, p := range stats {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...; comm may hold spaces.
		fields := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
		if len(fields) > 1 && fields[0] != "Z" && fields[1] == strconv.Itoa(n.cmd.Process.Pid) {
			count++
		}
	}
	return count
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// TestNginx drives a real nginx: the agent renders its server block from
// a setting, checks it with nginx -t, sends SIGHUP through nginx's pid file,
// and the new body is served; a setting that breaks the config fails the
// check, is rolled back, and nginx keeps serving the old body.
func TestNginx(t *testing.T) {
	n := startNginx(t, findNginx(t))
	masterPID := n.cmd.Process.Pid

	cs, url := startServer(t, "dev", map[string]any{"greeting": "hello from v1"})
	dir := t.TempDir()
	appConf := filepath.Join(n.dir, "conf.d", "app.conf")
	tmpl := writeFile(t, dir, "app.conf.tmpl", fmt.Sprintf(nginxServer, n.port, "{{ .Settings.greeting }}"))
	a, logs := newTestAgent(t, dir, baseConfig(url)+fmt.Sprintf(`
[[template]]
source = %q
destination = %q
reload = "nginx"

[[reload]]
name = "nginx"
check = "%s -t -q -p %s -c %s"
signal = "SIGHUP"
pid_file = %q
process_name = "nginx"
`, tmpl, appConf, n.bin, n.dir, n.conf, n.pidFile))
	runAgent(t, a)

	// The first settings replace what was there before the agent.
	eventually(t, 20*time.Second, n.serves("hello from v1"))

	post(t, cs, "dev", map[string]any{"greeting": "hello from v2"})
	eventually(t, 20*time.Second, n.serves("hello from v2"))

	// An unbalanced quote breaks the config: nginx -t fails, the file is
	// put back, nginx is not signalled.
	post(t, cs, "dev", map[string]any{"greeting": `secret v3 with a stray " quote`})
	eventually(t, 20*time.Second, logHas(logs, "update rejected"))
	msg := logs.FilterMessage("update rejected").AllUntimed()[0].ContextMap()["error"].(string)
	t.Logf("logged: %s", msg)
	if !strings.Contains(msg, "[emerg]") || !strings.Contains(msg, "update rolled back") {
		t.Errorf("rejection logged as %q, want nginx's [emerg] message and \"update rolled back\"", msg)
	}
	if strings.Contains(msg, "secret v3") {
		t.Errorf("rejection log quotes the setting value: %q", msg)
	}
	eventually(t, 10*time.Second, fileHas(appConf, `return 200 "hello from v2\n";`))
	if got, err := n.get(); err != nil || got != "hello from v2" {
		t.Errorf("after the rejected update nginx serves %q, %v; want the old body", got, err)
	}
	if !alive(masterPID) {
		t.Fatalf("nginx master %d died", masterPID)
	}

	// The agent goes on: the next good setting is served.
	post(t, cs, "dev", map[string]any{"greeting": "hello from v4"})
	eventually(t, 20*time.Second, n.serves("hello from v4"))
	reloads := func() int { return reloadsLogged(logs, "nginx") }
	eventually(t, 10*time.Second, atLeast(reloads, 3, "nginx reloads logged"))
	if got := reloads(); got != 3 {
		t.Errorf("agent logged %d nginx reloads, want 3 (v1, v2, v4)", got)
	}
}

// TestNginxStagedCheck renders nginx's whole main config and checks the
// staged file with nginx -t before installing it: a breaking setting is
// never installed at all.
func TestNginxStagedCheck(t *testing.T) {
	n := startNginx(t, findNginx(t))
	cs, url := startServer(t, "dev", map[string]any{"greeting": "hello from v1"})
	dir := t.TempDir()

	// The main config with the server block inline, so it checks on its own.
	server := fmt.Sprintf(nginxServer, n.port, "{{ .Settings.greeting }}")
	main := strings.Replace(fmt.Sprintf(nginxConf, n.dir),
		fmt.Sprintf("include %s/conf.d/*.conf;", n.dir), server, 1)
	tmpl := writeFile(t, dir, "nginx.conf.tmpl", main)
	a, logs := newTestAgent(t, dir, baseConfig(url)+fmt.Sprintf(`
[[template]]
source = %q
destination = %q
reload = "nginx"

[[reload]]
name = "nginx"
check_staged = '%s -t -q -p %s -c "$SSECONFD_STAGED"'
signal = "SIGHUP"
pid_file = %q
process_name = "nginx"
`, tmpl, n.conf, n.bin, n.dir, n.pidFile))
	runAgent(t, a)
	eventually(t, 20*time.Second, n.serves("hello from v1"))
	before, err := os.ReadFile(n.conf)
	if err != nil {
		t.Fatal(err)
	}

	post(t, cs, "dev", map[string]any{"greeting": `v2 with a stray " quote`})
	eventually(t, 20*time.Second, logHas(logs, "update rejected"))
	msg := logs.FilterMessage("update rejected").AllUntimed()[0].ContextMap()["error"].(string)
	if !strings.Contains(msg, "[emerg]") || !strings.Contains(msg, "update not installed") {
		t.Errorf("rejection logged as %q, want nginx's [emerg] message and \"update not installed\"", msg)
	}
	if after, _ := os.ReadFile(n.conf); string(after) != string(before) {
		t.Errorf("%s changed although its staged check failed", n.conf)
	}
	if got, err := n.get(); err != nil || got != "hello from v1" {
		elog, _ := os.ReadFile(filepath.Join(n.dir, "error.log"))
		t.Errorf("after the rejected update nginx serves %q, %v; want the old body\n%s", got, err, elog)
	}

	post(t, cs, "dev", map[string]any{"greeting": "hello from v3"})
	eventually(t, 20*time.Second, n.serves("hello from v3"))
}
