package directory_test

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"postern.dev/postern/internal/directory"
	"postern.dev/postern/internal/directory/directorytest"
)

// model is the truth a random sequence of changes builds: the rows as a
// store would hold them, by ID.
type model struct {
	r                                          *rand.Rand
	next                                       int64
	orgs                                       map[int64]*directory.Organization
	mailboxes                                  map[int64]*directory.Mailbox
	perms                                      map[int64]*directory.RecipientPermission
	mailboxPerms                               map[int64]*directory.MailboxPermission
	restricted                                 map[int64]*directory.RestrictedSender
	fixed                                      directory.Contents // the tables never changed row by row
	policyNames, addressPool, aliasPool, hosts []string
}

func newModel(seed uint64) *model {
	m := &model{r: rand.New(rand.NewPCG(seed, 1)), next: 1,
		orgs: map[int64]*directory.Organization{}, mailboxes: map[int64]*directory.Mailbox{},
		perms: map[int64]*directory.RecipientPermission{}, mailboxPerms: map[int64]*directory.MailboxPermission{},
		restricted:  map[int64]*directory.RestrictedSender{},
		policyNames: []string{"", "BlockBasic", "imaponly", "Missing"},
	}
	for i := range 12 {
		// A small pool, so that mailboxes collide on names and the
		// highest-ID rule is exercised.
		m.addressPool = append(m.addressPool, fmt.Sprintf("user%d@contoso.com", i))
		m.aliasPool = append(m.aliasPool, fmt.Sprintf("User%d", i))
	}
	for range 2 {
		m.addOrg()
	}
	m.fixed.Policies = []*directory.AuthenticationPolicy{
		{ID: 1, OrgID: 1, Name: "BlockBasic"}, {ID: 2, OrgID: 1, Name: "ImapOnly", AllowBasicAuthImap: true},
		{ID: 3, OrgID: 2, Name: "BlockBasic", AllowBasicAuthSmtp: true}}
	m.fixed.Domains = []*directory.AcceptedDomain{{ID: 1, OrgID: 1, Name: "contoso.com", DomainName: "contoso.com", Default: true}}
	return m
}

func (m *model) id() int64 { m.next++; return m.next }

func (m *model) pick(ids []int64) int64 {
	if len(ids) == 0 {
		return 0
	}
	return ids[m.r.IntN(len(ids))]
}

func keys[V any](x map[int64]V) []int64 {
	out := make([]int64, 0, len(x))
	for k := range x {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func (m *model) addOrg() *directory.Organization {
	o := &directory.Organization{ID: m.id(), Name: fmt.Sprint("org", m.next), DefaultAuthenticationPolicy: m.policyNames[m.r.IntN(4)]}
	m.orgs[o.ID] = o
	return o
}

func (m *model) randomMailbox(id, org int64) *directory.Mailbox {
	mb := &directory.Mailbox{ID: id, OrgID: org, Name: fmt.Sprint("mb", id),
		PrimarySmtpAddress:   m.addressPool[m.r.IntN(len(m.addressPool))],
		UserPrincipalName:    m.addressPool[m.r.IntN(len(m.addressPool))],
		Alias:                m.aliasPool[m.r.IntN(len(m.aliasPool))],
		AuthenticationPolicy: m.policyNames[m.r.IntN(4)],
		ImapEnabled:          m.r.IntN(2) == 0,
	}
	for range m.r.IntN(3) {
		mb.EmailAddresses = append(mb.EmailAddresses, m.addressPool[m.r.IntN(len(m.addressPool))])
	}
	for range m.r.IntN(3) {
		mb.GrantSendOnBehalfTo = append(mb.GrantSendOnBehalfTo, m.pick(keys(m.mailboxes)))
	}
	return mb
}

// step makes one random change to the model and returns it as a Delta.
func (m *model) step() directory.Delta {
	d := directory.Delta{Organizations: map[int64]*directory.Organization{}, Mailboxes: map[int64]*directory.Mailbox{},
		Permissions: map[int64]*directory.RecipientPermission{}, MailboxPerms: map[int64]*directory.MailboxPermission{},
		RestrictedSenders: map[int64]*directory.RestrictedSender{}}
	mbs := keys(m.mailboxes)
	orgIDs := keys(m.orgs)
	switch op := m.r.IntN(12); {
	case op < 3 || len(mbs) < 3: // New-Mailbox
		mb := m.randomMailbox(m.id(), m.pick(orgIDs))
		m.mailboxes[mb.ID], d.Mailboxes[mb.ID] = mb, mb
	case op < 6: // Set-Mailbox / Set-CASMailbox: a new version of the row
		id := m.pick(mbs)
		mb := m.randomMailbox(id, m.mailboxes[id].OrgID)
		m.mailboxes[id], d.Mailboxes[id] = mb, mb
	case op == 6: // Remove-Mailbox, with the cascade a store makes
		id := m.pick(mbs)
		delete(m.mailboxes, id)
		d.Mailboxes[id] = nil
		for pid, p := range m.perms {
			if p.Identity == id || p.Trustee == id {
				delete(m.perms, pid)
				d.Permissions[pid] = nil
			}
		}
		for pid, p := range m.mailboxPerms {
			if p.Identity == id || p.TrusteeMailbox == id {
				delete(m.mailboxPerms, pid)
				d.MailboxPerms[pid] = nil
			}
		}
		for rid, r := range m.restricted {
			if r.MailboxID == id {
				delete(m.restricted, rid)
				d.RestrictedSenders[rid] = nil
			}
		}
	case op == 7: // Add-RecipientPermission (duplicates allowed) / Remove-
		if pids := keys(m.perms); len(pids) > 0 && m.r.IntN(3) == 0 {
			pid := m.pick(pids)
			delete(m.perms, pid)
			d.Permissions[pid] = nil
		} else {
			p := &directory.RecipientPermission{ID: m.id(), OrgID: 1, Identity: m.pick(mbs), Trustee: m.pick(mbs)}
			m.perms[p.ID], d.Permissions[p.ID] = p, p
		}
	case op == 8: // Add-MailboxPermission / Remove-
		if pids := keys(m.mailboxPerms); len(pids) > 0 && m.r.IntN(3) == 0 {
			pid := m.pick(pids)
			delete(m.mailboxPerms, pid)
			d.MailboxPerms[pid] = nil
		} else {
			p := &directory.MailboxPermission{ID: m.id(), OrgID: 1, Identity: m.pick(mbs)}
			if m.r.IntN(2) == 0 {
				p.TrusteePrincipal = int64(1 + m.r.IntN(3))
			} else {
				p.TrusteeMailbox = m.pick(mbs)
			}
			m.mailboxPerms[p.ID], d.MailboxPerms[p.ID] = p, p
		}
	case op == 9: // a sender restricted, released (updated) or removed
		mb := m.pick(mbs)
		var existing *directory.RestrictedSender
		for _, r := range m.restricted {
			if r.MailboxID == mb {
				existing = r
			}
		}
		switch {
		case existing == nil:
			r := &directory.RestrictedSender{ID: m.id(), OrgID: 1, MailboxID: mb, Action: "BlockUser"}
			m.restricted[r.ID], d.RestrictedSenders[r.ID] = r, r
		case m.r.IntN(2) == 0:
			r := *existing
			r.ReleasedAt = time.Unix(int64(m.r.IntN(1000)), 0).UTC()
			m.restricted[r.ID], d.RestrictedSenders[r.ID] = &r, &r
		default:
			delete(m.restricted, existing.ID)
			d.RestrictedSenders[existing.ID] = nil
		}
	case op == 10: // Set-TransportConfig / Set-OrganizationConfig
		o := *m.orgs[m.pick(orgIDs)]
		o.SmtpClientAuthenticationDisabled = !o.SmtpClientAuthenticationDisabled
		o.DefaultAuthenticationPolicy = m.policyNames[m.r.IntN(4)]
		m.orgs[o.ID], d.Organizations[o.ID] = &o, &o
	default: // an organization created or removed
		if len(orgIDs) > 2 && m.r.IntN(2) == 0 {
			id := orgIDs[len(orgIDs)-1]
			delete(m.orgs, id)
			d.Organizations[id] = nil
		} else {
			o := m.addOrg()
			d.Organizations[o.ID] = o
		}
	}
	return d
}

func sorted[V any](x map[int64]*V) []*V {
	var out []*V
	for _, k := range keys(x) {
		out = append(out, x[k])
	}
	return out
}

// contents is the model as a store would load it, in ID order.
func (m *model) contents() directory.Contents {
	c := m.fixed
	c.Organizations = sorted(m.orgs)
	c.Mailboxes = sorted(m.mailboxes)
	c.Permissions = sorted(m.perms)
	c.MailboxPerms = sorted(m.mailboxPerms)
	c.RestrictedSenders = sorted(m.restricted)
	return c
}

func requireSame(t *testing.T, step int, got, want *directory.Snapshot) {
	t.Helper()
	if diffs := directorytest.Diff(got, want); len(diffs) > 0 {
		if len(diffs) > 10 {
			diffs = diffs[:10]
		}
		t.Fatalf("after change %d the incremental snapshot differs from a rebuilt one:\n%s", step, fmt.Sprintln(diffs))
	}
}

// TestApplyMatchesRebuild is the property the overlay design rests on:
// after any sequence of changes, a snapshot updated with Apply answers
// every lookup exactly as NewSnapshot over the same rows does, also after
// folding, and also on the snapshots left behind (immutability).
func TestApplyMatchesRebuild(t *testing.T) {
	for seed := range uint64(20) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			m := newModel(seed)
			snap := directory.NewSnapshot(m.contents())
			var history []*directory.Snapshot
			var truths []directory.Contents
			for i := range 150 {
				snap = snap.Apply(m.step())
				if i%37 == 36 {
					snap = snap.Fold()
					if snap.OverlaySize() != 0 {
						t.Fatal("a folded snapshot has an overlay")
					}
				}
				c := m.contents()
				requireSame(t, i, snap, directory.NewSnapshot(c))
				if i%25 == 0 {
					history, truths = append(history, snap), append(truths, c)
				}
			}
			for i, old := range history {
				requireSame(t, i, old, directory.NewSnapshot(truths[i]))
			}
		})
	}
}

// TestCurrentFoldsInBackground: Current folds a grown overlay into a new
// base off the changing goroutine, keeping the changes made meanwhile, and
// the snapshot in force still answers as a rebuild.
func TestCurrentFoldsInBackground(t *testing.T) {
	m := newModel(99)
	var cur directory.Current
	folds := make(chan struct{}, 100)
	cur.OnFold(func() { folds <- struct{}{} })
	cur.Store(directory.NewSnapshot(m.contents()))
	// The overlay folds at 64 rows (for a small directory): 200 changes
	// touch enough rows for at least one fold.
	for range 200 {
		cur.Apply(m.step())
	}
	select {
	case <-folds:
	case <-time.After(30 * time.Second):
		t.Fatal("no fold happened")
	}
	// Let any fold in flight land, then compare.
	for {
		select {
		case <-folds:
			continue
		case <-time.After(100 * time.Millisecond):
		}
		break
	}
	got := cur.Load()
	if got.OverlaySize() >= 200 {
		t.Errorf("overlay of %d rows after folding", got.OverlaySize())
	}
	requireSame(t, 200, got, directory.NewSnapshot(m.contents()))
}
