// Command demo shows sseconfd end to end on one machine: it starts the
// stand-in config server, a legacy program that rereads its file on SIGHUP,
// and the agent; posts a changed setting; and shows the file rewritten and
// the program reloaded. "make demo" builds the programs and runs it.
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

func main() {
	bin := flag.String("bin", "bin", "directory holding sseconfd, configserver and legacyapp")
	keep := flag.Bool("keep", false, "keep the scratch directory")
	flag.Parse()
	if err := run(*bin, *keep); err != nil {
		fmt.Fprintln(os.Stderr, "demo failed:", err)
		os.Exit(1)
	}
}

// procs are the programs started, stopped in reverse order on the way out.
type procs []*exec.Cmd

func (p *procs) start(name string, logFile string, args ...string) error {
	out, err := os.Create(logFile)
	if err != nil {
		return err
	}
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		return err
	}
	*p = append(*p, cmd)
	return nil
}

func (p procs) stopAll() {
	for i := len(p) - 1; i >= 0; i-- {
		cmd := p[i]
		cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	}
}

func run(bin string, keep bool) error {
	start := time.Now()
	bin, _ = filepath.Abs(bin)
	dir, err := os.MkdirTemp("", "sseconfd-demo-")
	if err != nil {
		return err
	}
	if !keep {
		defer os.RemoveAll(dir)
	}
	var ps procs
	defer ps.stopAll()

	step("1. start the stand-in config server with demo/application-dev.yml")
	if err := copyFile("demo/application-dev.yml", filepath.Join(dir, "application-dev.yml")); err != nil {
		return err
	}
	addrFile := filepath.Join(dir, "addr")
	if err := ps.start(filepath.Join(bin, "configserver"), filepath.Join(dir, "configserver.log"),
		"-addr", "127.0.0.1:0", "-configs", dir, "-addr-file", addrFile); err != nil {
		return err
	}
	addr, err := waitFor(5*time.Second, func() (string, error) {
		b, err := os.ReadFile(addrFile)
		return strings.TrimSpace(string(b)), err
	})
	if err != nil {
		return fmt.Errorf("config server did not start: %w", err)
	}
	base := "http://" + addr
	fmt.Println("   config server at", base)

	step("2. start legacyapp, a program that rereads app.ini on SIGHUP")
	out := filepath.Join(dir, "out")
	os.Mkdir(out, 0o755)
	ini := filepath.Join(out, "app.ini")
	pidFile := filepath.Join(dir, "legacyapp.pid")
	records := filepath.Join(dir, "legacyapp.records")
	if err := ps.start(filepath.Join(bin, "legacyapp"), filepath.Join(dir, "legacyapp.log"),
		"-file", ini, "-pid-file", pidFile, "-records", records); err != nil {
		return err
	}
	if _, err := waitFor(5*time.Second, func() (string, error) {
		b, err := os.ReadFile(pidFile)
		return string(b), err
	}); err != nil {
		return fmt.Errorf("legacyapp did not start: %w", err)
	}

	step("3. start sseconfd run with this config")
	config := filepath.Join(dir, "sseconfd.toml")
	templates, _ := filepath.Abs("templates")
	conf := fmt.Sprintf(demoConfig, base, filepath.Join(dir, "cache.json"),
		templates, ini, templates, filepath.Join(out, "app.env"), pidFile)
	if err := os.WriteFile(config, []byte(conf), 0o644); err != nil {
		return err
	}
	fmt.Print(indent(conf))
	agentLog := filepath.Join(dir, "sseconfd.log")
	if err := ps.start(filepath.Join(bin, "sseconfd"), agentLog, "run", "-config", config,
		"-log-format", "console"); err != nil {
		return err
	}
	first, err := waitFor(10*time.Second, func() (string, error) {
		if n := countReloads(records); n < 1 {
			return "", errors.New("no SIGHUP yet")
		}
		b, err := os.ReadFile(ini)
		return string(b), err
	})
	if err != nil {
		return fmt.Errorf("the agent did not render %s: %w\n%s", ini, err, readFile(agentLog))
	}
	fmt.Printf("   %s rendered:\n%s", ini, indent(first))

	step("4. POST /config: ball_color blue -> green")
	posted := time.Now()
	body := `{"env": "dev", "settings": {"ball_color": "green", "ball_size": 25, "ball_speed": 5, "number_of_balls": 40}}`
	resp, err := http.Post(base+"/config", "application/json", strings.NewReader(body))
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("POST /config: HTTP %d", resp.StatusCode)
	}
	second, err := waitFor(10*time.Second, func() (string, error) {
		b, err := os.ReadFile(ini)
		if !bytes.Contains(b, []byte("color = green")) {
			return "", errors.New("not rewritten yet")
		}
		return string(b), err
	})
	if err != nil {
		return fmt.Errorf("%s was not rewritten: %w\n%s", ini, err, readFile(agentLog))
	}
	fmt.Printf("   rewritten %s after the POST:\n%s", time.Since(posted).Round(time.Millisecond), indent(second))

	step("5. legacyapp got SIGHUP and read the new content")
	last, err := waitFor(5*time.Second, func() (string, error) {
		r := lastRecord(records)
		if countReloads(records) < 2 || !strings.Contains(r, "green") {
			return "", errors.New("no second SIGHUP yet")
		}
		return r, nil
	})
	if err != nil {
		return fmt.Errorf("legacyapp was not reloaded: %w\n%s", err, readFile(records))
	}
	var rec struct {
		Reads  int
		Reason string
	}
	json.Unmarshal([]byte(last), &rec)
	fmt.Printf("   legacyapp read its file for the %s time (once at start, once per SIGHUP),\n",
		ordinal(rec.Reads))
	fmt.Printf("   after a %s; it now sees color = green\n", rec.Reason)

	step("6. the agent's log")
	fmt.Print(indent(readFile(agentLog)))

	step("7. stop everything")
	ps.stopAll()
	ps = nil
	fmt.Println("   stopped sseconfd, legacyapp and configserver with SIGTERM")
	fmt.Printf("\ndemo passed in %s\n", time.Since(start).Round(time.Millisecond))
	return nil
}

const demoConfig = `[source]
url = %q
env = "dev"

[backoff]
min = "200ms"
max = "5s"

[cache]
path = %q

[[template]]
source = "%s/app.ini.tmpl"
destination = %q
mode = "0644"
reload = "legacyapp"

[[template]]
source = "%s/app.env.tmpl"
destination = %q
mode = "0640"

[[reload]]
name = "legacyapp"
signal = "SIGHUP"
pid_file = %q
process_name = "legacyapp"
`

func ordinal(n int) string {
	switch n {
	case 1:
		return "first"
	case 2:
		return "second"
	case 3:
		return "third"
	}
	return fmt.Sprintf("%dth", n)
}

func step(s string) { fmt.Printf("\n==> %s\n", s) }

func indent(s string) string {
	var b strings.Builder
	sc := bufio.NewScanner(strings.NewReader(s))
	for sc.Scan() {
		b.WriteString("   | " + sc.Text() + "\n")
	}
	return b.String()
}

func waitFor(limit time.Duration, f func() (string, error)) (string, error) {
	deadline := time.Now().Add(limit)
	for {
		v, err := f()
		if err == nil && v != "" {
			return v, nil
		}
		if time.Now().After(deadline) {
			if err == nil {
				err = errors.New("still empty")
			}
			return "", err
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func countReloads(records string) int {
	return strings.Count(readFile(records), `"reason":"SIGHUP"`)
}

func lastRecord(records string) string {
	lines := strings.Split(strings.TrimSpace(readFile(records)), "\n")
	return lines[len(lines)-1]
}

func readFile(path string) string {
	b, _ := os.ReadFile(path)
	return string(b)
}

func copyFile(from, to string) error {
	b, err := os.ReadFile(from)
	if err != nil {
		return err
	}
	return os.WriteFile(to, b, 0o644)
}
