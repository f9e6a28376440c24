package render

import (
	"strings"
	"testing"
)

// TestRenderErrorsNeverQuoteAValue renders failing templates whose error
// messages carry a setting's value in some form other than its raw text:
// Go-quoted with escapes, quoted by package time with \x escapes,
// transformed (upper), or only a part of it. No form may reach the error.
func TestRenderErrorsNeverQuoteAValue(t *testing.T) {
	secrets := []struct{ name, value, marker string }{
		{"plain", "hunter2-SECRET", "SECRET"},
		{"quote and backslash", `pa"ss\wo-SECRET`, "SECRET"},
		{"newline", "line1\nline2-SECRET", "SECRET"},
		{"tab", "tab\there-SECRET", "SECRET"},
		{"non-ASCII and control", "ünï-SECRET\x01", "SECRET"},
		{"suffix quoted by time", "2024-SECRETX", "SECRET"},
	}
	templates := []struct{ name, text string }{
		{"computed index key", `{{ index .Settings.m .Settings.s }}`},
		{"range over a string", `{{ range .Settings.s }}{{ end }}`},
		{"fail with the value", `{{ fail .Settings.s }}`},
		{"fail with the value upper-cased", `{{ .Settings.s | upper | fail }}`},
		{"fail with the value lower-cased", `{{ .Settings.s | lower | fail }}`},
		{"time parse", `{{ .Settings.s | mustToDate "2006-01" }}`},
		{"url parse", `{{ .Settings.s | urlParse | fail }}`},
		{"regexp from a value", `{{ mustRegexMatch (print .Settings.s "(") "x" }}`},
		{"printf into fail", `{{ printf "%q" .Settings.s | fail }}`},
	}
	for _, s := range secrets {
		for _, tc := range templates {
			t.Run(s.name+"/"+tc.name, func(t *testing.T) {
				tmpl, err := Parse("t.tmpl", tc.text)
				if err != nil {
					t.Fatal(err)
				}
				settings := map[string]any{"s": s.value, "m": map[string]any{"a": int64(1)}}
				_, err = tmpl.Render(Data{Settings: settings})
				if err == nil {
					return // nothing to leak
				}
				if msg := err.Error(); strings.Contains(strings.ToUpper(msg), s.marker) {
					t.Errorf("Render(%s) with %q: error quotes the value: %s", tc.text, s.value, msg)
				}
			})
		}
	}
}

// TestRenderErrorsKeepTemplateText checks that redaction keeps what the
// template itself wrote: a fail message, a layout, a missing key's name.
func TestRenderErrorsKeepTemplateText(t *testing.T) {
	settings := map[string]any{"s": "hunter2-SECRET", "d": "2024-13", "nothing": nil}
	tests := []struct{ text, want string }{
		{`{{ fail "port must be set" }}`, "port must be set"},
		{`{{ required "ball_color is required" .Settings.nothing }}`, "ball_color is required"},
		{`{{ .Settings.absent_key }}`, "absent_key"},
		{`{{ index .Settings "other_key" }}`, `"other_key"`},
		{`{{ .Settings.d | mustToDate "2006-01" }}`, `"2006-01"`},
	}
	for _, tc := range tests {
		tmpl, err := Parse("t.tmpl", tc.text)
		if err != nil {
			t.Fatal(err)
		}
		_, err = tmpl.Render(Data{Settings: settings})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Render(%s) = %v, want an error containing %s", tc.text, err, tc.want)
		}
	}
}

// TestRedactCommandOutput checks Redact on what a check command prints
// about a rendered file: escaped, upper-cased, or one line of a
// multi-line value (a PEM key) joined with other lines.
func TestRedactCommandOutput(t *testing.T) {
	pem := "-----BEGIN KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\nSECRETSECRETSECRETSECRETSECRET01\n-----END KEY-----"
	settings := map[string]any{"key": pem, "pw": `pa"ss-SECRET`, "py": `it's\SECRET`,
		"uni": "ünï-secret-wert", "n": map[string]any{"x": []any{"deep-SECRET"}}}
	outputs := []string{
		"nginx: [emerg] unknown directive \"SECRETSECRETSECRETSECRETSECRET01\" in /etc/x.conf:3",
		"line 2: MIIEvQIBADANBgkqhkiG9w0BAQEFAASC | SECRETSECRETSECRETSECRETSECRET01",
		`invalid value "pa\"ss-SECRET"`,
		"DEEP-SECRET is not allowed",
		`{'pw': 'pa"ss-SECRET'}`,
		"bad value ÜNÏ-SECRET-WERT \xff here",
		`{'py': 'it\'s\\SECRET'}`,
	}
	for _, out := range outputs {
		if got := Redact(out, settings); strings.Contains(strings.ToUpper(got), "SECRET") ||
			strings.Contains(got, "MIIEvQ") {
			t.Errorf("Redact(%q) = %q, still holds a value", out, got)
		}
	}
}
