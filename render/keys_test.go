package render

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

var keysCases = []struct {
	name, text string
	keys       []string // nil with all
	all        bool
}{
	{"fields", `{{.Settings.a}} {{.Settings.b.c}}`, []string{"a", "b"}, false},
	{"dollar", `{{$.Settings.a}}`, []string{"a"}, false},
	{"env only", `{{ .Env }}`, []string{}, false},
	{"range over all", `{{range $k, $v := .Settings}}{{$k}}{{end}}`, nil, true},
	{"range over one", `{{range .Settings.list}}{{.name}}{{end}}`, []string{"list"}, false},
	{"with a key", `{{with .Settings.db}}{{.port}}{{end}}`, []string{"db"}, false},
	{"with else", `{{with $v := .Settings.a}}{{$v}}{{else}}{{.Settings.b}}{{end}}`, []string{"a", "b"}, false},
	{"variable", `{{$s := .Settings}}{{$s.port}}`, []string{"port"}, false},
	{"index literal", `{{index .Settings "my-key" "x"}}`, []string{"my-key"}, false},
	{"index computed", `{{index .Settings .Settings.which}}`, nil, true},
	{"hasKey", `{{if hasKey .Settings "k"}}{{.Settings.k}}{{end}}`, []string{"k"}, false},
	{"get", `{{get .Settings "g"}}`, []string{"g"}, false},
	{"dig", `{{dig "a" "b" "x" .Settings}}`, []string{"a"}, false},
	{"dig piped", `{{.Settings | dig "a" "x"}}`, []string{"a"}, false},
	{"whole to a function", `{{.Settings | toJson}}`, nil, true},
	{"whole to dict", `{{$m := dict "s" .Settings}}{{$m.s.k}}`, nil, true},
	{"printed whole", `{{printf "%v" $}}`, nil, true},
	{"truth of the map", `{{if .Settings}}y{{end}}`, nil, true},
	{"len", `{{len .Settings}}`, nil, true},
	{"default", `{{.Settings.a.b | default "x"}}`, []string{"a"}, false},
	{"chain", `{{(.Settings).a}}`, []string{"a"}, false},
	{"template with map", `{{define "p"}}{{.port}}{{end}}{{template "p" .Settings}}`, []string{"port"}, false},
	{"template with root", `{{define "p"}}{{.Settings.x}}{{end}}{{template "p" .}}`, []string{"x"}, false},
	{"template with value", `{{define "p"}}{{$.Settings.y}}{{end}}{{template "p" .Settings.z}}`,
		[]string{"z"}, false},
	{"template ranging", `{{define "p"}}{{range .Settings}}{{end}}{{end}}{{template "p" .}}`, nil, true},
	{"block", `{{block "b" .Settings}}{{.q}}{{end}}`, []string{"q"}, false},
	{"recursive", `{{define "r"}}{{.Settings.a}}{{template "r" .}}{{end}}{{template "r" .}}`,
		[]string{"a"}, false},
	{"assigned later", `{{$x := 1}}{{range .Settings.l}}{{$x = $.Settings}}{{end}}{{$x.k}}`,
		[]string{"k", "l"}, false},
	{"assigned both", `{{$x := .Env}}{{$x = .Settings}}{{range $x}}{{end}}`, nil, true},
	{"root or map", `{{$x := .}}{{$x = .Settings}}{{$x.a}}`, nil, true},
}

func TestKeys(t *testing.T) {
	for _, c := range keysCases {
		t.Run(c.name, func(t *testing.T) {
			tmpl, err := Parse(c.name, c.text)
			if err != nil {
				t.Fatal(err)
			}
			keys, all := tmpl.Keys()
			if all != c.all || (!all && !slices.Equal(keys, c.keys)) {
				t.Errorf("Keys() = %q, all=%v; want %q, all=%v", keys, all, c.keys, c.all)
			}
		})
	}
}

// TestKeysDecideOutput checks what Keys promises on the shipped templates,
// the golden cases and the cases above: settings that agree on the keys a
// template reads render it the same, however the other keys change. The
// changes are random (seeded, so a failure repeats), and include removing
// keys and turning values into maps, lists, numbers and nulls.
func TestKeysDecideOutput(t *testing.T) {
	type subject struct {
		name string
		tmpl *Template
		base map[string]any
	}
	var subjects []subject
	for _, c := range keysCases {
		if c.all {
			continue
		}
		tmpl, err := Parse(c.name, c.text)
		if err != nil {
			t.Fatal(err)
		}
		base := map[string]any{
			"a": map[string]any{"b": "ab"}, "b": map[string]any{"c": "bc"}, "db": map[string]any{"port": 5432},
			"list": []any{map[string]any{"name": "n1"}}, "port": 80, "my-key": map[string]any{"x": "mx"},
			"k": "kv", "g": "gv", "l": []any{1}, "q": "qv", "x": "xv", "z": "zv",
		}
		subjects = append(subjects, subject{c.name, tmpl, base})
	}
	shipped, _ := filepath.Glob("../templates/*.tmpl")
	golden, _ := filepath.Glob("testdata/*/template.tmpl")
	for _, path := range append(shipped, golden...) {
		tmpl, err := ParseFile(path)
		if err != nil {
			t.Fatal(err)
		}
		settingsFile := filepath.Join(filepath.Dir(path), "settings.json")
		if strings.HasPrefix(path, "../templates/") {
			settingsFile = "testdata/shipped-settings.json"
		}
		data, err := os.ReadFile(settingsFile)
		if err != nil {
			t.Fatal(err)
		}
		base, err := ParseSettings(data)
		if err != nil {
			t.Fatal(err)
		}
		subjects = append(subjects, subject{path, tmpl, base})
	}

	rng := rand.New(rand.NewPCG(7, 11))
	checked := 0
	for _, s := range subjects {
		keys, all := s.tmpl.Keys()
		if all {
			continue // app.env ranges over the settings: always rendered
		}
		want, err := s.tmpl.Render(Data{Settings: s.base, Env: "test"})
		if err != nil {
			continue // "template with value" fails by design: $ is a string there
		}
		for range 200 {
			changed := mutateOthers(rng, s.base, keys)
			got, err := s.tmpl.Render(Data{Settings: changed, Env: "test"})
			if err != nil || string(got) != string(want) {
				t.Fatalf("%s: keys %q unchanged but output differs (err %v):\n%s\nwant:\n%s",
					s.name, keys, err, got, want)
			}
			checked++
		}
	}
	if checked == 0 {
		t.Fatal("nothing checked")
	}
}

// mutateOthers returns a copy of base in which keys not in keep are
// removed, replaced or added at random.
func mutateOthers(rng *rand.Rand, base map[string]any, keep []string) map[string]any {
	out := make(map[string]any, len(base)+2)
	for k, v := range base {
		out[k] = v
	}
	values := []any{nil, "s", int64(3), 2.5, true, map[string]any{"x": "y"}, []any{"l"}}
	for k := range out {
		if slices.Contains(keep, k) {
			continue
		}
		switch rng.IntN(3) {
		case 0:
			delete(out, k)
		case 1:
			out[k] = values[rng.IntN(len(values))]
		}
	}
	for i := range rng.IntN(3) {
		name := fmt.Sprintf("extra%d", i)
		if !slices.Contains(keep, name) {
			out[name] = values[rng.IntN(len(values))]
		}
	}
	return out
}
