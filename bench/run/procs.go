package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
)

// tools are the programs under measurement, built once into a temp dir.
type tools struct {
	dir          string
	sseconfd     string
	configserver string
	floor        string
	sighup       string
	rusage       string
}

// buildTools compiles the daemon, the stand-in server, the floor and the
// SIGHUP receiver with go build into a fresh temporary directory.
func buildTools(root string) (*tools, error) {
	dir, err := os.MkdirTemp("", "sseconfd-bench-bin-")
	if err != nil {
		return nil, err
	}
	cmd := exec.Command("go", "build", "-o", dir+"/", "./cmd/sseconfd", "./cmd/configserver",
		"./bench/floor", "./bench/sighup", "./bench/rusage")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("go build: %v\n%s", err, out)
	}
	return toolsIn(dir), nil
}

// toolsIn names the programs in dir.
func toolsIn(dir string) *tools {
	return &tools{
		dir:          dir,
		sseconfd:     filepath.Join(dir, "sseconfd"),
		configserver: filepath.Join(dir, "configserver"),
		floor:        filepath.Join(dir, "floor"),
		sighup:       filepath.Join(dir, "sighup"),
		rusage:       filepath.Join(dir, "rusage"),
	}
}

// process is a child started by the benchmark; stop ends it.
type process struct {
	name string
	cmd  *exec.Cmd
	done chan struct{}
}

// startProcess starts path with args; stderr goes to errFile when set.
func startProcess(name string, stdout io.Writer, errFile string, path string,
	args ...string) (*process, error) {
	cmd := exec.Command(path, args...)
	cmd.Stdout = stdout
	if errFile != "" {
		f, err := os.Create(errFile)
		if err != nil {
			return nil, err
		}
		defer f.Close() // the child holds its own descriptor
		cmd.Stderr = f
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &process{name: name, cmd: cmd, done: make(chan struct{})}
	go func() { cmd.Wait(); close(p.done) }()
	return p, nil
}

func (p *process) pid() int { return p.cmd.Process.Pid }

// stop sends SIGTERM, then SIGKILL after 5 s, and waits.
func (p *process) stop() {
	if p == nil {
		return
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
		p.cmd.Process.Kill()
		<-p.done
	}
}

// server is a running stand-in config server.
type server struct {
	*process
	url string
}

// startServer runs configserver on a free loopback port, serving the
// application-*.yml files of configs.
func startServer(t *tools, dir, configs string, keepAlive time.Duration) (*server, error) {
	addrFile := filepath.Join(dir, "server.addr")
	p, err := startProcess("configserver", nil, filepath.Join(dir, "server.log"), t.configserver,
		"-addr", "127.0.0.1:0", "-configs", configs, "-keepalive", keepAlive.String(), "-addr-file", addrFile)
	if err != nil {
		return nil, err
	}
	var addr string
	err = waitFor(10*time.Second, func() bool {
		b, _ := os.ReadFile(addrFile)
		addr = strings.TrimSpace(string(b))
		return addr != ""
	})
	if err != nil {
		p.stop()
		return nil, fmt.Errorf("configserver did not start: %w", err)
	}
	return &server{process: p, url: "http://" + addr}, nil
}

// receiver is a running SIGHUP receiver; every line it prints advances hups.
type receiver struct {
	*process
	pidFile string
	hups    *progress
	count   atomic.Int64 // SIGHUPs received, whatever their marker
}

// startReceiver runs the SIGHUP receiver, which reports the marker of file.
func startReceiver(t *tools, dir, file string, n int) (*receiver, error) {
	pr, pw := io.Pipe()
	pidFile := filepath.Join(dir, "receiver.pid")
	p, err := startProcess("sighup", pw, "", t.sighup, "-pidfile", pidFile, "-file", file)
	if err != nil {
		return nil, err
	}
	go func() { <-p.done; pw.Close() }()
	r := &receiver{process: p, pidFile: pidFile, hups: newProgress(n)}
	go readHups(pr, r.hups, &r.count)
	if err := waitFor(10*time.Second, func() bool {
		_, err := os.Stat(pidFile)
		return err == nil
	}); err != nil {
		p.stop()
		return nil, fmt.Errorf("receiver did not start: %w", err)
	}
	return r, nil
}

// readHups parses "<unixnano> <marker>" lines and counts them.
func readHups(r io.Reader, hups *progress, count *atomic.Int64) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) != 2 {
			continue
		}
		ts, _ := strconv.ParseInt(fields[0], 10, 64)
		seq, _ := strconv.Atoi(fields[1])
		count.Add(1)
		if seq >= 0 {
			hups.advance(seq, ts)
		}
	}
	io.Copy(io.Discard, r)
}

// waitFor polls cond every 5 ms until it holds or limit passes.
func waitFor(limit time.Duration, cond func() bool) error {
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			return errors.New("timed out after " + limit.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
	return nil
}
