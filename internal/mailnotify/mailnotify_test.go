package mailnotify

import (
	"testing"
	"time"
)

func TestNotifyWakesOnlyThatMailbox(t *testing.T) {
	h := New()
	a, b := h.Watch(1), h.Watch(2)
	defer a.Close()
	defer b.Close()
	h.Notify(1, 1, 0)
	select {
	case <-a.C:
	case <-time.After(5 * time.Second):
		t.Fatal("subscriber of mailbox 1 not woken")
	}
	select {
	case <-b.C:
		t.Fatal("subscriber of mailbox 2 woken by a change to mailbox 1")
	default:
	}
}

func TestSignalsMergeAndNeverBlock(t *testing.T) {
	h := New()
	s := h.Watch(7)
	for range 1000 {
		h.Notify(7) // nobody reads: must not block
	}
	<-s.C
	select {
	case <-s.C:
		t.Fatal("pending signals must merge into one")
	default:
	}
	s.Close()
	s.Close()
	if n := h.Watchers(); n != 0 {
		t.Fatalf("Watchers after Close = %d, want 0", n)
	}
	h.Notify(7) // no subscribers: fine
}

func TestNotifyAllWakesEverySubscription(t *testing.T) {
	h := New()
	subs := []*Subscription{h.Watch(1), h.Watch(1), h.Watch(2)}
	h.NotifyAll()
	h.NotifyAll() // merges, never blocks
	for i, s := range subs {
		select {
		case <-s.C:
		default:
			t.Fatalf("subscription %d not woken", i)
		}
		s.Close()
	}
}
