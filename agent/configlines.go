package agent

import (
	"fmt"
	"strings"
)

// keyLines maps each key of a TOML file, written as messages write it
// ("source.url", "template[1].mode", "template[1]" for the header), to the
// line that sets it. BurntSushi/toml keeps no positions, so the file is
// scanned again here: tables, arrays of tables (counted, so the second
// [[template]] is template[1]), dotted and quoted keys, and multi-line
// strings and arrays, whose inner lines are skipped.
type keyLines map[string]int

func scanKeyLines(data []byte) keyLines {
	lines := keyLines{}
	counts := map[string]int{} // items so far of each array of tables
	table := ""
	var open lineState
	for i, raw := range strings.Split(string(data), "\n") {
		n := i + 1
		if open.inside() {
			open = open.scan(raw)
			continue
		}
		line := strings.TrimSpace(raw)
		switch {
		case line == "" || line[0] == '#':
		case strings.HasPrefix(line, "[["):
			table = tablePath(strings.TrimSuffix(headerName(line[2:]), "]"), counts, true)
			lines.set(table, n)
		case line[0] == '[':
			table = tablePath(headerName(line[1:]), counts, false)
			lines.set(table, n)
		default:
			key, value, ok := splitKeyValue(line)
			if !ok {
				continue
			}
			lines.set(joinKey(table, strings.Join(splitDotted(key), ".")), n)
			open = lineState{}.scan(value)
		}
	}
	return lines
}

func (kl keyLines) set(key string, line int) {
	if _, seen := kl[key]; !seen {
		kl[key] = line
	}
}

// line returns the line of key, or of its closest enclosing key or table
// that has one (an inline table's entries share their parent's line); 0 if
// none.
func (kl keyLines) line(key string) int {
	for key != "" {
		if n, ok := kl[key]; ok {
			return n
		}
		if i := strings.LastIndexAny(key, ".["); i >= 0 {
			key = key[:i]
		} else {
			key = ""
		}
	}
	return 0
}

// headerName returns the trimmed name inside a header, before its "]".
func headerName(s string) string {
	name, _, _ := cutOutsideQuotes(s, ']')
	return strings.TrimSpace(name)
}

// tablePath turns a header's dotted name into a key with array indices;
// for an array of tables it counts one more item.
func tablePath(name string, counts map[string]int, array bool) string {
	parts := splitDotted(name)
	path := ""
	for i, p := range parts {
		path = joinKey(path, p)
		if i == len(parts)-1 && array {
			counts[path]++
		}
		if c, ok := counts[path]; ok {
			path = fmt.Sprintf("%s[%d]", path, c-1)
		}
	}
	return path
}

// splitKeyValue splits `key = value` at the first "=" outside quotes.
func splitKeyValue(line string) (key, value string, ok bool) {
	key, value, ok = cutOutsideQuotes(line, '=')
	return strings.TrimSpace(key), value, ok
}

// splitDotted splits a key such as `a."b.c".d` into its unquoted parts.
func splitDotted(key string) []string {
	var parts []string
	for {
		part, rest, more := cutOutsideQuotes(key, '.')
		part = strings.TrimSpace(part)
		if len(part) >= 2 && (part[0] == '"' || part[0] == '\'') {
			part = part[1 : len(part)-1]
		}
		parts = append(parts, part)
		if !more {
			return parts
		}
		key = rest
	}
}

// cutOutsideQuotes cuts s around the first sep that is not inside quotes.
func cutOutsideQuotes(s string, sep byte) (before, after string, found bool) {
	var quote byte
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case quote != 0 && c == '\\' && quote == '"':
			i++
		case quote != 0 && c == quote:
			quote = 0
		case quote != 0:
		case c == '"' || c == '\'':
			quote = c
		case c == sep:
			return s[:i], s[i+1:], true
		}
	}
	return s, "", false
}

// lineState is what a value leaves open at the end of a line: a
// multi-line string, or brackets of an array or inline table.
type lineState struct {
	str   string // `"""` or `'''` while inside a multi-line string
	depth int    // open [ and { outside strings
}

func (s lineState) inside() bool { return s.str != "" || s.depth > 0 }

// scan follows text from state s and returns the state at its end.
func (s lineState) scan(text string) lineState {
	for i := 0; i < len(text); i++ {
		if s.str != "" {
			if strings.HasPrefix(text[i:], s.str) {
				i += 2
				s.str = ""
			} else if text[i] == '\\' && s.str == `"""` {
				i++
			}
			continue
		}
		switch c := text[i]; {
		case strings.HasPrefix(text[i:], `"""`) || strings.HasPrefix(text[i:], `'''`):
			s.str = text[i : i+3]
			i += 2
		case c == '"' || c == '\'':
			i = skipString(text, i)
		case c == '#':
			return s
		case c == '[' || c == '{':
			s.depth++
		case c == ']' || c == '}':
			s.depth--
		}
	}
	return s
}

// skipString returns the index of the quote closing the string at text[i].
func skipString(text string, i int) int {
	q := text[i]
	for j := i + 1; j < len(text); j++ {
		if q == '"' && text[j] == '\\' {
			j++
			continue
		}
		if text[j] == q {
			return j
		}
	}
	return len(text)
}
