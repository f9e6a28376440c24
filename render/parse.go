package render

import (
	"bytes"
	"encoding/json"
)

// parser decodes JSON that json.Valid accepted into the values that
// json.Decoder with UseNumber gives, numbers normalised. It reads data in
// place: json.Decoder first copies the whole document into a buffer that
// it grows by doubling (8 MB of garbage for a 2.3 MB document).
type parser struct {
	data []byte
	i    int
	dup  bool // some object repeated a key
}

// parseValid decodes data, which must be valid JSON, and reports whether
// some object repeated a key.
func parseValid(data []byte) (v any, dup bool) {
	p := &parser{data: data}
	v = p.value()
	return v, p.dup
}

func (p *parser) skipSpace() {
	for p.i < len(p.data) {
		switch p.data[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

func (p *parser) value() any {
	p.skipSpace()
	switch p.data[p.i] {
	case '{':
		return p.object()
	case '[':
		return p.array()
	case '"':
		return p.str()
	case 't':
		p.i += len("true")
		return true
	case 'f':
		p.i += len("false")
		return false
	case 'n':
		p.i += len("null")
		return nil
	}
	return p.number()
}

// object reads an object; a repeated key keeps its last value.
func (p *parser) object() map[string]any {
	m := map[string]any{}
	p.i++ // {
	p.skipSpace()
	if p.data[p.i] == '}' {
		p.i++
		return m
	}
	for {
		p.skipSpace()
		k := p.str()
		p.skipSpace()
		p.i++ // :
		v := p.value()
		if _, ok := m[k]; ok {
			p.dup = true
		}
		m[k] = v
		p.skipSpace()
		c := p.data[p.i]
		p.i++ // , or }
		if c == '}' {
			return m
		}
	}
}

func (p *parser) array() []any {
	a := make([]any, 0) // an empty array decodes as empty, not nil
	p.i++               // [
	p.skipSpace()
	if p.data[p.i] == ']' {
		p.i++
		return a
	}
	for {
		a = append(a, p.value())
		p.skipSpace()
		c := p.data[p.i]
		p.i++ // , or ]
		if c == ']' {
			return a
		}
	}
}

// str reads a string; one with escapes is unquoted by encoding/json.
func (p *parser) str() string {
	start := p.i
	escaped := false
	for p.i++; ; p.i++ {
		switch p.data[p.i] {
		case '\\':
			escaped = true
			p.i++
		case '"':
			p.i++
			if !escaped {
				return string(p.data[start+1 : p.i-1])
			}
			var s string
			json.Unmarshal(p.data[start:p.i], &s) // valid: cannot fail
			return s
		}
	}
}

func (p *parser) number() any {
	start := p.i
	for p.i < len(p.data) && bytes.IndexByte([]byte("+-0123456789.eE"), p.data[p.i]) >= 0 {
		p.i++
	}
	return normalizeNumber(json.Number(p.data[start:p.i]))
}
