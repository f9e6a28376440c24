package render

import (
	"errors"
	"strings"
	"testing"
)

// Render runs a template without its nil checks first; these cases prove
// that the checked run still decides whenever the first one is not clean.
func TestRenderFastPathDecidesLikeGuarded(t *testing.T) {
	tests := []struct {
		name     string
		template string
		settings map[string]any
		opts     []Option
		want     string
		wantErr  error
		wantIn   string // in the error message
	}{
		{name: "value whose text is <no value>", template: "v={{.Settings.a}}",
			settings: map[string]any{"a": "<no value>"}, want: "v=<no value>"},
		{name: "null printed", template: "v={{.Settings.a}}",
			settings: map[string]any{"a": nil}, wantErr: ErrMissingValue},
		{name: "null printed before a missing key names the null", template: "{{.Settings.a}}{{.Settings.b}}",
			settings: map[string]any{"a": nil}, wantErr: ErrMissingValue, wantIn: "{{.Settings.a}}"},
		{name: "null in a range", template: "{{range .Settings.l}}{{.}},{{end}}",
			settings: map[string]any{"l": []any{int64(1), nil}}, wantErr: ErrMissingValue},
		{name: "zero mode prints a null as empty", template: "v={{.Settings.a}}.",
			settings: map[string]any{"a": nil}, opts: []Option{MissingKeyZero()}, want: "v=."},
		{name: "clean output", template: "v={{.Settings.a}}",
			settings: map[string]any{"a": int64(7)}, want: "v=7"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tmpl, err := Parse("t.tmpl", tc.template, tc.opts...)
			if err != nil {
				t.Fatal(err)
			}
			for range 2 { // the second run uses the already parsed checks
				out, err := tmpl.Render(Data{Settings: tc.settings})
				if !errors.Is(err, tc.wantErr) || (err != nil) != (tc.wantErr != nil) {
					t.Fatalf("Render(%q) error = %v, want %v", tc.template, err, tc.wantErr)
				}
				if err != nil && !strings.Contains(err.Error(), tc.wantIn) {
					t.Fatalf("Render(%q) error = %q, want it to name %s", tc.template, err, tc.wantIn)
				}
				if err == nil && string(out) != tc.want {
					t.Fatalf("Render(%q) = %q, want %q", tc.template, out, tc.want)
				}
			}
		})
	}
}
