package render

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"reflect"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Float is a JSON number with a fraction or an exponent. It compares like a
// float64 in templates (eq, lt) and prints in plain decimal notation, never
// with an exponent: 1e21 prints as 1000000000000000000000.
type Float float64

// String formats f as the shortest decimal that reads back as the same value.
func (f Float) String() string {
	return strconv.FormatFloat(float64(f), 'f', -1, 64)
}

// MarshalJSON writes f as String does, with ".0" added when that has no
// fraction, so that decoding it again (the cache, a hash) gives a Float,
// not an integer: 1.0 stays a float for printf "%.2f" and eq 1.0.
func (f Float) MarshalJSON() ([]byte, error) {
	v := float64(f)
	if math.IsInf(v, 0) || math.IsNaN(v) {
		return nil, fmt.Errorf("unsupported float value")
	}
	s := f.String()
	if !strings.ContainsAny(s, ".eE") {
		s += ".0"
	}
	return []byte(s), nil
}

// ParseSettings decodes a JSON object into a settings map whose numbers are
// normalised for templates: integers become int64 (uint64 above its range,
// and a json.Number string beyond both), other numbers become Float. Every
// integer therefore prints with all its digits. The error names the JSON
// structure that was wrong and its byte offset, never a value.
func ParseSettings(data []byte) (map[string]any, error) {
	v, err := DecodeJSON(data)
	if err != nil {
		return nil, err
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("settings are a JSON %s, want an object", KindOf(v))
	}
	return m, nil
}

// DecodeJSON decodes one JSON value, normalising its numbers as
// ParseSettings does. Data after the value and invalid UTF-8 are errors.
// Errors give a byte offset and never quote the input. A key repeated in
// one object keeps its last value; DecodeJSONDuplicates also names it.
func DecodeJSON(data []byte) (any, error) {
	v, _, err := DecodeJSONDuplicates(data)
	return v, err
}

// DecodeJSONDuplicates is DecodeJSON that also lists the keys that occur
// more than once in one object, as paths such as "settings.db.port". The
// last occurrence wins, as with encoding/json. Decoding notices a repeated
// key; only then is the document read again to name it.
func DecodeJSONDuplicates(data []byte) (v any, dups []string, err error) {
	// encoding/json would quietly turn invalid UTF-8 into U+FFFD, and a
	// replacement character must not reach a config file.
	if !utf8.Valid(data) {
		return nil, nil, fmt.Errorf("invalid UTF-8 at offset %d", firstInvalidUTF8(data))
	}
	if !json.Valid(data) {
		return nil, nil, invalidJSONError(data)
	}
	v, dup := parseValid(data)
	if dup {
		dups = duplicateKeys(data)
	}
	return v, dups, nil
}

// invalidJSONError says where data, which is not valid JSON, goes wrong.
func invalidJSONError(data []byte) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return describeJSONError(err, dec.InputOffset())
	}
	if _, err := dec.Token(); err != io.EOF {
		return fmt.Errorf("invalid JSON: data after the value at offset %d", dec.InputOffset())
	}
	return errors.New("invalid JSON") // json.Valid and json.Decoder disagree
}

func firstInvalidUTF8(data []byte) int {
	for i := 0; i < len(data); {
		r, n := utf8.DecodeRune(data[i:])
		if r == utf8.RuneError && n <= 1 {
			return i
		}
		i += n
	}
	return len(data)
}

// describeJSONError rewrites a decoding error so that it never quotes input:
// encoding/json's messages can include a fragment of the document.
func describeJSONError(err error, offset int64) error {
	var syntax *json.SyntaxError
	if errors.As(err, &syntax) {
		return fmt.Errorf("invalid JSON at offset %d", syntax.Offset)
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("invalid JSON: unexpected end of input at offset %d", offset)
	}
	return fmt.Errorf("invalid JSON at offset %d", offset)
}

// Normalize converts json.Number values inside v, as decoded with
// UseNumber, into int64, uint64 or Float; see ParseSettings. Maps and
// slices are converted in place.
func Normalize(v any) any {
	switch x := v.(type) {
	case json.Number:
		return normalizeNumber(x)
	case map[string]any:
		for k, e := range x {
			x[k] = Normalize(e)
		}
		return x
	case []any:
		for i, e := range x {
			x[i] = Normalize(e)
		}
		return x
	default:
		return v
	}
}

func normalizeNumber(n json.Number) any {
	s := string(n)
	if !strings.ContainsAny(s, ".eE") {
		if i, err := strconv.ParseInt(s, 10, 64); err == nil {
			return i
		}
		if u, err := strconv.ParseUint(s, 10, 64); err == nil {
			return u
		}
		return n // an integer wider than 64 bits keeps its digits as text
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return n
	}
	return Float(f)
}

// KindOf names a decoded JSON value's type for error messages.
func KindOf(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case bool:
		return "boolean"
	case string:
		return "string"
	case []any:
		return "array"
	case map[string]any:
		return "object"
	default:
		return "number"
	}
}

// jsonFrame is one open object or array while duplicateKeys walks a document.
type jsonFrame struct {
	path    string
	object  bool
	seen    map[string]bool // keys of an object so far
	index   int             // next element of an array
	wantKey bool            // an object's next string token is a key
	key     string          // the key whose value comes next
}

// duplicateKeys lists, as paths, the keys repeated within one object of
// data, which is valid JSON. It is the slow path, taken only when
// the parser saw a key repeated.
func duplicateKeys(data []byte) []string {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var stack []*jsonFrame
	var dups []string
	for {
		tok, err := dec.Token()
		if err != nil {
			return dups
		}
		var top *jsonFrame
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		if top != nil && top.object && top.wantKey {
			if key, ok := tok.(string); ok {
				if top.seen[key] {
					dups = append(dups, joinPath(top.path, key))
				}
				top.seen[key], top.key, top.wantKey = true, key, false
				continue
			}
		}
		switch tok {
		case json.Delim('}'), json.Delim(']'):
			stack = stack[:len(stack)-1]
			if len(stack) > 0 {
				stack[len(stack)-1].valueDone()
			}
			continue
		}
		path := ""
		if top != nil {
			path = top.childPath()
		}
		switch tok {
		case json.Delim('{'):
			stack = append(stack, &jsonFrame{path: path, object: true, seen: map[string]bool{}, wantKey: true})
		case json.Delim('['):
			stack = append(stack, &jsonFrame{path: path})
		default:
			if top != nil {
				top.valueDone()
			}
		}
	}
}

// childPath names the value that comes next inside f.
func (f *jsonFrame) childPath() string {
	if f.object {
		return joinPath(f.path, f.key)
	}
	return f.path + "[" + strconv.Itoa(f.index) + "]"
}

// valueDone moves f past one complete value.
func (f *jsonFrame) valueDone() {
	if f.object {
		f.wantKey = true
	} else {
		f.index++
	}
}

func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// SameValue reports whether two decoded settings values are equal: the
// same JSON after decoding, number types included (1 and 1.0 differ, as
// they print differently).
func SameValue(a, b any) bool {
	switch a := a.(type) {
	case string:
		b, ok := b.(string)
		return ok && a == b
	case int64:
		b, ok := b.(int64)
		return ok && a == b
	case bool:
		b, ok := b.(bool)
		return ok && a == b
	case Float:
		b, ok := b.(Float) // by bits: 0 and -0 print differently
		return ok && math.Float64bits(float64(a)) == math.Float64bits(float64(b))
	case nil:
		return b == nil
	case map[string]any:
		b, ok := b.(map[string]any)
		if !ok || len(a) != len(b) {
			return false
		}
		for k, v := range a {
			w, ok := b[k]
			if !ok || !SameValue(v, w) {
				return false
			}
		}
		return true
	case []any:
		b, ok := b.([]any)
		if !ok || len(a) != len(b) {
			return false
		}
		for i := range a {
			if !SameValue(a[i], b[i]) {
				return false
			}
		}
		return true
	}
	return reflect.DeepEqual(a, b) // uint64, wide integers as json.Number
}
