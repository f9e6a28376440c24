package agent

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestSourceURLCheckedAtLoad gives source.url values that used to pass
// validate and fail only at connect time, with the whole URL (password
// and query included) in every log line of every retry. Each must be a
// config error that names the key and quotes no secret part of the URL.
func TestSourceURLCheckedAtLoad(t *testing.T) {
	tests := []struct{ name, url, wantErr string }{
		{"bad port", "http://u:SECRETPW@127.0.0.1:99x", "port"},
		{"bad escape in the password", "http://u:SECRET%zzPW@127.0.0.1:1", "not a valid URL"},
		{"query (a token?)", "http://127.0.0.1:1/?token=SECRETQ", "query"},
		{"fragment", "http://127.0.0.1:1/#SECRETF", "fragment"},
		{"no host", "http:///sse", "host"},
		{"space in host", "http://exa mple.com", "not a valid URL"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			text := fmt.Sprintf("[source]\nurl = %q\nenv = \"dev\"\n", tc.url)
			_, err := ParseConfig("sseconfd.toml", []byte(text))
			if err == nil {
				t.Fatalf("ParseConfig with url = %q: no error", tc.url)
			}
			msg := err.Error()
			if !strings.Contains(msg, "source.url") || !strings.Contains(msg, tc.wantErr) {
				t.Errorf("ParseConfig with url = %q: %v, want source.url and %q", tc.url, msg, tc.wantErr)
			}
			if strings.Contains(msg, "SECRET") {
				t.Errorf("ParseConfig with url = %q: error quotes a secret part: %s", tc.url, msg)
			}
		})
	}

	for _, ok := range []string{"http://127.0.0.1:8080", "https://config.example.com/base/",
		"http://u:p@[::1]:80"} {
		text := fmt.Sprintf("[source]\nurl = %q\nenv = \"dev\"\n", ok)
		if _, err := ParseConfig("sseconfd.toml", []byte(text)); err != nil &&
			strings.Contains(err.Error(), "source.url") {
			t.Errorf("ParseConfig with url = %q: %v", ok, err)
		}
	}
}

// TestDestinationCollisionsRefused configures a destination that is also
// a file the agent reads or writes for another purpose, spelled
// differently: the agent would overwrite its own template (and then parse
// the rendered settings as template source), the cache and the rendered
// file would overwrite each other on every update, or two templates
// would fight over one file.
func TestDestinationCollisionsRefused(t *testing.T) {
	dir := t.TempDir()
	tmplA := writeFile(t, dir, "a.tmpl", "a")
	tmplB := writeFile(t, dir, "b.tmpl", "b")
	tests := []struct{ name, destA, destB, cache, want string }{
		{"destination is its own source", tmplA, dir + "/b.conf", "", "source"},
		{"destination is another template's source", dir + "/./b.tmpl", dir + "/b.conf", "", "source"},
		{"destination is the cache", dir + "/a.conf", dir + "/b.conf", dir + "//a.conf", "cache"},
		{"two destinations spelled differently", dir + "/x.conf", dir + "/sub/../x.conf", "", "destination"},
		{"destination is the config file", dir + "/sseconfd.toml", dir + "/b.conf", "", "config"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			os.MkdirAll(dir+"/sub", 0o755)
			text := fmt.Sprintf(`[source]
url = "http://127.0.0.1:1"
env = "dev"
[cache]
path = %q
[[template]]
source = %q
destination = %q
[[template]]
source = %q
destination = %q
`, tc.cache, tmplA, tc.destA, tmplB, tc.destB)
			_, err := ParseConfig(filepath.Join(dir, "sseconfd.toml"), []byte(text))
			if err == nil || !strings.Contains(err.Error(), ".destination") ||
				!strings.Contains(err.Error(), tc.want) {
				t.Errorf("ParseConfig: %v, want a destination problem naming the %s", err, tc.want)
			}
		})
	}
}

// TestSourceHeadersCheckedAtLoad configures request headers that Go's
// client refuses on every request: validate said ok and the agent then
// failed every connect, forever. Each must be a config error naming the
// header, never quoting its value (it may be an API key).
func TestSourceHeadersCheckedAtLoad(t *testing.T) {
	tests := []struct{ name, headers, want string }{
		{"space in a name", `{ "X Team" = "web" }`, `"X Team"`},
		{"colon in a name", `{ "X-Team:" = "web" }`, `"X-Team:"`},
		{"control character in a value", `{ "X-Key" = "SECRET\u0001KEY" }`, `"X-Key"`},
		{"line break in a value", `{ "X-Key" = "SECRET\nInjected: 1" }`, `"X-Key"`},
		{"Host is ignored by Go", `{ "Host" = "other.example" }`, `"Host"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			text := "[source]\nurl = \"http://127.0.0.1:1\"\nenv = \"dev\"\nheaders = " + tc.headers + "\n"
			_, err := ParseConfig("sseconfd.toml", []byte(text))
			if err == nil || !strings.Contains(err.Error(), "source.headers") ||
				!strings.Contains(err.Error(), tc.want) {
				t.Fatalf("ParseConfig with headers = %s: %v, want source.headers naming %s", tc.headers, err, tc.want)
			}
			if strings.Contains(err.Error(), "SECRET") {
				t.Errorf("ParseConfig with headers = %s: error quotes the value: %v", tc.headers, err)
			}
		})
	}
	text := "[source]\nurl = \"http://127.0.0.1:1\"\nenv = \"dev\"\n" +
		"headers = { \"X-Team\" = \"web ünï\\ttab\" }\n"
	if _, err := ParseConfig("sseconfd.toml", []byte(text)); err != nil &&
		strings.Contains(err.Error(), "source.headers") {
		t.Errorf("ParseConfig with a valid header: %v", err)
	}
}

// TestTightLoopDurationsRefused sets durations that turn a loop into a
// tight one: resync_interval = "1ms" is a thousand GET /config/{env} a
// second from every agent; idle_timeout = "1ns" drops every connection
// the moment it opens. validate said ok to both.
func TestTightLoopDurationsRefused(t *testing.T) {
	for _, kv := range []string{`resync_interval = "1ns"`, `resync_interval = "999ms"`,
		`idle_timeout = "1ns"`, `idle_timeout = "500ms"`} {
		text := "[source]\nurl = \"http://127.0.0.1:1\"\nenv = \"dev\"\n" + kv + "\n"
		key := "source." + strings.Fields(kv)[0]
		if _, err := ParseConfig("sseconfd.toml", []byte(text)); err == nil || !strings.Contains(err.Error(), key) {
			t.Errorf("ParseConfig with %s: %v, want an error naming %s", kv, err, key)
		}
	}
	for _, kv := range []string{`resync_interval = "0s"`, `resync_interval = "1s"`, `idle_timeout = "1s"`} {
		text := "[source]\nurl = \"http://127.0.0.1:1\"\nenv = \"dev\"\n" + kv + "\n"
		if _, err := ParseConfig("sseconfd.toml", []byte(text)); err != nil &&
			strings.Contains(err.Error(), strings.Fields(kv)[0]) {
			t.Errorf("ParseConfig with %s: %v", kv, err)
		}
	}
}

// TestUncatchableReloadSignalRefused configures SIGKILL or SIGSTOP as the
// reload signal: validate said ok, and every update would have killed or
// frozen the program it meant to reload.
func TestUncatchableReloadSignalRefused(t *testing.T) {
	for _, sig := range []string{"SIGKILL", "kill", "SIGSTOP"} {
		text := fmt.Sprintf("[source]\nurl = \"http://127.0.0.1:1\"\nenv = \"dev\"\n"+
			"[[reload]]\nname = \"app\"\nsignal = %q\n"+
			"pid_file = \"/run/app.pid\"\n", sig)
		_, err := ParseConfig("sseconfd.toml", []byte(text))
		if err == nil || !strings.Contains(err.Error(), "reload[0].signal") ||
			!strings.Contains(err.Error(), "cannot be caught") {
			t.Errorf("ParseConfig with signal = %q: %v, want reload[0].signal refused", sig, err)
		}
	}
}
