package agent

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	stdlog "log"
	"math/big"
	mathrand "math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/iotest"
	"time"

	"go.uber.org/goleak"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/sseconfd/sseconfd/configserver"
)

// TestMain fails the package's tests if any goroutine outlives them: every
// Run must have stopped everything it started.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.Cleanup(func(code int) {
		removeBuilds()
		os.Exit(code)
	}))
}

// streamRun is a Stream.Run started in the background by startStream.
type streamRun struct {
	mu     sync.Mutex
	snaps  []Snapshot
	events []StreamEvent
	cancel context.CancelFunc
	done   chan error
}

// startStream runs s until the test ends, recording snapshots and events;
// handler, if not nil, is called after recording. Cleanup requires Run to
// return within 5 s of cancel.
func startStream(t testing.TB, s *Stream, handler func(Snapshot)) *streamRun {
	t.Helper()
	r := &streamRun{done: make(chan error, 1)}
	s.Events = func(ev StreamEvent) {
		r.mu.Lock()
		r.events = append(r.events, ev)
		r.mu.Unlock()
	}
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	go func() {
		r.done <- s.Run(ctx, func(snap Snapshot) {
			r.mu.Lock()
			r.snaps = append(r.snaps, snap)
			r.mu.Unlock()
			if handler != nil {
				handler(snap)
			}
		})
	}()
	t.Cleanup(func() { r.stop(t) })
	return r
}

// stop cancels Run and returns its error; it fails the test if Run hangs.
func (r *streamRun) stop(t testing.TB) error {
	t.Helper()
	r.cancel()
	select {
	case err := <-r.done:
		r.done <- err // a second stop sees the same error
		return err
	case <-time.After(5 * time.Second):
		t.Errorf("Stream.Run did not return within 5s of cancel")
		return nil
	}
}

func (r *streamRun) snapshots() []Snapshot {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Snapshot(nil), r.snaps...)
}

func (r *streamRun) streamEvents() []StreamEvent {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]StreamEvent(nil), r.events...)
}

// failures returns the events that ended a connection attempt.
func (r *streamRun) failures() []StreamEvent {
	var out []StreamEvent
	for _, ev := range r.streamEvents() {
		if !ev.Connected {
			out = append(out, ev)
		}
	}
	return out
}

// hasSnapshots is a cond for eventually: at least n snapshots arrived.
func (r *streamRun) hasSnapshots(n int) func() string {
	return func() string {
		if got := len(r.snapshots()); got < n {
			return fmt.Sprintf("%d snapshots handled, want %d", got, n)
		}
		return ""
	}
}

// hasFailures is a cond for eventually: at least n attempts failed.
func (r *streamRun) hasFailures(n int) func() string {
	return func() string {
		if got := len(r.failures()); got < n {
			return fmt.Sprintf("%d failed attempts, want %d", got, n)
		}
		return ""
	}
}

// fastStream is a Stream for url with short delays, resync off and its
// logs observed.
func fastStream(url string) (*Stream, *observer.ObservedLogs) {
	log, logs := observedLogger()
	jitter := true
	return &Stream{
		Source: SourceConfig{URL: url, Env: "dev", IdleTimeout: Duration{5 * time.Second}},
		Backoff: BackoffConfig{Min: Duration{10 * time.Millisecond},
			Max: Duration{50 * time.Millisecond}, Factor: 2, Jitter: &jitter},
		Log: log,
	}, logs
}

// sseServer runs handler for every request, numbered from 1, on a loopback
// server; a handler that holds the stream open should return on done().
func sseServer(t testing.TB, handler func(w http.ResponseWriter, r *http.Request, n int)) (url string) {
	t.Helper()
	var count atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		handler(w, r, int(count.Add(1)))
	}))
	t.Cleanup(func() {
		srv.CloseClientConnections()
		srv.Close()
	})
	return srv.URL
}

// writeStream starts an event stream and writes raw to it.
func writeStream(w http.ResponseWriter, raw string) {
	w.Header().Set("Content-Type", "text/event-stream")
	io.WriteString(w, raw)
	w.(http.Flusher).Flush()
}

// holdOpen blocks until the client goes or the test ends.
func holdOpen(t testing.TB, r *http.Request) {
	select {
	case <-r.Context().Done():
	case <-t.Context().Done():
	}
}

func event(settings string) string { return "data: {\"settings\":" + settings + "}\n\n" }

// logText is every entry's message, error and fields, for searching.
func logText(logs *observer.ObservedLogs) string {
	var b strings.Builder
	for _, e := range logs.All() {
		fmt.Fprintf(&b, "%s %s %v\n", e.Level, e.Message, e.ContextMap())
	}
	return b.String()
}

func TestMessages(t *testing.T) {
	type ev struct{ id, typ, data string }
	cases := []struct {
		name   string
		raw    string
		want   []ev
		lastID string
	}{
		{"LF", "data: a\n\ndata: b\n\n", []ev{{"", "", "a"}, {"", "", "b"}}, ""},
		{"CR only", "data: a\r\rdata: b\r\r", []ev{{"", "", "a"}, {"", "", "b"}}, ""},
		{"CRLF", "data: a\r\n\r\ndata: b\r\n\r\n", []ev{{"", "", "a"}, {"", "", "b"}}, ""},
		{"mixed line ends", "data: a\rdata: b\n\r\ndata: c\r\n\n", []ev{{"", "", "a\nb"}, {"", "", "c"}}, ""},
		{"leading BOM", "\xEF\xBB\xBFdata: a\n\n", []ev{{"", "", "a"}}, ""},
		{"only one BOM is stripped", "\xEF\xBB\xBF\xEF\xBB\xBFdata: a\n\ndata: b\n\n", []ev{{"", "", "b"}}, ""},
		{"multi-line data", "data: {\"settings\":\ndata: {}}\n\n", []ev{{"", "", "{\"settings\":\n{}}"}}, ""},
		{"one space after the colon is dropped", "data:  a\ndata:b\n\n", []ev{{"", "", " a\nb"}}, ""},
		{"comments", ": hi\ndata: a\n:\n\n: keep-alive\n\n", []ev{{"", "", "a"}}, ""},
		{"data without colon adds an empty line", "data: a\ndata\ndata: b\n\n", []ev{{"", "", "a\n\nb"}}, ""},
		{"data alone carries nothing", "data\n\ndata:\n\n", nil, ""},
		{"unknown fields", "foo: bar\ndata: a\nbaz\nDATA: x\n\n", []ev{{"", "", "a"}}, ""},
		{"id", "id: 7\ndata: a\n\ndata: b\n\n", []ev{{"7", "", "a"}, {"7", "", "b"}}, "7"},
		{"id with NUL ignored", "id: 1\n\nid: 2\x003\ndata: a\n\n", []ev{{"1", "", "a"}}, "1"},
		{"empty id resets", "id: 1\ndata: a\n\nid\ndata: b\n\n", []ev{{"1", "", "a"}, {"", "", "b"}}, ""},
		{"id-only event is not dispatched but kept", "id: 9\n\n", nil, "9"},
		{"retry parsed without error", "retry: 1000\ndata: a\n\nretry: x\n\n", []ev{{"", "", "a"}}, ""},
		{"event types", "event: ping\ndata: p\n\nevent: message\ndata: m\n\ndata: d\n\n",
			[]ev{{"", "ping", "p"}, {"", "message", "m"}, {"", "", "d"}}, ""},
		{"type-only event is not dispatched", "event: x\n\ndata: a\n\n", []ev{{"", "", "a"}}, ""},
		{"unfinished last event discarded", "data: a\n\ndata: b\n", []ev{{"", "", "a"}}, ""},
		{"unfinished last line discarded", "data: a\n\ndata: b", []ev{{"", "", "a"}}, ""},
		{"unfinished id not used", "data: a\n\nid: 5\ndata: b\n", []ev{{"", "", "a"}}, ""},
		{"blank lines before the first event", "\n\r\n\rdata: a\n\n", []ev{{"", "", "a"}}, ""},
		{"colon in value", "data:a:b\n\n", []ev{{"", "", "a:b"}}, ""},
	}
	readers := map[string]func(string) io.Reader{
		"one write":          func(s string) io.Reader { return strings.NewReader(s) },
		"one byte at a time": func(s string) io.Reader { return iotest.OneByteReader(strings.NewReader(s)) },
	}
	for _, tc := range cases {
		for rname, reader := range readers {
			t.Run(tc.name+"/"+rname, func(t *testing.T) {
				var got []ev
				lastID := ""
				for e, err := range messages(reader(tc.raw), 1<<20, &lastID, nil) {
					if err != nil {
						t.Fatalf("messages(%q): %v", tc.raw, err)
					}
					got = append(got, ev{e.LastEventID, e.Type, e.Data})
				}
				if fmt.Sprint(got) != fmt.Sprint(tc.want) {
					t.Errorf("messages(%q) = %q, want %q", tc.raw, got, tc.want)
				}
				if lastID != tc.lastID {
					t.Errorf("messages(%q): last event ID %q, want %q", tc.raw, lastID, tc.lastID)
				}
			})
		}
	}
}

func TestStreamAppliesOnlyMessageEvents(t *testing.T) {
	url := sseServer(t, func(w http.ResponseWriter, r *http.Request, n int) {
		writeStream(w, "event: other\n"+event(`{"k":"other"}`)+
			"event: message\n"+event(`{"k":"named"}`)+event(`{"k":"plain"}`))
		holdOpen(t, r)
	})
	s, _ := fastStream(url)
	run := startStream(t, s, nil)
	eventually(t, 5*time.Second, run.hasSnapshots(1))
	eventually(t, 5*time.Second, func() string {
		snaps := run.snapshots()
		if v := snaps[len(snaps)-1].Settings["k"]; v != "plain" {
			return fmt.Sprintf("last snapshot k = %v, want plain", v)
		}
		return ""
	})
	for _, snap := range run.snapshots() {
		if snap.Settings["k"] == "other" {
			t.Errorf("an event of type other was applied")
		}
	}
}

func TestStreamSendsLastEventIDOnReconnect(t *testing.T) {
	var mu sync.Mutex
	var ids []string
	url := sseServer(t, func(w http.ResponseWriter, r *http.Request, n int) {
		mu.Lock()
		ids = append(ids, r.Header.Get("Last-Event-ID"))
		mu.Unlock()
		switch n {
		case 1:
			writeStream(w, "id: 41\n"+event(`{"a":1}`)+"id: 42\n"+event(`{"a":2}`))
		case 2:
			writeStream(w, "id: bad\x00id\n"+event(`{"a":3}`)) // ignored id keeps 42
		default:
			writeStream(w, event(`{"a":4}`))
			holdOpen(t, r)
		}
	})
	s, _ := fastStream(url)
	run := startStream(t, s, nil)
	eventually(t, 5*time.Second, func() string {
		mu.Lock()
		defer mu.Unlock()
		if len(ids) < 3 {
			return fmt.Sprintf("%d requests, want 3", len(ids))
		}
		return ""
	})
	run.stop(t)
	mu.Lock()
	defer mu.Unlock()
	if want := []string{"", "42", "42"}; fmt.Sprint(ids[:3]) != fmt.Sprint(want) {
		t.Errorf("Last-Event-ID headers = %q, want %q", ids[:3], want)
	}
}

func TestStreamRejectsBadPayloads(t *testing.T) {
	const secret = "hunter2SECRET"
	cases := []struct {
		name, data, reason, logHas string
	}{
		{"invalid JSON", `{"settings": {"password": "` + secret + `"`, "invalid_json", "offset"},
		{"garbage", "\x00\x01" + secret + "\xfe", "invalid_utf8", "UTF-8"},
		{"invalid UTF-8", `{"settings": {"password": "` + secret + "\xff\"}}", "invalid_utf8", "offset"},
		{"no settings", `{"setings": {"password": "` + secret + `"}}`, "no_settings", `"setings"`},
		{"settings not an object", `{"settings": "` + secret + `"}`, "wrong_type", "string"},
		{"settings an array", `{"settings": ["` + secret + `"]}`, "wrong_type", "array"},
		{"not an object", `"` + secret + `"`, "wrong_type", "string"},
		{"data after the value", `{"settings": {}} "` + secret + `"`, "invalid_json", "data after"},
		{"empty settings", `{"settings": {}}`, "empty", "allow_empty"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			url := sseServer(t, func(w http.ResponseWriter, r *http.Request, n int) {
				writeStream(w, event(`{"v":"first"}`)+"data: "+tc.data+"\n\n")
				holdOpen(t, r)
			})
			s, logs := fastStream(url)
			run := startStream(t, s, nil)
			eventually(t, 5*time.Second, func() string {
				if len(logged(logs, "event rejected")) == 0 || len(run.snapshots()) < 1 {
					return fmt.Sprintf("%d rejections logged, %d snapshots; want 1 and 1",
						len(logged(logs, "event rejected")), len(run.snapshots()))
				}
				return ""
			})
			run.stop(t)
			// The last good settings stay: nothing else reached the handler.
			if got := run.snapshots(); len(got) != 1 || got[0].Settings["v"] != "first" {
				t.Errorf("handled %d snapshots, want the first only", len(got))
			}
			text := logText(logs)
			if strings.Contains(text, secret) {
				t.Errorf("a setting value reached the log:\n%s", text)
			}
			rej := logged(logs, "event rejected")[0]
			if rej.Level != zapcore.WarnLevel || !strings.Contains(fmt.Sprint(rej.ContextMap()["error"]), tc.logHas) {
				t.Errorf("rejection logged as %s %v, want warn naming %q", rej.Level, rej.ContextMap(), tc.logHas)
			}
			reasons := ""
			for _, ev := range run.streamEvents() {
				reasons += ev.Rejected
			}
			if reasons != tc.reason {
				t.Errorf("rejection reasons %q, want %q", reasons, tc.reason)
			}
		})
	}
}

func TestStreamAllowEmpty(t *testing.T) {
	url := sseServer(t, func(w http.ResponseWriter, r *http.Request, n int) {
		writeStream(w, event(`{}`))
		holdOpen(t, r)
	})
	s, _ := fastStream(url)
	s.Source.AllowEmpty = true
	run := startStream(t, s, nil)
	eventually(t, 5*time.Second, run.hasSnapshots(1))
	if got := run.snapshots()[0].Settings; len(got) != 0 {
		t.Errorf("second snapshot has %d keys, want the empty map", len(got))
	}
}

func TestStreamRepeatedKeysLastWins(t *testing.T) {
	url := sseServer(t, func(w http.ResponseWriter, r *http.Request, n int) {
		writeStream(w, event(`{"port":1,"db":{"host":"a","host":"b"},"port":2}`))
		holdOpen(t, r)
	})
	s, logs := fastStream(url)
	run := startStream(t, s, nil)
	eventually(t, 5*time.Second, run.hasSnapshots(1))
	snap := run.snapshots()[0]
	if snap.Settings["port"] != int64(2) || snap.Settings["db"].(map[string]any)["host"] != "b" {
		t.Errorf("settings = %v, want the last value of each repeated key", snap.Settings)
	}
	dup := logged(logs, "repeated keys in event, the last one wins")
	if len(dup) != 1 || dup[0].Level != zapcore.DebugLevel {
		t.Fatalf("repeated keys logged %d times, want once at debug:\n%s", len(dup), logText(logs))
	}
	if got := fmt.Sprint(dup[0].ContextMap()["keys"]); got != "[settings.db.host settings.port]" {
		t.Errorf("repeated keys logged as %s, want [settings.db.host settings.port]", got)
	}
}

func TestStreamHTTPErrors(t *testing.T) {
	cases := []struct {
		name  string
		serve func(w http.ResponseWriter)
		want  string
	}{
		{"500", func(w http.ResponseWriter) {
			http.Error(w, "boom  in\nthe backend", http.StatusInternalServerError)
		}, `HTTP 500: "boom in the backend"`},
		{"404", func(w http.ResponseWriter) { http.Error(w, "no such env", http.StatusNotFound) },
			`HTTP 404: "no such env"`},
		{"204", func(w http.ResponseWriter) { w.WriteHeader(http.StatusNoContent) }, "HTTP 204: (empty body)"},
		{"wrong content type", func(w http.ResponseWriter) {
			w.Header().Set("Content-Type", "text/html")
			io.WriteString(w, "<html>login</html>")
		}, `HTTP 200 with content type "text/html", want text/event-stream: "<html>login</html>"`},
		{"401", func(w http.ResponseWriter) { http.Error(w, "who are you", http.StatusUnauthorized) },
			`authentication failed: HTTP 401: "who are you" (no source.token_file is set)`},
		{"403", func(w http.ResponseWriter) { http.Error(w, "go away", http.StatusForbidden) },
			`authentication failed: HTTP 403: "go away"`},
		{"long body cut", func(w http.ResponseWriter) {
			http.Error(w, strings.Repeat("x", 5000), http.StatusBadGateway)
		}, `HTTP 502: "` + strings.Repeat("x", 200) + `"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			url := sseServer(t, func(w http.ResponseWriter, r *http.Request, n int) { tc.serve(w) })
			s, logs := fastStream(url)
			run := startStream(t, s, nil)
			eventually(t, 5*time.Second, run.hasFailures(3))
			run.stop(t)
			for _, ev := range run.failures() {
				if ev.Err == nil || !strings.Contains(ev.Err.Error(), tc.want) {
					t.Fatalf("attempt failed with %v, want it to contain %s", ev.Err, tc.want)
				}
			}
			if n := len(run.snapshots()); n != 0 {
				t.Errorf("%d snapshots handled, want none", n)
			}
			first := logged(logs, "disconnected")
			if len(first) != 1 || first[0].Level != zapcore.InfoLevel {
				t.Errorf("first failure logged %d times, want once at info:\n%s", len(first), logText(logs))
			}
		})
	}
}

func TestStreamFollowsRedirects(t *testing.T) {
	url := sseServer(t, func(w http.ResponseWriter, r *http.Request, n int) {
		if r.URL.Path == "/sse/dev" {
			http.Redirect(w, r, "/moved/sse/dev", http.StatusFound)
			return
		}
		writeStream(w, event(`{"a":1}`))
		holdOpen(t, r)
	})
	s, _ := fastStream(url)
	run := startStream(t, s, nil)
	eventually(t, 5*time.Second, run.hasSnapshots(1))
}

func TestStreamRedirectLoop(t *testing.T) {
	var requests atomic.Int64
	url := sseServer(t, func(w http.ResponseWriter, r *http.Request, n int) {
		requests.Add(1)
		http.Redirect(w, r, r.URL.Path, http.StatusFound)
	})
	s, _ := fastStream(url)
	s.Backoff.MaxRetries = 2
	run := startStream(t, s, nil)
	eventually(t, 5*time.Second, run.hasFailures(2))
	err := run.stop(t)
	if !errors.Is(err, ErrGaveUp) || !strings.Contains(err.Error(), "stopped after 5 redirects") {
		t.Errorf("Run = %v, want ErrGaveUp naming the redirect limit", err)
	}
	if n := requests.Load(); n != 12 {
		t.Errorf("%d requests for 2 attempts, want 12 (1 + 5 redirects each)", n)
	}
}

func TestStreamOutageLogsASummary(t *testing.T) {
	// A port that refuses connections until the server comes back on it.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()

	s, logs := fastStream("http://" + addr)
	s.summaryEvery = 150 * time.Millisecond
	run := startStream(t, s, nil)
	eventually(t, 10*time.Second, func() string {
		if n := len(logged(logs, "still disconnected")); n < 2 {
			return fmt.Sprintf("%d summaries logged, want 2", n)
		}
		return ""
	})

	cs := configserver.New()
	post(t, cs, "dev", map[string]any{"a": 1})
	startServerOn(t, addr, cs)
	eventually(t, 10*time.Second, run.hasSnapshots(1))

	first := logged(logs, "disconnected")
	if len(first) != 1 || first[0].Level != zapcore.InfoLevel {
		t.Errorf("outage start logged %d times, want once at info", len(first))
	}
	for _, e := range logged(logs, "still disconnected") {
		m := e.ContextMap()
		if e.Level != zapcore.WarnLevel || m["failures"] == nil || m["retry_in"] == nil || m["since"] == nil {
			t.Errorf("summary %s %v, want warn with failures, since and retry_in", e.Level, m)
		}
	}
	failed := len(logged(logs, "reconnect failed"))
	summaries := len(logged(logs, "still disconnected"))
	if failed <= summaries {
		t.Errorf("%d attempts at debug, %d summaries: want fewer summaries than attempts", failed, summaries)
	}
	conn := logged(logs, "connected")
	if len(conn) != 1 || conn[0].ContextMap()["failed_attempts"] == nil ||
		conn[0].ContextMap()["down_for"] == nil {
		t.Errorf("recovery logged as %v, want one \"connected\" with failed_attempts and down_for", conn)
	}
}

// startServerOn serves cs on addr, for a client that already points there.
func startServerOn(t testing.TB, addr string, cs *configserver.Server) {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("listen again on %s: %v", addr, err)
	}
	srv := &http.Server{Handler: cs}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
}

func TestStreamIdleBeforeHeaders(t *testing.T) {
	// Accept and then never answer.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var accepted atomic.Int64
	var conns sync.WaitGroup
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			conns.Add(1)
			go func() { defer conns.Done(); io.Copy(io.Discard, c); c.Close() }()
		}
	}()
	t.Cleanup(func() { ln.Close(); conns.Wait() })

	s, _ := fastStream("http://" + ln.Addr().String())
	s.Source.IdleTimeout.Duration = 200 * time.Millisecond
	run := startStream(t, s, nil)
	eventually(t, 10*time.Second, run.hasFailures(2))
	run.stop(t)
	for _, ev := range run.failures() {
		if !strings.Contains(ev.Err.Error(), "no response headers within 200ms") {
			t.Errorf("attempt failed with %v, want the idle_timeout named", ev.Err)
		}
	}
	if accepted.Load() < 2 {
		t.Errorf("%d connections, want a reconnect", accepted.Load())
	}
}

func TestStreamIdleAfterHeaders(t *testing.T) {
	url := sseServer(t, func(w http.ResponseWriter, r *http.Request, n int) {
		writeStream(w, event(fmt.Sprintf(`{"n":%d}`, n))) // then silence: no keep-alives
		holdOpen(t, r)
	})
	s, _ := fastStream(url)
	s.Source.IdleTimeout.Duration = 200 * time.Millisecond
	run := startStream(t, s, nil)
	eventually(t, 10*time.Second, run.hasSnapshots(2))
	run.stop(t)
	if err := run.failures()[0].Err; !strings.Contains(err.Error(), "no bytes for 200ms (source.idle_timeout)") {
		t.Errorf("connection ended with %v, want the idle_timeout named", err)
	}
}

func TestStreamKeepAlivesKeepTheConnection(t *testing.T) {
	url := sseServer(t, func(w http.ResponseWriter, r *http.Request, n int) {
		writeStream(w, event(`{"a":1}`))
		// 2 s of keep-alives only, every 100 ms, against a 600 ms idle timeout:
		// without them the connection would be dropped three times over.
		for i := 0; i < 20; i++ {
			time.Sleep(100 * time.Millisecond)
			writeStream(w, ": keep-alive\n\n")
		}
		writeStream(w, event(`{"a":2}`))
		holdOpen(t, r)
	})
	s, _ := fastStream(url)
	s.Source.IdleTimeout.Duration = 600 * time.Millisecond
	run := startStream(t, s, nil)
	eventually(t, 10*time.Second, run.hasSnapshots(2))
	if f := run.failures(); len(f) > 0 {
		t.Errorf("connection dropped despite keep-alives: %v", f[0].Err)
	}
}

func TestStreamCloseMidEvent(t *testing.T) {
	url := sseServer(t, func(w http.ResponseWriter, r *http.Request, n int) {
		if n == 1 {
			writeStream(w, "data: {\"settings\":{\"half\":1}}\n") // no blank line: never dispatched
			return
		}
		writeStream(w, event(`{"whole":1}`))
		holdOpen(t, r)
	})
	s, _ := fastStream(url)
	run := startStream(t, s, nil)
	eventually(t, 5*time.Second, run.hasSnapshots(1))
	if got := run.snapshots(); len(got) != 1 || got[0].Settings["whole"] == nil {
		t.Errorf("handled %v, want only the complete event", got)
	}
	if err := run.failures()[0].Err; err == nil || !strings.Contains(err.Error(), "stream ended by the server") {
		t.Errorf("first connection ended with %v, want the server's close named", err)
	}
}

func TestStreamBackoffResetsOnlyAfterDelivery(t *testing.T) {
	cases := []struct {
		name     string
		raw      string
		failures []int
	}{
		{"event delivered", event(`{"a":1}`), []int{1, 1, 1, 1}},
		{"connected, nothing delivered", ": hello\n\n", []int{1, 2, 3, 4}},
		{"only a rejected event", event(`"x"`), []int{1, 2, 3, 4}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			url := sseServer(t, func(w http.ResponseWriter, r *http.Request, n int) { writeStream(w, tc.raw) })
			s, _ := fastStream(url)
			run := startStream(t, s, nil)
			eventually(t, 5*time.Second, run.hasFailures(4))
			run.stop(t)
			var got []int
			for _, ev := range run.failures()[:4] {
				got = append(got, ev.Failures)
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.failures) {
				t.Errorf("failures in a row = %v, want %v", got, tc.failures)
			}
		})
	}
}

func TestStreamMaxRetries(t *testing.T) {
	var requests atomic.Int64
	url := sseServer(t, func(w http.ResponseWriter, r *http.Request, n int) {
		requests.Add(1)
		http.Error(w, "down", http.StatusServiceUnavailable)
	})
	s, _ := fastStream(url)
	s.Backoff.MaxRetries = 3
	err := s.Run(t.Context(), func(Snapshot) {})
	if !errors.Is(err, ErrGaveUp) {
		t.Fatalf("Run = %v, want ErrGaveUp", err)
	}
	want := "gave up reconnecting after 3 failures in a row (backoff.max_retries = 3); last: HTTP 503"
	if !strings.Contains(err.Error(), want) {
		t.Errorf("Run = %q, want it to contain %q", err, want)
	}
	if n := requests.Load(); n != 3 {
		t.Errorf("%d requests, want 3", n)
	}
}

func TestRetryDelayFirstWindowIsJittered(t *testing.T) {
	jitter := true
	cfg := BackoffConfig{Min: Duration{200 * time.Millisecond}, Max: Duration{2 * time.Second},
		Factor: 2, Jitter: &jitter}
	lo, hi := time.Hour, time.Duration(0)
	for i := 0; i < 1000; i++ {
		d := newRetryDelay(cfg).next()
		lo, hi = min(lo, d), max(hi, d)
	}
	if lo < 200*time.Millisecond || hi > 400*time.Millisecond || hi-lo < 150*time.Millisecond {
		t.Errorf("first delays span [%s, %s], want most of [200ms, 400ms]", lo, hi)
	}

	r := newRetryDelay(cfg)
	for i := 0; i < 10; i++ {
		r.next()
	}
	if d := r.next(); d > 2*time.Second {
		t.Errorf("delay after 11 failures = %s, want at most max (2s)", d)
	}

	off := false
	cfg.Jitter = &off
	r = newRetryDelay(cfg)
	if got := []time.Duration{r.next(), r.next(), r.next()}; fmt.Sprint(got) != "[200ms 400ms 800ms]" {
		t.Errorf("delays without jitter = %v, want [200ms 400ms 800ms]", got)
	}
}

func TestStreamCancelReturnsPromptly(t *testing.T) {
	url := sseServer(t, func(w http.ResponseWriter, r *http.Request, n int) {
		writeStream(w, event(`{"a":1}`))
		holdOpen(t, r)
	})
	s, _ := fastStream(url)
	s.Source.ResyncInterval.Duration = 20 * time.Millisecond
	run := startStream(t, s, nil)
	eventually(t, 5*time.Second, run.hasSnapshots(1))
	if err := run.stop(t); !errors.Is(err, context.Canceled) {
		t.Errorf("Run after cancel = %v, want context.Canceled", err)
	}
}

func TestStreamCancelDuringBackoff(t *testing.T) {
	url := sseServer(t, func(w http.ResponseWriter, r *http.Request, n int) {
		http.Error(w, "down", http.StatusServiceUnavailable)
	})
	s, _ := fastStream(url)
	s.Backoff.Min.Duration, s.Backoff.Max.Duration = time.Hour, time.Hour
	run := startStream(t, s, nil)
	eventually(t, 5*time.Second, run.hasFailures(1))
	if err := run.stop(t); !errors.Is(err, context.Canceled) {
		t.Errorf("Run after cancel = %v, want context.Canceled", err)
	}
}

func TestStreamOversizeEventBoundedAndBackedOff(t *testing.T) {
	const eventSize = 100 << 20
	var attempts atomic.Int64
	url := sseServer(t, func(w http.ResponseWriter, r *http.Request, n int) {
		attempts.Add(1)
		writeStream(w, "data: ")
		chunk := []byte(strings.Repeat("x", 64<<10))
		for sent := 0; sent < eventSize; sent += len(chunk) {
			if _, err := w.Write(chunk); err != nil {
				return // the client hung up, as it should
			}
		}
		io.WriteString(w, "\n\n")
	})
	s, _ := fastStream(url)
	s.Backoff.Min.Duration, s.Backoff.Max.Duration = 100*time.Millisecond, 2*time.Second

	baseline, peak := heapInUse(), atomic.Uint64{}
	stopSampling := sampleHeap(&peak)
	run := startStream(t, s, nil)
	eventually(t, 20*time.Second, run.hasFailures(4))
	run.stop(t)
	stopSampling()

	for i, ev := range run.failures()[:4] {
		if !strings.Contains(ev.Err.Error(), "event larger than source.max_event_bytes (8388608 bytes): refused") {
			t.Fatalf("attempt %d failed with %v, want the limit named", i+1, ev.Err)
		}
		if ev.Failures != i+1 {
			t.Errorf("attempt %d counted as failure %d in a row: the backoff was reset", i+1, ev.Failures)
		}
	}
	if growth := int64(peak.Load()) - int64(baseline); growth > 64<<20 {
		t.Errorf("heap grew by %d MiB reading a 100 MiB event, want under 64 MiB", growth>>20)
	}
	t.Logf("heap growth %.1f MiB, %d attempts", float64(int64(peak.Load())-int64(baseline))/(1<<20),
		attempts.Load())
	if n := len(run.snapshots()); n != 0 {
		t.Errorf("%d snapshots handled, want none", n)
	}
}

func heapInUse() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse
}

// sampleHeap records the largest HeapInuse seen in *peak until stopped.
func sampleHeap(peak *atomic.Uint64) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		var m runtime.MemStats
		for {
			runtime.ReadMemStats(&m)
			if m.HeapInuse > peak.Load() {
				peak.Store(m.HeapInuse)
			}
			select {
			case <-done:
				return
			case <-time.After(5 * time.Millisecond):
			}
		}
	}()
	return func() { close(done); wg.Wait() }
}

func TestStreamOversizeFloodIsNotATightLoop(t *testing.T) {
	var attempts atomic.Int64
	url := sseServer(t, func(w http.ResponseWriter, r *http.Request, n int) {
		attempts.Add(1)
		writeStream(w, "data: "+strings.Repeat("x", 2<<10)+"\n\n")
	})
	s, _ := fastStream(url)
	s.Source.MaxEventBytes = 1 << 10
	s.Backoff.Min.Duration, s.Backoff.Max.Duration = 100*time.Millisecond, 10*time.Second
	run := startStream(t, s, nil)

	// With backoff from 100ms doubling, 2 s hold at most 5 attempts; a
	// tight loop would make thousands.
	eventually(t, 5*time.Second, run.hasFailures(1))
	start := attempts.Load()
	time.Sleep(2 * time.Second)
	if n := attempts.Load() - start; n > 8 {
		t.Errorf("%d connection attempts in 2s after an oversized initial event, want a handful", n)
	}
}

func TestStreamReaderNeverWaitsForHandler(t *testing.T) {
	const events = 200
	pad := strings.Repeat("p", 64<<10)
	written := make(chan struct{})
	url := sseServer(t, func(w http.ResponseWriter, r *http.Request, n int) {
		if n > 1 {
			holdOpen(t, r)
			return
		}
		for i := 1; i <= events; i++ {
			writeStream(w, event(fmt.Sprintf(`{"seq":%d,"pad":"%s"}`, i, pad)))
		}
		close(written)
		holdOpen(t, r)
	})
	release := make(chan struct{})
	var calls atomic.Int64
	s, logs := fastStream(url)
	run := startStream(t, s, func(Snapshot) {
		if calls.Add(1) == 1 {
			<-release // a slow apply: templates, reload commands
		}
	})

	// 12.5 MiB is more than the socket buffers hold: the server can only
	// finish writing if the client reads while the handler is blocked.
	select {
	case <-written:
	case <-time.After(10 * time.Second):
		t.Fatal("the server could not write its events while the handler was busy")
	}
	eventually(t, 10*time.Second, func() string {
		if n := len(logged(logs, "event received")); n < events {
			return fmt.Sprintf("%d events read, want %d", n, events)
		}
		return ""
	})
	close(release)
	eventually(t, 5*time.Second, run.hasSnapshots(2))
	run.stop(t)

	snaps := run.snapshots()
	if len(snaps) != 2 || snaps[1].Settings["seq"] != int64(events) {
		var seqs []any
		for _, s := range snaps {
			seqs = append(seqs, s.Settings["seq"])
		}
		t.Errorf("handler saw seq %v, want a first one and then only %d", seqs, events)
	}
}

// resyncServer streams settings "A" and answers GET /config/dev with config.
func resyncServer(t testing.TB, config func(w http.ResponseWriter, n int)) string {
	t.Helper()
	var gets atomic.Int64
	return sseServer(t, func(w http.ResponseWriter, r *http.Request, n int) {
		if strings.HasPrefix(r.URL.Path, "/config/") {
			config(w, int(gets.Add(1)))
			return
		}
		writeStream(w, event(`{"v":"A"}`))
		holdOpen(t, r)
	})
}

func writeJSON(w http.ResponseWriter, body string) {
	w.Header().Set("Content-Type", "application/json")
	io.WriteString(w, body)
}

func TestStreamResyncCatchesAMissedEvent(t *testing.T) {
	url := resyncServer(t, func(w http.ResponseWriter, n int) { writeJSON(w, `{"v":"B"}`) })
	s, _ := fastStream(url)
	s.Source.ResyncInterval.Duration = 50 * time.Millisecond
	run := startStream(t, s, nil)
	eventually(t, 5*time.Second, run.hasSnapshots(2))
	run.stop(t)
	snaps := run.snapshots()
	if len(snaps) != 2 || snaps[1].Settings["v"] != "B" || snaps[1].Origin != "resync" {
		t.Errorf("handled %d snapshots, want A from the stream then B from resync", len(snaps))
	}
}

func TestStreamResync404ChangesNothing(t *testing.T) {
	url := resyncServer(t, func(w http.ResponseWriter, n int) {
		http.Error(w, "environment dev not found", http.StatusNotFound)
	})
	s, logs := fastStream(url)
	s.Source.ResyncInterval.Duration = 50 * time.Millisecond
	run := startStream(t, s, nil)
	const msg = "resync found the environment unknown; settings unchanged"
	eventually(t, 5*time.Second, func() string {
		if n := len(logged(logs, msg)); n < 2 {
			return fmt.Sprintf("%d resync 404s logged, want 2", n)
		}
		return ""
	})
	run.stop(t)
	if snaps := run.snapshots(); len(snaps) != 1 || snaps[0].Settings["v"] != "A" {
		t.Errorf("handled %d snapshots, want only A", len(snaps))
	}
	if lv := logged(logs, msg)[0].Level; lv != zapcore.InfoLevel {
		t.Errorf("resync 404 logged at %s, want info", lv)
	}
}

// overtakenResync serves a stream that sends the event first and, once
// the first resync fetch has begun, the event newer; that slow fetch
// answers stale only after handled is closed (by the test's handler, when
// it got newer). Later fetches go to later. It returns the server's URL
// and the count of fetches so far.
func overtakenResync(t *testing.T, first, newer, stale string, handled <-chan struct{},
	later func(w http.ResponseWriter, r *http.Request)) (string, *atomic.Int64) {
	started := make(chan struct{})
	gets := new(atomic.Int64)
	url := sseServer(t, func(w http.ResponseWriter, r *http.Request, n int) {
		if strings.HasPrefix(r.URL.Path, "/config/") {
			if gets.Add(1) == 1 {
				close(started)
				<-handled
				writeJSON(w, stale)
				return
			}
			later(w, r)
			return
		}
		writeStream(w, event(first))
		select {
		case <-started:
			writeStream(w, event(newer))
		case <-r.Context().Done():
			return
		}
		holdOpen(t, r)
	})
	return url, gets
}

func TestStreamResyncNeverReplacesANewerEvent(t *testing.T) {
	handled := make(chan struct{}) // the handler got C
	var once sync.Once
	// A slow fetch: C arrives on the stream meanwhile, then it answers
	// with the older B.
	url, gets := overtakenResync(t, `{"v":"A"}`, `{"v":"C"}`, `{"v":"B"}`, handled,
		func(w http.ResponseWriter, _ *http.Request) { writeJSON(w, `{"v":"C"}`) })
	s, _ := fastStream(url)
	s.Source.ResyncInterval.Duration = 50 * time.Millisecond
	run := startStream(t, s, func(snap Snapshot) {
		if snap.Settings["v"] == "C" {
			once.Do(func() { close(handled) })
		}
	})
	// The third fetch starts after the first one's answer was dealt with.
	eventually(t, 10*time.Second, func() string {
		if n := gets.Load(); n < 3 {
			return fmt.Sprintf("%d resync fetches, want 3", n)
		}
		return ""
	})
	run.stop(t)
	var got []any
	for _, snap := range run.snapshots() {
		got = append(got, snap.Settings["v"])
	}
	if fmt.Sprint(got) != "[A C]" {
		t.Errorf("handler saw %v, want [A C]: the slow resync's B must not replace C", got)
	}
}

func TestStreamTokenRotationAndHeaders(t *testing.T) {
	dir := t.TempDir()
	tokenFile := writeFile(t, dir, "token", "tok-alpha-123\n")
	var mu sync.Mutex
	var auths, teams []string
	url := sseServer(t, func(w http.ResponseWriter, r *http.Request, n int) {
		mu.Lock()
		auths = append(auths, r.Header.Get("Authorization"))
		teams = append(teams, r.Header.Get("X-Team"))
		mu.Unlock()
		if n == 1 {
			writeFile(t, dir, "token", "tok-bravo-456") // rotated between connects
			writeStream(w, event(`{"a":1}`))
			return
		}
		writeStream(w, event(`{"a":2}`))
		holdOpen(t, r)
	})
	s, logs := fastStream(url)
	s.Source.TokenFile = tokenFile
	s.Source.Headers = map[string]string{"X-Team": "web"}
	run := startStream(t, s, nil)
	eventually(t, 5*time.Second, run.hasSnapshots(2))
	run.stop(t)

	mu.Lock()
	defer mu.Unlock()
	want := []string{"Bearer tok-alpha-123", "Bearer tok-bravo-456"}
	if fmt.Sprint(auths[:2]) != fmt.Sprint(want) {
		t.Errorf("Authorization headers = %q, want %q", auths[:2], want)
	}
	if teams[0] != "web" || teams[1] != "web" {
		t.Errorf("X-Team headers = %q, want web on every connect", teams)
	}
	if text := logText(logs); strings.Contains(text, "tok-") {
		t.Errorf("the token reached the log:\n%s", text)
	}
}

func TestStreamMissingTokenFile(t *testing.T) {
	url := sseServer(t, func(w http.ResponseWriter, r *http.Request, n int) { writeStream(w, event(`{"a":1}`)) })
	s, _ := fastStream(url)
	s.Source.TokenFile = t.TempDir() + "/absent"
	run := startStream(t, s, nil)
	eventually(t, 5*time.Second, run.hasFailures(1))
	if err := run.failures()[0].Err; !strings.Contains(err.Error(), "read source.token_file") {
		t.Errorf("attempt failed with %v, want source.token_file named", err)
	}
}

// testPKI is a CA with a server certificate for 127.0.0.1 and a client
// certificate, written as PEM files.
type testPKI struct {
	caFile, clientCert, clientKey string
	caPool                        *x509.CertPool
	server                        tls.Certificate
}

func newTestPKI(t testing.TB) testPKI {
	t.Helper()
	dir := t.TempDir()
	caKey, caCert := newCert(t, &x509.Certificate{
		Subject: pkix.Name{CommonName: "sseconfd test CA"}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign,
	}, nil, nil)
	serverKey, serverCert := newCert(t, &x509.Certificate{
		Subject: pkix.Name{CommonName: "127.0.0.1"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}, caCert, caKey)
	clientKey, clientCert := newCert(t, &x509.Certificate{
		Subject:  pkix.Name{CommonName: "sseconfd-client"},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}, caCert, caKey)

	p := testPKI{caPool: x509.NewCertPool()}
	p.caPool.AddCert(caCert)
	p.caFile = writeFile(t, dir, "ca.pem", pemCert(caCert))
	p.clientCert = writeFile(t, dir, "client.pem", pemCert(clientCert))
	p.clientKey = writeFile(t, dir, "client-key.pem", pemKey(t, clientKey))
	p.server = tls.Certificate{Certificate: [][]byte{serverCert.Raw}, PrivateKey: serverKey}
	return p
}

var serial atomic.Int64

// newCert makes a certificate from tmpl signed by parent (self-signed when nil).
func newCert(t testing.TB, tmpl, parent *x509.Certificate,
	parentKey *ecdsa.PrivateKey) (*ecdsa.PrivateKey, *x509.Certificate) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl.SerialNumber = big.NewInt(serial.Add(1))
	tmpl.NotBefore, tmpl.NotAfter = time.Now().Add(-time.Hour), time.Now().Add(time.Hour)
	if parent == nil {
		parent, parentKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return key, cert
}

func pemCert(c *x509.Certificate) string {
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw}))
}

func pemKey(t testing.TB, k *ecdsa.PrivateKey) string {
	der, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}))
}

// tlsServer serves one event to clients that show a certificate of pki's CA.
func tlsServer(t testing.TB, pki testPKI) string {
	t.Helper()
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeStream(w, event(fmt.Sprintf(`{"client":%q}`, r.TLS.PeerCertificates[0].Subject.CommonName)))
		holdOpen(t, r)
	}))
	srv.TLS = &tls.Config{
		Certificates: []tls.Certificate{pki.server},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    pki.caPool,
	}
	srv.Config.ErrorLog = stdlog.New(io.Discard, "", 0) // refused handshakes are expected
	srv.StartTLS()
	t.Cleanup(func() {
		srv.CloseClientConnections()
		srv.Close()
	})
	return srv.URL
}

func TestStreamTLS(t *testing.T) {
	pki := newTestPKI(t)
	url := tlsServer(t, pki)
	cases := []struct {
		name    string
		source  func(*SourceConfig)
		wantErr string // "": a snapshot arrives
		warns   bool
	}{
		{"client certificate", func(c *SourceConfig) {
			c.CAFile, c.CertFile, c.KeyFile = pki.caFile, pki.clientCert, pki.clientKey
		}, "", false},
		{"no client certificate", func(c *SourceConfig) { c.CAFile = pki.caFile }, "tls", false},
		{"unknown CA", func(c *SourceConfig) {
			c.CertFile, c.KeyFile = pki.clientCert, pki.clientKey
		}, "certificate signed by unknown authority", false},
		{"insecure_skip_verify", func(c *SourceConfig) {
			c.CertFile, c.KeyFile, c.InsecureSkipVerify = pki.clientCert, pki.clientKey, true
		}, "", true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, logs := fastStream(url)
			tc.source(&s.Source)
			run := startStream(t, s, nil)
			if tc.wantErr == "" {
				eventually(t, 5*time.Second, run.hasSnapshots(1))
				if got := run.snapshots()[0].Settings["client"]; got != "sseconfd-client" {
					t.Errorf("server saw client %v, want sseconfd-client", got)
				}
			} else {
				eventually(t, 5*time.Second, run.hasFailures(1))
				if err := run.failures()[0].Err; !strings.Contains(err.Error(), tc.wantErr) {
					t.Errorf("attempt failed with %v, want %q", err, tc.wantErr)
				}
			}
			warned := len(logged(logs, "TLS verification is off (source.insecure_skip_verify = true)")) > 0
			if warned != tc.warns {
				t.Errorf("insecure warning logged: %v, want %v", warned, tc.warns)
			}
		})
	}
}

func TestBatchReaderTrickle(t *testing.T) {
	cases := []struct {
		name       string
		raw        string
		want       string // what is handed on; "": raw unchanged
		first, max int    // size of the first batch, most batches
	}{
		// The comment is one batch, up to the CR that ends the empty line;
		// the 1 MiB event comes in batches that at least double, so the
		// parser rescans it a few times, not a million.
		{"large event", ": hi\r\n\r\n" + "data: " + strings.Repeat("x", 1<<20) + "\r\n\r" + "\ndata: tail",
			"", 7, 10},
		// Empty lines after an event end have no effect (WHATWG): they are
		// dropped, or go-sse's Read would buffer and rescan the run of them.
		{"empty lines", ": hi\n\n" + strings.Repeat("\n", 1<<20) + event(`{"a":1}`),
			": hi\n\n" + event(`{"a":1}`), 6, 10},
		{"empty CRLF and CR lines", ": hi\r\n\r\n\r\n\r\r\r\ndata: 1\r\n\r\n",
			": hi\r\n\r\ndata: 1\r\n\r\n", 7, 10},
		// Before any content they are kept: a BOM after them is no leading BOM.
		{"empty lines first", "\n\n\xEF\xBB\xBFdata: 1\n\n", "", 14, 10},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := newBatchReader(iotest.OneByteReader(strings.NewReader(tc.raw)), nil)
			var got []byte
			var batches []int
			p := make([]byte, 16<<20)
			for {
				n, err := b.Read(p)
				if n > 0 {
					got = append(got, p[:n]...)
					batches = append(batches, n)
				}
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
			}
			want := tc.want
			if want == "" {
				want = tc.raw
			}
			if string(got) != want {
				t.Fatalf("batchReader handed on %d bytes %.40q..., want %d bytes %.40q...",
					len(got), got, len(want), want)
			}
			if batches[0] != tc.first || len(batches) > tc.max {
				t.Errorf("batches of %v bytes, want a first of %d and at most %d", batches, tc.first, tc.max)
			}
		})
	}
}

func TestStreamSurvivesGarbage(t *testing.T) {
	rng := mathrand.New(mathrand.NewPCG(1, 2))
	garbage := make([]byte, 256<<10)
	for i := range garbage {
		garbage[i] = byte(rng.Uint32())
	}
	url := sseServer(t, func(w http.ResponseWriter, r *http.Request, n int) {
		writeStream(w, string(garbage)+"\n\n"+event(`{"after":"garbage"}`))
		holdOpen(t, r)
	})
	s, _ := fastStream(url)
	run := startStream(t, s, nil)
	eventually(t, 5*time.Second, run.hasSnapshots(1))
	if got := run.snapshots(); len(got) != 1 || got[0].Settings["after"] != "garbage" {
		t.Errorf("handled %d snapshots, want the one event after the garbage", len(got))
	}
	if f := run.failures(); len(f) > 0 {
		t.Errorf("garbage dropped the connection: %v", f[0].Err)
	}
}

func TestBatchReaderRetryField(t *testing.T) {
	cases := []struct {
		raw  string
		want []time.Duration
	}{
		{"retry: 300\n", []time.Duration{300 * time.Millisecond}},
		{"retry:300\r\nretry: 5\r", []time.Duration{300 * time.Millisecond, 5 * time.Millisecond}},
		{"retry:  300\n", nil},           // a second space is no digit
		{"retry: 30x\n", nil},            // nor is x
		{"retry: \nretry\n", nil},        // no digits
		{"retryx: 5\n: retry: 5\n", nil}, // other fields
		{"retry: 5", nil},                // an unfinished line
		{"retry: 99999999999999999999\n", []time.Duration{24 * time.Hour}},
	}
	for _, tc := range cases {
		for rname, wrap := range map[string]func(io.Reader) io.Reader{
			"one write": func(r io.Reader) io.Reader { return r }, "one byte at a time": iotest.OneByteReader,
		} {
			var got []time.Duration
			b := newBatchReader(wrap(strings.NewReader(tc.raw)), func(d time.Duration) { got = append(got, d) })
			io.Copy(io.Discard, b)
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("%s %q: retry fields %v, want %v", rname, tc.raw, got, tc.want)
			}
		}
	}
}

func TestStreamRetryFieldIsAFloorUpToMax(t *testing.T) {
	cases := []struct {
		name, retry string
		lo, hi      time.Duration // the delays after the first connection
	}{
		{"floor", "retry: 300\n", 300 * time.Millisecond, 300 * time.Millisecond},
		{"capped at backoff.max", "retry: 86400000\n", time.Second, time.Second},
		{"ignored when shorter", "retry: 1\n", 10 * time.Millisecond, 40 * time.Millisecond},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			url := sseServer(t, func(w http.ResponseWriter, r *http.Request, n int) {
				if n == 1 {
					writeStream(w, tc.retry+event(`{"a":1}`))
					return
				}
				writeStream(w, event(`{"a":1}`))
				holdOpen(t, r)
			})
			s, _ := fastStream(url)
			s.Backoff.Max.Duration = time.Second
			run := startStream(t, s, nil)
			eventually(t, 5*time.Second, run.hasFailures(1))
			if d := run.failures()[0].RetryIn; d < tc.lo || d > tc.hi {
				t.Errorf("retry in %s after %q, want within [%s, %s]", d, tc.retry, tc.lo, tc.hi)
			}
		})
	}
}

func TestStreamFallbackWhileNeverConnected(t *testing.T) {
	url := sseServer(t, func(w http.ResponseWriter, r *http.Request, n int) {
		http.Error(w, "down", http.StatusServiceUnavailable)
	})
	cached, err := NewSnapshot(map[string]any{"from": "cache"}, "cache")
	if err != nil {
		t.Fatal(err)
	}
	var asked atomic.Int64
	s, _ := fastStream(url)
	s.Fallback = func() (Snapshot, bool) { asked.Add(1); return cached, true }
	run := startStream(t, s, nil)
	eventually(t, 5*time.Second, run.hasFailures(3))
	run.stop(t)
	if got := run.snapshots(); len(got) != 1 || got[0].Origin != "cache" {
		t.Errorf("handled %d snapshots, want the cached one", len(got))
	}
	if n := asked.Load(); n != 1 {
		t.Errorf("Fallback asked %d times, want once", n)
	}
}
