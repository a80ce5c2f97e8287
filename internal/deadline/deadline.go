// Package deadline keeps items ordered by the deadline each reports (a
// min-heap), so that the earliest deadline after some items moved costs
// O(log n) per item that moved, not a pass over every item. carpd's loop
// keeps its vhids in one: a backup of 255 vrids at 10 ms hears 25,500
// adverts a second, each of which moves one master-down deadline, and the
// pass over 255 machines was most of the cost of a handled advert.
package deadline

import (
	"container/heap"
	"time"
)

// Heap orders items by At(item), their deadline (the zero time: none; it
// sorts last). An item's deadline is trusted to move only when Touch says
// so; the top is checked against At before it is returned, and the heap is
// built afresh when the items changed (their number, or an item not yet
// known touched) or after Invalidate. The zero Heap is not usable: New.
type Heap[T comparable] struct {
	at    func(T) time.Time
	items []item[T]
	pos   map[T]int
	dirty []T
	stale bool // build afresh at the next look
}

// item is an item and its deadline as last looked at; none: it has none.
type item[T comparable] struct {
	v    T
	at   time.Time
	none bool
}

// New returns a Heap whose items report their deadline through at.
func New[T comparable](at func(T) time.Time) *Heap[T] { return &Heap[T]{at: at} }

// Touch notes that v's deadline may have moved.
func (h *Heap[T]) Touch(v T) { h.dirty = append(h.dirty, v) }

// Invalidate makes the next look build the heap afresh.
func (h *Heap[T]) Invalidate() { h.stale = true }

// Next returns the earliest deadline of vs, the items (zero: none).
func (h *Heap[T]) Next(vs []T) time.Time {
	if !h.stale && h.pos != nil && len(h.pos) == len(vs) {
		for _, v := range h.dirty {
			i, ok := h.pos[v]
			if !ok {
				h.stale = true
				break
			}
			h.set(i)
		}
	}
	clear(h.dirty)
	h.dirty = h.dirty[:0]
	if h.stale || h.pos == nil || len(h.pos) != len(vs) {
		h.build(vs)
	}
	for len(h.items) > 0 {
		top := h.items[0]
		dl := h.at(top.v)
		if dl.IsZero() == top.none && (top.none || dl.Equal(top.at)) {
			if top.none {
				return time.Time{}
			}
			return top.at
		}
		h.set(0) // moved without a touch: later, never earlier
	}
	return time.Time{}
}

// Top returns the item of the earliest deadline as Next last returned it;
// false: none.
func (h *Heap[T]) Top() (T, bool) {
	if len(h.items) == 0 || h.items[0].none {
		var zero T
		return zero, false
	}
	return h.items[0].v, true
}

// set reads item i's deadline again and restores the order.
func (h *Heap[T]) set(i int) {
	it := &h.items[i]
	dl := h.at(it.v)
	it.at, it.none = dl, dl.IsZero()
	heap.Fix((*order[T])(h), i)
}

func (h *Heap[T]) build(vs []T) {
	h.stale = false
	h.items = h.items[:0]
	if h.pos == nil {
		h.pos = make(map[T]int, len(vs))
	}
	clear(h.pos)
	for i, v := range vs {
		dl := h.at(v)
		h.items = append(h.items, item[T]{v: v, at: dl, none: dl.IsZero()})
		h.pos[v] = i
	}
	heap.Init((*order[T])(h))
}

// order is a Heap as a heap.Interface (Fix and Init only: no Push or Pop,
// which would allocate).
type order[T comparable] Heap[T]

func (h *order[T]) Len() int { return len(h.items) }

func (h *order[T]) Less(i, j int) bool {
	a, b := &h.items[i], &h.items[j]
	if a.none || b.none {
		return !a.none && b.none
	}
	return a.at.Before(b.at)
}

func (h *order[T]) Swap(i, j int) {
	h.items[i], h.items[j] = h.items[j], h.items[i]
	h.pos[h.items[i].v] = i
	h.pos[h.items[j].v] = j
}

// Push and Pop are never called (heap.Fix and heap.Init do not).
func (h *order[T]) Push(any) {}
func (h *order[T]) Pop() any { return nil }
