package agent

import (
	"context"
	"sync"
)

// latest is a newest-wins slot: put never blocks and replaces a value not
// yet taken; wait takes the newest. It is safe for concurrent use.
type latest[T any] struct {
	mu      sync.Mutex
	value   T
	full    bool
	closed  bool
	puts    uint64        // how many values were ever put
	changed chan struct{} // has a token when full or closed
}

func newLatest[T any]() *latest[T] {
	return &latest[T]{changed: make(chan struct{}, 1)}
}

// put stores v, replacing any value not yet taken.
func (l *latest[T]) put(v T) {
	l.mu.Lock()
	l.value, l.full = v, true
	l.puts++
	l.mu.Unlock()
	l.signal()
}

// version counts the values put so far, for putIfUnchanged.
func (l *latest[T]) version() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.puts
}

// putIfUnchanged stores v only if nothing was put since version was read:
// a value fetched slowly must not replace a newer one that came meanwhile.
func (l *latest[T]) putIfUnchanged(version uint64, v T) bool {
	l.mu.Lock()
	if l.puts != version {
		l.mu.Unlock()
		return false
	}
	l.value, l.full = v, true
	l.puts++
	l.mu.Unlock()
	l.signal()
	return true
}

// close wakes wait for good; a value already put is still delivered first.
func (l *latest[T]) close() {
	l.mu.Lock()
	l.closed = true
	l.mu.Unlock()
	l.signal()
}

func (l *latest[T]) signal() {
	select {
	case l.changed <- struct{}{}:
	default:
	}
}

// take returns the pending value, if any, without waiting.
func (l *latest[T]) take() (T, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	v, ok := l.value, l.full
	var zero T
	l.value, l.full = zero, false
	return v, ok
}

// wait blocks until a value is pending and takes it. It reports false when
// ctx ends or the slot is closed with nothing pending.
func (l *latest[T]) wait(ctx context.Context) (T, bool) {
	for {
		if v, ok := l.take(); ok {
			return v, true
		}
		l.mu.Lock()
		closed := l.closed
		l.mu.Unlock()
		if closed {
			var zero T
			return zero, false
		}
		select {
		case <-l.changed:
		case <-ctx.Done():
			var zero T
			return zero, false
		}
	}
}

// ready is signalled when a value may be pending; follow it with take.
func (l *latest[T]) ready() <-chan struct{} { return l.changed }
