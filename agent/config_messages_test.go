package agent

import (
	"strings"
	"testing"
)

// TestConfigMessagesSayWhatToWrite covers mistakes a new operator made,
// whose first messages did not say what to write instead.
func TestConfigMessagesSayWhatToWrite(t *testing.T) {
	base := "[source]\nurl = \"http://127.0.0.1:1\"\nenv = \"dev\"\n" +
		"[[template]]\nsource = \"t\"\ndestination = \"/tmp/d\"\n"
	tests := []struct{ name, extra, want string }{
		{"unquoted mode", "mode = 644\n", `template[0].mode: want an octal mode in quotes such as "0644", got`},
		{"two ways to reload",
			"reload = \"r\"\n[[reload]]\nname = \"r\"\ncommand = \"true\"\nsignal = \"SIGHUP\"\npid_file = \"/run/x.pid\"\n",
			"set only one of command, exec, or signal with pid_file"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseConfig("c.toml", []byte(base+tc.extra))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("ParseConfig error = %v, want it to contain %q", err, tc.want)
			}
		})
	}
}
