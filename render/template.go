package render

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"text/template"
	"text/template/parse"
)

// ErrMissingValue reports that a template printed a key that is absent, a
// null, or an index that is not there. It is wrapped in the render error.
var ErrMissingValue = errors.New("missing value")

// Data is what a template sees: {{.Settings.key}} and {{.Env}}.
type Data struct {
	Settings map[string]any
	Env      string
}

// Template is a parsed template file. It is safe for concurrent use.
type Template struct {
	name string // the source path, used in every error
	text string
	opts options
	fast *template.Template // as written: the success path

	// direct runs the template without text/template when it can (see
	// direct); nil when the template is not of its shape.
	direct *direct

	// private: the template changes maps in place (sprig's set...), so it
	// renders on its own copy of the settings (see mutators).
	private bool

	// guarded has a nil check on every printed value; it is parsed the
	// first time an output needs it (see Render).
	guardOnce sync.Once
	guarded   *template.Template

	// lastSize is the length of the last output, the size of the first
	// block of the next (see output): the usual small file then renders
	// into one block, returned without a copy.
	lastSize atomic.Int64

	keysOnce sync.Once // see Keys
	keys     []string
	allKeys  bool
}

// Name returns the template's source path.
func (t *Template) Name() string { return t.name }

// Option changes how a template is parsed and rendered.
type Option func(*options)

type options struct {
	zeroMissing bool
}

// MissingKeyZero makes an absent key, a null or an index miss print as an
// empty string instead of failing the render (the config's
// missing_key = "zero"). The text "<no value>" is still never printed.
func MissingKeyZero() Option {
	return func(o *options) { o.zeroMissing = true }
}

// ParseFile reads and parses the template file at path.
func ParseFile(path string, opts ...Option) (*Template, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(path, string(src), opts...)
}

// Parse parses a template from text; name is used in error messages.
// Parse errors name the file and line. Rendering is strict unless
// MissingKeyZero is given.
func Parse(name, text string, opts ...Option) (*Template, error) {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	fast, err := o.parse(name, text, false)
	if err != nil {
		return nil, err
	}
	t := &Template{name: name, text: text, opts: o, fast: fast, private: callsMutator(fast)}
	if !o.zeroMissing && !t.private {
		t.direct = compileDirect(fast)
	}
	return t, nil
}

// parse parses text with the options' functions; guard adds the nil check
// to every printing action.
func (o options) parse(name, text string, guard bool) (*template.Template, error) {
	missingKey, guardFunc := "missingkey=error", printValue
	if o.zeroMissing {
		missingKey, guardFunc = "missingkey=zero", printValueOrEmpty
	}
	funcs := funcMap()
	funcs[printValueFunc] = guardFunc
	if o.zeroMissing {
		delete(funcs, "index") // Go's own index gives nil for a missing key
	}
	funcs[boundRangeFunc] = boundRange
	funcs[boundRangePairsFunc] = boundRangePairs
	t, err := template.New(name).
		Option(missingKey).
		Funcs(funcs).
		Parse(text)
	if err != nil {
		return nil, explainParseError(err)
	}
	for _, tt := range t.Templates() {
		if tt.Tree == nil {
			continue
		}
		boundRanges(tt.Tree.Root)
		if guard {
			guardPrints(tt.Tree.Root)
		}
	}
	return t, nil
}

// noValue is how text/template prints a nil.
var noValue = []byte("<no value>")

// Render executes the template against data. A missing key, a null printed
// as a value or an index miss is an error wrapping ErrMissingValue; output
// over MaxOutput, or a count over MaxCount (range over an integer, until,
// repeat...), is one wrapping ErrTooLarge. The error names the template,
// line and key and never quotes a setting value.
//
// The template runs as written first. Only when that fails, or its output
// holds "<no value>" (a nil printed, or a setting whose text it is), does
// it run again with a nil check on every printed value, which decides: the
// check costs a reflective call per value, too much for every update.
func (t *Template) Render(data Data) ([]byte, error) {
	out := &output{max: MaxOutput, first: int(t.lastSize.Load())}
	if t.direct != nil {
		if t.direct.run(out, data) {
			return t.done(out), nil
		}
		out.reset()
	}
	if err := t.fast.Execute(out, t.own(data)); err == nil && !out.contains(noValue) {
		return t.done(out), nil
	}

	t.guardOnce.Do(func() {
		// The text parsed once already, so it parses again.
		t.guarded, _ = t.opts.parse(t.name, t.text, true)
	})
	out.reset()
	if err := t.guarded.Execute(out, t.own(data)); err != nil {
		var exec template.ExecError
		if !errors.As(err, &exec) {
			// text/template passes the writer's own error (output over
			// MaxOutput) on as it is, without the template's name.
			err = fmt.Errorf("template: %s: %w", t.name, err)
		}
		return nil, redact(t.name, err, data.Settings, t.text)
	}
	return t.done(out), nil
}

// done returns the output and remembers its size for the next render.
func (t *Template) done(out *output) []byte {
	t.lastSize.Store(int64(out.n))
	return out.bytes()
}

// own returns data with a copy of its settings if the template changes
// maps in place; it must not change the caller's.
func (t *Template) own(data Data) Data {
	if t.private {
		data.Settings = copyMap(data.Settings)
	}
	return data
}

// guardPrints makes every action that prints a value pass it through
// printValueFunc first, so that a nil (a null, or an index miss) fails the
// render instead of printing "<no value>". Go's missingkey=error alone only
// catches a map key that is absent.
func guardPrints(n parse.Node) {
	switch n := n.(type) {
	case *parse.ListNode:
		if n == nil {
			return
		}
		for _, c := range n.Nodes {
			guardPrints(c)
		}
	case *parse.ActionNode:
		if len(n.Pipe.Decl) == 0 {
			text := n.String()
			where := &parse.StringNode{NodeType: parse.NodeString, Quoted: fmt.Sprintf("%q", text), Text: text}
			guard := &parse.CommandNode{NodeType: parse.NodeCommand, Args: []parse.Node{
				&parse.IdentifierNode{NodeType: parse.NodeIdentifier, Ident: printValueFunc},
				where,
			}}
			n.Pipe.Cmds = append(n.Pipe.Cmds, guard)
		}
	case *parse.IfNode:
		guardPrints(n.List)
		guardPrints(n.ElseList)
	case *parse.RangeNode:
		guardPrints(n.List)
		guardPrints(n.ElseList)
	case *parse.WithNode:
		guardPrints(n.List)
		guardPrints(n.ElseList)
	}
}

const printValueFunc = "_sseconfd_print"

// printValue is appended to every printing action by guardPrints.
func printValue(action string, v any) (any, error) {
	if v == nil {
		return nil, fmt.Errorf("%s: %w (null or absent)", action, ErrMissingValue)
	}
	return v, nil
}

// printValueOrEmpty is printValue for missing_key = "zero".
func printValueOrEmpty(_ string, v any) (any, error) {
	if v == nil {
		return "", nil
	}
	return v, nil
}

// explainParseError adds what to do to the parse errors whose Go wording
// leaves a template author guessing. The error keeps Go's text first.
func explainParseError(err error) error {
	msg := err.Error()
	switch {
	case strings.HasSuffix(msg, "unexpected EOF"):
		return fmt.Errorf("%w (an {{if}}, {{range}}, {{with}}, {{define}} or {{block}} lacks its {{end}})", err)
	case strings.Contains(msg, `function "env" not defined`),
		strings.Contains(msg, `function "expandenv" not defined`):
		return fmt.Errorf("%w (env and expandenv are left out: templates see .Settings and .Env only)", err)
	}
	return err
}
