// Package directory holds Postern's directory objects — organizations,
// accepted domains, mailboxes, permissions and authentication policies — and
// Snapshot, an immutable in-memory view of all of them that the SMTP path
// reads without touching the store.
//
// Object and property names are Exchange Online's (Set-TransportConfig,
// Set-CASMailbox, Set-Mailbox, Add-RecipientPermission, New-AuthenticationPolicy)
// so that a reader who knows the cmdlet finds the field that implements it.
//
// # Incremental changes (issue 14)
//
// A change to the directory costs O(changed rows) on every node, whatever
// the directory's size:
//
//   - The store logs every changed row as a Key (table, row ID), by
//     triggers, cascades included (store.DirectoryChanges), and reads the
//     current state of given rows (store.LoadDirectoryObjects) as a Delta,
//     a removed row as nil. The node that made a change reads the log after
//     its snapshot's Position (admin.Service.change); the other nodes sharing
//     a PostgreSQL store get the keys in the change notifications (the log
//     alone could miss a change whose sequence value committed late).
//   - Snapshot.Apply returns a new Snapshot: the same base index, and an
//     overlay holding the changed rows with their own small indexes. Lookups
//     consult the overlay, then the base, ignoring a base answer for a row
//     the overlay replaced or removed; where several mailboxes claim one
//     name, the highest ID wins as in a one-pass build, and the base keeps
//     the runners-up so that hiding the winner finds the next (claims). The
//     answers are those of NewSnapshot over the same rows: TestApplyMatchesRebuild
//     checks every lookup method against a rebuild over random change
//     sequences, and the store suite does the same through both stores.
//   - The overlay is immutable too, copied on each Apply (O(overlay)); once
//     it holds 64 + n/64 rows, Current folds it into a new base in the
//     background (NewSnapshot, O(n)) and replays the deltas applied
//     meanwhile, so the O(n) rebuild is paid once per O(n) changed rows and
//     never by the changing admin or a notified node.
//   - Only the tables whose rows index independently are applied row by
//     row: organizations, mailboxes, recipient and mailbox permissions,
//     restricted senders (Key.Incremental) — New-, Set-, Remove-Mailbox,
//     Set-CASMailbox, Add-RecipientPermission, Set-TransportConfig. A change
//     to the others (accepted domains, policies, connectors, OAuth objects,
//     filter policies: rare and small), more than store.MaxDirectoryChanges
//     rows at once, a log pruned past, or a reconnect read everything again.
//   - Ordering: changes, full reads and fold installs go through Current
//     under one lock, and each node applies its changes in one goroutine
//     under the admin service's lock, reading rows after taking it, so an
//     older read never replaces a newer one; a fold whose base a full read
//     replaced meanwhile is dropped.
//   - Contents() merges the base with the overlay on first use (O(n), once
//     per snapshot, for the admin's listings); the SMTP path uses the
//     accessors that never merge (Organizations, Domains, AllAuthServers).
package directory

import "time"

// Defaults from Exchange Online (reference sections 4.1 and 4.5).
const (
	DefaultRecipientLimits = 500
	MaxRecipientLimits     = 1000
	DefaultMaxSendSize     = 35 << 20  // 35 MB
	DefaultMaxReceiveSize  = 36 << 20  // 36 MB
	MaxMessageSize         = 150 << 20 // the platform maximum, advertised as SIZE 157286400
	RecipientRateLimit     = 10000     // recipients per rolling 24 hours
	MessageRateLimit       = 30        // messages per minute, paced
	ConcurrentConnections  = 3         // authenticated connections per mailbox

	// Mailbox quotas of Exchange Online's default mailbox plans (Set-Mailbox
	// -IssueWarningQuota, -ProhibitSendQuota, -ProhibitSendReceiveQuota).
	DefaultIssueWarningQuota        = 98 << 30
	DefaultProhibitSendQuota        = 99 << 30
	DefaultProhibitSendReceiveQuota = 100 << 30
	// Unlimited is a quota's value when it is Unlimited. Zero, so that a
	// mailbox made without quotas is never refused for its size.
	Unlimited = 0

	// DefaultCASMailboxPlan names the organization's one CAS mailbox plan.
	// Exchange Online has one per license (ExchangeOnlineEnterprise,
	// ExchangeOnline, ExchangeOnlineDeskless...); Postern has no licenses
	// and keeps the one most organizations use.
	DefaultCASMailboxPlan = "ExchangeOnlineEnterprise"
)

// Organization is a tenant. Its settings are those of Exchange's
// Get-TransportConfig and Get-OrganizationConfig.
type Organization struct {
	ID   int64
	Name string
	GUID string
	// SmtpClientAuthenticationDisabled (Set-TransportConfig): true, the
	// default for organizations created after January 2020, turns SMTP AUTH
	// off for every mailbox whose own setting is $null.
	SmtpClientAuthenticationDisabled bool
	// SecurityDefaultsEnabled (Set-OrganizationConfig) stands in for Entra ID
	// security defaults, which block SMTP AUTH for everyone.
	SecurityDefaultsEnabled bool
	// DefaultAuthenticationPolicy (Set-OrganizationConfig) names the policy
	// that applies to users without one of their own; empty for none.
	DefaultAuthenticationPolicy string
	// RejectDirectSend (Set-OrganizationConfig) refuses anonymous mail whose
	// envelope sender is in an accepted domain, from a client that matches
	// no IP- or certificate-based inbound connector (5.7.68).
	RejectDirectSend bool
	// SmtpBasicAuthDisabled (Set-TransportConfig, Postern's name for the
	// switch Microsoft has not documented yet) turns Basic authentication
	// (LOGIN, PLAIN) off for SMTP in the whole organization, as Exchange
	// Online's retirement does: 550 5.7.30. OAuth is unaffected.
	SmtpBasicAuthDisabled bool
	// MaxRecipientEnvelopeLimit (Set-TransportConfig) caps the recipients
	// of one anonymous message to the organization; 0 is Exchange Online's
	// Unlimited, which means the organizational limit of 1000.
	MaxRecipientEnvelopeLimit int
	// AllowLegacyTLSClients (Set-TransportConfig) lets the organization's
	// mailboxes use SMTP AUTH on the legacy listener (--submission-legacy,
	// Exchange Online's smtp-legacy.office365.com), where TLS 1.0 and 1.1
	// are negotiated. Off by default; it never weakens the other listeners.
	AllowLegacyTLSClients bool
	// CASMailboxPlanImapEnabled and CASMailboxPlanPopEnabled are the
	// organization's CAS mailbox plan (Set-CASMailboxPlan -ImapEnabled
	// -PopEnabled): the ImapEnabled and PopEnabled a new mailbox starts
	// with. Exchange's default is $true for both.
	CASMailboxPlanImapEnabled bool
	CASMailboxPlanPopEnabled  bool
	WhenCreated               time.Time
}

// DomainType of an accepted domain (Set-AcceptedDomain -DomainType).
type DomainType string

const (
	// Authoritative: Postern hosts every address of the domain; mail for an
	// unknown one is refused (DBEB, 5.1.10).
	Authoritative DomainType = "Authoritative"
	// InternalRelay: some addresses live elsewhere; mail for unknown ones is
	// routed out rather than refused.
	InternalRelay DomainType = "InternalRelay"
)

// AcceptedDomain is a domain the organization receives and sends mail for.
type AcceptedDomain struct {
	ID          int64
	OrgID       int64
	Name        string
	DomainName  string // lower case
	DomainType  DomainType
	Default     bool
	WhenCreated time.Time
}

// RecipientTypeDetails of a mailbox.
type RecipientTypeDetails string

const (
	UserMailbox   RecipientTypeDetails = "UserMailbox"
	SharedMailbox RecipientTypeDetails = "SharedMailbox"
)

// Mailbox is a mailbox with its Set-Mailbox and Set-CASMailbox properties.
type Mailbox struct {
	ID          int64
	OrgID       int64
	GUID        string // ExchangeGuid
	Name        string
	DisplayName string
	Alias       string
	// PrimarySmtpAddress and UserPrincipalName are lower case. The UPN is
	// the sign-in name; Postern also accepts the primary address.
	PrimarySmtpAddress string
	UserPrincipalName  string
	// EmailAddresses are the extra (proxy) addresses, lower case, without
	// the primary one.
	EmailAddresses []string
	Type           RecipientTypeDetails
	// PasswordHash is an argon2id PHC string; empty for mailboxes that cannot
	// sign in (shared mailboxes).
	PasswordHash string
	// SmtpClientAuthenticationDisabled (Set-CASMailbox): nil ($null)
	// inherits the organization's setting; true/false overrides it.
	SmtpClientAuthenticationDisabled *bool
	// ImapEnabled and PopEnabled (Set-CASMailbox) allow IMAP4 and POP3
	// access to the mailbox; a new mailbox takes them from the
	// organization's CAS mailbox plan.
	ImapEnabled bool
	PopEnabled  bool
	// AuthenticationPolicy (Set-User) names the user's own policy; it wins
	// over the organization default. Empty for none.
	AuthenticationPolicy string
	RecipientLimits      int
	MaxSendSize          int64
	MaxReceiveSize       int64
	// IssueWarningQuota, ProhibitSendQuota and ProhibitSendReceiveQuota
	// (Set-Mailbox) are byte counts, or Unlimited. Over ProhibitSendQuota
	// the mailbox cannot submit (554 5.2.2); over ProhibitSendReceiveQuota
	// it receives nothing either (552 5.2.2 at RCPT). IssueWarningQuota is
	// shown only: Postern sends no warning message.
	IssueWarningQuota        int64
	ProhibitSendQuota        int64
	ProhibitSendReceiveQuota int64
	// GrantSendOnBehalfTo lists the mailboxes (by ID) that may send on
	// behalf of this one.
	GrantSendOnBehalfTo []int64
	WhenCreated         time.Time
	// TokensValidFrom (Set-User -STSRefreshTokensValidFrom): an OAuth
	// token issued before it no longer signs in to the mailbox. Zero for
	// none.
	TokensValidFrom time.Time
}

// Addresses returns the primary address followed by the proxy addresses.
func (m *Mailbox) Addresses() []string {
	return append([]string{m.PrimarySmtpAddress}, m.EmailAddresses...)
}

// AuthenticationPolicy is New-AuthenticationPolicy's object. The switches of
// the protocols Postern serves matter: a policy without one blocks Basic
// authentication for that protocol.
type AuthenticationPolicy struct {
	ID                 int64
	OrgID              int64
	Name               string
	AllowBasicAuthSmtp bool
	AllowBasicAuthImap bool
	AllowBasicAuthPop  bool
	WhenCreated        time.Time
}

// OverQuota reports whether a mailbox of size bytes has reached quota
// (a byte count, or Unlimited).
func OverQuota(size, quota int64) bool {
	return quota != Unlimited && size >= quota
}

// RecipientPermission is an Add-RecipientPermission grant: Trustee may send
// as Identity. AccessRights is always SendAs, the only value Exchange knows.
type RecipientPermission struct {
	ID       int64
	OrgID    int64
	Identity int64 // the mailbox sent as
	Trustee  int64 // the mailbox granted the right
}
