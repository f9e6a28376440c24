package agent

import (
	"io"
	"time"
)

// idleReader calls onIdle when no byte has been read for d. Any bytes,
// keep-alive comments included, reset the clock.
type idleReader struct {
	r     io.Reader
	d     time.Duration
	timer *time.Timer
}

func newIdleReader(r io.Reader, d time.Duration, onIdle func()) *idleReader {
	return &idleReader{r: r, d: d, timer: time.AfterFunc(d, onIdle)}
}

func (ir *idleReader) Read(p []byte) (int, error) {
	n, err := ir.r.Read(p)
	if n > 0 {
		ir.timer.Reset(ir.d)
	}
	return n, err
}

// stop ends the clock; call it when done reading.
func (ir *idleReader) stop() { ir.timer.Stop() }
