package agent

import "time"

// rejectLog thins the warnings for rejected events: the first of a run is
// logged, then at most one per period, with the number not logged since.
// A broken server or proxy that sends garbage at line rate stays
// connected (nothing slows it down), and 40,000 bad events were 40,000
// journal lines in 0.2 s. The metrics still count every rejection. It
// belongs to connectLoop's goroutine.
type rejectLog struct {
	last    time.Time // when a rejection was last logged at warn
	skipped int       // rejections since then logged at debug only
}

// allow reports whether the rejection at now is logged at warn, and how
// many were not since the last one that was.
func (r *rejectLog) allow(now time.Time, every time.Duration) (skipped int, ok bool) {
	if !r.last.IsZero() && now.Sub(r.last) < every {
		r.skipped++
		return 0, false
	}
	skipped, r.last, r.skipped = r.skipped, now, 0
	return skipped, true
}
