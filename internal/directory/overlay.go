package directory

import (
	"cmp"
	"slices"
	"sync"
	"sync/atomic"
)

// The store's table names a change is reported by (store.DirectoryChanges,
// the PostgreSQL change notifications). The rows of these tables a Delta
// carries; a change to any other directory table is applied by reading the
// whole directory again.
const (
	TableOrganizations     = "organizations"
	TableMailboxes         = "mailboxes"
	TablePermissions       = "recipient_permissions"
	TableMailboxPerms      = "mailbox_permissions"
	TableRestrictedSenders = "restricted_senders"
)

// Key names one changed row: a table and the row's ID. ID 0 names the
// whole table (a statement the store cannot itemise, such as TRUNCATE).
type Key struct {
	Table string
	ID    int64
}

// Incremental reports whether a change to k can be applied as a Delta;
// otherwise the whole directory must be read again. These are the tables
// whose rows index independently of the other tables' rows: a mailbox's
// names and grants are its own columns, a permission is one grant, an
// organization's settings are read through it at lookup time. Accepted
// domains, policies, connectors and the other small tables are read whole:
// they change rarely and cost little to read.
func (k Key) Incremental() bool {
	if k.ID == 0 {
		return false
	}
	switch k.Table {
	case TableOrganizations, TableMailboxes, TablePermissions, TableMailboxPerms, TableRestrictedSenders:
		return true
	}
	return false
}

// Delta is the current state of some changed rows, read by the store
// (store.LoadDirectoryObjects): for each key, the row as it is now, or nil
// when it no longer exists (removed, or rolled back before it was seen).
type Delta struct {
	// Position is the change log position the rows include (Contents.Position).
	Position          int64
	Organizations     map[int64]*Organization
	Mailboxes         map[int64]*Mailbox
	Permissions       map[int64]*RecipientPermission
	MailboxPerms      map[int64]*MailboxPermission
	RestrictedSenders map[int64]*RestrictedSender
}

// Len is the number of rows d carries.
func (d Delta) Len() int {
	return len(d.Organizations) + len(d.Mailboxes) + len(d.Permissions) + len(d.MailboxPerms) + len(d.RestrictedSenders)
}

// overlay is what changed since a Snapshot's base index was built: the
// current version of every changed row (nil for a removed one), indexed the
// way the base is, and the deltas themselves so that a fresh base built in
// the background can take the changes made meanwhile (Current.fold).
//
// An overlay is immutable like the rest of the Snapshot: applying a delta
// copies it, which costs O(overlay), and the overlay is folded into a new
// base once it holds foldAt rows, so a change costs O(changed rows) plus a
// bounded copy, and the O(directory) rebuild is paid once per many changes
// and off the changing goroutine.
type overlay struct {
	position     int64
	orgs         map[int64]*Organization
	mailboxes    map[int64]*Mailbox
	perms        map[int64]*RecipientPermission
	mailboxPerms map[int64]*MailboxPermission
	restricted   map[int64]*RestrictedSender

	// Indexes over the live rows above, as the base's.
	byAddress           claims[string]
	bySignIn            claims[string]
	byAlias             claims[aliasKey]
	onBehalf            map[grant]bool
	sendAs              map[grant]bool
	fullAccess          map[fullAccessKey]bool
	restrictedByMailbox map[int64]*RestrictedSender
	// orgList is every organization in ID order when an organization
	// changed (Organizations() must stay cheap: sessions read it), else nil.
	orgList []*Organization

	// log is the deltas applied to the base, oldest first.
	log []Delta
}

func (o *overlay) size() int {
	return len(o.orgs) + len(o.mailboxes) + len(o.perms) + len(o.mailboxPerms) + len(o.restricted)
}

func copyWith[V any](old, add map[int64]V) map[int64]V {
	m := make(map[int64]V, len(old)+len(add))
	for k, v := range old {
		m[k] = v
	}
	for k, v := range add {
		m[k] = v
	}
	return m
}

// Apply returns a snapshot that is s with d's rows in place of the ones
// they replace. s is unchanged. The cost is O(len(d) + s's overlay).
func (s *Snapshot) Apply(d Delta) *Snapshot {
	var old overlay
	if s.ov != nil {
		old = *s.ov
	}
	o := &overlay{
		position:     max(old.position, d.Position, s.contents.Position),
		orgs:         copyWith(old.orgs, d.Organizations),
		mailboxes:    copyWith(old.mailboxes, d.Mailboxes),
		perms:        copyWith(old.perms, d.Permissions),
		mailboxPerms: copyWith(old.mailboxPerms, d.MailboxPerms),
		restricted:   copyWith(old.restricted, d.RestrictedSenders),
		log:          append(old.log[:len(old.log):len(old.log)], d),
	}
	o.index(s.index)
	return &Snapshot{index: s.index, ov: o}
}

// index builds the overlay's indexes over its live rows.
func (o *overlay) index(base *index) {
	o.byAddress = newClaims[string](len(o.mailboxes))
	o.bySignIn = newClaims[string](2 * len(o.mailboxes))
	o.byAlias = newClaims[aliasKey](len(o.mailboxes))
	o.onBehalf = make(map[grant]bool)
	for _, m := range sortedLive(o.mailboxes) {
		indexMailbox(m, &o.byAddress, &o.bySignIn, &o.byAlias, o.onBehalf)
	}
	o.sendAs = make(map[grant]bool, len(o.perms))
	for _, p := range o.perms {
		if p != nil {
			o.sendAs[grant{trustee: p.Trustee, identity: p.Identity}] = true
		}
	}
	o.fullAccess = make(map[fullAccessKey]bool, len(o.mailboxPerms))
	for _, p := range o.mailboxPerms {
		if p != nil {
			o.fullAccess[fullAccessKey{p.Identity, p.TrusteePrincipal, p.TrusteeMailbox}] = true
		}
	}
	o.restrictedByMailbox = make(map[int64]*RestrictedSender, len(o.restricted))
	for _, r := range sortedLive(o.restricted) {
		o.restrictedByMailbox[r.MailboxID] = r
	}
	if len(o.orgs) > 0 {
		o.orgList = mergeByID(base.contents.Organizations, o.orgs, func(x *Organization) int64 { return x.ID })
	}
}

// sortedLive returns the rows of m that exist, in ID order.
func sortedLive[E any, P interface {
	*E
	id() int64
}](m map[int64]P) []P {
	out := make([]P, 0, len(m))
	for _, x := range m {
		if x != nil {
			out = append(out, x)
		}
	}
	slices.SortFunc(out, func(a, b P) int { return cmp.Compare(a.id(), b.id()) })
	return out
}

func (m *Mailbox) id() int64          { return m.ID }
func (r *RestrictedSender) id() int64 { return r.ID }

// mergeByID returns base (in ID order) with the rows changed replaces,
// removes or adds, in ID order. O(len(base) + len(changed) log len(changed)).
func mergeByID[T comparable](base []T, changed map[int64]T, id func(T) int64) []T {
	var zero T
	if len(changed) == 0 {
		return base
	}
	added := make([]T, 0, len(changed))
	for _, x := range changed {
		if x != zero {
			added = append(added, x)
		}
	}
	slices.SortFunc(added, func(a, b T) int { return cmp.Compare(id(a), id(b)) })
	out := make([]T, 0, len(base)+len(added))
	i := 0
	for _, x := range base {
		if _, ok := changed[id(x)]; ok {
			continue
		}
		for i < len(added) && id(added[i]) < id(x) {
			out = append(out, added[i])
			i++
		}
		out = append(out, x)
	}
	out = append(out, added[i:]...)
	if len(out) == 0 {
		return nil // as a store loads an empty table
	}
	return out
}

// merge returns the contents base would have with the overlay's rows.
func (o *overlay) merge(base Contents) Contents {
	c := base
	c.Position = o.position
	c.Organizations = mergeByID(base.Organizations, o.orgs, func(x *Organization) int64 { return x.ID })
	c.Mailboxes = mergeByID(base.Mailboxes, o.mailboxes, func(x *Mailbox) int64 { return x.ID })
	c.Permissions = mergeByID(base.Permissions, o.perms, func(x *RecipientPermission) int64 { return x.ID })
	c.MailboxPerms = mergeByID(base.MailboxPerms, o.mailboxPerms, func(x *MailboxPermission) int64 { return x.ID })
	c.RestrictedSenders = mergeByID(base.RestrictedSenders, o.restricted, func(x *RestrictedSender) int64 { return x.ID })
	return c
}

// OverlaySize is the number of rows changed since the snapshot's base
// index was built; 0 for a snapshot built in one pass.
func (s *Snapshot) OverlaySize() int {
	if s.ov == nil {
		return 0
	}
	return s.ov.size()
}

// Applied is the number of deltas applied since the snapshot's base index
// was built; 0 for a snapshot built in one pass (or just folded).
func (s *Snapshot) Applied() int {
	if s.ov == nil {
		return 0
	}
	return len(s.ov.log)
}

// Fold returns a snapshot with the same answers as s built in one pass
// (O(directory)), without an overlay.
func (s *Snapshot) Fold() *Snapshot {
	if s.ov == nil {
		return s
	}
	return NewSnapshot(s.Contents())
}

// foldAt is the overlay size at which Current folds it into a new base:
// a fixed floor, so that small directories do not rebuild on every change,
// plus a share of the directory, so that the O(directory) rebuild is paid
// once per O(directory) changes (amortised O(1) per changed row) while the
// overlay, copied on each change, stays a small fraction of the directory.
func foldAt(base *index) int {
	return 64 + len(base.contents.Mailboxes)/64
}

// Current holds the snapshot in force. Sessions load it once per decision;
// the admin service stores a new one after every change.
type Current struct {
	p atomic.Pointer[Snapshot]
	// mu orders Store, Apply and the installation of a folded base, so
	// that none of them replaces a newer snapshot with an older one.
	mu      sync.Mutex
	folding bool
	// folded, when set, is told about each folded base installed (tests).
	folded func()
}

// Load returns the snapshot in force.
func (c *Current) Load() *Snapshot { return c.p.Load() }

// Store makes s the snapshot in force.
func (c *Current) Store(s *Snapshot) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.p.Store(s)
}

// Apply makes the snapshot in force the current one with d applied, and
// starts folding the overlay into a new base in the background once it has
// grown past foldAt. With no snapshot in force yet it does nothing: the
// first one comes from a full read.
func (c *Current) Apply(d Delta) {
	c.mu.Lock()
	defer c.mu.Unlock()
	cur := c.p.Load()
	if cur == nil {
		return
	}
	next := cur.Apply(d)
	c.p.Store(next)
	if !c.folding && next.ov.size() >= foldAt(next.index) {
		c.folding = true
		go c.fold(next)
	}
}

// fold builds a new base from from's contents, then installs it with the
// deltas applied since from (replayed on the new base: O(those deltas)),
// unless a full read replaced the base meanwhile (Store), which made the
// fold moot.
func (c *Current) fold(from *Snapshot) {
	base := NewSnapshot(from.Contents())
	c.mu.Lock()
	defer c.mu.Unlock()
	c.folding = false
	cur := c.p.Load()
	if cur.index != from.index || cur.ov == nil || len(cur.ov.log) < len(from.ov.log) {
		return
	}
	next := base
	for _, d := range cur.ov.log[len(from.ov.log):] {
		next = next.Apply(d)
	}
	c.p.Store(next)
	if c.folded != nil {
		c.folded()
	}
}
