// Package stream fans the daemon's events out to the readers of the event
// stream (carpctl events, the control API): each reader has a buffer of its
// own, a reader that falls behind is dropped rather than waited for, and
// the readers are capped. A Hub is used from one goroutine (the daemon's
// loop); a Sub is read from its reader's.
package stream

import (
	"errors"
	"fmt"
	"sync/atomic"

	"github.com/carpd/carpd/internal/api"
)

// Buffer is how many events wait for a slow reader before it is dropped.
const Buffer = 1024

// MaxSubs is how many readers a Hub serves at once (each may hold Buffer
// events).
const MaxSubs = 64

// ErrTooManyReaders is returned by Add when MaxSubs readers are reading
// already.
var ErrTooManyReaders = errors.New("too many event readers")

// Sub is one reader of the event stream.
type Sub struct {
	// C delivers the events; it is closed when the reader fell behind
	// (Lagged) or the stream ended.
	C      <-chan api.Event
	c      chan api.Event
	lagged atomic.Bool
}

// Lagged reports, once C is closed, whether the reader was dropped for
// falling behind.
func (s *Sub) Lagged() bool { return s.lagged.Load() }

// Hub is the readers of one event stream. The zero Hub has none.
type Hub struct {
	subs map[*Sub]struct{}
}

// Add starts a reader whose stream begins with first (a snapshot of the
// state), then every event Sent. Beyond MaxSubs readers it fails with
// ErrTooManyReaders.
func (h *Hub) Add(first []api.Event) (*Sub, error) {
	if len(h.subs) >= MaxSubs {
		return nil, fmt.Errorf("%w: %d are reading, the most carpd serves; end one (carpctl events) first", ErrTooManyReaders, len(h.subs))
	}
	s := &Sub{c: make(chan api.Event, Buffer+len(first))}
	s.C = s.c
	for _, e := range first {
		s.c <- e
	}
	if h.subs == nil {
		h.subs = map[*Sub]struct{}{}
	}
	h.subs[s] = struct{}{}
	return s, nil
}

// Remove ends s's stream, if it is still one of h's.
func (h *Hub) Remove(s *Sub) {
	if _, ok := h.subs[s]; ok {
		delete(h.subs, s)
		close(s.c)
	}
}

// Send hands e to every reader, dropping the ones that fell behind. It
// never waits for a reader.
func (h *Hub) Send(e api.Event) {
	for s := range h.subs {
		select {
		case s.c <- e:
		default:
			s.lagged.Store(true)
			delete(h.subs, s)
			close(s.c)
		}
	}
}

// Close ends every stream.
func (h *Hub) Close() {
	for s := range h.subs {
		h.Remove(s)
	}
}
