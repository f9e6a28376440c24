package render

import (
	"maps"
	"slices"
	"text/template"
	"text/template/parse"
)

// Keys returns the top-level settings keys that the template can read, in
// order, or all = true when it cannot be told: the template ranges over
// the settings, prints them whole, hands them to a function other than
// index, hasKey, get or dig with a literal key, or indexes them with a key
// computed at render time. A template renders the same output for two
// settings maps that agree on these keys (and on the environment name), so
// an update that changes none of them need not render it again.
//
// Keys are what {{.Settings.KEY}}, {{$.Settings.KEY}}, {{index .Settings
// "KEY"}} and the like name, followed through variables, {{with}} and
// {{template}} calls; a nested {{.Settings.db.port}} reads "db".
func (t *Template) Keys() (keys []string, all bool) {
	t.keysOnce.Do(func() {
		t.keys, t.allKeys = readKeys(t.fast)
	})
	return t.keys, t.allKeys
}

// What an expression yields, as far as reading settings goes.
type kind uint8

const (
	other    kind = iota // anything derived: reading it reads no more settings
	root                 // the Data: .Settings and .Env
	settings             // the settings map itself
	unknown              // either of the two: give up
)

// joinKinds is the kind of a variable given values of kinds a and b.
func joinKinds(a, b kind) kind {
	switch {
	case a == b || b == other:
		return a
	case a == other:
		return b
	}
	return unknown
}

// keyReader walks a template's parse trees with what dot and $ hold.
// Variables are followed by name over the whole template, whatever their
// scope, joining every value given to the name: coarse, never wrong.
type keyReader struct {
	set     *template.Template
	keys    map[string]bool
	all     bool
	vars    map[string]kind
	walked  map[walkKey]bool // {{template}} calls already followed this pass
	changed bool             // a variable's kind grew this pass
}

type walkKey struct {
	name      string
	dot, dolr kind
}

func readKeys(t *template.Template) ([]string, bool) {
	r := &keyReader{set: t, keys: map[string]bool{}, vars: map[string]kind{}}
	// Each pass can only grow the variables' kinds (three values each), so
	// the passes end; the limit is a guard, not a bound ever reached.
	for range 16 {
		r.changed = false
		r.walked = map[walkKey]bool{}
		r.walk(t.Tree.Root, root, root)
		if r.all || !r.changed {
			break
		}
	}
	if r.all || r.changed {
		return nil, true
	}
	return slices.Sorted(maps.Keys(r.keys)), false
}

func (r *keyReader) walk(n parse.Node, dot, dolr kind) {
	switch n := n.(type) {
	case *parse.ListNode:
		if n == nil {
			return
		}
		for _, c := range n.Nodes {
			r.walk(c, dot, dolr)
		}
	case *parse.ActionNode:
		k := r.pipe(n.Pipe, dot, dolr)
		if len(n.Pipe.Decl) == 0 {
			r.use(k) // printed
		}
	case *parse.IfNode:
		r.use(r.pipe(n.Pipe, dot, dolr)) // its truth
		r.walk(n.List, dot, dolr)
		r.walk(n.ElseList, dot, dolr)
	case *parse.WithNode:
		k := r.pipe(n.Pipe, dot, dolr)
		r.use(k) // the truth of the whole map: whether it is empty
		r.walk(n.List, k, dolr)
		r.walk(n.ElseList, dot, dolr)
	case *parse.RangeNode:
		k := r.pipeNoDecl(n.Pipe, dot, dolr)
		r.use(k) // ranging over the settings reads every key
		for _, v := range n.Pipe.Decl {
			r.assign(v.Ident[0], other)
		}
		r.walk(n.List, other, dolr)
		r.walk(n.ElseList, dot, dolr)
	case *parse.TemplateNode:
		k := other
		if n.Pipe != nil {
			k = r.pipe(n.Pipe, dot, dolr)
		}
		r.call(n.Name, k)
	}
}

// call follows {{template name}} with dot and $ of kind k.
func (r *keyReader) call(name string, k kind) {
	key := walkKey{name, k, k}
	if r.walked[key] {
		return
	}
	r.walked[key] = true
	if t := r.set.Lookup(name); t != nil && t.Tree != nil {
		r.walk(t.Tree.Root, k, k)
	}
}

// use records a value going where it is read whole.
func (r *keyReader) use(k kind) {
	if k != other {
		r.all = true
	}
}

func (r *keyReader) assign(name string, k kind) {
	if old := r.vars[name]; joinKinds(old, k) != old {
		r.vars[name] = joinKinds(old, k)
		r.changed = true
	}
}

func (r *keyReader) pipe(p *parse.PipeNode, dot, dolr kind) kind {
	k := r.pipeNoDecl(p, dot, dolr)
	for _, v := range p.Decl {
		r.assign(v.Ident[0], k)
	}
	return k
}

func (r *keyReader) pipeNoDecl(p *parse.PipeNode, dot, dolr kind) kind {
	k := other
	for i, c := range p.Cmds {
		k = r.command(c, dot, dolr, i > 0, k)
	}
	return k
}

// command returns what c yields; in is what the command before it in the
// pipeline yields, passed as c's last argument when piped is set.
func (r *keyReader) command(c *parse.CommandNode, dot, dolr kind, piped bool, in kind) kind {
	if len(c.Args) == 0 {
		return other
	}
	args := make([]kind, 0, len(c.Args))
	for _, a := range c.Args[1:] {
		args = append(args, r.value(a, dot, dolr))
	}
	if piped {
		args = append(args, in)
	}
	id, isFunc := c.Args[0].(*parse.IdentifierNode)
	if !isFunc {
		for _, k := range args {
			r.use(k) // a method's arguments: Data and maps have none
		}
		return r.value(c.Args[0], dot, dolr)
	}
	switch id.Ident {
	case boundRangeFunc, boundRangePairsFunc, printValueFunc:
		// Added by this package; each passes its last argument on.
		return args[len(args)-1]
	case "index", "hasKey", "get":
		// index MAP "KEY" ..., hasKey MAP "KEY", get MAP "KEY"
		if len(args) >= 2 && args[0] == settings && literal(c.Args, 2) != nil {
			r.keys[*literal(c.Args, 2)] = true
			for _, k := range args[1:] {
				r.use(k)
			}
			return other
		}
	case "dig":
		// dig "KEY" "NESTED"... DEFAULT MAP
		if len(args) >= 3 && args[len(args)-1] == settings && literal(c.Args, 1) != nil {
			r.keys[*literal(c.Args, 1)] = true
			for _, k := range args[:len(args)-1] {
				r.use(k)
			}
			return other
		}
	}
	for _, k := range args {
		r.use(k)
	}
	return other
}

// literal returns the text of args[i] if it is a quoted string.
func literal(args []parse.Node, i int) *string {
	if i < len(args) {
		if s, ok := args[i].(*parse.StringNode); ok {
			return &s.Text
		}
	}
	return nil
}

// value returns what the argument n yields.
func (r *keyReader) value(n parse.Node, dot, dolr kind) kind {
	switch n := n.(type) {
	case *parse.DotNode:
		return dot
	case *parse.FieldNode:
		return r.fields(dot, n.Ident)
	case *parse.VariableNode:
		k := dolr
		if n.Ident[0] != "$" {
			k = r.vars[n.Ident[0]]
		}
		return r.fields(k, n.Ident[1:])
	case *parse.ChainNode:
		return r.fields(r.value(n.Node, dot, dolr), n.Field)
	case *parse.PipeNode:
		return r.pipe(n, dot, dolr)
	}
	return other // constants, nil, and functions named as arguments
}

// fields returns what .A.B... of a value of kind k yields.
func (r *keyReader) fields(k kind, idents []string) kind {
	for _, id := range idents {
		switch k {
		case root:
			k = other // .Env, or a field that fails at render time
			if id == "Settings" {
				k = settings
			}
		case settings:
			r.keys[id] = true
			return other
		case unknown:
			r.all = true
			return other
		default:
			return other
		}
	}
	return k
}
