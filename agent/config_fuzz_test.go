package agent

import (
	"strings"
	"testing"
)

// FuzzParseConfig feeds arbitrary bytes to the config loader: it must
// never panic, and a config it accepts must be complete (URL, env, at
// least one template, every reload reference resolved).
//
//	go test -run '^$' -fuzz FuzzParseConfig -fuzztime 1m ./agent
func FuzzParseConfig(f *testing.F) {
	f.Add([]byte(`[source]
url = "http://127.0.0.1:8080"
env = "dev"
[[template]]
source = "a.tmpl"
destination = "/tmp/a"
reload = "x"
[[reload]]
name = "x"
signal = "SIGHUP"
pid_file = "/run/x.pid"
`))
	f.Add([]byte("[source]\nurl = 1\n"))
	f.Add([]byte("[backoff]\nmin = \"-1s\"\nmax = \"1h\"\nfactor = 0.5\n"))
	f.Add([]byte("[source]\nmax_event_bytes = \"9GiB\"\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := ParseConfig("fuzz.toml", data)
		if err != nil {
			if !strings.Contains(err.Error(), "fuzz.toml") {
				t.Errorf("error does not name the file: %v", err)
			}
			return
		}
		if c.Source.URL == "" || c.Source.Env == "" || len(c.Templates) == 0 {
			t.Fatalf("accepted an incomplete config: %+v", c)
		}
		names := map[string]bool{}
		for _, r := range c.Reloads {
			names[r.Name] = true
		}
		for _, tc := range c.Templates {
			if tc.Reload != "" && !names[tc.Reload] {
				t.Fatalf("accepted a template naming unknown target %q", tc.Reload)
			}
		}
		if c.Backoff.Min.Duration > c.Backoff.Max.Duration || c.Source.MaxEventBytes <= 0 {
			t.Fatalf("accepted inconsistent limits: %+v %+v", c.Backoff, c.Source)
		}
	})
}
