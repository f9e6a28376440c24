package render

import (
	"slices"
	"strconv"
	"text/template"
	"text/template/parse"
)

// A direct program runs a template of the plain shape most config
// templates have (text, values printed from the settings, range over a
// map or list, if and with) without text/template's reflection. It gives
// the same output or gives up, and the template then runs in text/template
// as before, which has the last word on every error.
//
// Why: a render is most of what the agent adds to an update. For a range
// over 100 settings text/template spends 40 % of its time in a stable
// sort of reflect.Values and most of the rest boxing values to print them
// through fmt: 64 us a render, 160 us on a CPU woken from idle, as the
// agent's is when an update comes. The direct program sorts the keys as
// strings and prints strings, integers, floats and booleans itself.
//
// It gives up (run returns false) at any value it cannot print or test
// exactly as text/template would: a nil or absent key (missingkey and the
// nil check decide), a type other than those JSON decodes to, a field of
// something that is not a map. Templates with anything else (functions,
// pipelines, variables declared in actions, template calls, break and
// continue, comparisons) are not compiled at all: see compileDirect.
type direct struct {
	root step
}

// step runs one node with dot; false means give up.
type step func(st *directState, dot any) bool

type directState struct {
	w    *output
	data Data
	vars []directVar
	num  [32]byte
}

type directVar struct {
	name  string
	value any
}

// compileDirect returns the direct program of t, or nil when t uses
// anything the program does not run.
func compileDirect(t *template.Template) *direct {
	if len(t.Templates()) != 1 || t.Tree == nil {
		return nil // {{define}}, {{block}}: several templates
	}
	root, ok := compileList(t.Tree.Root)
	if !ok {
		return nil
	}
	return &direct{root: root}
}

// run renders data into w; false: give up, w holds a partial output.
func (d *direct) run(w *output, data Data) bool {
	st := &directState{w: w, data: data}
	return d.root(st, data)
}

func compileList(l *parse.ListNode) (step, bool) {
	if l == nil {
		return func(*directState, any) bool { return true }, true
	}
	steps := make([]step, 0, len(l.Nodes))
	for _, n := range l.Nodes {
		s, ok := compileNode(n)
		if !ok {
			return nil, false
		}
		steps = append(steps, s)
	}
	return func(st *directState, dot any) bool {
		for _, s := range steps {
			if !s(st, dot) {
				return false
			}
		}
		return true
	}, true
}

func compileNode(n parse.Node) (step, bool) {
	switch n := n.(type) {
	case *parse.TextNode:
		text := n.Text
		return func(st *directState, _ any) bool {
			_, err := st.w.Write(text)
			return err == nil
		}, true
	case *parse.ActionNode:
		if len(n.Pipe.Decl) > 0 || len(n.Pipe.Cmds) != 1 {
			return nil, false
		}
		arg, ok := compileArg(n.Pipe.Cmds[0])
		if !ok {
			return nil, false
		}
		return func(st *directState, dot any) bool {
			v, ok := arg(st, dot)
			return ok && st.print(v)
		}, true
	case *parse.IfNode:
		return compileBranch(&n.BranchNode, false)
	case *parse.WithNode:
		return compileBranch(&n.BranchNode, true)
	case *parse.RangeNode:
		return compileRange(n)
	}
	return nil, false // template calls, break, continue, comments kept...
}

// value evaluates an argument; false: give up.
type value func(st *directState, dot any) (any, bool)

// compileArg compiles a command of one argument: a field chain from dot
// (.Settings.key), from a variable ($k, $.Settings.key), dot itself or a
// string constant.
func compileArg(cmd *parse.CommandNode) (value, bool) {
	if len(cmd.Args) != 1 {
		return nil, false
	}
	switch a := cmd.Args[0].(type) {
	case *parse.FieldNode:
		names := a.Ident
		return func(st *directState, dot any) (any, bool) { return fields(dot, names) }, true
	case *parse.VariableNode:
		name, names := a.Ident[0], a.Ident[1:]
		return func(st *directState, _ any) (any, bool) {
			v, ok := st.variable(name)
			if !ok {
				return nil, false
			}
			return fields(v, names)
		}, true
	case *parse.DotNode:
		return func(_ *directState, dot any) (any, bool) { return dot, true }, true
	case *parse.StringNode:
		text := a.Text
		return func(*directState, any) (any, bool) { return text, true }, true
	}
	return nil, false
}

// fields follows a chain of field names from v: Data's Settings and Env,
// then keys of settings maps. An absent key, a nil on the way or anything
// else gives up.
func fields(v any, names []string) (any, bool) {
	for _, name := range names {
		switch r := v.(type) {
		case Data:
			switch name {
			case "Settings":
				v = r.Settings
			case "Env":
				v = r.Env
			default:
				return nil, false
			}
		case map[string]any:
			var ok bool
			if v, ok = r[name]; !ok {
				return nil, false
			}
		default:
			return nil, false
		}
	}
	return v, true
}

func (st *directState) variable(name string) (any, bool) {
	if name == "$" {
		return st.data, true
	}
	for i := len(st.vars) - 1; i >= 0; i-- {
		if st.vars[i].name == name {
			return st.vars[i].value, true
		}
	}
	return nil, false
}

// print writes v as text/template's fmt.Fprint would; other types give up.
func (st *directState) print(v any) bool {
	var err error
	switch v := v.(type) {
	case string:
		_, err = st.w.WriteString(v)
	case int64:
		err = st.writeBytes(strconv.AppendInt(st.scratch(), v, 10))
	case uint64:
		err = st.writeBytes(strconv.AppendUint(st.scratch(), v, 10))
	case int:
		err = st.writeBytes(strconv.AppendInt(st.scratch(), int64(v), 10))
	case bool:
		err = st.writeBytes(strconv.AppendBool(st.scratch(), v))
	case Float:
		err = st.writeBytes(strconv.AppendFloat(st.scratch(), float64(v), 'f', -1, 64))
	default:
		return false
	}
	return err == nil
}

// scratch is room to format a number in.
func (st *directState) scratch() []byte { return st.num[:0] }

func (st *directState) writeBytes(b []byte) error {
	_, err := st.w.Write(b)
	return err
}

// truth is text/template's truth of v; false ok: give up.
func truth(v any) (truth, ok bool) {
	switch v := v.(type) {
	case nil:
		return false, true
	case string:
		return v != "", true
	case bool:
		return v, true
	case int64:
		return v != 0, true
	case uint64:
		return v != 0, true
	case int:
		return v != 0, true
	case Float:
		return v != 0, true
	case map[string]any:
		return len(v) > 0, true
	case []any:
		return len(v) > 0, true
	}
	return false, false
}

// compileBranch compiles {{if}} or, with setDot, {{with}}: one argument,
// no variable declared.
func compileBranch(b *parse.BranchNode, setDot bool) (step, bool) {
	if len(b.Pipe.Decl) > 0 || len(b.Pipe.Cmds) != 1 {
		return nil, false
	}
	cond, ok := compileArg(b.Pipe.Cmds[0])
	if !ok {
		return nil, false
	}
	then, ok := compileList(b.List)
	if !ok {
		return nil, false
	}
	otherwise, ok := compileList(b.ElseList)
	if !ok {
		return nil, false
	}
	return func(st *directState, dot any) bool {
		v, ok := cond(st, dot)
		if !ok {
			return false
		}
		yes, ok := truth(v)
		switch {
		case !ok:
			return false
		case !yes:
			return otherwise(st, dot)
		case setDot:
			return then(st, v)
		}
		return then(st, dot)
	}, true
}

// compileRange compiles {{range}} over a settings map (in key order) or
// list, with no variable, one (the element) or two (key or index, and the
// element). Its pipeline ends in the bound function boundRanges added.
func compileRange(r *parse.RangeNode) (step, bool) {
	p := r.Pipe
	if p.IsAssign || len(p.Decl) > 2 || len(p.Cmds) != 2 || !isBoundCall(p.Cmds[1]) {
		return nil, false
	}
	over, ok := compileArg(p.Cmds[0])
	if !ok {
		return nil, false
	}
	body, ok := compileList(r.List)
	if !ok {
		return nil, false
	}
	otherwise, ok := compileList(r.ElseList)
	if !ok {
		return nil, false
	}
	var names []string
	for _, d := range p.Decl {
		names = append(names, d.Ident[0])
	}
	return func(st *directState, dot any) bool {
		v, ok := over(st, dot)
		if !ok {
			return false
		}
		mark := len(st.vars)
		defer func() { st.vars = st.vars[:mark] }()
		empty := func() bool {
			// text/template declares the variables before it ranges, with
			// the value ranged over: {{else}} sees them holding it.
			for _, name := range names {
				st.vars = append(st.vars, directVar{name, v})
			}
			return otherwise(st, dot)
		}
		one := func(key, elem any) bool {
			st.vars = st.vars[:mark]
			switch len(names) {
			case 1:
				st.vars = append(st.vars, directVar{names[0], elem})
			case 2:
				st.vars = append(st.vars, directVar{names[0], key}, directVar{names[1], elem})
			}
			return body(st, elem)
		}
		switch v := v.(type) {
		case map[string]any:
			if len(v) == 0 {
				return empty()
			}
			keys := make([]string, 0, len(v))
			for k := range v {
				keys = append(keys, k)
			}
			slices.Sort(keys)
			for _, k := range keys {
				if !one(k, v[k]) {
					return false
				}
			}
			return true
		case []any:
			if len(v) == 0 {
				return empty()
			}
			for i, elem := range v {
				if !one(i, elem) {
					return false
				}
			}
			return true
		}
		return false
	}, true
}

// isBoundCall reports whether cmd is the call boundRanges appended.
func isBoundCall(cmd *parse.CommandNode) bool {
	if len(cmd.Args) != 1 {
		return false
	}
	id, ok := cmd.Args[0].(*parse.IdentifierNode)
	return ok && (id.Ident == boundRangeFunc || id.Ident == boundRangePairsFunc)
}
