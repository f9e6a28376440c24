package agent

// maxSentID is the longest last event ID sent back as Last-Event-ID.
const maxSentID = 1 << 10

// sendableID reports whether a last event ID can be sent back as the
// Last-Event-ID header. WHATWG keeps any ID without NUL, but a header
// value may not hold control characters: Go's client refuses the whole
// request, so one such id: from the server would fail every reconnect.
// Nor is an ID longer than maxSentID sent: servers answer a header that
// large with 431, and would then refuse every reconnect. An ID that cannot
// be sent is not sent; the server then sends the current settings, as it
// does for a new client.
func sendableID(id string) bool {
	if id == "" || len(id) > maxSentID {
		return false
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; (c < ' ' && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
}
