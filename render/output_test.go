package render

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"strings"
	"testing"
)

// The output must hold exactly what was written, whatever the sizes of
// the writes and of the first block, and never more than max.
func TestOutputKeepsWhatIsWritten(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 7))
	for trial := range 100 {
		w := &output{max: MaxOutput, first: r.IntN(3 * maxBlock)}
		var want bytes.Buffer
		for range r.IntN(60) {
			p := make([]byte, r.IntN(3*maxBlock/2))
			seed := byte(r.IntN(256))
			for i := range p {
				p[i] = seed + byte(i*7)
			}
			if n, err := w.Write(p); n != len(p) || err != nil {
				t.Fatalf("trial %d: Write(%d bytes) = %d, %v", trial, len(p), n, err)
			}
			want.Write(p)
		}
		if got := w.bytes(); !bytes.Equal(got, want.Bytes()) {
			t.Fatalf("trial %d: bytes() differs from what was written (%d bytes, want %d)",
				trial, len(got), want.Len())
		}
		if w.n != want.Len() {
			t.Fatalf("trial %d: n = %d, want %d", trial, w.n, want.Len())
		}
	}
}

// A large output is joined into a slice of exactly its length: no
// doubling buffer's spare half is handed on to the install.
func TestOutputJoinsToItsExactSize(t *testing.T) {
	w := &output{max: MaxOutput}
	chunk := bytes.Repeat([]byte("x"), 1000)
	for range 1000 {
		w.Write(chunk)
	}
	b := w.bytes()
	if len(b) != 1_000_000 || cap(b) != len(b) {
		t.Fatalf("len %d, cap %d: want both 1000000", len(b), cap(b))
	}
	if len(w.blocks) < 2 {
		t.Fatalf("%d blocks: the test meant to join several", len(w.blocks))
	}
}

func TestOutputRefusesMoreThanMax(t *testing.T) {
	w := &output{max: 10}
	if _, err := w.Write([]byte("0123456789")); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte("x")); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("write past max: %v, want ErrTooLarge", err)
	}
	if got := string(w.bytes()); got != "0123456789" {
		t.Fatalf("after the refused write: %q", got)
	}
}

// "<no value>" is found wherever it falls, also split between blocks.
func TestOutputContainsAcrossBlocks(t *testing.T) {
	sep := string(noValue)
	for at := minBlock - len(sep) - 1; at <= minBlock+1; at++ {
		w := &output{max: MaxOutput}
		w.Write([]byte(strings.Repeat("a", at)))
		w.Write([]byte(sep))
		w.Write([]byte(strings.Repeat("b", 100)))
		if !w.contains(noValue) {
			t.Errorf("%q at offset %d (blocks of %d) not found", sep, at, minBlock)
		}
	}
	w := &output{max: MaxOutput}
	w.Write([]byte(strings.Repeat("<no valu", 1000)))
	if w.contains(noValue) {
		t.Error("found in an output that does not hold it")
	}
}

// A nil printed where the first block ends still fails the render: the
// check for "<no value>" sees across blocks.
func TestRenderFindsANilAtABlockBoundary(t *testing.T) {
	for pad := minBlock - 12; pad <= minBlock; pad++ {
		tmpl, err := Parse("edge.tmpl", strings.Repeat("p", pad)+"{{.Settings.gone}} tail")
		if err != nil {
			t.Fatal(err)
		}
		_, err = tmpl.Render(Data{Settings: map[string]any{"gone": nil}})
		if !errors.Is(err, ErrMissingValue) {
			t.Fatalf("pad %d: err = %v, want ErrMissingValue", pad, err)
		}
	}
}

// The second render of a template starts with a first block the size of
// the first output: a small file is then one block, not copied.
func TestRenderSizesItsFirstBlockFromTheLast(t *testing.T) {
	tmpl, err := Parse("sized.tmpl", "{{range $k, $v := .Settings}}{{$k}}={{$v}}\n{{end}}")
	if err != nil {
		t.Fatal(err)
	}
	data := Data{Settings: benchSettings(300)} // some 9 KB: more than minBlock
	first, err := tmpl.Render(data)
	if err != nil {
		t.Fatal(err)
	}
	second, err := tmpl.Render(data)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(first, second) {
		t.Fatal("two renders of the same data differ")
	}
	if cap(second) != len(second) {
		t.Errorf("second render: cap %d for %d bytes, want one block of exactly the last size",
			cap(second), len(second))
	}
}
