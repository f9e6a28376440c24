package render

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// TestKeysRandomTemplates checks the promise of Keys on templates drawn at
// random from a grammar of what a template can say to the settings: fields,
// $ and named variables, with/if/range/else, define/template/block, index,
// hasKey, get and dig with literal and computed keys, pipelines,
// parenthesised chains and sprig functions. For each template that Keys
// does not give up on, settings that agree on the keys it returns must
// render the same output, or both fail. The seed is fixed, so a failure
// repeats; the failing template and key list are printed.
func TestKeysRandomTemplates(t *testing.T) {
	rng := rand.New(rand.NewPCG(2026, 12))
	n := 4000
	if testing.Short() {
		n = 500
	}
	parsed, decided := 0, 0
	for range n {
		g := &tmplGen{rng: rng}
		text := g.template()
		var opts []Option
		if rng.IntN(2) == 0 {
			opts = append(opts, MissingKeyZero())
		}
		tmpl, err := Parse("random", text, opts...)
		if err != nil {
			continue
		}
		parsed++
		keys, all := tmpl.Keys()
		if all {
			continue
		}
		decided++
		for range 12 {
			checkKeysPromise(t, rng, tmpl, text, keys)
		}
	}
	t.Logf("%d templates, %d parsed, %d with a key list", n, parsed, decided)
	if decided < n/10 {
		t.Fatalf("only %d of %d templates had a key list: the generator is too coarse", decided, n)
	}
}

// checkKeysPromise renders tmpl with random settings and with a copy in
// which every key outside keys changed, and fails if the outcomes differ.
func checkKeysPromise(t *testing.T, rng *rand.Rand, tmpl *Template, text string, keys []string) {
	t.Helper()
	base := randomSettings(rng, nil, nil)
	other := randomSettings(rng, base, keys)
	s1, s2 := decodeCopy(t, base), decodeCopy(t, other)
	want, wantErr := tmpl.Render(Data{Settings: s1, Env: "e"})
	got, gotErr := tmpl.Render(Data{Settings: s2, Env: "e"})
	if jsonOf(s1) != jsonOf(base) || jsonOf(s2) != jsonOf(other) {
		t.Fatalf("template %q changed the settings it was given", text)
	}
	if (wantErr == nil) != (gotErr == nil) || string(want) != string(got) {
		t.Fatalf("template %q: Keys() = %q, yet settings that agree on them render differently\n"+
			"settings 1: %s\n-> %q, %v\nsettings 2: %s\n-> %q, %v",
			text, keys, jsonOf(base), want, wantErr, jsonOf(other), got, gotErr)
	}
}

func jsonOf(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func decodeCopy(t *testing.T, m map[string]any) map[string]any {
	t.Helper()
	s, err := ParseSettings([]byte(jsonOf(m)))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// genKeys are the top-level keys templates name and settings hold; nested
// maps use the same names, so a field read one level off reads a real key.
var genKeys = []string{"a", "b", "c", "Env", "Settings"}

// randomSettings returns random settings; with like set, the keys in keep
// are copied from like and the others drawn again.
func randomSettings(rng *rand.Rand, like map[string]any, keep []string) map[string]any {
	out := map[string]any{}
	for _, k := range genKeys {
		if like != nil && slices.Contains(keep, k) {
			if v, ok := like[k]; ok {
				out[k] = v
			}
			continue
		}
		if rng.IntN(4) > 0 {
			out[k] = randomValue(rng, 2)
		}
	}
	return out
}

func randomValue(rng *rand.Rand, depth int) any {
	n := 7
	if depth == 0 {
		n = 5
	}
	switch rng.IntN(n) {
	case 0:
		return nil
	case 1:
		return []string{"", "x", "a", "b", "<no value>"}[rng.IntN(5)]
	case 2:
		return rng.IntN(3)
	case 3:
		return rng.IntN(2) == 0
	case 4:
		return 2.5
	case 5:
		m := map[string]any{}
		for _, k := range genKeys {
			if rng.IntN(2) == 0 {
				m[k] = randomValue(rng, depth-1)
			}
		}
		return m
	}
	l := []any{}
	for range rng.IntN(3) {
		l = append(l, randomValue(rng, depth-1))
	}
	return l
}

// tmplGen writes one random template.
type tmplGen struct {
	rng    *rand.Rand
	b      strings.Builder
	depth  int
	vars   []string // declared so far (scoping is left to the parser)
	define int      // index of the define being written, -1 at top level
}

func (g *tmplGen) pick(options ...string) string { return options[g.rng.IntN(len(options))] }

func (g *tmplGen) key() string { return genKeys[g.rng.IntN(len(genKeys))] }

func (g *tmplGen) template() string {
	g.define = -1
	for i := range g.rng.IntN(3) {
		g.define = i
		fmt.Fprintf(&g.b, `{{define "t%d"}}`, i)
		g.body(2)
		g.b.WriteString(`{{end}}`)
	}
	g.define = -1
	g.body(3)
	return g.b.String()
}

func (g *tmplGen) body(n int) {
	for range 1 + g.rng.IntN(n) {
		g.stmt()
	}
}

func (g *tmplGen) stmt() {
	g.depth++
	defer func() { g.depth-- }()
	if g.depth > 3 {
		fmt.Fprintf(&g.b, "{{%s}}", g.expr())
		return
	}
	switch g.rng.IntN(12) {
	case 0, 1:
		fmt.Fprintf(&g.b, "{{%s}}", g.expr())
	case 2:
		v := fmt.Sprintf("$v%d", g.rng.IntN(3))
		fmt.Fprintf(&g.b, "{{%s := %s}}", v, g.expr())
		g.vars = append(g.vars, v)
	case 3:
		if len(g.vars) > 0 {
			fmt.Fprintf(&g.b, "{{%s = %s}}", g.vars[g.rng.IntN(len(g.vars))], g.expr())
		}
	case 4:
		fmt.Fprintf(&g.b, "{{if %s}}", g.expr())
		g.body(2)
		g.elseBody("if")
	case 5:
		decl := ""
		if g.rng.IntN(2) == 0 {
			v := fmt.Sprintf("$w%d", g.rng.IntN(2))
			decl = v + " := "
			g.vars = append(g.vars, v)
		}
		fmt.Fprintf(&g.b, "{{with %s%s}}", decl, g.expr())
		g.body(2)
		g.elseBody("with")
	case 6:
		decl := ""
		switch g.rng.IntN(3) {
		case 1:
			decl = "$e := "
			g.vars = append(g.vars, "$e")
		case 2:
			decl = "$i, $e := "
			g.vars = append(g.vars, "$i", "$e")
		}
		fmt.Fprintf(&g.b, "{{range %s%s}}", decl, g.expr())
		g.body(2)
		g.elseBody("")
	case 7:
		// Only later defines are called, so that no call recurses.
		if i := g.define + 1; i < 3 {
			fmt.Fprintf(&g.b, `{{template "t%d" %s}}`, i+g.rng.IntN(3-i), g.expr())
		}
	case 8:
		fmt.Fprintf(&g.b, `{{block "b%d" %s}}`, g.rng.IntN(1000), g.expr())
		g.body(2)
		g.b.WriteString("{{end}}")
	case 9:
		fmt.Fprintf(&g.b, `{{$_ := set %s "%s" %s}}`, g.expr(), g.key(), g.expr())
	default:
		g.b.WriteString(g.pick("x", "\n", " "))
	}
}

func (g *tmplGen) elseBody(elseWith string) {
	switch g.rng.IntN(3) {
	case 1:
		g.b.WriteString("{{else}}")
		g.body(1)
	case 2:
		if elseWith != "" {
			fmt.Fprintf(&g.b, "{{else %s %s}}", elseWith, g.expr())
			g.body(1)
		}
	}
	g.b.WriteString("{{end}}")
}

// operand is a single term: something a command can take as an argument.
func (g *tmplGen) operand() string {
	g.depth++
	defer func() { g.depth-- }()
	if g.depth > 6 {
		return g.pick(`"a"`, `1`, `.`, `$`, `.Settings.a`)
	}
	switch g.rng.IntN(16) {
	case 0:
		return "." + g.key()
	case 1:
		return ".Settings." + g.key()
	case 2:
		return ".Settings." + g.key() + "." + g.key()
	case 3:
		return "$.Settings." + g.key()
	case 4:
		return g.pick(".", "$", ".Settings", "$.Settings", ".Env", "$.Env")
	case 5:
		if len(g.vars) > 0 {
			v := g.vars[g.rng.IntN(len(g.vars))]
			if g.rng.IntN(2) == 0 {
				return v + "." + g.key()
			}
			return v
		}
		return "$"
	case 6:
		return "(" + g.expr() + ")"
	case 7:
		return "(" + g.expr() + ")." + g.key()
	case 8:
		return g.pick(`"a"`, `"b"`, `"x"`, `1`, `0`, `true`, `nil`)
	default:
		return "(" + g.call() + ")"
	}
}

// call is a function call with its arguments.
func (g *tmplGen) call() string {
	lit := func() string { return `"` + g.key() + `"` }
	keyArg := func() string {
		if g.rng.IntN(3) == 0 {
			return g.operand()
		}
		return lit()
	}
	switch g.rng.IntN(20) {
	case 0:
		return "index " + g.operand() + " " + keyArg()
	case 1:
		return "index .Settings " + keyArg() + " " + keyArg()
	case 2:
		return "hasKey " + g.operand() + " " + keyArg()
	case 3:
		return "get " + g.operand() + " " + keyArg()
	case 4:
		return "dig " + keyArg() + " " + keyArg() + " " + g.operand() + " " + g.operand()
	case 5:
		return "default " + g.operand() + " " + g.operand()
	case 6:
		return "toJson " + g.operand()
	case 7:
		return "keys " + g.operand() + " | sortAlpha" // keys alone is in map order
	case 8:
		return "pluck " + keyArg() + " " + g.operand()
	case 9:
		return "dict " + keyArg() + " " + g.operand()
	case 10:
		return "list " + g.operand() + " " + g.operand()
	case 11:
		return "coalesce " + g.operand() + " " + g.operand()
	case 12:
		return "ternary " + g.operand() + " " + g.operand() + " " + g.operand()
	case 13:
		return g.pick("and", "or", "eq", "ne") + " " + g.operand() + " " + g.operand()
	case 14:
		return g.pick("not", "len", "empty", "kindOf", "first") + " " + g.operand()
	case 15:
		return `printf "%v" ` + g.operand()
	case 16:
		return "merge " + g.operand() + " " + g.operand()
	case 17:
		return "index .Settings " + lit()
	case 18:
		return "dig " + lit() + " " + lit() + " .Settings"
	}
	return "get .Settings " + lit()
}

// expr is a pipeline: an operand or call, maybe piped into more calls.
func (g *tmplGen) expr() string {
	var s string
	if g.rng.IntN(2) == 0 {
		s = g.operand()
	} else {
		s = g.call()
	}
	for range g.rng.IntN(3) {
		switch g.rng.IntN(8) {
		case 0:
			s += ` | default "d"`
		case 1:
			s += " | toJson"
		case 2:
			s += ` | dig "` + g.key() + `" "d"`
		case 3:
			s += " | index .Settings"
		case 4:
			s += ` | index .Settings "` + g.key() + `"`
		case 5:
			s += ` | get .Settings`
		case 6:
			s += " | " + g.pick("len", "not", "first", "list", "empty")
		default:
			s += ` | printf "%v"`
		}
	}
	return s
}
