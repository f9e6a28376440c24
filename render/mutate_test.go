package render

import (
	"errors"
	"testing"
)

// TestTemplateLeavesSettingsAlone: sprig's set, unset, merge and
// mergeOverwrite change a map in place. Given a map from the settings,
// they used to change the agent's snapshot: other templates of the update
// saw the change (or not, by render order), the stream goroutine hashing
// the snapshot raced with the render, the cache and the baseline that
// Keys is compared against held values the server never sent. A template
// must render on its own copy.
func TestTemplateLeavesSettingsAlone(t *testing.T) {
	texts := []string{
		`{{$_ := set .Settings.db "port" 1}}{{.Settings.db.port}}`,
		`{{$_ := unset .Settings.db "host"}}{{len .Settings.db}}`,
		`{{$_ := merge .Settings.db (dict "extra" 1)}}{{len .Settings.db}}`,
		`{{$_ := mergeOverwrite .Settings.db (dict "port" 2)}}{{.Settings.db.port}}`,
		`{{$_ := mustMerge .Settings.db (dict "extra" 1)}}{{len .Settings.db}}`,
		`{{$_ := mustMergeOverwrite .Settings.db (dict "port" 3)}}{{.Settings.db.port}}`,
		`{{$d := .Settings.db}}{{define "p"}}{{$_ := set . "n" 9}}{{end}}{{template "p" $d}}{{$d.n}}`,
	}
	for _, text := range texts {
		tmpl, err := Parse("t", text)
		if err != nil {
			t.Fatal(err)
		}
		settings := map[string]any{"db": map[string]any{"host": "h", "port": int64(5432)}}
		first, err := tmpl.Render(Data{Settings: settings})
		if err != nil {
			t.Fatalf("%s: %v", text, err)
		}
		if want := `{"db":{"host":"h","port":5432}}`; jsonOf(settings) != want {
			t.Errorf("%s: settings after render = %s, want %s", text, jsonOf(settings), want)
		}
		again, err := tmpl.Render(Data{Settings: settings})
		if err != nil || string(again) != string(first) {
			t.Errorf("%s: second render %q (%v), first %q", text, again, err, first)
		}
	}
}

// TestTemplateCycleFails: a map set into itself, directly or through a list
// or another map, made printing or merging it recurse without end, and a
// Go stack overflow is fatal: the agent died, and died again on every
// restart with the same settings. The step that would close the cycle fails
// the render instead.
func TestTemplateCycleFails(t *testing.T) {
	texts := []string{
		`{{$d := dict}}{{$_ := set $d "self" $d}}{{$d}}`,
		`{{$d := dict}}{{$_ := set $d "l" (list 1 $d)}}{{toJson $d}}`,
		`{{$d := dict}}{{$_ := set $d "m" (dict "x" (dict "y" $d))}}{{printf "%v" $d}}`,
		`{{$_ := set .Settings.db "back" .Settings}}{{.Settings}}`,
	}
	for _, text := range texts {
		tmpl, err := Parse("t", text)
		if err != nil {
			t.Fatal(err)
		}
		settings := map[string]any{"db": map[string]any{"host": "h"}}
		_, err = tmpl.Render(Data{Settings: settings})
		if err == nil || !errors.Is(err, ErrCycle) {
			t.Errorf("%s: err = %v, want one wrapping ErrCycle", text, err)
		}
	}

	// A merge copies what it merges in, so it cannot close a cycle.
	merges := map[string]string{
		`{{$d := dict "a" 1}}{{$_ := mergeOverwrite $d (dict "x" $d)}}{{$_ := merge $d $d}}{{toJson $d}}`: `{"a":1,"x":{"a":1}}`,
		`{{$d := dict "a" (dict)}}{{$_ := merge $d.a (dict "up" $d)}}{{toJson $d}}`:                       `{"a":{"up":{"a":{}}}}`,
	}
	for text, want := range merges {
		tmpl, err := Parse("t", text)
		if err != nil {
			t.Fatal(err)
		}
		got, err := tmpl.Render(Data{})
		if err != nil || string(got) != want {
			t.Errorf("%s = %q (%v), want %q", text, got, err, want)
		}
	}
}
