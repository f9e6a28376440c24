package agent

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sseconfd/sseconfd/render"
)

func TestDecodeEventNumbersExact(t *testing.T) {
	data := `{"settings":{"million":1000000,"id":12345678901234567890,"huge":123456789012345678901234567890,` +
		`"neg":-9223372036854775808,"ratio":0.1,"big":1e21,"small":2.5e-7,"nested":{"list":[1,2.50,3]}}}`
	snap, err := DecodeEvent([]byte(data))
	if err != nil {
		t.Fatalf("DecodeEvent: %v", err)
	}
	want := map[string]string{
		"million": "1000000",
		"id":      "12345678901234567890",
		"huge":    "123456789012345678901234567890",
		"neg":     "-9223372036854775808",
		"ratio":   "0.1",
		"big":     "1000000000000000000000",
		"small":   "0.00000025",
	}
	for k, w := range want {
		if got := fmt.Sprint(snap.Settings[k]); got != w {
			t.Errorf("settings[%q] prints %s, want %s", k, got, w)
		}
	}
	list := snap.Settings["nested"].(map[string]any)["list"].([]any)
	if list[0] != int64(1) || list[1] != render.Float(2.5) {
		t.Errorf("nested list = %#v, want int64 1 and Float 2.5", list)
	}
}

func TestDecodeEventErrorsNeverQuoteValues(t *testing.T) {
	const secret = "s3cr3t-VALUE"
	cases := []struct{ name, data, want string }{
		{"truncated", `{"settings":{"pw":"` + secret, "invalid JSON: unexpected end of input at offset"},
		{"bad token", `{"settings":{"pw":` + secret + `}}`, "invalid JSON at offset 19"},
		{"bad escape", `{"settings":{"pw":"\q` + secret + `"}}`, "invalid JSON at offset"},
		{"invalid UTF-8", `{"settings":{"pw":"` + secret + "\xc3\x28" + `"}}`, "invalid UTF-8 at offset 31"},
		{"no settings", `{"config":{"pw":"` + secret + `"}}`, `event has no "settings" key (keys: "config")`},
		{"settings a number", `{"settings":42}`, `event's "settings" is a JSON number, want an object`},
		{"settings null", `{"settings":null}`, `event's "settings" is a JSON null, want an object`},
		{"array", `["` + secret + `"]`, "event data is a JSON array"},
		{"trailing data", `{"settings":{}}{"pw":"` + secret + `"}`, "invalid JSON: data after the value"},
		{"empty", ``, "invalid JSON"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := DecodeEvent([]byte(tc.data))
			if err == nil {
				t.Fatalf("DecodeEvent(%q) = nil error, want %q", tc.data, tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("DecodeEvent(%q) = %q, want it to contain %q", tc.data, err, tc.want)
			}
			if strings.Contains(err.Error(), "s3cr3t") {
				t.Errorf("DecodeEvent(%q) error quotes the value: %q", tc.data, err)
			}
		})
	}
}

func TestDecodeEventRepeatedKeys(t *testing.T) {
	cases := []struct {
		name, data string
		dups       []string
		port       any
	}{
		{"none", `{"settings":{"port":1,"a":{"port":2}}}`, nil, int64(1)},
		{"top level", `{"settings":{"port":1,"port":2}}`, []string{"settings.port"}, int64(2)},
		{"three times", `{"settings":{"port":1,"port":2,"port":3}}`,
			[]string{"settings.port", "settings.port"}, int64(3)},
		{"in an array", `{"settings":{"port":1,"l":[{"x":1},{"x":1,"x":2}]}}`,
			[]string{"settings.l[1].x"}, int64(1)},
		{"colon inside strings", `{"settings":{"port":1,"u":"a:b\":c","k:":"v"}}`, nil, int64(1)},
		{"wrapper repeated", `{"settings":{"port":1},"settings":{"port":5}}`, []string{"settings"}, int64(5)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			snap, dups, err := decodeEvent([]byte(tc.data))
			if err != nil {
				t.Fatalf("decodeEvent(%s): %v", tc.data, err)
			}
			if fmt.Sprint(dups) != fmt.Sprint(tc.dups) {
				t.Errorf("decodeEvent(%s) repeated keys = %q, want %q", tc.data, dups, tc.dups)
			}
			if snap.Settings["port"] != tc.port {
				t.Errorf("decodeEvent(%s) port = %v, want %v (the last one)", tc.data, snap.Settings["port"], tc.port)
			}
		})
	}
}

func TestSnapshotHashIgnoresKeyOrder(t *testing.T) {
	a, err := DecodeEvent([]byte(`{"settings":{"a":1,"b":{"c":2,"d":3}}}`))
	if err != nil {
		t.Fatal(err)
	}
	b, err := DecodeEvent([]byte(`{"settings":{"b":{"d":3,"c":2},"a":1}}`))
	if err != nil {
		t.Fatal(err)
	}
	if a.Hash != b.Hash {
		t.Errorf("hashes differ for the same settings in another key order: %s, %s", a.ShortHash(), b.ShortHash())
	}
	c, _ := DecodeEvent([]byte(`{"settings":{"a":1,"b":{"c":2,"d":4}}}`))
	if c.Hash == a.Hash {
		t.Errorf("hash unchanged after a nested value changed")
	}
}

// A snapshot from the agent's stream is handed over before it is hashed;
// resolving it gives the hash DecodeEvent gives, the agent tells repeats
// from news without waiting for it, and Apply reports and caches it.
func TestDeferredHash(t *testing.T) {
	data := []byte(`{"settings": {"b": 2, "a": "x", "f": 1.0}}`)
	want, err := DecodeEvent(data)
	if err != nil {
		t.Fatal(err)
	}
	deferred, _, err := decodeEventDeferred(data)
	if err != nil {
		t.Fatal(err)
	}
	if deferred.Hash != "" {
		t.Fatalf("deferred snapshot has hash %q before resolve", deferred.Hash)
	}
	again, _, _ := decodeEventDeferred([]byte(`{"settings": {"a": "x", "f": 1.0, "b": 2}}`))
	other, _, _ := decodeEventDeferred([]byte(`{"settings": {"a": "x", "f": 1, "b": 2}}`))

	dir := t.TempDir()
	cache := filepath.Join(dir, "cache.json")
	a, _ := newTestAgent(t, dir, baseConfig("http://127.0.0.1:1")+
		fmt.Sprintf("[cache]\npath = %q\n", cache)+templateBlock(t, dir, "a.conf", "a={{.Settings.a}}\n", ""))
	for i, c := range []struct {
		s    Snapshot
		news bool
	}{
		{deferred, true},
		{again, false}, // the same settings, keys in another order
		{other, true},  // 1 is not 1.0
		{want, true},   // hashed, and differs from other
		{want, false},
	} {
		if got := a.news(c.s); got != c.news {
			t.Errorf("news, step %d: %v, want %v", i, got, c.news)
		}
	}
	res, err := a.Apply(context.Background(), deferred)
	if err != nil {
		t.Fatal(err)
	}
	if res.Hash != want.Hash {
		t.Errorf("Apply: hash %q, want %q", res.Hash, want.Hash)
	}
	cached, err := ReadCache(cache, "dev")
	if err != nil || cached.Hash != want.Hash {
		t.Errorf("cache: hash %q (%v), want %q", cached.Hash, err, want.Hash)
	}
	if resolved, err := deferred.resolve(); err != nil || resolved.Hash != want.Hash {
		t.Errorf("resolve: %q, %v; want %q", resolved.Hash, err, want.Hash)
	}
}
