package render

import (
	"bytes"
	"errors"
	"fmt"
	"iter"
	"reflect"
	"slices"
	"strings"
	"text/template/parse"
)

// ErrTooLarge reports that a render would have produced more than
// MaxOutput bytes, or that a count (range over an integer, until, repeat,
// seq, indent, the rand functions) was over MaxCount or would have built
// more than MaxOutput bytes. It is wrapped in the render error.
//
// The bounds exist because counts come from settings: workers = 2e10
// turned "range until .Settings.workers" into a fatal out-of-memory error
// (the daemon died, restarted, rendered the cached settings and died
// again) and "range .Settings.workers" into hours of CPU in the apply loop.
var ErrTooLarge = errors.New("too large")

// MaxOutput is the most bytes one template may render.
const MaxOutput = 64 << 20

// MaxCount is the largest count a template may loop over or build a list of.
const MaxCount = 1 << 20

// output collects what a template renders, refusing to grow past max.
// It keeps the text in blocks instead of one buffer that doubles: a
// doubling buffer holds up to twice the output, and copies it at each
// step (a render of 2.4 MB went through 8.6 MB of buffers, and kept a
// 4 MB one live for the rest of the apply). bytes joins the blocks into
// one slice of exactly the output's length.
type output struct {
	blocks [][]byte
	n      int
	max    int
	first  int // the size of the first block: see Template.lastSize
}

// The first block is at least minBlock bytes, later ones maxBlock.
const (
	minBlock = 1 << 10
	maxBlock = 64 << 10
)

func (w *output) Write(p []byte) (int, error) { return write(w, p) }

// WriteString is Write without the conversion to bytes.
func (w *output) WriteString(s string) (int, error) { return write(w, s) }

func write[T string | []byte](w *output, p T) (int, error) {
	if w.n+len(p) > w.max {
		return 0, fmt.Errorf("rendered output over %d MiB: %w", w.max>>20, ErrTooLarge)
	}
	n := len(p)
	for len(p) > 0 {
		last := len(w.blocks) - 1
		if last < 0 || len(w.blocks[last]) == cap(w.blocks[last]) {
			size := maxBlock
			if last < 0 {
				size = min(max(w.first, minBlock), maxBlock)
			}
			w.blocks = append(w.blocks, make([]byte, 0, size))
			last++
		}
		b := w.blocks[last]
		k := min(len(p), cap(b)-len(b))
		w.blocks[last] = append(b, p[:k]...)
		p = p[k:]
	}
	w.n += n
	return n, nil
}

// bytes returns the whole output; one block is returned as it is.
func (w *output) bytes() []byte {
	switch len(w.blocks) {
	case 0:
		return []byte{}
	case 1:
		return w.blocks[0]
	}
	b := make([]byte, 0, w.n)
	for _, block := range w.blocks {
		b = append(b, block...)
	}
	return b
}

// contains reports whether sep occurs in the output, across blocks too.
func (w *output) contains(sep []byte) bool {
	for i, block := range w.blocks {
		if bytes.Contains(block, sep) {
			return true
		}
		if i+1 < len(w.blocks) { // an occurrence split between two blocks
			head := block[max(0, len(block)-len(sep)+1):]
			tail := w.blocks[i+1][:min(len(sep)-1, len(w.blocks[i+1]))]
			if bytes.Contains(append(append([]byte(nil), head...), tail...), sep) {
				return true
			}
		}
	}
	return false
}

// reset empties the output, keeping the first block.
func (w *output) reset() {
	if len(w.blocks) > 0 {
		w.blocks = append(w.blocks[:0], w.blocks[0][:0])
	}
	w.n = 0
}

const (
	boundRangeFunc      = "_sseconfd_bound_range"       // for a range with one variable or none
	boundRangePairsFunc = "_sseconfd_bound_range_pairs" // for a range with two
)

// boundRanges makes every range pass the value it ranges over through
// boundRange (or boundRangePairs) first, so that a range over a huge
// integer fails at once, and a range over a map of settings does not copy
// it (see boundRange).
func boundRanges(n parse.Node) {
	switch n := n.(type) {
	case *parse.ListNode:
		if n == nil {
			return
		}
		for _, c := range n.Nodes {
			boundRanges(c)
		}
	case *parse.RangeNode:
		name := boundRangeFunc
		if len(n.Pipe.Decl) == 2 {
			name = boundRangePairsFunc
		}
		n.Pipe.Cmds = append(n.Pipe.Cmds, &parse.CommandNode{NodeType: parse.NodeCommand, Args: []parse.Node{
			&parse.IdentifierNode{NodeType: parse.NodeIdentifier, Ident: name},
		}})
		boundRanges(n.List)
		boundRanges(n.ElseList)
	case *parse.IfNode:
		boundRanges(n.List)
		boundRanges(n.ElseList)
	case *parse.WithNode:
		boundRanges(n.List)
		boundRanges(n.ElseList)
	}
}

// boundRange passes v on unless it is an integer over MaxCount, or a map
// of settings of at least iterateAbove keys: that becomes an iterator over
// its values in the order of their keys, which is how text/template ranges
// over a map. text/template would first copy the whole map into a sorted
// list of reflect.Values (48 bytes an entry, and each value copied again:
// 7.7 MB for 100,000 keys, live for the whole range); the iterator holds
// only the sorted keys. It costs two small allocations a step (reflect
// calls the yield function), so smaller maps, where the copy is small, go
// to text/template as they are: a range over 100 keys takes 15-20 % longer
// through the iterator.
func boundRange(v any) (any, error) {
	if m, ok := v.(map[string]any); ok && len(m) >= iterateAbove {
		return iter.Seq[any](func(yield func(any) bool) {
			for _, k := range sortedKeys(m) {
				if !yield(m[k]) {
					return
				}
			}
		}), nil
	}
	return v, checkRangeCount(v)
}

// boundRangePairs is boundRange for {{range $key, $value := ...}}: a map
// of settings becomes an iterator over its keys and values.
func boundRangePairs(v any) (any, error) {
	if m, ok := v.(map[string]any); ok && len(m) >= iterateAbove {
		return iter.Seq2[string, any](func(yield func(string, any) bool) {
			for _, k := range sortedKeys(m) {
				if !yield(k, m[k]) {
					return
				}
			}
		}), nil
	}
	return v, checkRangeCount(v)
}

// iterateAbove is the size of map from which a range iterates over it
// (see boundRange); at least 1, as an empty map must reach {{else}}.
// Tests lower it.
var iterateAbove = 4096

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// checkRangeCount refuses an integer to range over that is over MaxCount.
func checkRangeCount(v any) error {
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		if rv.Int() > MaxCount {
			return countError("range")
		}
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		if rv.Uint() > MaxCount {
			return countError("range")
		}
	}
	return nil
}

func countError(fn string) error {
	return fmt.Errorf("%s over %d items (a count from settings?): %w", fn, MaxCount, ErrTooLarge)
}

// boundedFuncs replaces sprig's functions in m whose cost grows with a count
// argument by versions that refuse a count over MaxCount or a result over
// MaxOutput bytes.
func boundedFuncs(m map[string]any) {
	until := m["until"].(func(int) []int)
	untilStep := m["untilStep"].(func(int, int, int) []int)
	seq := m["seq"].(func(...int) string)
	indent := m["indent"].(func(int, string) string)
	nindent := m["nindent"].(func(int, string) string)

	m["until"] = func(n int) ([]int, error) {
		if err := checkCount("until", span(0, n, 1)); err != nil {
			return nil, err
		}
		return until(n), nil
	}
	m["untilStep"] = func(start, stop, step int) ([]int, error) {
		if err := checkCount("untilStep", span(start, stop, step)); err != nil {
			return nil, err
		}
		return untilStep(start, stop, step), nil
	}
	m["seq"] = func(params ...int) (string, error) {
		if err := checkCount("seq", seqSpan(params)); err != nil {
			return "", err
		}
		return seq(params...), nil
	}
	m["repeat"] = func(count int, s string) (string, error) {
		if err := checkBytes("repeat", count, len(s)); err != nil {
			return "", err
		}
		return strings.Repeat(s, count), nil
	}
	m["indent"] = func(spaces int, s string) (string, error) {
		if err := checkBytes("indent", spaces, bytes.Count([]byte(s), []byte("\n"))+1); err != nil {
			return "", err
		}
		return indent(spaces, s), nil
	}
	m["nindent"] = func(spaces int, s string) (string, error) {
		if err := checkBytes("nindent", spaces, bytes.Count([]byte(s), []byte("\n"))+1); err != nil {
			return "", err
		}
		return nindent(spaces, s), nil
	}
	for _, name := range []string{"randAlphaNum", "randAlpha", "randAscii", "randNumeric"} {
		f := m[name].(func(int) string)
		m[name] = func(n int) (string, error) {
			if err := checkBytes(name, n, 1); err != nil {
				return "", err
			}
			return f(n), nil
		}
	}
	randBytes := m["randBytes"].(func(int) (string, error))
	m["randBytes"] = func(n int) (string, error) {
		if err := checkBytes("randBytes", n, 2); err != nil {
			return "", err
		}
		return randBytes(n)
	}
}

// span is how many items a count from start to stop by step makes.
func span(start, stop, step int) int64 {
	if step == 0 {
		return 0
	}
	d := int64(stop) - int64(start)
	if (d > 0) != (step > 0) {
		return 0
	}
	return d / int64(step)
}

// seqSpan is span for seq's one, two or three parameters.
func seqSpan(p []int) int64 {
	first, inc, last := 1, 1, 0
	switch len(p) {
	case 1:
		last = p[0]
	case 2:
		first, last = p[0], p[1]
	case 3:
		first, inc, last = p[0], p[1], p[2]
	default:
		return 0
	}
	d := int64(last) - int64(first)
	if d < 0 {
		d = -d
	}
	if inc < 0 {
		inc = -inc
	}
	return d / int64(max(inc, 1))
}

func checkCount(fn string, n int64) error {
	if n > MaxCount {
		return countError(fn)
	}
	return nil
}

// checkBytes refuses a result of count pieces of size bytes over MaxOutput.
func checkBytes(fn string, count, size int) error {
	if count > 0 && int64(count)*int64(max(size, 1)) > MaxOutput {
		return fmt.Errorf("%s would build over %d MiB: %w", fn, MaxOutput>>20, ErrTooLarge)
	}
	return nil
}
