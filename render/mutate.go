package render

import (
	"errors"
	"fmt"
	"reflect"
	"text/template"
	"text/template/parse"
)

// ErrCycle reports that a template tried to put a map inside itself
// (sprig's set): printing, hashing or merging such a map recurses without
// end, and a Go stack overflow ends the process.
var ErrCycle = errors.New("map would contain itself")

// mutators are the functions that change a map given to them in place.
// A template that calls one renders on a copy of the settings (see
// Template.Render), so that it changes neither the snapshot, which other
// templates, the hash, the cache and Keys' comparison read, nor its own
// next render.
var mutators = map[string]bool{
	"set": true, "unset": true,
	"merge": true, "mergeOverwrite": true, "mustMerge": true, "mustMergeOverwrite": true,
}

// guardMutators replaces set and the merges in m: set fails when the
// value holds the map itself, and the merges copy what they merge in, so
// no cycle can form.
func guardMutators(m template.FuncMap) {
	m["set"] = setAcyclic
	for _, name := range []string{"merge", "mergeOverwrite"} {
		merge := m[name].(func(map[string]any, ...map[string]any) any)
		m[name] = func(dst map[string]any, srcs ...map[string]any) any {
			return merge(dst, copyMaps(srcs)...)
		}
	}
	for _, name := range []string{"mustMerge", "mustMergeOverwrite"} {
		merge := m[name].(func(map[string]any, ...map[string]any) (any, error))
		m[name] = func(dst map[string]any, srcs ...map[string]any) (any, error) {
			return merge(dst, copyMaps(srcs)...)
		}
	}
}

// setAcyclic is sprig's set, failing instead of making d hold itself.
func setAcyclic(d map[string]any, key string, v any) (map[string]any, error) {
	if holds(v, d) {
		return nil, fmt.Errorf("set %q: the value holds the map itself: %w", key, ErrCycle)
	}
	d[key] = v
	return d, nil
}

// holds reports whether v is the map d or holds it, at any depth.
func holds(v any, d map[string]any) bool {
	switch v := v.(type) {
	case map[string]any:
		if reflect.ValueOf(v).UnsafePointer() == reflect.ValueOf(d).UnsafePointer() {
			return true
		}
		for _, e := range v {
			if holds(e, d) {
				return true
			}
		}
	case []any:
		for _, e := range v {
			if holds(e, d) {
				return true
			}
		}
	}
	return false
}

func copyMaps(ms []map[string]any) []map[string]any {
	out := make([]map[string]any, len(ms))
	for i, m := range ms {
		out[i] = copyMap(m)
	}
	return out
}

// copyMap copies m and the maps and lists it holds, at any depth.
func copyMap(m map[string]any) map[string]any {
	if m == nil {
		return nil
	}
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = copyValue(v)
	}
	return out
}

func copyValue(v any) any {
	switch v := v.(type) {
	case map[string]any:
		return copyMap(v)
	case []any:
		l := make([]any, len(v))
		for i, e := range v {
			l[i] = copyValue(e)
		}
		return l
	}
	return v
}

// callsMutator reports whether the templates of set call a function that
// changes a map in place.
func callsMutator(set *template.Template) bool {
	for _, t := range set.Templates() {
		if t.Tree != nil && nodeCalls(t.Tree.Root) {
			return true
		}
	}
	return false
}

func nodeCalls(n parse.Node) bool {
	switch n := n.(type) {
	case *parse.ListNode:
		if n == nil {
			return false
		}
		for _, c := range n.Nodes {
			if nodeCalls(c) {
				return true
			}
		}
	case *parse.ActionNode:
		return nodeCalls(n.Pipe)
	case *parse.IfNode:
		return nodeCalls(n.Pipe) || nodeCalls(n.List) || nodeCalls(n.ElseList)
	case *parse.RangeNode:
		return nodeCalls(n.Pipe) || nodeCalls(n.List) || nodeCalls(n.ElseList)
	case *parse.WithNode:
		return nodeCalls(n.Pipe) || nodeCalls(n.List) || nodeCalls(n.ElseList)
	case *parse.TemplateNode:
		return n.Pipe != nil && nodeCalls(n.Pipe)
	case *parse.PipeNode:
		if n == nil {
			return false
		}
		for _, c := range n.Cmds {
			if nodeCalls(c) {
				return true
			}
		}
	case *parse.CommandNode:
		for _, a := range n.Args {
			if nodeCalls(a) {
				return true
			}
		}
	case *parse.ChainNode:
		return nodeCalls(n.Node)
	case *parse.IdentifierNode:
		return mutators[n.Ident]
	}
	return false
}
