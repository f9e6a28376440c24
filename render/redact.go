package render

import (
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// RenderError is a failed template execution. Its message is Go's, with
// every setting value that it quoted replaced by "<redacted>", so it can be
// logged. Unwrap yields ErrMissingValue when a key, null or index was
// missing, ErrTooLarge when the output or a count was over the bounds,
// ErrCycle when a map was set into itself.
type RenderError struct {
	Template string // source path of the template
	Msg      string // redacted message
	missing  bool
	tooLarge bool
	cycle    bool
}

func (e *RenderError) Error() string { return e.Msg }

// Unwrap returns ErrMissingValue for a missing key, null or index miss,
// ErrTooLarge for output or a count over the bounds, and ErrCycle for a
// map set into itself.
func (e *RenderError) Unwrap() error {
	switch {
	case e.missing:
		return ErrMissingValue
	case e.tooLarge:
		return ErrTooLarge
	case e.cycle:
		return ErrCycle
	}
	return nil
}

const redacted = "<redacted>"

// redact turns a template execution error into a RenderError whose message
// quotes no value of settings. Only the part after the failing action's
// position is rewritten: the file, line and action text are template source.
//
// Go and sprig quote what a function failed on, and that may be a value
// in a form no search for the value finds: escaped by package time, only
// a part of it, or transformed (upper | fail). So besides every form of
// every value, the reason loses each quoted text and each fail or
// required message that the template source does not hold itself.
func redact(name string, err error, settings map[string]any, source string) error {
	msg := err.Error()
	missing := errors.Is(err, ErrMissingValue) || strings.Contains(msg, "map has no entry for key")
	tooLarge := errors.Is(err, ErrTooLarge)

	head, tail := splitAtAction(msg)
	tail = redactValues(tail, settings)
	tail = redactForeignText(tail, source, settings)
	return &RenderError{Template: name, Msg: head + tail, missing: missing, tooLarge: tooLarge,
		cycle: errors.Is(err, ErrCycle)}
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

// quoted matches a double-quoted text with backslash escapes, or a
// backquoted one, as Go's messages quote what they failed on.
var quoted = regexp.MustCompile("\"(?:[^\"\\\\]|\\\\.)*\"|`[^`]*`")

// freeText is where a message continues with text chosen at run time:
// sprig's fail, our required, and what range could not iterate.
var freeText = regexp.MustCompile(`(error calling (?:fail|required): |range can't iterate over )(.*)`)

// redactForeignText replaces in a render error's reason every quoted text
// and every free-text message that is neither in the template source nor
// a key of settings: such text can only have come from a value.
func redactForeignText(reason, source string, settings map[string]any) string {
	keys := map[string]bool{}
	collectKeys(settings, keys)
	known := func(text string) bool {
		return text == redacted || keys[text] || strings.Contains(source, text)
	}
	reason = quoted.ReplaceAllStringFunc(reason, func(q string) string {
		text := q[1 : len(q)-1]
		if u, err := strconv.Unquote(q); err == nil {
			text = u
		}
		if known(text) {
			return q
		}
		return `"` + redacted + `"`
	})
	return freeText.ReplaceAllStringFunc(reason, func(m string) string {
		sub := freeText.FindStringSubmatch(m)
		if known(sub[2]) {
			return m
		}
		return sub[1] + redacted
	})
}

func collectKeys(v any, keys map[string]bool) {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			keys[k] = true
			collectKeys(e, keys)
		}
	case []any:
		for _, e := range x {
			collectKeys(e, keys)
		}
	}
}

// Redact replaces in msg the text of every string and number found in
// settings with "<redacted>", so that a message from a command or a parser
// can be logged. See redactValues.
func Redact(msg string, settings map[string]any) string {
	return redactValues(msg, settings)
}

// redactValues replaces, longest first and ignoring letter case, every
// form the text of a string or number in settings takes in a message: as
// is, escaped as Go, JSON, package time or Python quote it, and each longer line
// of a value of several lines (a PEM key that a command echoes line by
// line). Values shorter than two characters and booleans are kept: they
// are no secret and replacing them would garble the message.
//
// The forms are grouped by length and looked up at each position of the
// message, longest length first: a map of 100,000 values costs a few
// milliseconds per message, where one regular expression of them all took
// over a second and 380 MB.
func redactValues(s string, settings map[string]any) string {
	var texts []string
	collectTexts(settings, &texts)
	byLen := map[int]map[string]bool{}
	for _, t := range texts {
		for _, f := range textForms(t) {
			if f = fold(f); len(f) >= 2 {
				if byLen[len(f)] == nil {
					byLen[len(f)] = map[string]bool{}
				}
				byLen[len(f)][f] = true
			}
		}
	}
	if len(byLen) == 0 {
		return s
	}
	lengths := make([]int, 0, len(byLen))
	for n := range byLen {
		lengths = append(lengths, n)
	}
	sort.Sort(sort.Reverse(sort.IntSlice(lengths)))

	folded := fold(s)
	var b strings.Builder
	for i := 0; i < len(s); {
		n := 0
		for _, l := range lengths {
			if i+l <= len(s) && byLen[l][folded[i:i+l]] {
				n = l
				break
			}
		}
		if n == 0 {
			b.WriteByte(s[i])
			i++
			continue
		}
		b.WriteString(redacted)
		i += n
	}
	return b.String()
}

// fold lower-cases t rune by rune, keeping every byte offset: a rune
// whose lower case has another length, and an invalid byte, stay as they
// are. A position in fold(msg) is therefore the same position in msg.
func fold(t string) string {
	b := make([]byte, 0, len(t))
	for i := 0; i < len(t); {
		r, size := utf8.DecodeRuneInString(t[i:])
		if l := unicode.ToLower(r); r != utf8.RuneError && utf8.RuneLen(l) == size {
			b = utf8.AppendRune(b, l)
		} else {
			b = append(b, t[i:i+size]...)
		}
		i += size
	}
	return string(b)
}

// textForms returns t as is, its escaped forms, and its lines of eight
// characters or more when it has several.
func textForms(t string) []string {
	backslashed := strings.ReplaceAll(t, `\`, `\\`) // Python's repr, shell-style quoting
	forms := []string{t, unquoted(strconv.Quote(t)), unquoted(strconv.QuoteToASCII(t)), timeEscape(t),
		backslashed, strings.ReplaceAll(backslashed, `'`, `\'`)}
	if j, err := json.Marshal(t); err == nil {
		forms = append(forms, unquoted(string(j)))
	}
	if strings.ContainsAny(t, "\r\n") {
		for _, line := range strings.FieldsFunc(t, func(r rune) bool { return r == '\n' || r == '\r' }) {
			if line = strings.TrimSpace(line); len(line) >= 8 {
				forms = append(forms, line)
			}
		}
	}
	return forms
}

func unquoted(q string) string { return q[1 : len(q)-1] }

// timeEscape escapes t as package time quotes it in parse errors: a
// backslash before " and \, every other byte outside printable ASCII as \xHH.
func timeEscape(t string) string {
	var b strings.Builder
	for i := 0; i < len(t); i++ {
		switch c := t[i]; {
		case c == '"' || c == '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		case c < ' ' || c >= 0x7f:
			fmt.Fprintf(&b, `\x%02x`, c)
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
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
