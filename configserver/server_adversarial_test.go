package configserver

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestLoadDirKeepsDatesAsText loads a YAML file with an unquoted date:
// config-server-sse's YAML reader has no timestamp type and sends the text
// as written, so the stand-in must too, not "2024-01-02T00:00:00Z".
func TestLoadDirKeepsDatesAsText(t *testing.T) {
	dir := t.TempDir()
	yml := "release: 2024-01-02\nat: 2001-12-14t21:59:43.10-05:00\nnested:\n  - 2024-03-04\n"
	if err := os.WriteFile(filepath.Join(dir, "application-dev.yml"), []byte(yml), 0o644); err != nil {
		t.Fatal(err)
	}
	s := New()
	if err := s.LoadDir(dir); err != nil {
		t.Fatal(err)
	}
	want := `{"at":"2001-12-14t21:59:43.10-05:00","nested":["2024-03-04"],"release":"2024-01-02"}`
	if got := string(s.current("dev")); got != want {
		t.Errorf("LoadDir(%q) settings = %s, want %s", yml, got, want)
	}
}

// TestStreamsOfUnknownEnvsLeaveNothingBehind opens and closes streams for
// many environments that do not exist: the server must not keep one
// entry per name ever asked for (memory grows with every typo or scan).
func TestStreamsOfUnknownEnvsLeaveNothingBehind(t *testing.T) {
	s := New()
	srv := httptest.NewServer(s)
	t.Cleanup(func() { srv.CloseClientConnections(); srv.Close() })

	for i := range 50 {
		ctx, cancel := context.WithCancel(context.Background())
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("%s/sse/nope-%d", srv.URL, i), nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		cancel()
		resp.Body.Close()
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		s.mu.Lock()
		n := len(s.envs)
		s.mu.Unlock()
		if n == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 50 streams of unknown envs closed, the server holds %d environments, want 0", n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestPostRefusesInvalidUTF8 posts settings whose string is not UTF-8:
// the real server refuses such JSON; silently storing U+FFFD in its place
// would hand the agents a value nobody sent.
func TestPostRefusesInvalidUTF8(t *testing.T) {
	_, base := newTestServer(t)
	body := "{\"env\":\"dev\",\"settings\":{\"ball_color\":\"bl\xffue\"}}"
	if code := postConfig(t, base, body); code != http.StatusBadRequest {
		t.Errorf("POST /config with invalid UTF-8: HTTP %d, want 400", code)
	}
	_, _, got := get(t, base+"/config/dev")
	if got != `{"ball_color":"blue","ball_size":25,"ball_speed":5,"number_of_balls":40}` {
		t.Errorf("after a refused POST, GET /config/dev = %s", got)
	}
}
