package directory_test

import (
	"fmt"
	"testing"

	"postern.dev/postern/internal/directory"
)

func benchContents(n int) directory.Contents {
	c := directory.Contents{Organizations: []*directory.Organization{{ID: 1, Name: "O"}}}
	for i := 1; i <= n; i++ {
		a := fmt.Sprintf("device%d@o.example", i)
		c.Mailboxes = append(c.Mailboxes, &directory.Mailbox{ID: int64(i), OrgID: 1, Name: fmt.Sprint("device", i),
			Alias: fmt.Sprint("device", i), PrimarySmtpAddress: a, UserPrincipalName: a})
	}
	return c
}

// BenchmarkSnapshotChange compares, in memory, what one changed mailbox
// costs a snapshot: Apply on a fresh base (overlay of one row), Apply on a
// snapshot whose overlay is about to be folded (the largest copy), and
// the full rebuild every change cost before (NewSnapshot), which is now
// the background fold's cost, paid once per 64 + n/64 changed rows.
func BenchmarkSnapshotChange(b *testing.B) {
	for _, n := range []int{10000, 100000} {
		c := benchContents(n)
		base := directory.NewSnapshot(c)
		changed := *c.Mailboxes[n/2]
		changed.ImapEnabled = !changed.ImapEnabled
		d := directory.Delta{Mailboxes: map[int64]*directory.Mailbox{changed.ID: &changed}}
		b.Run(fmt.Sprintf("mailboxes=%d/apply", n), func(b *testing.B) {
			for b.Loop() {
				base.Apply(d)
			}
		})
		full := base
		for i := 0; i < 64+n/64-1; i++ {
			m := *c.Mailboxes[i]
			full = full.Apply(directory.Delta{Mailboxes: map[int64]*directory.Mailbox{m.ID: &m}})
		}
		b.Run(fmt.Sprintf("mailboxes=%d/apply-largest-overlay", n), func(b *testing.B) {
			for b.Loop() {
				full.Apply(d)
			}
		})
		b.Run(fmt.Sprintf("mailboxes=%d/rebuild", n), func(b *testing.B) {
			for b.Loop() {
				directory.NewSnapshot(c)
			}
		})
	}
}
