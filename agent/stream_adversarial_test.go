package agent

import (
	"compress/gzip"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"
)

// TestStreamHostileFraming sends events framed in ways a naive client
// gets wrong, each over a real connection with a flush (a TCP write)
// between the pieces, and requires exactly the snapshots of the message
// events, in order. The stream stays open afterwards, so nothing may wait
// for the end of the stream to dispatch an event.
func TestStreamHostileFraming(t *testing.T) {
	cases := []struct {
		name   string
		pieces []string
		want   []string // the "v" setting of each snapshot
	}{
		{"CR at the end of one write, LF at the start of the next",
			[]string{"data: {\"settings\":{\"v\":\"a\"}}\r", "\n\r", "\n"}, []string{"a"}},
		{"CR CR across writes is two line ends",
			[]string{"data: {\"settings\":{\"v\":\"a\"}}\r", "\r"}, []string{"a"}},
		{"CRLF stream, event ends the write",
			[]string{"data: {\"settings\":{\"v\":\"a\"}}\r\n\r\n"}, []string{"a"}},
		{"CR only, then an event split inside its data",
			[]string{"data: {\"settings\":{\"v\":\"a\"}}\r\r", "data: {\"settings\":",
				"{\"v\":\"b\"}}\r\r"}, []string{"a", "b"}},
		{"data split over lines in separate writes",
			[]string{"data: {\"settings\":\r", "\ndata: {\"v\":\"a\"}}\r\n", "\r\n"}, []string{"a"}},
		{"field named \"data \" is ignored",
			[]string{"data : {\"settings\":{\"v\":\"x\"}}\n\n",
				"data: {\"settings\":{\"v\":\"a\"}}\n\n"}, []string{"a"}},
		{"empty event: field is the message type",
			[]string{"event:\ndata: {\"settings\":{\"v\":\"a\"}}\n\n",
				"event: message\ndata: {\"settings\":{\"v\":\"b\"}}\n\n"}, []string{"a", "b"}},
		{"other type then a message: the type does not stick",
			[]string{"event: update\ndata: {\"settings\":{\"v\":\"x\"}}\n\n",
				"data: {\"settings\":{\"v\":\"a\"}}\n\n"}, []string{"a"}},
		{"a second BOM is data, not stripped",
			[]string{"\xEF\xBB\xBFdata: {\"settings\":{\"v\":\"a\"}}\n\n",
				"\xEF\xBB\xBFdata: {\"settings\":{\"v\":\"x\"}}\n\n",
				"data: {\"settings\":{\"v\":\"b\"}}\n\n"}, []string{"a", "b"}},
		{"data: without the space",
			[]string{"data:{\"settings\":{\"v\":\"a\"}}\n\n"}, []string{"a"}},
		{"NUL in id is ignored, the event is not",
			[]string{"id: 1\x002\ndata: {\"settings\":{\"v\":\"a\"}}\n\n"}, []string{"a"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			url := sseServer(t, func(w http.ResponseWriter, r *http.Request, n int) {
				for _, p := range tc.pieces {
					writeStream(w, p)
					time.Sleep(20 * time.Millisecond)
				}
				holdOpen(t, r)
			})
			s, _ := fastStream(url)
			run := startStream(t, s, nil)
			eventually(t, 10*time.Second, run.hasSnapshots(len(tc.want)))
			time.Sleep(50 * time.Millisecond) // a wrong extra snapshot would show now
			var got []string
			for _, snap := range run.snapshots() {
				got = append(got, fmt.Sprint(snap.Settings["v"]))
			}
			if strings.Join(got, ",") != strings.Join(tc.want, ",") {
				t.Errorf("pieces %q: snapshots %v, want %v", tc.pieces, got, tc.want)
			}
		})
	}
}

// TestStreamEventAtTheSizeLimit sends an event of exactly max_event_bytes
// (counting the whole event as sent: field names, line ends and the blank
// line) and then one a byte larger: the first is applied, the second
// refused with the limit named.
func TestStreamEventAtTheSizeLimit(t *testing.T) {
	const limit = 256 << 10
	frame := func(size int, v string) string {
		head := "data: {\"settings\":{\"v\":\"" + v + "\",\"pad\":\""
		tail := "\"}}\n\n"
		return head + strings.Repeat("p", size-len(head)-len(tail)) + tail
	}
	url := sseServer(t, func(w http.ResponseWriter, r *http.Request, n int) {
		if n == 1 {
			writeStream(w, frame(limit, "exact"))
			writeStream(w, frame(limit+1, "over"))
		}
		holdOpen(t, r)
	})
	s, _ := fastStream(url)
	s.Source.MaxEventBytes = limit
	run := startStream(t, s, nil)
	eventually(t, 10*time.Second, run.hasFailures(1))
	snaps := run.snapshots()
	if len(snaps) != 1 || snaps[0].Settings["v"] != "exact" {
		t.Errorf("snapshots %d, want the one event of exactly %d bytes", len(snaps), limit)
	}
	if err := run.failures()[0].Err; err == nil || !strings.Contains(err.Error(), "max_event_bytes") {
		t.Errorf("event of %d bytes: failure %v, want the limit named", limit+1, err)
	}
}

// TestStreamGzipAndCharset serves the stream gzip-encoded, flushed after
// each event, with a charset parameter and upper-case media type: both
// events must arrive while the stream stays open.
func TestStreamGzipAndCharset(t *testing.T) {
	url := sseServer(t, func(w http.ResponseWriter, r *http.Request, n int) {
		if !strings.Contains(r.Header.Get("Accept-Encoding"), "gzip") {
			http.Error(w, "want gzip", http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "Text/Event-Stream; charset=UTF-8")
		w.Header().Set("Content-Encoding", "gzip")
		zw := gzip.NewWriter(w)
		for _, v := range []string{"a", "b"} {
			fmt.Fprintf(zw, "data: {\"settings\":{\"v\":%q}}\n\n", v)
			zw.Flush()
			w.(http.Flusher).Flush()
			time.Sleep(20 * time.Millisecond)
		}
		holdOpen(t, r)
	})
	s, _ := fastStream(url)
	run := startStream(t, s, nil)
	eventually(t, 10*time.Second, run.hasSnapshots(2))
	if f := run.failures(); len(f) > 0 {
		t.Errorf("gzip stream failed: %v", f[0].Err)
	}
}

// TestStreamTrickleKeepsTheConnection sends one event a byte at a time,
// each byte well inside idle_timeout but the whole event far beyond it:
// bytes flowing must keep the connection.
func TestStreamTrickleKeepsTheConnection(t *testing.T) {
	raw := "data: {\"settings\":{\"v\":\"slow\"}}\n\n"
	url := sseServer(t, func(w http.ResponseWriter, r *http.Request, n int) {
		for i := range len(raw) {
			writeStream(w, raw[i:i+1])
			time.Sleep(25 * time.Millisecond)
		}
		holdOpen(t, r)
	})
	s, _ := fastStream(url)
	s.Source.IdleTimeout.Duration = 200 * time.Millisecond // the event takes ~900 ms
	run := startStream(t, s, nil)
	eventually(t, 10*time.Second, run.hasSnapshots(1))
	if f := run.failures(); len(f) > 0 {
		t.Errorf("trickled event: connection dropped: %v", f[0].Err)
	}
}

// TestStreamCloseAfterHeadersBacksOff is a server that answers 200 with
// the right type and closes at once, again and again: the attempts must
// back off (count them), not loop.
func TestStreamCloseAfterHeadersBacksOff(t *testing.T) {
	var attempts atomic.Int64
	url := sseServer(t, func(w http.ResponseWriter, r *http.Request, n int) {
		attempts.Add(1)
		writeStream(w, ": hello\n\n")
	})
	s, _ := fastStream(url)
	s.Backoff.Min.Duration, s.Backoff.Max.Duration = 50*time.Millisecond, 400*time.Millisecond
	noJitter := false // the delays are then exact: 50, 100, 200, 400, 400 ms
	s.Backoff.Jitter = &noJitter
	run := startStream(t, s, nil)
	eventually(t, 10*time.Second, run.hasFailures(6))
	fails := run.failures()
	for i := 1; i < len(fails); i++ {
		if fails[i].Failures != fails[i-1].Failures+1 {
			t.Fatalf("failure %d counted %d after %d: the backoff was reset", i, fails[i].Failures,
				fails[i-1].Failures)
		}
	}
	if last := fails[len(fails)-1].RetryIn; last < 200*time.Millisecond {
		t.Errorf("after %d failures the delay is %s, want it grown towards the 400ms max", len(fails), last)
	}
}

// TestDecodeHostileJSON feeds payloads meant to crash or fool a decoder:
// the deepest nesting, huge and tiny numbers, -0, duplicate keys. None
// may panic; each is either refused or decoded with its value kept.
func TestDecodeHostileJSON(t *testing.T) {
	deep := strings.Repeat("[", 100000) + strings.Repeat("]", 100000)
	cases := []struct {
		name    string
		data    string
		wantErr bool
		want    string // fmt.Sprint of settings["n"]
	}{
		{"100k levels of nesting", `{"settings":{"n":` + deep + `}}`, true, ""},
		{"1e400 keeps its text", `{"settings":{"n":1e400}}`, false, "1e400"},
		{"-0", `{"settings":{"n":-0}}`, false, "0"},
		{"20 digits", `{"settings":{"n":12345678901234567890123}}`, false, "12345678901234567890123"},
		{"duplicate key, last wins", `{"settings":{"n":1,"n":2}}`, false, "2"},
		{"settings twice, last wins", `{"settings":{"n":1},"settings":{"n":3}}`, false, "3"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			snap, _, err := decodeEvent([]byte(tc.data))
			if (err != nil) != tc.wantErr {
				t.Fatalf("decodeEvent: error %v, want error %v", err, tc.wantErr)
			}
			if err == nil && fmt.Sprint(snap.Settings["n"]) != tc.want {
				t.Errorf("decodeEvent: n = %v, want %s", snap.Settings["n"], tc.want)
			}
		})
	}
}

// TestStreamRejectedFloodIsNotALogFlood sends thousands of invalid events
// on one open connection, as a broken proxy or server might at line rate.
// The connection stays up (no backoff slows it), so each rejection logged
// at warn is a journal line: 40,000 bad events made 40,000 lines in 0.2 s.
// Like an outage, a run of rejections is logged first, then now and then
// with a count; every rejection still reaches the metrics.
func TestStreamRejectedFloodIsNotALogFlood(t *testing.T) {
	const bad = 5000
	url := sseServer(t, func(w http.ResponseWriter, r *http.Request, n int) {
		writeStream(w, strings.Repeat("data: {}\n\ndata: x\n\n", bad/2)+event(`{"v":1}`))
		holdOpen(t, r)
	})
	s, logs := fastStream(url)
	run := startStream(t, s, nil)
	eventually(t, 10*time.Second, run.hasSnapshots(1))
	warned := 0
	for _, e := range logs.FilterMessage("event rejected").All() {
		if e.Level == zap.WarnLevel {
			warned++
		}
	}
	if warned == 0 || warned > 20 {
		t.Errorf("%d invalid events logged %d \"event rejected\" lines at warn, want 1 to 20", bad, warned)
	}
	rejected := 0
	for _, ev := range run.streamEvents() {
		if ev.Rejected != "" {
			rejected++
		}
	}
	if rejected != bad {
		t.Errorf("%d invalid events reported %d rejections to Events (metrics), want all", bad, rejected)
	}
}

// TestStreamBlankLinesAreNotOneHugeEvent sends more blank lines than
// max_event_bytes between two events, as a proxy that pads or keeps the
// connection alive with bare line ends would over time. Blank lines
// dispatch nothing and must not add up to an "event": go-sse's scanner
// keeps a run of them buffered until a line with content comes, so the
// run counts against the limit and the connection is dropped.
func TestStreamBlankLinesAreNotOneHugeEvent(t *testing.T) {
	url := sseServer(t, func(w http.ResponseWriter, r *http.Request, n int) {
		writeStream(w, event(`{"v":0}`))
		for range 24 {
			writeStream(w, strings.Repeat("\n", 64<<10))
		}
		writeStream(w, event(`{"v":1}`))
		holdOpen(t, r)
	})
	s, _ := fastStream(url)
	s.Source.MaxEventBytes = 1 << 20
	run := startStream(t, s, nil)
	eventually(t, 10*time.Second, func() string {
		if f := run.failures(); len(f) > 0 {
			t.Fatalf("1.5 MiB of blank lines with a 1 MiB limit: connection dropped: %v", f[0].Err)
		}
		for _, snap := range run.snapshots() {
			if fmt.Sprint(snap.Settings["v"]) == "1" {
				return ""
			}
		}
		return "the event after the blank lines has not arrived"
	})
}

// TestStreamControlCharacterInIDDoesNotCutTheAgentOff sends an id: with a
// control character, which WHATWG keeps in the last event ID (only NUL is
// refused) but which no HTTP header may carry. Go's client then refused
// every reconnect ("invalid header field value for Last-Event-Id") before
// it reached the server: one event cut the agent off until restarted.
func TestStreamControlCharacterInIDDoesNotCutTheAgentOff(t *testing.T) {
	url := sseServer(t, func(w http.ResponseWriter, r *http.Request, n int) {
		if n == 1 {
			writeStream(w, "id: a\x01b\x7f\n"+event(`{"v":1}`))
			return // the connection drops after the event
		}
		writeStream(w, event(`{"v":2}`))
		holdOpen(t, r)
	})
	s, _ := fastStream(url)
	run := startStream(t, s, nil)
	eventually(t, 10*time.Second, run.hasSnapshots(2))
}

func TestSendableID(t *testing.T) {
	tests := []struct {
		id   string
		want bool
	}{
		{"", false}, {"42", true}, {"a\tb", true}, {"ünï", true},
		{"a\x01b", false}, {"a\x7fb", false}, {"a\rb", false},
		{strings.Repeat("x", maxSentID), true}, {strings.Repeat("x", maxSentID+1), false},
	}
	for _, tc := range tests {
		if got := sendableID(tc.id); got != tc.want {
			t.Errorf("sendableID(%.20q) = %v, want %v", tc.id, got, tc.want)
		}
	}
}
