package render

import (
	"errors"
	"fmt"
	"sort"
	"strings"
)

// RenderError is a failed template execution. Its message is Go's, with
// every setting value that it quoted replaced by "<redacted>", so it can be
// logged. Unwrap yields ErrMissingValue when a key, null or index was missing.
type RenderError struct {
	Template string // source path of the template
	Msg      string // redacted message
	missing  bool
}

func (e *RenderError) Error() string { return e.Msg }

// Unwrap returns ErrMissingValue for a missing key, null or index miss.
func (e *RenderError) Unwrap() error {
	if e.missing {
		return ErrMissingValue
	}
	return nil
}

const redacted = "<redacted>"

// redact turns a template execution error into a RenderError whose message
// quotes no value of settings. Only the part after the failing action's
// position is rewritten: the file, line and action text are template source.
func redact(name string, err error, settings map[string]any) error {
	msg := err.Error()
	missing := errors.Is(err, ErrMissingValue) || strings.Contains(msg, "map has no entry for key")

	head, tail := splitAtAction(msg)
	tail = redactValues(tail, settings)
	return &RenderError{Template: name, Msg: head + tail, missing: missing}
}

// splitAtAction splits `template: f:3:5: executing "f" at <.x>: why` after
// the action, so that only "why" is rewritten.
func splitAtAction(msg string) (head, tail string) {
	j := strings.Index(msg, " at <")
	if j < 0 {
		return "", msg
	}
	k := strings.Index(msg[j:], ">: ")
	if k < 0 {
		return "", msg
	}
	cut := j + k + len(">: ")
	return msg[:cut], msg[cut:]
}

// Redact replaces in msg the text of every string and number found in
// settings with "<redacted>", so that a message from a command or a parser
// can be logged. See redactValues.
func Redact(msg string, settings map[string]any) string {
	return redactValues(msg, settings)
}

// redactValues replaces, longest first, the text of every string and
// number found in settings. Values shorter than two characters and booleans
// are kept: they are no secret and replacing them would garble the message.
func redactValues(s string, settings map[string]any) string {
	var texts []string
	collectTexts(settings, &texts)
	if len(texts) == 0 {
		return s
	}
	sort.Slice(texts, func(i, j int) bool { return len(texts[i]) > len(texts[j]) })
	pairs := make([]string, 0, 2*len(texts))
	for _, t := range texts {
		pairs = append(pairs, t, redacted)
	}
	return strings.NewReplacer(pairs...).Replace(s)
}

func collectTexts(v any, out *[]string) {
	switch x := v.(type) {
	case map[string]any:
		for _, e := range x {
			collectTexts(e, out)
		}
	case []any:
		for _, e := range x {
			collectTexts(e, out)
		}
	case nil, bool:
	default:
		if t := fmt.Sprint(x); len(t) >= 2 {
			*out = append(*out, t)
		}
	}
}
