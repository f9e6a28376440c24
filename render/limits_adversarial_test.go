package render

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// TestRenderBoundsWhatASettingCanCost renders templates whose work grows
// with a setting's value. A fat-fingered count (workers = 2e10) must fail
// the render with an error, not exhaust the agent's memory (a fatal error
// Go cannot recover: the daemon dies, restarts, renders the cached
// settings and dies again) or spin for hours in the apply loop.
func TestRenderBoundsWhatASettingCanCost(t *testing.T) {
	long := strings.Repeat("y", 100)
	tests := []struct {
		name, text string
		n          int64
	}{
		{"range over a huge int spins", `{{ range .Settings.n }}{{ end }}done`, 20_000_000_000},
		{"range over an int too large to be a count", `{{ range $i := .Settings.n }}{{ end }}`, 2 << 20},
		{"until allocates a list of n ints", `{{ range until (int .Settings.n) }}{{ end }}`, 2 << 20},
		{"untilStep allocates too", `{{ range untilStep 0 (int .Settings.n) 1 }}{{ end }}`, 2 << 20},
		{"seq builds a string of n numbers", `{{ seq (int .Settings.n) | len }}`, 2 << 20},
		{"repeat builds n copies", `{{ repeat (int .Settings.n) $.Settings.s | len }}`, 1 << 20},
		{"indent pads every line with n spaces", `{{ indent (int .Settings.n) "a\nb\nc" | len }}`, 30 << 20},
		{"randAlphaNum makes n bytes", `{{ randAlphaNum (int .Settings.n) | len }}`, 100 << 20},
		{"output of a long loop", `{{ range until 1000000 }}{{ $.Settings.s }}{{ end }}`, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tmpl, err := Parse("t.tmpl", tc.text)
			if err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() {
				_, err := tmpl.Render(Data{Settings: map[string]any{"n": tc.n, "s": long}})
				done <- err
			}()
			select {
			case err = <-done:
			case <-time.After(60 * time.Second):
				t.Fatalf("Render(%s) with n = %d still runs after 60s", tc.text, tc.n)
			}
			if !errors.Is(err, ErrTooLarge) {
				t.Errorf("Render(%s) with n = %d: error %v, want ErrTooLarge", tc.text, tc.n, err)
			}
			if err != nil && !strings.Contains(err.Error(), "t.tmpl") {
				t.Errorf("Render(%s): error %q does not name the template", tc.text, err)
			}
		})
	}
}

// TestRenderWithinTheBounds checks that ordinary counts and outputs under
// the bounds still render.
func TestRenderWithinTheBounds(t *testing.T) {
	tests := []struct{ text, want string }{
		{`{{ range .Settings.n }}{{ . }}{{ end }}`, "0123"},
		{`{{ range $i, $e := until (int .Settings.n) }}{{ $i }}{{ end }}`, "0123"},
		{`{{ repeat (int .Settings.n) "ab" }}`, "abababab"},
		{`{{ seq 3 }}`, "1 2 3"},
		{`{{ indent 2 "a" }}`, "  a"},
		{`{{ range .Settings.list }}{{ . }}{{ else }}none{{ end }}`, "xy"},
		{`{{ range .Settings.null }}{{ . }}{{ else }}none{{ end }}`, "none"},
	}
	for _, tc := range tests {
		tmpl, err := Parse("t.tmpl", tc.text)
		if err != nil {
			t.Fatal(err)
		}
		out, err := tmpl.Render(Data{Settings: map[string]any{"n": int64(4), "list": []any{"x", "y"}, "null": nil}})
		if err != nil || string(out) != tc.want {
			t.Errorf("Render(%s) = %q, %v; want %q", tc.text, out, err, tc.want)
		}
	}
}
