package render

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/*/want")

// TestGolden renders each testdata/<case>/template.tmpl with its
// settings.json and compares the output with testdata/<case>/want.
func TestGolden(t *testing.T) {
	dirs, err := filepath.Glob("testdata/*/template.tmpl")
	if err != nil || len(dirs) == 0 {
		t.Fatalf("no golden cases found: %v", err)
	}
	for _, tmplPath := range dirs {
		dir := filepath.Dir(tmplPath)
		t.Run(filepath.Base(dir), func(t *testing.T) {
			tmpl, err := ParseFile(tmplPath)
			if err != nil {
				t.Fatal(err)
			}
			raw, err := os.ReadFile(filepath.Join(dir, "settings.json"))
			if err != nil {
				t.Fatal(err)
			}
			settings, err := ParseSettings(raw)
			if err != nil {
				t.Fatalf("ParseSettings: %v", err)
			}
			got, err := tmpl.Render(Data{Settings: settings, Env: "dev"})
			if err != nil {
				t.Fatalf("Render: %v", err)
			}
			wantPath := filepath.Join(dir, "want")
			if *update {
				if err := os.WriteFile(wantPath, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(wantPath)
			if err != nil {
				t.Fatalf("%v (run go test ./render -update to create it)", err)
			}
			if string(got) != string(want) {
				t.Errorf("Render(%s):\ngot:\n%s\nwant:\n%s", dir, got, want)
			}
		})
	}
}

func TestRenderErrors(t *testing.T) {
	const secret = "s3cr3t-value"
	settings := map[string]any{
		"present": "x",
		"nothing": nil,
		"list":    []any{secret},
		"secret":  secret,
		"nested":  map[string]any{"inner": nil},
	}
	tests := []struct {
		name        string
		template    string
		wantIn      []string // substrings of the error
		wantMissing bool     // errors.Is(err, ErrMissingValue)
	}{
		{"missing key", "a\n{{ .Settings.absent }}", []string{"t.tmpl:2", "absent"}, true},
		{"null printed", "{{ .Settings.nothing }}", []string{"t.tmpl:1", ".Settings.nothing"}, true},
		{"nested null", "{{ .Settings.nested.inner }}", []string{".Settings.nested.inner"}, true},
		{"index miss on map", `{{ index .Settings "absent" }}`, []string{"absent"}, true},
		{"index out of range", `{{ index .Settings.list 3 }}`, []string{"out of range"}, true},
		{"null in range body", "{{ range $k, $v := .Settings.nested }}{{ $v }}{{ end }}", []string{"$v"}, true},
		{"required", `{{ required "ball_color must be set" .Settings.nothing }}`,
			[]string{"ball_color must be set"}, false},
		{"value quoted by Go", "{{ range .Settings.secret }}{{ end }}",
			[]string{"range can't iterate over"}, false},
		{"value in call error", "{{ .Settings.secret | int | div 1 }}", nil, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tmpl, err := Parse("t.tmpl", tc.template)
			if err != nil {
				t.Fatalf("Parse(%q): %v", tc.template, err)
			}
			out, err := tmpl.Render(Data{Settings: settings})
			if err == nil {
				t.Fatalf("Render(%q) = %q, want an error", tc.template, out)
			}
			msg := err.Error()
			for _, want := range tc.wantIn {
				if !strings.Contains(msg, want) {
					t.Errorf("Render(%q) error %q, want it to contain %q", tc.template, msg, want)
				}
			}
			if strings.Contains(msg, secret) {
				t.Errorf("Render(%q) error %q quotes a setting value", tc.template, msg)
			}
			if strings.Contains(msg, "<no value>") {
				t.Errorf("Render(%q) error mentions <no value>: %q", tc.template, msg)
			}
			if got := errors.Is(err, ErrMissingValue); got != tc.wantMissing {
				t.Errorf("errors.Is(%q, ErrMissingValue) = %v, want %v", msg, got, tc.wantMissing)
			}
			var re *RenderError
			if !errors.As(err, &re) || re.Template != "t.tmpl" {
				t.Errorf("Render(%q) error %T does not name the template: %+v", tc.template, err, re)
			}
		})
	}
}

func TestNullGoesToFunctions(t *testing.T) {
	// A null passed to a function is the function's business: sprig's
	// default relies on receiving it.
	tmpl, err := Parse("t",
		`{{ .Settings.n | default "fallback" }} {{ if .Settings.n }}set{{ else }}unset{{ end }}`)
	if err != nil {
		t.Fatal(err)
	}
	out, err := tmpl.Render(Data{Settings: map[string]any{"n": nil}})
	if err != nil || string(out) != "fallback unset" {
		t.Fatalf("Render = %q, %v; want %q", out, err, "fallback unset")
	}
}

func TestMissingKeyZero(t *testing.T) {
	tmpl, err := Parse("t", `[{{ .Settings.absent }}][{{ .Settings.n }}][{{ index .Settings "absent" }}]`,
		MissingKeyZero())
	if err != nil {
		t.Fatal(err)
	}
	out, err := tmpl.Render(Data{Settings: map[string]any{"n": nil}})
	if err != nil || string(out) != "[][][]" {
		t.Fatalf("Render = %q, %v; want %q", out, err, "[][][]")
	}
}

func TestParseErrorNamesLine(t *testing.T) {
	_, err := Parse("broken.tmpl", "ok\n{{ .Settings.x ")
	if err == nil || !strings.Contains(err.Error(), "broken.tmpl:2") {
		t.Fatalf("Parse error = %v, want it to name broken.tmpl:2", err)
	}
}

func TestNoValueNeverPrinted(t *testing.T) {
	// Every way of reaching a nil that Go would print as "<no value>".
	templates := []string{
		"{{ .Settings.n }}",
		"{{ $x := .Settings.n }}{{ $x }}",
		"{{ with .Settings.m }}{{ .n }}{{ end }}",
		"{{ if true }}{{ .Settings.n }}{{ end }}",
		"{{ range .Settings.l }}{{ . }}{{ end }}",
		"{{ define \"sub\" }}{{ .n }}{{ end }}{{ template \"sub\" .Settings }}",
		"{{ block \"b\" .Settings }}{{ .n }}{{ end }}",
	}
	settings := map[string]any{"n": nil, "m": map[string]any{"n": nil}, "l": []any{nil}}
	for _, text := range templates {
		tmpl, err := Parse("t", text)
		if err != nil {
			t.Fatalf("Parse(%q): %v", text, err)
		}
		out, err := tmpl.Render(Data{Settings: settings})
		if err == nil || strings.Contains(string(out), "<no value>") {
			t.Errorf("Render(%q) = %q, %v; want an error and no <no value>", text, out, err)
		}
	}
}

func TestParseSettingsNumbers(t *testing.T) {
	tests := []struct {
		json string
		want string // fmt %v of the value of key "v"
	}{
		{`{"v": 1000000}`, "1000000"},
		{`{"v": 12345678901234567890}`, "12345678901234567890"},
		{`{"v": -9223372036854775808}`, "-9223372036854775808"},
		{`{"v": 123456789012345678901234567890}`, "123456789012345678901234567890"},
		{`{"v": 2.5}`, "2.5"},
		{`{"v": 1e21}`, "1000000000000000000000"},
		{`{"v": 1.0}`, "1"},
		{`{"v": 0.1}`, "0.1"},
	}
	for _, tc := range tests {
		s, err := ParseSettings([]byte(tc.json))
		if err != nil {
			t.Fatalf("ParseSettings(%s): %v", tc.json, err)
		}
		tmpl, _ := Parse("t", "{{ .Settings.v }}")
		out, err := tmpl.Render(Data{Settings: s})
		if err != nil || string(out) != tc.want {
			t.Errorf("render %s = %q, %v; want %q", tc.json, out, err, tc.want)
		}
	}
}

func TestParseSettingsErrors(t *testing.T) {
	tests := []struct {
		name, json, want string
	}{
		{"not an object", `["secretish"]`, "array"},
		{"syntax", `{"a": "secretish",}`, "invalid JSON at offset"},
		{"truncated", `{"a": "secretish"`, "unexpected end"},
		{"trailing", `{"a": 1} {"b": 2}`, "data after the value"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseSettings([]byte(tc.json))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("ParseSettings(%s) = %v, want error containing %q", tc.json, err, tc.want)
			}
			if strings.Contains(err.Error(), "secretish") {
				t.Errorf("ParseSettings(%s) error quotes the input: %v", tc.json, err)
			}
		})
	}
}

func TestParseErrorHints(t *testing.T) {
	tests := []struct{ text, want string }{
		{"{{ if .Settings.x }}open", "lacks its {{end}}"},
		{`{{ env "HOME" }}`, "templates see .Settings and .Env only"},
	}
	for _, tc := range tests {
		_, err := Parse("t.tmpl", tc.text)
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "t.tmpl:1") {
			t.Errorf("Parse(%q) error = %v, want it to name t.tmpl:1 and say %q", tc.text, err, tc.want)
		}
	}
}
