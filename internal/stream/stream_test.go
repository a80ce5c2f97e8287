package stream

import (
	"errors"
	"testing"

	"github.com/carpd/carpd/internal/api"
)

// TestHub: a reader gets its first events, then every event sent; one
// that falls behind by Buffer events is dropped (C closed, Lagged) while
// the others go on; beyond MaxSubs readers Add fails; Close ends every
// stream.
func TestHub(t *testing.T) {
	var h Hub
	slow, err := h.Add([]api.Event{{Type: "snapshot"}})
	if err != nil {
		t.Fatal(err)
	}
	fast, _ := h.Add(nil)
	for i := range Buffer + 10 {
		h.Send(api.Event{Seq: uint64(i + 1)})
		<-fast.C
	}
	n := 0
	for range slow.C {
		n++
	}
	if !slow.Lagged() || n != Buffer+1 {
		t.Errorf("slow reader: lagged %v after %d events, want true after %d", slow.Lagged(), n, Buffer+1)
	}
	h.Send(api.Event{Seq: 99})
	if e := <-fast.C; e.Seq != 99 || fast.Lagged() {
		t.Errorf("fast reader: %+v, lagged %v", e, fast.Lagged())
	}
	for range MaxSubs - 1 {
		if _, err := h.Add(nil); err != nil {
			t.Fatal(err)
		}
	}
	if s, err := h.Add(nil); !errors.Is(err, ErrTooManyReaders) {
		t.Fatalf("reader %d: %v, %v; want ErrTooManyReaders", MaxSubs+1, s, err)
	}
	h.Remove(fast)
	h.Remove(fast) // once is enough
	if _, ok := <-fast.C; ok || fast.Lagged() {
		t.Error("a removed reader's stream is open, or it lagged")
	}
	last, err := h.Add(nil)
	if err != nil {
		t.Fatalf("after a Remove: %v", err)
	}
	h.Close()
	if _, ok := <-last.C; ok || len(h.subs) != 0 {
		t.Errorf("after Close: stream open, %d readers", len(h.subs))
	}
}
