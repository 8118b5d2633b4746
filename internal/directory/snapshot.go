package directory

import (
	"strings"
	"sync/atomic"
)

// Snapshot is an immutable, indexed view of the whole directory. The SMTP
// path reads it lock-free (the server swaps in a new one after every admin
// change), so a session's decisions cost map lookups, not queries.
type Snapshot struct {
	contents   Contents
	orgs       map[int64]*Organization
	domains    map[string]*AcceptedDomain // by domain name
	mailboxes  map[int64]*Mailbox
	byAddress  map[string]*Mailbox // primary and proxy addresses
	bySignIn   map[string]*Mailbox // UPN and primary address
	byAlias    map[aliasKey]*Mailbox
	policies   map[policyKey]*AuthenticationPolicy
	sendAs     map[grant]bool
	onBehalf   map[grant]bool
	enabled    []*InboundConnector
	logged     []*InboundConnector
	outbound   []*OutboundConnector
	dkim       map[string]*DkimSigningConfig // by domain
	fullAccess map[fullAccessKey]bool
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

// Contents is everything a Snapshot is built from, as the store loads it.
type Contents struct {
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
	s := &Snapshot{
		contents:  c,
		orgs:      make(map[int64]*Organization, len(c.Organizations)),
		domains:   make(map[string]*AcceptedDomain, len(c.Domains)),
		mailboxes: make(map[int64]*Mailbox, len(c.Mailboxes)),
		byAddress: make(map[string]*Mailbox, len(c.Mailboxes)),
		bySignIn:  make(map[string]*Mailbox, len(c.Mailboxes)),
		byAlias:   make(map[aliasKey]*Mailbox, len(c.Mailboxes)),
		policies:  make(map[policyKey]*AuthenticationPolicy, len(c.Policies)),
		sendAs:    make(map[grant]bool, len(c.Permissions)),
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
		for _, a := range m.Addresses() {
			s.byAddress[a] = m
		}
		s.bySignIn[m.PrimarySmtpAddress] = m
		s.bySignIn[m.UserPrincipalName] = m
		if m.Alias != "" {
			s.byAlias[aliasKey{m.OrgID, strings.ToLower(m.Alias)}] = m
		}
		for _, t := range m.GrantSendOnBehalfTo {
			s.onBehalf[grant{trustee: t, identity: m.ID}] = true
		}
	}
	for _, p := range c.Policies {
		s.policies[policyKey{p.OrgID, strings.ToLower(p.Name)}] = p
	}
	for _, p := range c.Permissions {
		s.sendAs[grant{trustee: p.Trustee, identity: p.Identity}] = true
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
	s.fullAccess = make(map[fullAccessKey]bool, len(c.MailboxPerms))
	for _, p := range c.MailboxPerms {
		s.fullAccess[fullAccessKey{p.Identity, p.TrusteePrincipal, p.TrusteeMailbox}] = true
	}
	s.filters = newFilterIndex(c)
	return s
}

// Contents returns the objects the snapshot was built from, in ID order.
// Callers must not modify them.
func (s *Snapshot) Contents() Contents { return s.contents }

// Organization returns the organization with the given ID, or nil.
func (s *Snapshot) Organization(id int64) *Organization { return s.orgs[id] }

// Mailbox returns the mailbox with the given ID, or nil.
func (s *Snapshot) Mailbox(id int64) *Mailbox { return s.mailboxes[id] }

// MailboxByAddress finds the mailbox that owns an address (primary or
// proxy); key must be lower case.
func (s *Snapshot) MailboxByAddress(key string) *Mailbox { return s.byAddress[key] }

// MailboxBySignIn finds the mailbox whose UPN or primary address is name
// (any case), the names SMTP AUTH accepts.
func (s *Snapshot) MailboxBySignIn(name string) *Mailbox {
	return s.bySignIn[strings.ToLower(strings.TrimSpace(name))]
}

// MailboxByAlias finds an organization's mailbox by its Alias (any case).
func (s *Snapshot) MailboxByAlias(org int64, alias string) *Mailbox {
	return s.byAlias[aliasKey{org, strings.ToLower(strings.TrimSpace(alias))}]
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
	if o := s.orgs[m.OrgID]; o != nil {
		return s.AuthenticationPolicy(o.ID, o.DefaultAuthenticationPolicy)
	}
	return nil
}

// HasSendAs reports whether trustee holds Send As on identity.
func (s *Snapshot) HasSendAs(trustee, identity int64) bool {
	return s.sendAs[grant{trustee, identity}]
}

// HasSendOnBehalf reports whether identity lists trustee in GrantSendOnBehalfTo.
func (s *Snapshot) HasSendOnBehalf(trustee, identity int64) bool {
	return s.onBehalf[grant{trustee, identity}]
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

// PrincipalHasFullAccess reports whether a service principal was granted
// FullAccess on a mailbox.
func (s *Snapshot) PrincipalHasFullAccess(principal, mailbox int64) bool {
	return s.fullAccess[fullAccessKey{mailbox: mailbox, principal: principal}]
}

// MailboxHasFullAccess reports whether a mailbox's user was granted
// FullAccess on another mailbox (a delegate of a shared mailbox).
func (s *Snapshot) MailboxHasFullAccess(trustee, mailbox int64) bool {
	return s.fullAccess[fullAccessKey{mailbox: mailbox, trustee: trustee}]
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

// Current holds the snapshot in force. Sessions load it once per decision;
// the admin service stores a new one after every change.
type Current struct{ p atomic.Pointer[Snapshot] }

// Load returns the snapshot in force.
func (c *Current) Load() *Snapshot { return c.p.Load() }

// Store makes s the snapshot in force.
func (c *Current) Store(s *Snapshot) { c.p.Store(s) }
