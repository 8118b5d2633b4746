package storetest

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"postern.dev/postern/internal/directory"
	"postern.dev/postern/internal/directory/directorytest"
	"postern.dev/postern/internal/store"
)

// testDirectoryChanges: the change log lists every row a write changed,
// cascades included, each once, after the position a read reports; the
// changed rows read back as LoadDirectory reads them, a removed one as nil.
func testDirectoryChanges(t *testing.T, h *harness) {
	s := h.s
	ctx := context.Background()
	c0, err := s.LoadDirectory(ctx)
	must(t, err)
	org, sean, chris := seed(t, s)
	ch, err := s.DirectoryChanges(ctx, c0.Position)
	must(t, err)
	if ch.All || ch.Position <= c0.Position {
		t.Fatalf("changes after the seed: %+v (from %d)", ch, c0.Position)
	}
	for _, k := range []directory.Key{{Table: directory.TableOrganizations, ID: org.ID},
		{Table: directory.TableMailboxes, ID: sean.ID}, {Table: directory.TableMailboxes, ID: chris.ID}} {
		if !slices.Contains(ch.Keys, k) {
			t.Errorf("changes %v lack %v", ch.Keys, k)
		}
	}
	if !slices.ContainsFunc(ch.Keys, func(k directory.Key) bool { return k.Table == "accepted_domains" && !k.Incremental() }) {
		t.Errorf("changes %v lack the accepted domain (not incremental)", ch.Keys)
	}
	seen := map[directory.Key]bool{}
	for _, k := range ch.Keys {
		if seen[k] {
			t.Errorf("%v listed twice in %v", k, ch.Keys)
		}
		seen[k] = true
	}
	if c, err := s.LoadDirectory(ctx); err != nil || c.Position != ch.Position {
		t.Errorf("LoadDirectory position %d (%v), the changes run to %d", c.Position, err, ch.Position)
	}
	none, err := s.DirectoryChanges(ctx, ch.Position)
	must(t, err)
	if none.All || len(none.Keys) != 0 || none.Position != ch.Position {
		t.Errorf("no change since: %+v", none)
	}

	perm := &directory.RecipientPermission{OrgID: org.ID, Identity: chris.ID, Trustee: sean.ID}
	must(t, s.SavePermission(ctx, perm))
	full := &directory.MailboxPermission{OrgID: org.ID, Identity: chris.ID, TrusteeMailbox: sean.ID}
	must(t, s.SaveMailboxPermission(ctx, full))
	rs := &directory.RestrictedSender{OrgID: org.ID, MailboxID: chris.ID, SenderAddress: "chris@contoso.com", Action: "BlockUser"}
	must(t, s.SaveRestrictedSender(ctx, rs))
	must(t, s.DeleteMailbox(ctx, chris.ID)) // Remove-Mailbox: the grants and the restriction go with it
	gone, err := s.DirectoryChanges(ctx, ch.Position)
	must(t, err)
	want := []directory.Key{{Table: directory.TableMailboxes, ID: chris.ID}, {Table: directory.TablePermissions, ID: perm.ID},
		{Table: directory.TableMailboxPerms, ID: full.ID}, {Table: directory.TableRestrictedSenders, ID: rs.ID}}
	for _, k := range want {
		if !slices.Contains(gone.Keys, k) {
			t.Errorf("changes %v lack %v", gone.Keys, k)
		}
	}
	d, err := s.LoadDirectoryObjects(ctx, append(want, directory.Key{Table: directory.TableMailboxes, ID: sean.ID},
		directory.Key{Table: directory.TableOrganizations, ID: org.ID}))
	must(t, err)
	for what, present := range map[string]bool{
		"chris":       d.Mailboxes[chris.ID] != nil,
		"permission":  d.Permissions[perm.ID] != nil,
		"full access": d.MailboxPerms[full.ID] != nil,
		"restriction": d.RestrictedSenders[rs.ID] != nil,
	} {
		if present {
			t.Errorf("the removed %s was read back", what)
		}
	}
	if _, ok := d.Mailboxes[chris.ID]; !ok {
		t.Error("a removed row must be in the delta, as nil")
	}
	c, err := s.LoadDirectory(ctx)
	must(t, err)
	if d.Position != gone.Position || c.Position != gone.Position {
		t.Errorf("positions: objects read at %d, full read at %d, the changes run to %d", d.Position, c.Position, gone.Position)
	}
	snap := directory.NewSnapshot(c)
	if got, want := d.Mailboxes[sean.ID], snap.Mailbox(sean.ID); fmt.Sprintf("%+v", got) != fmt.Sprintf("%+v", want) {
		t.Errorf("sean read alone %+v, with everything %+v", got, want)
	}
	if got, want := d.Organizations[org.ID], snap.Organization(org.ID); fmt.Sprintf("%+v", got) != fmt.Sprintf("%+v", want) {
		t.Errorf("the organization read alone %+v, with everything %+v", got, want)
	}
	if _, err := s.LoadDirectoryObjects(ctx, []directory.Key{{Table: "accepted_domains", ID: 1}}); err == nil {
		t.Error("reading a row of a table not applied row by row must fail")
	}
}

// testIncrementalMatchesRebuild is the store half of the incremental
// directory's property: after each of a random sequence of admin writes,
// a snapshot updated with only the rows the change log lists (as
// admin.Service.change does) answers every lookup as a snapshot built
// from a full read.
func testIncrementalMatchesRebuild(t *testing.T, h *harness) {
	s := h.s
	ctx := context.Background()
	org, sean, chris := seed(t, s)
	other := &directory.Organization{Name: "fabrikam", GUID: "f"}
	must(t, s.SaveOrganization(ctx, other))
	c, err := s.LoadDirectory(ctx)
	must(t, err)
	snap := directory.NewSnapshot(c)
	r := rand.New(rand.NewPCG(7, 7))
	mailboxes := []*directory.Mailbox{sean, chris}
	var perms []*directory.RecipientPermission
	var fulls []*directory.MailboxPermission
	pool := func() string { return fmt.Sprintf("u%d@contoso.com", r.IntN(15)) }
	pick := func() *directory.Mailbox { return mailboxes[r.IntN(len(mailboxes))] }
	incremental, full := 0, 0
	for step := range 80 {
		var err error
		switch op := r.IntN(10); {
		case op < 3 || len(mailboxes) < 3: // New-Mailbox
			m := &directory.Mailbox{OrgID: []int64{org.ID, other.ID}[r.IntN(2)], Name: fmt.Sprint("m", step), PrimarySmtpAddress: pool(),
				Alias: fmt.Sprint("A", r.IntN(5)), Type: directory.UserMailbox, ImapEnabled: true}
			m.UserPrincipalName = m.PrimarySmtpAddress
			if r.IntN(2) == 0 {
				m.EmailAddresses = []string{pool()}
			}
			if err = s.SaveMailbox(ctx, m); err == nil {
				mailboxes = append(mailboxes, m)
			}
		case op < 5: // Set-CASMailbox, Set-Mailbox
			m := *pick()
			v := r.IntN(2) == 0
			m.SmtpClientAuthenticationDisabled = &v
			m.ImapEnabled = !m.ImapEnabled
			m.GrantSendOnBehalfTo = []int64{pick().ID}
			if r.IntN(3) == 0 {
				m.EmailAddresses = []string{pool()}
			}
			if err = s.SaveMailbox(ctx, &m); err == nil {
				for i := range mailboxes {
					if mailboxes[i].ID == m.ID {
						mailboxes[i] = &m
					}
				}
			}
		case op == 5: // Remove-Mailbox
			i := r.IntN(len(mailboxes))
			err = s.DeleteMailbox(ctx, mailboxes[i].ID)
			mailboxes = slices.Delete(mailboxes, i, i+1)
		case op == 6: // Add-RecipientPermission, Remove-RecipientPermission
			if len(perms) > 0 && r.IntN(3) == 0 {
				err = s.DeletePermission(ctx, perms[0].ID)
				perms = perms[1:]
			} else {
				p := &directory.RecipientPermission{OrgID: org.ID, Identity: pick().ID, Trustee: pick().ID}
				if err = s.SavePermission(ctx, p); err == nil {
					perms = append(perms, p)
				}
			}
		case op == 7: // Add-MailboxPermission, Remove-MailboxPermission; a restriction
			if len(fulls) > 0 && r.IntN(3) == 0 {
				err = s.DeleteMailboxPermission(ctx, fulls[0].ID)
				fulls = fulls[1:]
			} else if r.IntN(2) == 0 {
				p := &directory.MailboxPermission{OrgID: org.ID, Identity: pick().ID, TrusteeMailbox: pick().ID}
				if err = s.SaveMailboxPermission(ctx, p); err == nil {
					fulls = append(fulls, p)
				}
			} else {
				m := pick()
				err = s.SaveRestrictedSender(ctx, &directory.RestrictedSender{OrgID: m.OrgID, MailboxID: m.ID,
					SenderAddress: m.PrimarySmtpAddress, Action: "BlockUser", CreatedAt: time.Unix(int64(step), 0)})
			}
		case op == 8: // Set-TransportConfig
			org.SmtpClientAuthenticationDisabled = !org.SmtpClientAuthenticationDisabled
			err = s.SaveOrganization(ctx, org)
		default: // New-AuthenticationPolicy: not applied row by row
			err = s.SavePolicy(ctx, &directory.AuthenticationPolicy{OrgID: org.ID, Name: fmt.Sprint("p", step)})
		}
		if err != nil && !errors.Is(err, store.ErrConflict) {
			t.Fatalf("step %d: %v", step, err)
		}
		// What admin.Service.change does after a write.
		ch, err := s.DirectoryChanges(ctx, snap.Position())
		must(t, err)
		applied := false
		if !ch.All && !slices.ContainsFunc(ch.Keys, func(k directory.Key) bool { return !k.Incremental() }) {
			d, err := s.LoadDirectoryObjects(ctx, ch.Keys)
			must(t, err)
			d.Position = ch.Position
			snap, applied = snap.Apply(d), true
			incremental++
		}
		c, err := s.LoadDirectory(ctx)
		must(t, err)
		rebuilt := directory.NewSnapshot(c)
		if !applied {
			snap = rebuilt
			full++
		}
		if diffs := directorytest.Diff(snap, rebuilt); len(diffs) > 0 {
			t.Fatalf("step %d: the incremental snapshot differs from a full read:\n%v", step, diffs[:min(10, len(diffs))])
		}
		if snap.Position() != c.Position {
			t.Fatalf("step %d: position %d, a full read's %d", step, snap.Position(), c.Position)
		}
	}
	if incremental < 40 || full == 0 {
		t.Errorf("%d changes applied row by row, %d by a full read: the sequence must exercise both", incremental, full)
	}
}

// CheckPrunedChanges checks a store's directory change log after 11,000
// changes were logged past position start (each store writes them its own
// way): the log keeps the last 10,000 (pruned through start+1,000), a
// reader whose position the pruning passed is told to read everything
// (All), one within the kept window is not, and one that would read more
// than store.MaxDirectoryChanges is told to read everything too. db is
// the store's database, for the log's own tables.
func CheckPrunedChanges(t *testing.T, s store.Store, db *sql.DB, start int64) {
	t.Helper()
	ctx := context.Background()
	var through, kept int64
	must(t, db.QueryRowContext(ctx, "SELECT through FROM directory_changes_pruned").Scan(&through))
	must(t, db.QueryRowContext(ctx, "SELECT count(*) FROM directory_changes").Scan(&kept))
	if through != start+1000 || kept != 10000 {
		t.Errorf("pruned through %d keeping %d changes, want through %d keeping 10000", through, kept, start+1000)
	}
	old, err := s.DirectoryChanges(ctx, start)
	must(t, err)
	if !old.All {
		t.Errorf("a position pruned past: %d keys, not All", len(old.Keys))
	}
	recent, err := s.DirectoryChanges(ctx, start+10990)
	must(t, err)
	if recent.All || len(recent.Keys) != 10 || recent.Position != start+11000 {
		t.Errorf("the last 10 changes: All=%v, %d keys, position %d", recent.All, len(recent.Keys), recent.Position)
	}
	many, err := s.DirectoryChanges(ctx, start+9000)
	must(t, err)
	if !many.All {
		t.Errorf("2,000 changes (more than MaxDirectoryChanges): %d keys, not All", len(many.Keys))
	}
}
