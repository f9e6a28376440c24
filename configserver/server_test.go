package configserver

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func newTestServer(t *testing.T) (*Server, string) {
	t.Helper()
	s := New()
	s.KeepAlive = 100 * time.Millisecond
	if err := s.LoadDir("testdata"); err != nil {
		t.Fatalf("LoadDir(testdata): %v", err)
	}
	srv := httptest.NewServer(s)
	t.Cleanup(func() { srv.CloseClientConnections(); srv.Close() })
	return s, srv.URL
}

func get(t *testing.T, url string) (int, string, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("Content-Type"), string(body)
}

func postConfig(t *testing.T, base, body string) int {
	t.Helper()
	resp, err := http.Post(base+"/config", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatalf("POST /config: %v", err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func TestGetConfig(t *testing.T) {
	_, base := newTestServer(t)
	tests := []struct {
		path       string
		wantStatus int
		wantType   string
		wantBody   string
	}{
		{"/config/dev", 200, "application/json",
			`{"ball_color":"blue","ball_size":25,"ball_speed":5,"number_of_balls":40}`},
		{"/config/stage", 200, "application/json",
			`{"ball_color":"red","ball_size":25,"ball_speed":5,"number_of_balls":40}`},
		{"/config/nope", 404, "text/plain; charset=utf-8", "environment nope not found\n"},
		{"/config/history/nope", 404, "text/plain; charset=utf-8", "environment nope not found\n"},
		{"/config/version/dev/1", 200, "application/json",
			`{"ball_color":"blue","ball_size":25,"ball_speed":5,"number_of_balls":40}`},
		{"/config/version/dev/0", 400, "text/plain; charset=utf-8", ""},
		{"/config/version/dev/2", 400, "text/plain; charset=utf-8", ""},
		{"/config/version/dev/x", 400, "text/plain; charset=utf-8", ""},
		{"/config/version/nope/1", 404, "text/plain; charset=utf-8", "environment nope not found\n"},
	}
	for _, tc := range tests {
		t.Run(tc.path, func(t *testing.T) {
			code, ctype, body := get(t, base+tc.path)
			if code != tc.wantStatus || ctype != tc.wantType {
				t.Errorf("GET %s = %d %q, want %d %q", tc.path, code, ctype, tc.wantStatus, tc.wantType)
			}
			if tc.wantBody != "" && body != tc.wantBody {
				t.Errorf("GET %s body = %q, want %q", tc.path, body, tc.wantBody)
			}
		})
	}
}

func TestPostAndHistory(t *testing.T) {
	_, base := newTestServer(t)
	sample := `{"env": "dev", "settings": {"ball_color": "blue", "ball_size": 25, "ball_speed": 50, "number_of_balls": 10}}`
	if code := postConfig(t, base, sample); code != 200 {
		t.Fatalf("POST = %d, want 200", code)
	}
	// The same settings again, keys reordered: 200 and no new version.
	same := `{"env": "dev", "settings": {"number_of_balls": 10, "ball_speed": 50, "ball_size": 25, "ball_color": "blue"}}`
	if code := postConfig(t, base, same); code != 200 {
		t.Fatalf("POST same = %d, want 200", code)
	}
	code, _, body := get(t, base+"/config/history/dev")
	if code != 200 {
		t.Fatalf("GET history = %d", code)
	}
	var history []struct {
		Config struct {
			Settings map[string]any `json:"settings"`
		} `json:"config"`
		Version   int       `json:"version"`
		Timestamp time.Time `json:"timestamp"`
	}
	if err := json.Unmarshal([]byte(body), &history); err != nil {
		t.Fatalf("history %q: %v", body, err)
	}
	if len(history) != 2 || history[0].Version != 1 || history[1].Version != 2 {
		t.Fatalf("history = %+v, want versions 1 and 2", history)
	}
	if history[1].Config.Settings["ball_speed"] != 50.0 || history[1].Timestamp.IsZero() {
		t.Errorf("history[1] = %+v, want ball_speed 50 and a timestamp", history[1])
	}
	if _, _, v2 := get(t, base+"/config/version/dev/2"); !strings.Contains(v2, `"ball_speed":50`) {
		t.Errorf("version 2 = %s", v2)
	}
	for _, bad := range []string{`{`, `{"env": "dev"}`,
		`{"env": "", "settings": {}}`, `{"env": "dev", "settings": [1]}`} {
		if code := postConfig(t, base, bad); code != 400 {
			t.Errorf("POST %s = %d, want 400", bad, code)
		}
	}
}

// streamLines opens /sse/env and sends each line read to the channel.
func streamLines(t *testing.T, base, env string) (*http.Response, <-chan string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", base+"/sse/"+env, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET /sse/%s: %v", env, err)
	}
	lines := make(chan string, 100)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	t.Cleanup(func() { cancel(); resp.Body.Close() })
	return resp, lines
}

func next(t *testing.T, lines <-chan string, skipComments bool) string {
	t.Helper()
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatal("stream ended")
			}
			if skipComments && (strings.HasPrefix(l, ":") || l == "") {
				continue
			}
			return l
		case <-time.After(5 * time.Second):
			t.Fatal("no line within 5s")
		}
	}
}

func TestStream(t *testing.T) {
	_, base := newTestServer(t)
	resp, lines := streamLines(t, base, "dev")
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("GET /sse/dev = %d %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	// The initial event: exactly one data line with the current settings, then a blank line.
	first := `data: {"settings":{"ball_color":"blue","ball_size":25,"ball_speed":5,"number_of_balls":40}}`
	if l := next(t, lines, false); l != first {
		t.Fatalf("first line = %q", l)
	}
	if l := next(t, lines, false); l != "" {
		t.Fatalf("second line = %q, want the blank line ending the event", l)
	}
	// A keep-alive comment comes within the keep-alive period.
	if l := next(t, lines, false); !strings.HasPrefix(l, ":") {
		t.Fatalf("line after the event = %q, want a comment", l)
	}
	// An accepted update is broadcast; an identical one is not.
	postConfig(t, base, `{"env": "dev", "settings": {"ball_color": "green"}}`)
	postConfig(t, base, `{"env": "dev", "settings": {"ball_color": "green"}}`)
	postConfig(t, base, `{"env": "dev", "settings": {"ball_color": "red"}}`)
	if l := next(t, lines, true); l != `data: {"settings":{"ball_color":"green"}}` {
		t.Fatalf("update line = %q", l)
	}
	if l := next(t, lines, true); l != `data: {"settings":{"ball_color":"red"}}` {
		t.Fatalf("line after the identical POST = %q, want the red update", l)
	}
}

func TestStreamUnknownEnvIsSilentUntilPosted(t *testing.T) {
	_, base := newTestServer(t)
	resp, lines := streamLines(t, base, "fresh")
	if resp.StatusCode != 200 {
		t.Fatalf("GET /sse/fresh = %d, want 200", resp.StatusCode)
	}
	if l := next(t, lines, false); !strings.HasPrefix(l, ":") {
		t.Fatalf("first line for an unknown env = %q, want only keep-alive comments", l)
	}
	postConfig(t, base, `{"env": "fresh", "settings": {"a": 1}}`)
	if l := next(t, lines, true); l != `data: {"settings":{"a":1}}` {
		t.Fatalf("line after first POST = %q", l)
	}
}

func TestSlowSubscriberLosesEventsNotTheServer(t *testing.T) {
	s := New()
	ch := make(chan []byte, QueueSize)
	s.mu.Lock()
	s.env("dev").subs[ch] = struct{}{}
	s.mu.Unlock()
	for i := 0; i < QueueSize+10; i++ {
		s.Set("dev", json.RawMessage(`{"n":`+strings.Repeat("1", i+1)+`}`))
	}
	if len(ch) != QueueSize {
		t.Fatalf("queue holds %d events, want %d (the rest dropped, Set never blocking)", len(ch), QueueSize)
	}
}
