package render

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
)

// decodeWithDecoder is how DecodeJSON decoded before parseValid: the
// reference that parseValid must equal on every valid document.
func decodeWithDecoder(t *testing.T, data []byte) any {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("json.Decoder on %q: %v", data, err)
	}
	return Normalize(v)
}

func TestParseValidEqualsDecoder(t *testing.T) {
	docs := []string{
		`{}`, `[]`, `""`, `0`, `-0`, `null`, `true`, ` { "a" : [ ] , "b" : { } } `,
		`{"a":1,"a":2}`, `{"a":{"x":1},"a":{"y":2}}`,
		`{"n":[0,-1,1.5,1e3,1E+3,-2.5e-3,9223372036854775807,9223372036854775808,18446744073709551616,1.0]}`,
		`{"s":"tab\there \"q\" \\ \/ \u00e9 \ud83d\ude00 \ud800 <&>","k\nkey":"v"}`,
		"{\r\n\t\"deep\": [[[[{\"x\": [null, false]}]]]]\r\n}",
	}
	r := rand.New(rand.NewPCG(3, 4))
	for range 200 {
		docs = append(docs, randomJSON(r, 4))
	}
	for _, doc := range docs {
		want := decodeWithDecoder(t, []byte(doc))
		got, dup := parseValid([]byte(doc))
		if !reflect.DeepEqual(got, want) {
			t.Errorf("parseValid(%q) = %#v, json.Decoder gave %#v", doc, got, want)
		}
		if wantDup := len(duplicateKeys([]byte(doc))) > 0; dup != wantDup {
			t.Errorf("parseValid(%q) saw a repeated key: %v, want %v", doc, dup, wantDup)
		}
	}
}

// randomJSON writes a random valid document with random whitespace,
// escapes, numbers and repeated keys.
func randomJSON(r *rand.Rand, depth int) string {
	ws := func() string { return []string{"", " ", "\n\t", "\r\n  "}[r.IntN(4)] }
	switch n := r.IntN(9); {
	case n == 0 && depth > 0:
		var parts []string
		for range r.IntN(5) {
			parts = append(parts, ws()+randomJSONString(r)+ws()+":"+randomJSON(r, depth-1))
		}
		return ws() + "{" + strings.Join(parts, ",") + ws() + "}" + ws()
	case n == 1 && depth > 0:
		var parts []string
		for range r.IntN(4) {
			parts = append(parts, randomJSON(r, depth-1))
		}
		return ws() + "[" + strings.Join(parts, ",") + "]" + ws()
	case n == 2:
		return []string{"0", "-7", "123456789012345678901234", "3.25", "-1e-9", "6.02E23", "1.0"}[r.IntN(7)]
	case n == 3:
		return []string{"true", "false", "null"}[r.IntN(3)]
	}
	return ws() + randomJSONString(r) + ws()
}

func randomJSONString(r *rand.Rand) string {
	pieces := []string{"a", "k", "é", `\"`, `\\`, `\n`, `\u0041`, `\ud83d\ude00`, `\udc00`, "<", "🙂"}
	var b strings.Builder
	b.WriteByte('"')
	for range r.IntN(4) {
		b.WriteString(pieces[r.IntN(len(pieces))])
	}
	b.WriteByte('"')
	return b.String()
}
