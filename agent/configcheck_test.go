package agent

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.uber.org/zap"
)

// TestLoadReportsEveryProblem writes a config with five different mistakes
// and requires Load to report all five, each with its file and line.
func TestLoadReportsEveryProblem(t *testing.T) {
	dir := t.TempDir()
	good := writeFile(t, dir, "good.tmpl", "port={{ .Settings.port }}\n")
	broken := writeFile(t, dir, "broken.tmpl", "a\nb\n{{ .Settings.port }\n")
	text := `[source]
url = "http://127.0.0.1:8080"
env = "dev"
idle_timeout = 45

[[template]]
source = "` + good + `"
destination = "` + filepath.Join(dir, "out.conf") + `"

[[template]]
source = "` + broken + `"
destination = "` + filepath.Join(dir, "missing", "b.conf") + `"
mdoe = "0644"

[[template]]
source = "` + good + `"
destination = "` + filepath.Join(dir, "out.conf") + `"

[[reload]]
name = "app"
command = "true"
`
	path := writeFile(t, dir, "sseconfd.toml", text)
	_, err := Load(path, zap.NewNop(), Options{})
	var ce *ConfigError
	if !errors.As(err, &ce) {
		t.Fatalf("Load(%s) = %v, want a *ConfigError", path, err)
	}
	want := []string{
		path + ":4: source.idle_timeout: want a duration in quotes such as \"30s\", got an integer",
		path + ":12: template[1].destination: directory " + filepath.Join(dir, "missing") +
			" does not exist; create it, or set create_dirs = true",
		path + ":13: template[1].mdoe: unknown key (did you mean \"mode\"?)",
		path + ":17: template[2].destination: " + filepath.Join(dir, "out.conf") +
			" is also the destination of template[0]",
		path + ":20: reload[0].name: no [[template]] names \"app\" in its reload key, so it would never run",
		broken + ":3: unexpected \"}\" in operand",
	}
	got := strings.Split(err.Error(), "\n")
	if len(got) != len(want) {
		t.Fatalf("Load reported %d problems, want %d:\n%s", len(got), len(want), err)
	}
	for i := range want {
		if !strings.Contains(err.Error(), want[i]) {
			t.Errorf("Load error lacks\n  %s\ngot:\n%s", want[i], err)
		}
	}
}

func TestKeyLines(t *testing.T) {
	text := `# comment with [[template]] inside
[source]
url = "http://x"   # trailing [comment
"env" = 'dev'
headers = { "X-Team" = "web", Y = "z" }

[[template]]
source = """
[[not a header]]
mode = "x"
"""
mode = "0644"

[[template]]
list = [
  "a",
  [ "b" ],
]
mode = "0600"

[[reload]]
name = "x"
[reload.extra]
deep.key = 1
`
	lines := scanKeyLines([]byte(text))
	tests := []struct {
		key  string
		want int
	}{
		{"source.url", 3},
		{"source.env", 4},
		{"source.headers", 5},
		{"source.headers.Y", 5},
		{"template[0]", 7},
		{"template[0].source", 8},
		{"template[0].mode", 12},
		{"template[1]", 14},
		{"template[1].list", 15},
		{"template[1].mode", 19},
		{"template[1].nothere", 14},
		{"reload[0].name", 22},
		{"reload[0].extra.deep.key", 24},
		{"absent.key", 0},
	}
	for _, tc := range tests {
		if got := lines.line(tc.key); got != tc.want {
			t.Errorf("line(%q) = %d, want %d", tc.key, got, tc.want)
		}
	}
}

func TestParseConfigTypeErrors(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name, text, want string
	}{
		{"string for bool", "allow_empty = \"yes\"",
			"source.allow_empty: want true or false, got the string \"yes\""},
		{"bad duration", "idle_timeout = \"45 seconds\"",
			"source.idle_timeout: want a duration such as \"30s\" or \"5m\", got \"45 seconds\""},
		{"unknown in source", "ulr = \"x\"", "source.ulr: unknown key (did you mean \"url\"?)"},
		{"header not string", "headers = { X = 1 }", "source.headers: \"X\": want a string, got an integer"},
		{"size as number", "max_event_bytes = 1024", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			text := "[source]\nurl = \"http://127.0.0.1:1\"\nenv = \"dev\"\n" + tc.text + "\n" +
				"[[template]]\nsource = \"x\"\ndestination = \"" + filepath.Join(dir, "out") + "\"\n"
			_, err := ParseConfig("c.toml", []byte(text))
			if tc.want == "" {
				if err != nil {
					t.Fatalf("ParseConfig(%q) = %v, want no error", tc.text, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), "c.toml:4: "+tc.want) {
				t.Fatalf("ParseConfig(%q) = %v, want it to contain %q", tc.text, err, "c.toml:4: "+tc.want)
			}
		})
	}
}

func TestLoadMissingFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "nope.toml")
	_, err := Load(path, zap.NewNop(), Options{})
	if err == nil || !strings.Contains(err.Error(), path+": config file not found") {
		t.Fatalf("Load(%s) = %v, want config file not found", path, err)
	}
	if _, statErr := os.Stat(path); statErr == nil {
		t.Fatal("Load created the file")
	}
}

// FuzzScanKeyLines feeds arbitrary text to the line scanner, which runs on
// every config before the TOML decoder has said it is valid.
func FuzzScanKeyLines(f *testing.F) {
	f.Add("[source]\nurl = \"x\"\n[[template]]\nsource = '''\n[x]\n'''\n")
	f.Add("a.\"b.c\".d = [\n{ x = 1 },\n]\n[[a.b]]\n[a.b.c]\n")
	f.Add("\"\n'\n\"\"\"\n[[\n[\n=")
	f.Fuzz(func(t *testing.T, text string) {
		lines := scanKeyLines([]byte(text))
		for key := range lines {
			if key == "" {
				continue // a header "[]", which TOML refuses anyway
			}
			if n := lines.line(key + ".child"); n <= 0 {
				t.Fatalf("line(%q) = %d for a key under %q", key+".child", n, key)
			}
		}
	})
}

func TestParseConfigSyntaxHint(t *testing.T) {
	_, err := ParseConfig("c.toml", []byte("[source]\nurl = \"http://x\"\nenv = dev\n"))
	want := `c.toml:3: TOML syntax: expected value but found "dev" instead (a string needs quotes: env = "dev")`
	if err == nil || err.Error() != want {
		t.Fatalf("ParseConfig with an unquoted string = %v, want %s", err, want)
	}
}
