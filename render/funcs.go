package render

import (
	"errors"
	"fmt"
	"reflect"
	"text/template"

	"github.com/Masterminds/sprig/v3"
)

// funcMap is the text/template built-ins plus sprig, with these changes:
// index fails on a missing map key, required fails the render with a
// message, and the functions whose cost grows with a count are bounded
// (see ErrTooLarge), and set and the merges cannot make a map hold
// itself (see ErrCycle). Parse adds the print guard used by guardPrints.
func funcMap() template.FuncMap {
	m := sprig.TxtFuncMap()
	// sprig's env and expandenv would let a template read the agent's own
	// environment, which is not settings data.
	delete(m, "env")
	delete(m, "expandenv")
	m["index"] = strictIndex
	m["required"] = required
	boundedFuncs(m)
	guardMutators(m)
	return m
}

// required returns v, or fails the render with msg when v is nil or an
// empty string.
func required(msg string, v any) (any, error) {
	if v == nil {
		return nil, errors.New(msg)
	}
	if s, ok := v.(string); ok && s == "" {
		return nil, errors.New(msg)
	}
	return v, nil
}

// strictIndex is text/template's index, except that a key missing from a
// map is an error instead of the zero value.
func strictIndex(item any, keys ...any) (any, error) {
	v := reflect.ValueOf(item)
	if !v.IsValid() {
		return nil, fmt.Errorf("index of untyped nil: %w", ErrMissingValue)
	}
	for _, key := range keys {
		v = indirectInterface(v)
		switch v.Kind() {
		case reflect.Map:
			k := reflect.ValueOf(key)
			if !k.IsValid() || !k.Type().AssignableTo(v.Type().Key()) {
				return nil, fmt.Errorf("index: key of type %T for a map", key)
			}
			e := v.MapIndex(k)
			if !e.IsValid() {
				return nil, fmt.Errorf("index: map has no key %q: %w", fmt.Sprint(key), ErrMissingValue)
			}
			v = e
		case reflect.Slice, reflect.Array, reflect.String:
			i, ok := toInt(key)
			if !ok {
				return nil, fmt.Errorf("index: cannot index a list with a %T", key)
			}
			if i < 0 || i >= v.Len() {
				return nil, fmt.Errorf("index: position %d out of range (length %d): %w", i, v.Len(), ErrMissingValue)
			}
			v = v.Index(i)
		case reflect.Invalid:
			return nil, fmt.Errorf("index of a null: %w", ErrMissingValue)
		default:
			return nil, fmt.Errorf("index: cannot index a %s", v.Kind())
		}
	}
	if !v.IsValid() {
		return nil, nil
	}
	return v.Interface(), nil
}

func indirectInterface(v reflect.Value) reflect.Value {
	for v.Kind() == reflect.Interface {
		if v.IsNil() {
			return reflect.Value{}
		}
		v = v.Elem()
	}
	return v
}

func toInt(key any) (int, bool) {
	v := reflect.ValueOf(key)
	switch v.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return int(v.Int()), true
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return int(v.Uint()), true
	}
	return 0, false
}
