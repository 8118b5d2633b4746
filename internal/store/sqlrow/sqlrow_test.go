package sqlrow

import (
	"testing"
	"time"
)

func TestNanos(t *testing.T) {
	for _, tc := range []time.Time{{}, time.Unix(0, 1).UTC(), time.Date(2026, 12, 3, 8, 0, 0, 123, time.UTC)} {
		if got := FromNanos(Nanos(tc)); !got.Equal(tc) || got.Location() != time.UTC {
			t.Errorf("FromNanos(Nanos(%v)) = %v", tc, got)
		}
	}
	if Nanos(time.Time{}) != 0 || !FromNanos(0).IsZero() {
		t.Error("the zero time is not 0")
	}
}
