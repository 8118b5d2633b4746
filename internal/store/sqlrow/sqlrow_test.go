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

func TestPlaceholders(t *testing.T) {
	q := "DELETE FROM ephemeral WHERE kind = ? AND key IN (SELECT key FROM ephemeral WHERE kind = ? LIMIT ?)"
	if got := (Ephemeral{}).q(q); got != q {
		t.Errorf("SQLite: %q", got)
	}
	want := "DELETE FROM ephemeral WHERE kind = $1 AND key IN (SELECT key FROM ephemeral WHERE kind = $2 LIMIT $3)"
	if got := (Ephemeral{Dollar: true}).q(q); got != want {
		t.Errorf("PostgreSQL: %q", got)
	}
}
