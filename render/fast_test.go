package render

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
)

// parsePair parses text twice: once as Parse does, with the direct program
// if the template has its shape, and once without it, to run in
// text/template only.
func parsePair(t *testing.T, text string, opts ...Option) (withDirect, plain *Template) {
	t.Helper()
	withDirect, err := Parse("t", text, opts...)
	if err != nil {
		return nil, nil
	}
	plain, err = Parse("t", text, opts...)
	if err != nil {
		t.Fatal(err)
	}
	plain.direct = nil
	return withDirect, plain
}

// checkSameAsPlain renders data through both and fails if output or
// error differ. It also runs the direct program alone: when it does not
// give up, its output must be text/template's, without error. It reports
// whether the direct program decided.
func checkSameAsPlain(t *testing.T, text string, withDirect, plain *Template, data Data) bool {
	t.Helper()
	want, wantErr := plain.Render(data)
	got, gotErr := withDirect.Render(data)
	if fmt.Sprint(wantErr) != fmt.Sprint(gotErr) || string(want) != string(got) {
		t.Fatalf("template %q, settings %s:\ntext/template: %q, %v\nRender:        %q, %v",
			text, jsonOf(data.Settings), want, wantErr, got, gotErr)
	}
	if withDirect.direct == nil {
		return false
	}
	out := &output{max: MaxOutput}
	if !withDirect.direct.run(out, data) {
		return false
	}
	if direct := out.bytes(); wantErr != nil || string(direct) != string(want) {
		t.Fatalf("template %q, settings %s:\ntext/template: %q, %v\ndirect:        %q",
			text, jsonOf(data.Settings), want, wantErr, direct)
	}
	return true
}

// The templates the direct program runs, each against settings that take
// every way out: absent and null keys, values of every JSON type and of
// Go types JSON never gives, empty and nested maps and lists, a setting
// whose text is "<no value>", output over the limit.
func TestDirectSameAsTextTemplate(t *testing.T) {
	str := "pointed to"
	templates := []string{
		"plain text only",
		"{{.Settings.a}}-{{.Env}}-{{$.Settings.b}}",
		"{{range $k, $v := .Settings}}{{$k}} = {{$v}}\n{{end}}",
		"{{range $v := .Settings}}{{$v}},{{else}}empty{{end}}",
		"{{range .Settings}}[{{.}}]{{end}}",
		"{{range $i, $e := .Settings.a}}{{$i}}:{{$e}} {{else}}none{{end}}",
		"{{range $s, $m := .Settings}}[{{$s}}]\n{{range $k, $v := $m}}{{$k}}={{$v}}\n{{end}}{{end}}",
		"{{if .Settings.a}}yes {{.Settings.a}}{{else if .Settings.b}}b {{.Settings.b}}{{else}}no{{end}}",
		"{{with .Settings.a}}a is {{.}}{{else with .Settings.b}}b is {{.}}{{else}}neither{{end}}",
		"{{with $.Settings.a}}{{.b}}{{.c.a}}{{end}}",
		"{{- range $k, $v := .Settings -}}\n  {{ $k }} {{- $v -}}\n{{- end }}",
		`{{"literal"}} {{.Settings.Env}} {{.Settings.Settings}}`,
		"{{range $k, $v := .Settings}}{{range $k, $v := .Settings.a}}{{$k}}{{$v}}{{end}}{{$k}}{{end}}",
		// A range's variables are in scope in its {{else}}, holding the
		// empty map or list: not the outer variables they shadow.
		"{{range $v := .Settings}}{{range $v := $.Settings.a}}{{else}}{{if $v}}outer{{else}}inner{{end}}{{end}}{{end}}",
		"{{range $k, $v := .Settings}}{{range $k, $v := $.Settings.a}}.{{else}}{{with $v}}{{.}}{{end}}{{end}}{{end}}",
	}
	rng := rand.New(rand.NewPCG(12, 4))
	values := []any{nil, "", "x", "<no value>", int64(0), int64(-7), uint64(math.MaxUint64), 3, true, false,
		Float(2.5), Float(math.Copysign(0, -1)), Float(1e21), 2.5, []any{}, []any{"a", int64(1), nil},
		map[string]any{}, map[string]any{"b": "nb", "c": map[string]any{"a": "deep"}}, []string{"go"},
		// Numbers the decoder keeps as text, and Go values an SDK user may pass.
		json.Number("123456789012345678901234567890"), map[string]string{"b": "typed"}, &str,
		stringer("custom"), map[string]any(nil), []any(nil), int32(5), float64(-1e21), Float(1e300),
		Float(5e-324), []any{map[string]any{"b": "in a list"}}, map[string]any{"ü": "é", "Z": "a", "": "empty"}}
	decided := 0
	for _, text := range templates {
		withDirect, plain := parsePair(t, text)
		if withDirect == nil {
			t.Fatalf("%q does not parse", text)
		}
		if withDirect.direct == nil {
			t.Fatalf("%q: no direct program, the test means to run it", text)
		}
		for range 300 {
			settings := map[string]any{}
			for _, k := range genKeys {
				if rng.IntN(5) > 0 {
					settings[k] = values[rng.IntN(len(values))]
				}
			}
			if checkSameAsPlain(t, text, withDirect, plain, Data{Settings: settings, Env: "prod"}) {
				decided++
			}
		}
	}
	if total := len(templates) * 300; decided < total/8 { // most values are decided; some give up
		t.Fatalf("the direct program decided %d of %d renders: the test means to run it", decided, total)
	}
}

// Random templates of the direct program's shape, nested up to four
// deep, against random settings: same output and error as text/template.
func TestDirectRandomTemplates(t *testing.T) {
	rng := rand.New(rand.NewPCG(2026, 1204))
	n, compiled, decided := 3000, 0, 0
	if testing.Short() {
		n = 300
	}
	for range n {
		g := &directGen{rng: rng}
		text := g.body(3)
		withDirect, plain := parsePair(t, text)
		if withDirect == nil {
			continue
		}
		if withDirect.direct != nil {
			compiled++
		}
		for range 10 {
			settings := decodeCopy(t, randomSettings(rng, nil, nil))
			if rng.IntN(4) == 0 {
				settings = randomSettings(rng, nil, nil) // Go's int and float64: the direct program gives up
			}
			if checkSameAsPlain(t, text, withDirect, plain, Data{Settings: settings, Env: "e"}) {
				decided++
			}
		}
	}
	t.Logf("%d templates, %d with a direct program; it decided %d of %d renders", n, compiled, decided, 10*n)
	if decided < n/2 {
		t.Fatalf("the direct program decided only %d of %d renders", decided, 10*n)
	}
	if compiled < n/2 {
		t.Fatalf("only %d of %d templates had a direct program: the generator strays", compiled, n)
	}
}

// The shapes outside the direct program's are left to text/template.
func TestDirectNotCompiled(t *testing.T) {
	for _, text := range []string{
		"{{.Settings.a | quote}}", "{{quote .Settings.a}}", "{{$x := .Settings.a}}{{$x}}",
		`{{define "x"}}x{{end}}{{template "x"}}`, "{{range .Settings}}{{break}}{{end}}",
		"{{if eq .Settings.a 1}}1{{end}}", "{{range $i := 3}}{{$i}}{{end}}", "{{1}}", "{{nil}}",
		"{{(.Settings).a}}", "{{range $k, $v = .Settings}}{{end}}",
	} {
		tmpl, err := Parse("t", text)
		if err != nil {
			continue
		}
		if tmpl.direct != nil {
			t.Errorf("%q got a direct program", text)
		}
	}
	if tmpl, _ := Parse("t", "{{.Settings.a}}", MissingKeyZero()); tmpl.direct != nil {
		t.Error("missing_key = zero got a direct program: it prints absent keys as empty")
	}
}

// Output over the limit makes the direct program give up, for
// text/template to fail the render with ErrTooLarge.
func TestDirectGivesUpOverTheLimit(t *testing.T) {
	tmpl, err := Parse("t", "{{.Settings.a}}{{.Settings.a}}")
	if err != nil || tmpl.direct == nil {
		t.Fatalf("no direct program: %v", err)
	}
	data := Data{Settings: map[string]any{"a": "12345678"}}
	if out := (&output{max: 16}); !tmpl.direct.run(out, data) {
		t.Fatal("16 bytes within a limit of 16: gave up")
	}
	if tmpl.direct.run(&output{max: 15}, data) {
		t.Fatal("16 bytes over a limit of 15: did not give up")
	}
}

// directGen writes random templates of the direct program's shape.
type directGen struct {
	rng   *rand.Rand
	b     strings.Builder
	depth int
	vars  []string
}

func (g *directGen) body(n int) string {
	for range 1 + g.rng.IntN(n) {
		g.stmt()
	}
	return g.b.String()
}

func (g *directGen) operand() string {
	ops := []string{".", "$", "$.Settings", ".Settings", ".Env", `"s"`}
	for range 3 {
		ops = append(ops, ".Settings."+genKeys[g.rng.IntN(len(genKeys))],
			"."+genKeys[g.rng.IntN(len(genKeys))],
			".Settings."+genKeys[g.rng.IntN(len(genKeys))]+"."+genKeys[g.rng.IntN(len(genKeys))])
	}
	for _, v := range g.vars {
		ops = append(ops, v, v+"."+genKeys[g.rng.IntN(len(genKeys))])
	}
	return ops[g.rng.IntN(len(ops))]
}

func (g *directGen) stmt() {
	g.depth++
	defer func() { g.depth-- }()
	choice := g.rng.IntN(7)
	if g.depth > 4 {
		choice = g.rng.IntN(2)
	}
	switch choice {
	case 0:
		fmt.Fprintf(&g.b, "{{%s}}", g.operand())
	case 1:
		g.b.WriteString([]string{"x", "\n", " ", "{{- \" \" -}}"}[g.rng.IntN(4)])
	case 2, 3:
		kind := []string{"if", "with"}[choice-2]
		fmt.Fprintf(&g.b, "{{%s %s}}", kind, g.operand())
		g.body(2)
		g.elseBody(kind)
	default:
		n := len(g.vars)
		// Names from a small pool, so that inner ranges shadow outer ones.
		k, e := fmt.Sprintf("$k%d", g.rng.IntN(2)), fmt.Sprintf("$e%d", g.rng.IntN(2))
		decl := ""
		switch g.rng.IntN(3) {
		case 1:
			decl = e + " := "
			g.vars = append(g.vars, e)
		case 2:
			decl = k + ", " + e + " := "
			g.vars = append(g.vars, k, e)
		}
		fmt.Fprintf(&g.b, "{{range %s%s}}", decl, g.operand())
		g.body(2)
		g.elseBody("") // the variables are in scope in {{else}} too
		g.vars = g.vars[:n]
	}
}

func (g *directGen) elseBody(kind string) {
	switch g.rng.IntN(3) {
	case 1:
		g.b.WriteString("{{else}}")
		g.body(1)
	case 2:
		if kind != "" {
			fmt.Fprintf(&g.b, "{{else %s %s}}", kind, g.operand())
			g.body(1)
		}
	}
	g.b.WriteString("{{end}}")
}

// stringer is a Go type of an SDK user's with its own String method.
type stringer string

func (s stringer) String() string { return "<" + string(s) + ">" }
