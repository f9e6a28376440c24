package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// rig is one measured setup: a stand-in server, a SIGHUP receiver, a
// subject (the agent or the floor) that follows the server, and an inotify
// watch on the subject's marker file. Updates are numbered from 1; the
// server starts with update 0.
type rig struct {
	dir     string
	srv     *server
	recv    *receiver
	subject *process
	logFile string    // the subject's stderr (the agent's JSON log)
	file    *progress // marker on disk
	body    postBody
	client  *http.Client
	cancel  context.CancelFunc
}

type rigOptions struct {
	kind        string        // "agent" or "floor"
	n           int           // highest update number that will be posted
	keepAlive   time.Duration // server keep-alive period
	minInterval time.Duration // agent reload min_interval
	conns       int           // concurrent POST connections kept alive
	templates   string        // latency template set: "mixed" or "range"
}

const benchEnv = "bench"

// newRig starts everything and waits until update 0 is on disk and the
// receiver got its first SIGHUP. Call close when done.
func newRig(t *tools, o rigOptions) (r *rig, err error) {
	r = &rig{}
	defer func() {
		if err != nil {
			r.close()
		}
	}()
	if r.dir, err = os.MkdirTemp("", "sseconfd-bench-"+o.kind+"-"); err != nil {
		return r, err
	}
	if err = r.startServer(t, o); err != nil {
		return r, err
	}
	outDir := filepath.Join(r.dir, "out")
	dest := filepath.Join(outDir, "t00.conf")
	if o.kind == "floor" {
		dest = filepath.Join(outDir, "floor.conf")
	}
	if err = os.MkdirAll(outDir, 0o755); err != nil {
		return r, err
	}
	var ctx context.Context
	ctx, r.cancel = context.WithCancel(context.Background())
	if r.file, err = watchFile(ctx, dest, o.n); err != nil {
		return r, err
	}
	if r.recv, err = startReceiver(t, r.dir, dest, o.n); err != nil {
		return r, err
	}
	if err = r.startSubject(t, o, outDir, dest); err != nil {
		return r, err
	}
	return r, r.waitStarted()
}

func (r *rig) startServer(t *tools, o rigOptions) error {
	settings := flatSettings(99, true)
	initial := flatSettings(99, false)
	initial["marker"] = markerText(0)
	configs, err := writeServerConfigs(r.dir, benchEnv, initial)
	if err != nil {
		return err
	}
	if r.body, err = newPostBody(benchEnv, settings); err != nil {
		return err
	}
	keepAlive := o.keepAlive
	if keepAlive == 0 {
		keepAlive = 15 * time.Second
	}
	r.client = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: max(o.conns, 1)}}
	r.srv, err = startServer(t, r.dir, configs, keepAlive)
	return err
}

func (r *rig) startSubject(t *tools, o rigOptions, outDir, dest string) error {
	var err error
	if o.kind == "floor" {
		r.logFile = filepath.Join(r.dir, "floor.log")
		r.subject, err = startProcess("floor", nil, r.logFile, t.floor,
			"-url", r.srv.url+"/sse/"+benchEnv, "-dest", dest, "-pidfile", r.recv.pidFile)
		return err
	}
	setup := agentSetup{dir: r.dir, outDir: outDir, serverURL: r.srv.url, env: benchEnv,
		templates: latencyTemplates(o.templates), pidFile: r.recv.pidFile, minInterval: o.minInterval}
	config, err := setup.write()
	if err != nil {
		return err
	}
	r.logFile = filepath.Join(r.dir, "agent.log")
	r.subject, err = startProcess("sseconfd", nil, r.logFile, t.sseconfd, "run", "-config", config)
	return err
}

func (r *rig) waitStarted() error {
	if !r.file.wait(0, 15*time.Second) {
		return fmt.Errorf("%s: initial settings not on disk after 15s; log:\n%s", r.subject.name, tail(r.logFile))
	}
	if !r.recv.hups.wait(0, 15*time.Second) {
		return fmt.Errorf("%s: no initial SIGHUP after 15s; log:\n%s", r.subject.name, tail(r.logFile))
	}
	return nil
}

// post sends update seq and returns the wall-clock time just before the
// request was sent.
func (r *rig) post(seq int) (int64, error) {
	req, err := http.NewRequest(http.MethodPost, r.srv.url+"/config",
		strings.NewReader(string(r.body.fill(seq))))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	sent := time.Now().UnixNano()
	resp, err := r.client.Do(req)
	if err != nil {
		return sent, fmt.Errorf("POST update %d: %w", seq, err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return sent, fmt.Errorf("POST update %d: HTTP %d", seq, resp.StatusCode)
	}
	return sent, nil
}

// close stops every process in reverse order and removes the directory.
func (r *rig) close() {
	if r.subject != nil {
		r.subject.stop()
	}
	if r.recv != nil {
		r.recv.stop()
	}
	if r.srv != nil {
		r.srv.stop()
	}
	if r.cancel != nil {
		r.cancel()
	}
	if r.client != nil {
		r.client.CloseIdleConnections()
	}
	if r.dir != "" {
		os.RemoveAll(r.dir)
	}
}

// tail returns the last 2 KiB of a log file.
func tail(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	return string(b[max(0, len(b)-2048):])
}

// latencies pairs each update's send time with its observation time;
// updates never observed count as missing.
func latencies(posts, at []int64) (ds []time.Duration, missing int) {
	for i := 1; i < len(posts) && i < len(at); i++ {
		if at[i] == 0 || posts[i] == 0 {
			missing++
			continue
		}
		ds = append(ds, time.Duration(at[i]-posts[i]))
	}
	return ds, missing
}
