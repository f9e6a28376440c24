package agent

import (
	"encoding"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strconv"
	"strings"
)

// Problem is one thing wrong in a config or template file. Its message
// reads "file:line: key: what is wrong", the form editors and compilers use;
// Line is 0 when unknown and Key is "" for a problem not tied to a key.
type Problem struct {
	File string
	Line int
	Key  string // "source.url", "template[1].mode"
	Msg  string
}

// Error returns "file:line: key: message", leaving out what is unknown.
func (p *Problem) Error() string {
	var b strings.Builder
	b.WriteString(p.File)
	if p.Line > 0 {
		b.WriteString(":" + strconv.Itoa(p.Line))
	}
	if p.Key != "" {
		b.WriteString(": " + p.Key)
	}
	b.WriteString(": " + p.Msg)
	return b.String()
}

// checkKeys compares the decoded TOML table m with the struct type t and
// reports every key that t has no field for and every value of the wrong
// type. It deletes those keys from m, so that the rest decodes cleanly.
func checkKeys(m map[string]any, t reflect.Type, prefix string, report func(key, msg string)) {
	for _, name := range slices.Sorted(maps.Keys(m)) {
		key := joinKey(prefix, name)
		f, ok := fieldByTag(t, name)
		if !ok {
			report(key, "unknown key"+suggest(name, t))
			delete(m, name)
			continue
		}
		if msg := checkValue(m[name], f.Type, key, report); msg != "" {
			report(key, msg)
			delete(m, name)
		}
	}
}

// checkValue returns what is wrong with v as a value for a field of type
// ft, or "" when it fits; tables and arrays of tables are checked inside.
func checkValue(v any, ft reflect.Type, key string, report func(key, msg string)) string {
	if ft.Kind() == reflect.Pointer {
		ft = ft.Elem()
	}
	if u, ok := reflect.New(ft).Interface().(encoding.TextUnmarshaler); ok {
		return checkText(v, u, ft)
	}
	switch ft.Kind() {
	case reflect.String:
		if strings.HasSuffix(key, ".mode") {
			return wantKind(v, `an octal mode in quotes such as "0644"`, "string")
		}
		return wantKind(v, "a string", "string")
	case reflect.Bool:
		return wantKind(v, "true or false", "bool")
	case reflect.Int, reflect.Int64:
		return wantKind(v, "an integer", "int64")
	case reflect.Float64:
		return wantKind(v, "a number", "int64", "float64")
	case reflect.Map:
		return checkStringMap(v)
	case reflect.Struct:
		sub, ok := v.(map[string]any)
		if !ok {
			return fmt.Sprintf("want a table, got %s", tomlKind(v))
		}
		checkKeys(sub, ft, key, report)
	case reflect.Slice:
		return checkTables(v, ft.Elem(), key, report)
	}
	return ""
}

// checkText runs a TextUnmarshaler (Duration, ByteSize) on a string value.
func checkText(v any, u encoding.TextUnmarshaler, ft reflect.Type) string {
	if _, isInt := v.(int64); isInt && ft.Kind() == reflect.Int64 {
		return "" // a ByteSize may be a plain number of bytes
	}
	s, ok := v.(string)
	if !ok {
		if ft == reflect.TypeOf(Duration{}) {
			return fmt.Sprintf("want a duration in quotes such as \"30s\", got %s", tomlKind(v))
		}
		return fmt.Sprintf("want a string, got %s", tomlKind(v))
	}
	if err := u.UnmarshalText([]byte(s)); err != nil {
		return err.Error()
	}
	return ""
}

func checkStringMap(v any) string {
	m, ok := v.(map[string]any)
	if !ok {
		return fmt.Sprintf("want a table of strings such as { \"X-Team\" = \"web\" }, got %s", tomlKind(v))
	}
	for _, k := range slices.Sorted(maps.Keys(m)) {
		if _, ok := m[k].(string); !ok {
			return fmt.Sprintf("%q: want a string, got %s", k, tomlKind(m[k]))
		}
	}
	return ""
}

// checkTables checks an array of tables ([[template]], [[reload]]).
func checkTables(v any, elem reflect.Type, key string, report func(key, msg string)) string {
	var tables []map[string]any
	switch x := v.(type) {
	case []map[string]any:
		tables = x
	case []any:
		for _, e := range x {
			m, ok := e.(map[string]any)
			if !ok {
				return fmt.Sprintf("want [[%s]] tables, got an array of %s", key, tomlKind(e))
			}
			tables = append(tables, m)
		}
	default:
		return fmt.Sprintf("want [[%s]] tables, got %s", key, tomlKind(v))
	}
	for i, m := range tables {
		checkKeys(m, elem, fmt.Sprintf("%s[%d]", key, i), report)
	}
	return ""
}

func wantKind(v any, want string, goTypes ...string) string {
	got := reflect.TypeOf(v)
	for _, g := range goTypes {
		if got != nil && got.String() == g {
			return ""
		}
	}
	return fmt.Sprintf("want %s, got %s", want, tomlKind(v))
}

// tomlKind names a decoded TOML value's type the way the TOML spec does.
func tomlKind(v any) string {
	switch x := v.(type) {
	case string:
		return fmt.Sprintf("the string %q", x)
	case int64:
		return "an integer"
	case float64:
		return "a float"
	case bool:
		return "a boolean"
	case map[string]any:
		return "a table"
	case []any, []map[string]any:
		return "an array"
	default:
		return "a date-time"
	}
}

// fieldByTag finds the field of struct t whose toml tag is name.
func fieldByTag(t reflect.Type, name string) (reflect.StructField, bool) {
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if tag, _, _ := strings.Cut(f.Tag.Get("toml"), ","); tag == name && tag != "" {
			return f, true
		}
	}
	return reflect.StructField{}, false
}

// suggest returns ` (did you mean "x"?)` for the closest key of t, if close.
func suggest(name string, t reflect.Type) string {
	best, bestDist := "", 3
	for i := 0; i < t.NumField(); i++ {
		tag, _, _ := strings.Cut(t.Field(i).Tag.Get("toml"), ",")
		if d := editDistance(name, tag); tag != "" && d < bestDist {
			best, bestDist = tag, d
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf(" (did you mean %q?)", best)
}

// editDistance is the Levenshtein distance between a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}

func joinKey(prefix, name string) string {
	if prefix == "" {
		return name
	}
	return prefix + "." + name
}
