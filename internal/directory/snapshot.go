package directory

import (
	"strings"
	"sync"
)

// index is the set of maps a Snapshot's lookups use, built in one pass
// over a Contents (NewSnapshot) and never modified afterwards.
type index struct {
	contents   Contents
	orgs       map[int64]*Organization
	domains    map[string]*AcceptedDomain // by domain name
	mailboxes  map[int64]*Mailbox
	byAddress  claims[string] // primary and proxy addresses
	bySignIn   claims[string] // UPN and primary address
	byAlias    claims[aliasKey]
	policies   map[policyKey]*AuthenticationPolicy
	sendAs     map[grant][]int64 // the IDs of the RecipientPermissions granting it
	onBehalf   map[grant]bool
	enabled    []*InboundConnector
	logged     []*InboundConnector
	outbound   []*OutboundConnector
	dkim       map[string]*DkimSigningConfig // by domain
	fullAccess map[fullAccessKey][]int64     // the IDs of the MailboxPermissions granting it
	filters    filterIndex
}

type fullAccessKey struct {
	mailbox, principal, trustee int64
}

type aliasKey struct {
	org   int64
	alias string // lower case
}

type policyKey struct {
	org  int64
	name string // lower case
}

type grant struct{ trustee, identity int64 }

// claims maps a name (an address, a sign-in name, an alias) to the mailbox
// that claims it. The store keeps names unique, but the snapshot does not
// rely on it: when several mailboxes claim one name the highest ID wins,
// as it does in a one-pass build over mailboxes in ID order, and the
// others are kept in shadowed so that an overlay hiding the winner can
// still find the runner-up exactly as a rebuild would.
type claims[K comparable] struct {
	top      map[K]*Mailbox
	shadowed map[K][]*Mailbox // the claimants top hides, in ascending ID order; nil without collisions
}

func newClaims[K comparable](n int) claims[K] {
	return claims[K]{top: make(map[K]*Mailbox, n)}
}

// add records m's claim on k; mailboxes must be added in ascending ID order.
func (c *claims[K]) add(k K, m *Mailbox) {
	if prev := c.top[k]; prev != nil && prev != m {
		if c.shadowed == nil {
			c.shadowed = make(map[K][]*Mailbox)
		}
		c.shadowed[k] = append(c.shadowed[k], prev)
	}
	c.top[k] = m
}

// Contents is everything a Snapshot is built from, as the store loads it.
type Contents struct {
	// Position is the store's directory change log position this read
	// includes every change up to (store.DirectoryChanges): the local
	// change path asks for the changes after it.
	Position      int64
	Organizations []*Organization
	Domains       []*AcceptedDomain
	Mailboxes     []*Mailbox
	Policies      []*AuthenticationPolicy
	Permissions   []*RecipientPermission
	Connectors    []*InboundConnector
	Outbound      []*OutboundConnector
	Dkim          []*DkimSigningConfig
	AuthServers   []*AuthServer
	Principals    []*ServicePrincipal
	MailboxPerms  []*MailboxPermission
	OAuthApps     []*OAuthApp
	// The outbound spam and connection filter policies admins changed, and
	// the restricted senders (filter.go).
	OutboundSpamPolicies []*OutboundSpamFilterPolicy
	ConnectionFilters    []*ConnectionFilterPolicy
	RestrictedSenders    []*RestrictedSender
}

// NewSnapshot indexes c. The objects must not be modified afterwards.
func NewSnapshot(c Contents) *Snapshot {
	return &Snapshot{index: newIndex(c)}
}

func newIndex(c Contents) *index {
	s := &index{
		contents:  c,
		orgs:      make(map[int64]*Organization, len(c.Organizations)),
		domains:   make(map[string]*AcceptedDomain, len(c.Domains)),
		mailboxes: make(map[int64]*Mailbox, len(c.Mailboxes)),
		byAddress: newClaims[string](len(c.Mailboxes)),
		bySignIn:  newClaims[string](2 * len(c.Mailboxes)),
		byAlias:   newClaims[aliasKey](len(c.Mailboxes)),
		policies:  make(map[policyKey]*AuthenticationPolicy, len(c.Policies)),
		sendAs:    make(map[grant][]int64, len(c.Permissions)),
		onBehalf:  make(map[grant]bool),
		dkim:      make(map[string]*DkimSigningConfig, len(c.Dkim)),
	}
	for _, o := range c.Organizations {
		s.orgs[o.ID] = o
	}
	for _, d := range c.Domains {
		s.domains[d.DomainName] = d
	}
	for _, m := range c.Mailboxes {
		s.mailboxes[m.ID] = m
		indexMailbox(m, &s.byAddress, &s.bySignIn, &s.byAlias, s.onBehalf)
	}
	for _, p := range c.Policies {
		s.policies[policyKey{p.OrgID, strings.ToLower(p.Name)}] = p
	}
	for _, p := range c.Permissions {
		g := grant{trustee: p.Trustee, identity: p.Identity}
		s.sendAs[g] = append(s.sendAs[g], p.ID)
	}
	for _, ic := range c.Connectors {
		if ic.Enabled {
			s.enabled = append(s.enabled, ic)
			if ic.ProtocolLogging {
				s.logged = append(s.logged, ic)
			}
		}
	}
	for _, oc := range c.Outbound {
		if oc.Enabled {
			s.outbound = append(s.outbound, oc)
		}
	}
	for _, d := range c.Dkim {
		s.dkim[d.Domain] = d
	}
	s.fullAccess = make(map[fullAccessKey][]int64, len(c.MailboxPerms))
	for _, p := range c.MailboxPerms {
		k := fullAccessKey{p.Identity, p.TrusteePrincipal, p.TrusteeMailbox}
		s.fullAccess[k] = append(s.fullAccess[k], p.ID)
	}
	s.filters = newFilterIndex(c)
	return s
}

// indexMailbox records the names m claims and the Send on Behalf grants it
// makes; the one place both a build and an overlay index a mailbox.
func indexMailbox(m *Mailbox, byAddress, bySignIn *claims[string], byAlias *claims[aliasKey], onBehalf map[grant]bool) {
	for _, a := range m.Addresses() {
		byAddress.add(a, m)
	}
	bySignIn.add(m.PrimarySmtpAddress, m)
	bySignIn.add(m.UserPrincipalName, m)
	if m.Alias != "" {
		byAlias.add(aliasKey{m.OrgID, strings.ToLower(m.Alias)}, m)
	}
	for _, t := range m.GrantSendOnBehalfTo {
		onBehalf[grant{trustee: t, identity: m.ID}] = true
	}
}

// Snapshot is an immutable view of the whole directory. The SMTP path
// reads it lock-free (a session loads one and keeps it for a whole check),
// so a session's decisions cost map lookups, not queries.
//
// A Snapshot is a base index built in one pass (NewSnapshot) and, after
// incremental changes (Apply), an overlay of the objects changed since:
// every lookup consults the overlay first and ignores the base's answer
// for an object the overlay replaced or removed, so that it answers
// exactly what a snapshot rebuilt from the same rows would (overlay.go
// has the design).
type Snapshot struct {
	*index
	ov *overlay // nil: the base is the whole truth

	// The merged Contents, built on first use (Contents).
	merged     sync.Once
	contentsOf Contents
}

// Contents returns the objects the snapshot was built from, in ID order.
// Callers must not modify them. After an incremental change the first call
// merges the base with the overlay, O(directory): the SMTP path uses the
// accessors that cost nothing (Organizations, Domains, AllAuthServers).
func (s *Snapshot) Contents() Contents {
	if s.ov == nil {
		return s.contents
	}
	s.merged.Do(func() { s.contentsOf = s.ov.merge(s.contents) })
	return s.contentsOf
}

// Position is the store's directory change log position the snapshot
// includes (Contents.Position).
func (s *Snapshot) Position() int64 {
	if s.ov != nil {
		return s.ov.position
	}
	return s.contents.Position
}

// Organizations returns every organization in ID order, without merging
// the rest of the contents.
func (s *Snapshot) Organizations() []*Organization {
	if s.ov != nil && s.ov.orgList != nil {
		return s.ov.orgList
	}
	return s.contents.Organizations
}

// Domains returns every accepted domain in ID order.
func (s *Snapshot) Domains() []*AcceptedDomain { return s.contents.Domains }

// AllAuthServers returns every organization's trusted token issuers, in
// ID order, enabled or not.
func (s *Snapshot) AllAuthServers() []*AuthServer { return s.contents.AuthServers }

// Organization returns the organization with the given ID, or nil.
func (s *Snapshot) Organization(id int64) *Organization {
	if s.ov != nil {
		if o, changed := s.ov.orgs[id]; changed {
			return o
		}
	}
	return s.orgs[id]
}

// Mailbox returns the mailbox with the given ID, or nil.
func (s *Snapshot) Mailbox(id int64) *Mailbox {
	if s.ov != nil {
		if m, changed := s.ov.mailboxes[id]; changed {
			return m
		}
	}
	return s.mailboxes[id]
}

// claimant answers a claims lookup through the overlay: the overlay's own
// claimant, or the base's highest claimant the overlay did not replace,
// whichever has the higher ID (the one a rebuild would keep).
func claimant[K comparable](s *Snapshot, base *claims[K], pick func(*overlay) *claims[K], k K) *Mailbox {
	b := base.top[k]
	if s.ov == nil {
		return b
	}
	best := pick(s.ov).top[k]
	if b != nil {
		if _, changed := s.ov.mailboxes[b.ID]; changed {
			b = nil
			sh := base.shadowed[k]
			for i := len(sh) - 1; i >= 0; i-- {
				if _, changed := s.ov.mailboxes[sh[i].ID]; !changed {
					b = sh[i]
					break
				}
			}
		}
	}
	if b != nil && (best == nil || b.ID > best.ID) {
		best = b
	}
	return best
}

// MailboxByAddress finds the mailbox that owns an address (primary or
// proxy); key must be lower case.
func (s *Snapshot) MailboxByAddress(key string) *Mailbox {
	return claimant(s, &s.byAddress, func(o *overlay) *claims[string] { return &o.byAddress }, key)
}

// MailboxBySignIn finds the mailbox whose UPN or primary address is name
// (any case), the names SMTP AUTH accepts.
func (s *Snapshot) MailboxBySignIn(name string) *Mailbox {
	return claimant(s, &s.bySignIn, func(o *overlay) *claims[string] { return &o.bySignIn },
		strings.ToLower(strings.TrimSpace(name)))
}

// MailboxByAlias finds an organization's mailbox by its Alias (any case).
func (s *Snapshot) MailboxByAlias(org int64, alias string) *Mailbox {
	return claimant(s, &s.byAlias, func(o *overlay) *claims[aliasKey] { return &o.byAlias },
		aliasKey{org, strings.ToLower(strings.TrimSpace(alias))})
}

// AcceptedDomain returns the accepted domain named exactly domain (lower
// case), or nil when no organization accepts it.
func (s *Snapshot) AcceptedDomain(domain string) *AcceptedDomain { return s.domains[domain] }

// AuthenticationPolicy returns the named policy of an organization, or nil.
func (s *Snapshot) AuthenticationPolicy(org int64, name string) *AuthenticationPolicy {
	if name == "" {
		return nil
	}
	return s.policies[policyKey{org, strings.ToLower(name)}]
}

// EffectiveAuthenticationPolicy is the policy that governs m: its own
// (Set-User -AuthenticationPolicy) wins over the organization default
// (Set-OrganizationConfig -DefaultAuthenticationPolicy). Nil when neither is set.
func (s *Snapshot) EffectiveAuthenticationPolicy(m *Mailbox) *AuthenticationPolicy {
	if p := s.AuthenticationPolicy(m.OrgID, m.AuthenticationPolicy); p != nil {
		return p
	}
	if o := s.Organization(m.OrgID); o != nil {
		return s.AuthenticationPolicy(o.ID, o.DefaultAuthenticationPolicy)
	}
	return nil
}

// HasSendAs reports whether trustee holds Send As on identity.
func (s *Snapshot) HasSendAs(trustee, identity int64) bool {
	g := grant{trustee, identity}
	if s.ov == nil {
		return len(s.sendAs[g]) > 0
	}
	if s.ov.sendAs[g] {
		return true
	}
	for _, id := range s.sendAs[g] {
		if _, changed := s.ov.perms[id]; !changed {
			return true
		}
	}
	return false
}

// HasSendOnBehalf reports whether identity lists trustee in GrantSendOnBehalfTo.
func (s *Snapshot) HasSendOnBehalf(trustee, identity int64) bool {
	g := grant{trustee, identity}
	if s.ov != nil {
		if _, changed := s.ov.mailboxes[identity]; changed {
			return s.ov.onBehalf[g]
		}
	}
	return s.onBehalf[g]
}

// OutboundConnectorFor returns the enabled outbound connector of org whose
// RecipientDomains cover domain most specifically, or nil to deliver by MX.
// Ties go to the older connector.
func (s *Snapshot) OutboundConnectorFor(org int64, domain string) *OutboundConnector {
	var best *OutboundConnector
	rank := 0
	for _, oc := range s.outbound {
		if oc.OrgID != org {
			continue
		}
		if r := oc.MatchRank(domain); r > rank {
			best, rank = oc, r
		}
	}
	return best
}

// AuthServers returns the organization's enabled trusted token issuers.
func (s *Snapshot) AuthServers(org int64) []*AuthServer {
	var out []*AuthServer
	for _, a := range s.contents.AuthServers {
		if a.OrgID == org && a.Enabled {
			out = append(out, a)
		}
	}
	return out
}

// ServicePrincipal returns the organization's service principal for an
// application ID, or nil.
func (s *Snapshot) ServicePrincipal(org int64, appID string) *ServicePrincipal {
	for _, p := range s.contents.Principals {
		if p.OrgID == org && strings.EqualFold(p.AppId, appID) {
			return p
		}
	}
	return nil
}

func (s *Snapshot) hasFullAccess(k fullAccessKey) bool {
	if s.ov == nil {
		return len(s.fullAccess[k]) > 0
	}
	if s.ov.fullAccess[k] {
		return true
	}
	for _, id := range s.fullAccess[k] {
		if _, changed := s.ov.mailboxPerms[id]; !changed {
			return true
		}
	}
	return false
}

// PrincipalHasFullAccess reports whether a service principal was granted
// FullAccess on a mailbox.
func (s *Snapshot) PrincipalHasFullAccess(principal, mailbox int64) bool {
	return s.hasFullAccess(fullAccessKey{mailbox: mailbox, principal: principal})
}

// MailboxHasFullAccess reports whether a mailbox's user was granted
// FullAccess on another mailbox (a delegate of a shared mailbox).
func (s *Snapshot) MailboxHasFullAccess(trustee, mailbox int64) bool {
	return s.hasFullAccess(fullAccessKey{mailbox: mailbox, trustee: trustee})
}

// OAuthApp returns the built-in issuer's app registration with an
// application ID, or nil.
func (s *Snapshot) OAuthApp(appID string) *OAuthApp {
	for _, a := range s.contents.OAuthApps {
		if a.AppId == appID {
			return a
		}
	}
	return nil
}

// DkimSigningConfig returns the DKIM configuration of a domain, or nil.
func (s *Snapshot) DkimSigningConfig(domain string) *DkimSigningConfig {
	return s.dkim[strings.ToLower(domain)]
}

// InboundConnectors returns every enabled inbound connector, in ID order.
func (s *Snapshot) InboundConnectors() []*InboundConnector { return s.enabled }

// LoggedInboundConnectors lists the enabled inbound connectors with
// protocol logging on (-ProtocolLoggingLevel Verbose); usually none, so
// that a connection costs one length check.
func (s *Snapshot) LoggedInboundConnectors() []*InboundConnector { return s.logged }
