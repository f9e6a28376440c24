package render

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
)

// Float is a JSON number with a fraction or an exponent. It compares like a
// float64 in templates (eq, lt) and prints in plain decimal notation, never
// with an exponent: 1e21 prints as 1000000000000000000000.
type Float float64

// String formats f as the shortest decimal that reads back as the same value.
func (f Float) String() string {
	return strconv.FormatFloat(float64(f), 'f', -1, 64)
}

// MarshalJSON writes f in the same notation as String.
func (f Float) MarshalJSON() ([]byte, error) {
	v := float64(f)
	if math.IsInf(v, 0) || math.IsNaN(v) {
		return nil, fmt.Errorf("unsupported float value")
	}
	return []byte(f.String()), nil
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
// ParseSettings does. Data after the value is an error. Errors give a byte
// offset and never quote the input.
func DecodeJSON(data []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, describeJSONError(err, dec.InputOffset())
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("invalid JSON: data after the value at offset %d", dec.InputOffset())
	}
	return Normalize(v), nil
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
