package render

import (
	"bytes"
	"testing"
	"text/template"
)

// A range over a map of settings runs through an iterator instead of
// text/template's sorted copy (see boundRange); it must print exactly what
// text/template prints, for every form of range.
func TestRangeOverMapAsTextTemplate(t *testing.T) {
	texts := []string{
		`{{range $k, $v := .Settings}}{{$k}}={{$v}};{{end}}`,
		`{{range $v := .Settings}}{{$v}};{{end}}`,
		`{{range .Settings}}[{{.}}]{{end}}`,
		`{{range $k, $v := .Settings.nested}}{{$k}}:{{range $v}}{{.}},{{else}}-{{end}}|{{end}}`,
		`{{range $k, $v := .Settings}}{{if eq $k "b"}}{{break}}{{end}}{{$k}};{{end}}`,
		`{{range $k, $v := .Settings}}{{if eq $k "b"}}{{continue}}{{end}}{{$k}};{{end}}`,
		`{{range .Settings.empty}}x{{else}}empty{{end}}`,
		`{{range $k, $_ := .Settings.empty}}x{{else}}empty{{end}}`,
		`{{range $i, $e := .Settings.list}}{{$i}}{{$e}}{{end}}`,
		`{{range $k, $v := .Settings.nested}}{{range $k2, $v2 := $.Settings.nested}}{{$k}}{{$k2}} {{end}}{{end}}`,
		`{{$n := 0}}{{range $k, $v := .Settings}}{{$n = add $n 1}}{{end}}{{$n}}`,
		`{{range $k, $v := .Settings.nested}}{{$k}}={{len $v}} {{end}}`,
		`{{range $k, $v := dict "z" 1 "a" 2}}{{$k}}{{$v}}{{end}}`,
		`{{range $k, $v := .Settings}}{{$k | upper}}={{$v | toString | squote}}{{"\n"}}{{end}}`,
	}
	settings := map[string]any{
		"c": "three", "a": int64(1), "b": Float(2.5), "d": true, "é": "accent", "A": "upper",
		"nested": map[string]any{"y": []any{"p", "q"}, "x": []any{}, "w": map[string]any{"k": "v"}},
		"empty":  map[string]any{},
		"list":   []any{"l0", "l1"},
	}
	data := Data{Settings: settings, Env: "test"}
	for _, above := range []int{1, 4096} { // every map through the iterator, then none
		iterateAbove = above
		for _, text := range texts {
			checkSameAsTextTemplate(t, text, data)
		}
	}
	iterateAbove = 4096
}

func checkSameAsTextTemplate(t *testing.T, text string, data Data) {
	t.Helper()
	ours, err := Parse("t", text)
	if err != nil {
		t.Fatalf("%s: %v", text, err)
	}
	got, err := ours.Render(data)
	if err != nil {
		t.Fatalf("%s: %v", text, err)
	}
	plain := template.Must(template.New("t").Option("missingkey=error").Funcs(funcMap()).Parse(text))
	var want bytes.Buffer
	if err := plain.Execute(&want, data); err != nil {
		t.Fatalf("%s: text/template: %v", text, err)
	}
	if string(got) != want.String() {
		t.Errorf("iterateAbove %d: %s:\n got %q\nwant %q", iterateAbove, text, got, want.String())
	}
}
