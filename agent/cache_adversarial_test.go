package agent

import (
	"fmt"
	"path/filepath"
	"testing"

	"github.com/sseconfd/sseconfd/render"
)

// TestCacheRendersLikeTheStream saves snapshots with awkward numbers to
// the cache and reads them back: a restart while the server is down must
// render exactly what the stream's snapshot rendered, and keep its hash.
// A float such as 1.0 used to come back from the cache as the integer 1,
// so "printf %.2f" wrote "%!f(int64=1)" into the file and "eq 1.0" failed.
func TestCacheRendersLikeTheStream(t *testing.T) {
	tmpl, err := render.Parse("t", `{{ range $k, $v := .Settings }}{{ $k }}={{ $v }} {{ printf "%T" $v }}{{ if eq (kindOf $v) "float64" }} {{ printf "%.2f" $v }} {{ eq $v 1.0 }}{{ end }}
{{ end }}`)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "cache.json")
	for _, n := range []string{"1.0", "-0.0", "1e21", "2.5",
		"1e400", "-0", "100", "12345678901234567890", "0.1e-400"} {
		t.Run(n, func(t *testing.T) {
			snap, err := DecodeEvent([]byte(fmt.Sprintf(`{"settings":{"n":%s}}`, n)))
			if err != nil {
				t.Fatal(err)
			}
			if err := WriteCache(path, "dev", snap); err != nil {
				t.Fatal(err)
			}
			cached, err := ReadCache(path, "dev")
			if err != nil {
				t.Fatalf("ReadCache after WriteCache of %s: %v", n, err)
			}
			want, err1 := tmpl.Render(render.Data{Settings: snap.Settings})
			got, err2 := tmpl.Render(render.Data{Settings: cached.Settings})
			if string(got) != string(want) || (err1 == nil) != (err2 == nil) {
				t.Errorf("n = %s: from the cache %q, %v; from the stream %q, %v", n, got, err2, want, err1)
			}
			if cached.Hash != snap.Hash {
				t.Errorf("n = %s: hash from the cache %s, from the stream %s", n, cached.ShortHash(), snap.ShortHash())
			}
		})
	}
}
