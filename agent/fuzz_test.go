package agent

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math/big"
	"strconv"
	"strings"
	"testing"
	"testing/iotest"
	"time"
	"unicode/utf8"

	"github.com/sseconfd/sseconfd/render"
)

// FuzzStream feeds stream bytes through the reader and decoder the stream
// client uses, and checks the snapshots that come out against a separate
// reading of the WHATWG rules and of the JSON: never a panic, never a
// snapshot from an invalid payload, none missing, every number exact.
// Seeds live in testdata/fuzz/FuzzStream. Run it with
//
//	go test -run '^$' -fuzz FuzzStream -fuzztime 5m -parallel 1 ./agent
func FuzzStream(f *testing.F) {
	for _, seed := range []string{
		event(`{"port":8080}`),
		"\xEF\xBB\xBFdata: {\"settings\":\r\ndata: {\"a\":1e21}}\r\rid: 7\n\n",
		"event: x\ndata: {\"settings\":{\"a\":1}}\n\ndata: {\"settings\":{\"a\":1,\"a\":2}}\n\n",
		"data: {\"settings\":{}}\n\ndata: {\"settings\":[1]}\n\ndata",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		// A hang is a failure too: the panic ends the worker, and the
		// fuzzer keeps the input that was running.
		watchdog := time.AfterFunc(10*time.Second, func() {
			panic(fmt.Sprintf("FuzzStream: still reading %d bytes after 10s: %q", len(raw), raw))
		})
		defer watchdog.Stop()
		want := referenceSnapshots(raw)
		for name, r := range map[string]io.Reader{
			"one write":          bytes.NewReader(raw),
			"one byte at a time": iotest.OneByteReader(bytes.NewReader(raw)),
		} {
			got := readSnapshots(r, len(raw))
			if len(got) != len(want) {
				t.Fatalf("%s: %d snapshots from %q, want %d", name, len(got), raw, len(want))
			}
			for i := range got {
				if msg := sameValue(want[i], got[i].Settings, "settings"); msg != "" {
					t.Fatalf("%s: snapshot %d from %q: %s", name, i, raw, msg)
				}
			}
		}
	})
}

// readSnapshots runs the stream client's reading and decoding over r.
func readSnapshots(r io.Reader, size int) []Snapshot {
	var got []Snapshot
	s := (&Stream{Source: SourceConfig{MaxEventBytes: ByteSize(size + 64)}}).withDefaults()
	c := &connection{stream: s, put: func(snap Snapshot) { got = append(got, snap) }}
	c.read(r)
	return got
}

// referenceSnapshots reads raw by the WHATWG rules, written out plainly,
// and decodes each message's data with encoding/json alone: the settings
// the stream client must deliver, in order.
func referenceSnapshots(raw []byte) []map[string]any {
	var out []map[string]any
	for _, data := range referenceMessages(raw) {
		if settings, ok := referenceSettings(data); ok {
			out = append(out, settings)
		}
	}
	return out
}

// referenceMessages returns the data of each dispatched event of type
// message. Like the client it skips events with empty data.
func referenceMessages(raw []byte) []string {
	s := strings.TrimPrefix(string(raw), "\xEF\xBB\xBF")
	var out []string
	var data strings.Builder
	typ := ""
	for {
		i := strings.IndexAny(s, "\r\n")
		if i < 0 {
			return out // an unfinished line or event is discarded
		}
		line := s[:i]
		if strings.HasPrefix(s[i:], "\r\n") {
			i++
		}
		s = s[i+1:]
		if line == "" {
			d := strings.TrimSuffix(data.String(), "\n")
			if d != "" && (typ == "" || typ == "message") {
				out = append(out, d)
			}
			data.Reset()
			typ = ""
			continue
		}
		field, value, found := strings.Cut(line, ":")
		if found {
			value = strings.TrimPrefix(value, " ")
		}
		switch field {
		case "data":
			data.WriteString(value + "\n")
		case "event":
			typ = value
		}
	}
}

// referenceSettings checks data with encoding/json: one JSON object, valid
// UTF-8, whose "settings" (the last one, if repeated) is a non-empty object.
func referenceSettings(data string) (map[string]any, bool) {
	if !utf8.ValidString(data) || !json.Valid([]byte(data)) {
		return nil, false
	}
	var event map[string]json.RawMessage
	if json.Unmarshal([]byte(data), &event) != nil {
		return nil, false
	}
	raw, ok := event["settings"]
	if !ok {
		return nil, false
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var settings map[string]any
	if dec.Decode(&settings) != nil || len(settings) == 0 {
		return nil, false // not an object (null decodes to nil), or empty
	}
	return settings, true
}

// sameValue compares a value decoded by encoding/json with UseNumber to
// the client's; numbers must be exactly equal.
func sameValue(want, got any, path string) string {
	switch w := want.(type) {
	case json.Number:
		return sameNumber(w, got, path)
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok || len(g) != len(w) {
			return fmt.Sprintf("%s: got %T with %d keys, want an object with %d", path, got, len(g), len(w))
		}
		for k, v := range w {
			if msg := sameValue(v, g[k], path+"."+k); msg != "" {
				return msg
			}
		}
	case []any:
		g, ok := got.([]any)
		if !ok || len(g) != len(w) {
			return fmt.Sprintf("%s: got %T, want an array of %d", path, got, len(w))
		}
		for i := range w {
			if msg := sameValue(w[i], g[i], fmt.Sprintf("%s[%d]", path, i)); msg != "" {
				return msg
			}
		}
	default:
		if want != got {
			return fmt.Sprintf("%s: got %#v, want %#v", path, got, want)
		}
	}
	return ""
}

func sameNumber(want json.Number, got any, path string) string {
	lit := string(want)
	if !strings.ContainsAny(lit, ".eE") {
		w, _ := new(big.Int).SetString(lit, 10)
		g, ok := new(big.Int).SetString(fmt.Sprint(got), 10)
		if !ok || g.Cmp(w) != 0 {
			return fmt.Sprintf("%s: integer %s became %v (%T)", path, lit, got, got)
		}
		return ""
	}
	w, err := strconv.ParseFloat(lit, 64)
	if err != nil { // out of float64's range: the literal is kept
		if got != want {
			return fmt.Sprintf("%s: number %s became %v (%T), want the literal kept", path, lit, got, got)
		}
		return ""
	}
	if g, ok := got.(render.Float); !ok || float64(g) != w {
		return fmt.Sprintf("%s: number %s became %v (%T), want Float %v", path, lit, got, got, w)
	}
	return ""
}
