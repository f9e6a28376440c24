package agent

import (
	"io"
	"time"
)

// minBatch is the least a batchReader hands on of an unfinished event.
const minBatch = 64 << 10

// batchReader sits between the connection and go-sse's Read and hands on
// bytes in batches that end where an event ends, or that are at least as
// large as what was handed on of the current event so far.
//
// go-sse's Read scans its whole buffer again from the start after every
// read of the connection, to look for the end of an event. A server or
// proxy that trickles an event in small pieces therefore costs time
// quadratic in its size: 128 KiB read one byte at a time took 8 s of CPU,
// and max_event_bytes allows 8 MiB. Batches that at least double within
// an event bound Read's rescans to a few per event, so the work is linear
// again. This reader finds event ends itself in one pass, and on the way
// the retry: fields, which Read drops. (A retry: field right after a
// leading BOM is missed.)
//
// It belongs to the goroutine that reads the connection.
type batchReader struct {
	r     io.Reader
	buf   []byte // buf[start:] was read and not yet handed on
	start int
	err   error // from r, returned once everything was handed on
	empty int   // reads that returned nothing, in a row

	scanned   int  // buf[:scanned] has been looked at
	ends      int  // buf[start:ends] ends where an event ends; 0: nowhere yet
	since     int  // bytes handed on since the last event end
	lineStart bool // the byte before buf[scanned] ended a line, or none came yet
	inEvent   bool // a line that was not empty ended since the last event end
	afterCR   bool // that byte was a CR, so an LF now belongs to it
	droppedCR bool // that CR ended a dropped empty line: drop its LF too
	content   bool // a byte other than a line end has come

	retry   retryField
	onRetry func(time.Duration) // told of each valid retry: field; may be nil
}

// newBatchReader reads r in batches; onRetry, if not nil, is told of each
// retry: field, which go-sse's Read does not report.
func newBatchReader(r io.Reader, onRetry func(time.Duration)) *batchReader {
	return &batchReader{r: r, lineStart: true, onRetry: onRetry}
}

// Read waits for an event end or a large enough batch, then hands on as
// much of it as fits in p.
func (b *batchReader) Read(p []byte) (int, error) {
	for b.ends == 0 && len(b.buf)-b.start < max(minBatch, b.since) && b.err == nil {
		b.fill()
	}
	end := len(b.buf)
	if b.ends > 0 {
		end = b.ends
	}
	if end == b.start {
		return 0, b.err
	}
	n := copy(p, b.buf[b.start:end])
	b.start += n
	switch {
	case b.ends == 0:
		b.since += n
	case b.start == b.ends:
		b.since, b.ends = 0, 0
	}
	return n, nil
}

// fill reads once from r and looks for event ends in what came.
func (b *batchReader) fill() {
	if cap(b.buf)-len(b.buf) < 4<<10 {
		b.compact()
	}
	n, err := b.r.Read(b.buf[len(b.buf):cap(b.buf)])
	b.buf = b.buf[:len(b.buf)+n]
	b.err = err
	switch {
	case n > 0:
		b.empty = 0
	case err == nil:
		if b.empty++; b.empty >= 100 {
			b.err = io.ErrNoProgress
		}
	}
	b.scan()
}

// compact moves the bytes not handed on to the front of buf, into a larger
// buffer if they fill more than half of it.
func (b *batchReader) compact() {
	pending := b.buf[b.start:]
	dst := b.buf
	if 2*len(pending) > cap(b.buf) || cap(b.buf)-len(pending) < 4<<10 {
		dst = make([]byte, 0, 2*cap(b.buf)+32<<10)
	}
	dst = dst[:copy(dst[:len(pending)], pending)]
	b.scanned -= b.start
	if b.ends > 0 {
		b.ends -= b.start
	}
	b.buf, b.start = dst, 0
}

// scan moves over the new bytes by the WHATWG line rules (CRLF, LF or CR
// end a line) and notes where the last event ends: at an empty line that
// follows a line that was not. Further empty lines are dropped: WHATWG
// gives an empty line with no field before it no effect (the event buffers
// are already empty), and go-sse's Read would keep a run of them buffered,
// counted against max_event_bytes and rescanned. Empty lines before the
// first byte of content are kept, so that a BOM after them is still not
// taken for a leading one.
func (b *batchReader) scan() {
	w := b.scanned // filtered bytes are written back from here
	for r := b.scanned; r < len(b.buf); r++ {
		c, keep := b.buf[r], true
		switch {
		case c == '\n' && b.afterCR:
			b.afterCR = false // the second half of a CRLF
			keep = !b.droppedCR
		case c == '\n' || c == '\r':
			if ms, ok := b.retry.end(); ok && b.onRetry != nil {
				b.onRetry(time.Duration(ms) * time.Millisecond)
			}
			switch {
			case !b.lineStart:
				b.inEvent = true
			case b.inEvent:
				b.ends, b.inEvent = w+1, false
			default:
				keep = !b.content
			}
			b.lineStart, b.afterCR, b.droppedCR = true, c == '\r', !keep
		default:
			b.lineStart, b.afterCR, b.content = false, false, true
			b.retry.add(c)
		}
		if keep {
			b.buf[w] = c
			w++
		}
	}
	b.buf, b.scanned = b.buf[:w], w
}

// retryField follows one line, byte by byte, for a "retry:" field whose
// value is only ASCII digits, as WHATWG reads it. It keeps no line bytes.
type retryField struct {
	matched int   // bytes of "retry:" matched; -1: the line is another field
	after   int   // bytes after the colon
	digits  int   // digits among them
	value   int64 // their value in milliseconds, capped at a day
	bad     bool  // a byte after the colon that is not a digit
}

func (f *retryField) add(c byte) {
	const name = "retry:"
	switch {
	case f.matched < 0:
	case f.matched < len(name):
		if c == name[f.matched] {
			f.matched++
		} else {
			f.matched = -1
		}
	case c == ' ' && f.after == 0: // the one space allowed after the colon
		f.after++
	case c >= '0' && c <= '9':
		f.after++
		f.digits++
		f.value = min(f.value*10+int64(c-'0'), 24*60*60*1000)
	default:
		f.after++
		f.bad = true
	}
}

// end finishes the line; ok reports whether it was a valid retry field.
func (f *retryField) end() (ms int64, ok bool) {
	ms, ok = f.value, f.matched == len("retry:") && f.digits > 0 && !f.bad
	*f = retryField{}
	return ms, ok
}
