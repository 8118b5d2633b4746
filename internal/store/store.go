// Package store defines the one storage interface Postern's services use.
// The embedded implementation is store/sqlite; store/postgres serves
// several nodes sharing one database. No SQL lives outside the store
// packages.
//
// Durability contract: when Commit returns nil, the message, its Sent Items
// copy, every local delivery and every outbound queue item are on stable
// storage (fsync'ed); a crash at any later point loses none of them. Commit is
// the only place the SMTP path waits for the disk, and concurrent commits
// share one transaction (group commit) so throughput is not bound by the
// disk's fsync rate.
//
// Bodies: a message's body is read as a stream (MessageBody), never as one
// []byte, so that memory per message does not grow with its size. A
// submission hands the store a small body in memory, or the header fields
// Postern adds plus a spooled file that the store links (or copies) into
// its own body file, made durable before the commit that refers to it.
//
// Retention: a message's body is deleted as soon as nothing refers to it
// any more (no mailbox folder item and no queue item: relayed mail
// delivered or failed, mailbox removed); the message's metadata stays for
// message trace until PruneTrace removes it with its trace events.
package store

import (
	"context"
	"errors"
	"io"
	"strconv"
	"time"

	"postern.dev/postern/internal/directory"
	"postern.dev/postern/internal/mailnotify"
)

// Errors the admin service maps to messages naming the object.
var (
	ErrNotFound = errors.New("not found")
	ErrConflict = errors.New("already exists")
	// ErrInternal wraps every other failure of the storage itself (disk
	// full, I/O error, a corrupt file): the request was not at fault, and
	// the REST API answers 500 for it rather than 400.
	ErrInternal = errors.New("storage failure")
	// ErrTooBig refuses a message over the size it may have.
	ErrTooBig = errors.New("message too big")
	// ErrDefaultFolder refuses to rename or delete one of Exchange's
	// default folders.
	ErrDefaultFolder = errors.New("a default folder cannot be renamed or deleted")
	// ErrHasChildren refuses to delete a folder that has subfolders.
	ErrHasChildren = errors.New("the folder has subfolders")
)

// Store is Postern's storage.
type Store interface {
	// LoadDirectory reads every directory object, to build a Snapshot, in
	// one read transaction, with the change log position it includes
	// (Contents.Position).
	LoadDirectory(ctx context.Context) (directory.Contents, error)
	// DirectoryChanges lists the directory rows changed after the change
	// log position after (a snapshot's Position), each once, and the
	// position they run to. It reports All instead when the log no longer
	// reaches back to after, or when more than MaxDirectoryChanges rows
	// changed: the caller then reads the whole directory again.
	DirectoryChanges(ctx context.Context, after int64) (DirectoryChanges, error)
	// LoadDirectoryObjects reads the current state of the rows keys names,
	// in one read transaction: each row as it is, or nil in the Delta's
	// map when it does not exist. Every key must be Incremental; at most
	// MaxDirectoryChanges of them. The Delta's Position is the change log
	// position the read saw: a caller that learns of every change some
	// other way (DirectoryWatcher) may advance its snapshot to it; one that
	// reads the log must advance only to what DirectoryChanges listed.
	LoadDirectoryObjects(ctx context.Context, keys []directory.Key) (directory.Delta, error)

	// Save* insert an object when its ID is 0 (and set the ID), otherwise
	// update it. ErrConflict reports a name or address already in use.
	SaveOrganization(ctx context.Context, o *directory.Organization) error
	SaveDomain(ctx context.Context, d *directory.AcceptedDomain) error
	SaveMailbox(ctx context.Context, m *directory.Mailbox) error
	SavePolicy(ctx context.Context, p *directory.AuthenticationPolicy) error
	SavePermission(ctx context.Context, p *directory.RecipientPermission) error
	SaveConnector(ctx context.Context, c *directory.InboundConnector) error
	SaveOutboundConnector(ctx context.Context, c *directory.OutboundConnector) error
	SaveDkimSigningConfig(ctx context.Context, d *directory.DkimSigningConfig) error
	SaveAuthServer(ctx context.Context, a *directory.AuthServer) error
	SaveServicePrincipal(ctx context.Context, p *directory.ServicePrincipal) error
	SaveMailboxPermission(ctx context.Context, p *directory.MailboxPermission) error
	SaveOAuthApp(ctx context.Context, a *directory.OAuthApp) error
	// SaveOutboundSpamPolicy and SaveConnectionFilterPolicy store an
	// organization's one policy of each kind (keyed by OrgID).
	// SaveRestrictedSender records a mailbox's restriction, replacing the
	// one it had, and sets its ID; ErrNotFound when the mailbox is gone.
	SaveOutboundSpamPolicy(ctx context.Context, p *directory.OutboundSpamFilterPolicy) error
	SaveConnectionFilterPolicy(ctx context.Context, p *directory.ConnectionFilterPolicy) error
	SaveRestrictedSender(ctx context.Context, r *directory.RestrictedSender) error

	// Delete* remove an object and whatever only it referred to (a
	// mailbox's permissions, folders and items). ErrNotFound if absent.
	DeleteDomain(ctx context.Context, id int64) error
	DeleteMailbox(ctx context.Context, id int64) error
	DeletePolicy(ctx context.Context, id int64) error
	DeletePermission(ctx context.Context, id int64) error
	DeleteConnector(ctx context.Context, id int64) error
	DeleteOutboundConnector(ctx context.Context, id int64) error
	DeleteAuthServer(ctx context.Context, id int64) error
	DeleteServicePrincipal(ctx context.Context, id int64) error
	DeleteMailboxPermission(ctx context.Context, id int64) error
	DeleteOAuthApp(ctx context.Context, id int64) error

	// IssuerKeys lists the built-in issuer's signing keys, newest first;
	// SaveIssuerKey adds one and keeps only the newest keep keys.
	IssuerKeys(ctx context.Context) ([]IssuerKey, error)
	SaveIssuerKey(ctx context.Context, k IssuerKey, keep int) error

	// SmtpAuthClients sums authenticated submissions per sending mailbox,
	// TLS version and authentication protocol since a time.
	SmtpAuthClients(ctx context.Context, since time.Time) ([]SmtpAuthClientRow, error)

	// RecordSignIns adds counted sign-ins to the sign-in report (one upsert
	// per row; rows of mailboxes removed meanwhile are dropped);
	// SignInReport sums them per protocol, mailbox, actor, client address
	// and method.
	RecordSignIns(ctx context.Context, rows []SignIn) error
	SignInReport(ctx context.Context, q SignInQuery) ([]SignIn, error)

	// MailboxSize is the bytes in a mailbox's folders, from memory: it is
	// read at every RCPT TO to a local mailbox and at every submission, so
	// it never queries. The store keeps it current with its own writes
	// (commits, paced deliveries); writes by anything else (another
	// process, a node of a cluster) are seen within MailboxSizeMaxAge.
	MailboxSize(mailbox int64) int64

	// Commit durably stores an accepted message with all of its delivery
	// work, then returns; see the package comment.
	Commit(ctx context.Context, s *Submission) error
	// Arrivals counts the messages being received that will be committed
	// (Submission.Arrival), so that the group committer waits for them.
	Arrivals() *Arrivals

	// DeliverDue moves local deliveries whose NotBefore has passed (paced
	// messages) into their folders; it returns how many it moved.
	DeliverDue(ctx context.Context, now time.Time) (int, error)

	// RecipientHistory sums, per authenticated mailbox, the recipients of
	// messages it submitted since the given time (to rebuild the rolling
	// recipient counters after a restart).
	RecipientHistory(ctx context.Context, since time.Time) ([]RecipientCount, error)

	FolderStatistics(ctx context.Context, mailbox int64) ([]FolderStatistics, error)
	FolderItems(ctx context.Context, mailbox int64, folder string) ([]Item, error)
	QueueItems(ctx context.Context) ([]QueueItem, error)

	// Mail store access for IMAP4/POP3 (types in mail.go). Folders are
	// addressed by mailbox and folder ID together, so that a caller can
	// never reach another mailbox's folder by its ID; ErrNotFound when
	// the folder is not the mailbox's.
	//
	// MailFolders lists a mailbox's folders with their counts;
	// MailFolderByName finds one (names compare without case, as
	// Exchange's do).
	MailFolders(ctx context.Context, mailbox int64) ([]MailFolder, error)
	MailFolderByName(ctx context.Context, mailbox int64, name string) (MailFolder, error)
	// MailUIDs lists a folder's UIDs, ascending, and its state, read in
	// one snapshot: what an IMAP SELECT starts from.
	MailUIDs(ctx context.Context, mailbox, folder int64) (uids []uint32, state MailFolder, err error)
	// MailItems lists the items whose UIDs fall in the given ranges (all
	// of them for nil), by UID.
	MailItems(ctx context.Context, mailbox, folder int64, uids []UIDRange) ([]MailItem, error)
	// MailChanges reports what changed since a MODSEQ; it costs one
	// indexed read when nothing did.
	MailChanges(ctx context.Context, mailbox, folder int64, since uint64) (MailChanges, error)
	// AppendMail stores a message into a folder (ErrTooBig over MaxSize).
	AppendMail(ctx context.Context, a AppendMail) (AppendResult, error)
	// SetMailFlags sets, adds or removes flags on the items with the given
	// UIDs, bumping their MODSEQ (items whose flags do not change keep it).
	SetMailFlags(ctx context.Context, mailbox, folder int64, uids []UIDRange, op FlagOp, flags []string) (FlagResult, error)
	// CopyMail copies items into another folder of the same mailbox (the
	// copies share the stored message); MoveMail copies then removes
	// them from the source.
	CopyMail(ctx context.Context, mailbox, folder int64, uids []UIDRange, dest int64) (CopyResult, error)
	MoveMail(ctx context.Context, mailbox, folder int64, uids []UIDRange, dest int64) (CopyResult, ExpungeResult, error)
	// ExpungeMail removes the items flagged \Deleted (only those with the
	// given UIDs, unless uids is nil) and releases the bodies nothing
	// refers to any more.
	ExpungeMail(ctx context.Context, mailbox, folder int64, uids []UIDRange) (ExpungeResult, error)
	// CreateMailFolder, RenameMailFolder (with its subfolders) and
	// DeleteMailFolder manage a mailbox's own folders; Exchange's default
	// folders cannot be renamed or deleted (ErrDefaultFolder).
	CreateMailFolder(ctx context.Context, mailbox int64, name string) (MailFolder, error)
	RenameMailFolder(ctx context.Context, mailbox int64, name, newName string) error
	DeleteMailFolder(ctx context.Context, mailbox int64, name string) error
	SubscribeMailFolder(ctx context.Context, mailbox int64, name string, subscribed bool) error
	// Watch subscribes to changes of a mailbox's folders: a signal after
	// each committed transaction that touched one (Commit, DeliverDue and
	// the methods above).
	Watch(mailbox int64) *mailnotify.Subscription

	// ClaimOutbound leases up to limit outbound items that are due at now
	// and not leased by anyone, until now+lease, for node. A lease keeps
	// every other worker off the item; it ends with RecordOutcomes, when it
	// expires, or with ReleaseLeases.
	ClaimOutbound(ctx context.Context, now time.Time, lease time.Duration, node string, limit int) ([]OutboundItem, error)
	// ReleaseLeases frees every lease node holds: at start, its leases are
	// left over from a crash, and their deliveries must be tried again.
	ReleaseLeases(ctx context.Context, node string) error
	// MessageBody opens a stored message as it is delivered, headers
	// included; the caller closes it. ErrNotFound when the message does not
	// exist or its body was already released (nothing refers to it).
	MessageBody(ctx context.Context, message int64) (io.ReadCloser, error)
	// RecordOutcomes applies delivery outcomes and commits notices (DSNs)
	// in one durable transaction: a failed item is never removed without
	// its non-delivery report being stored, and the reverse.
	RecordOutcomes(ctx context.Context, outcomes []Outcome, notices []*Submission) error
	// RetryNow makes the given outbound items due at now (Retry-Queue).
	RetryNow(ctx context.Context, ids []int64, now time.Time) (int, error)
	// TraceEvents lists a message's trace events in order: its Receive
	// (ReceiveEvent), then those recorded. None when the message is gone.
	TraceEvents(ctx context.Context, message int64) ([]TraceEvent, error)
	// MessageTrace finds messages and the state of each recipient.
	MessageTrace(ctx context.Context, q TraceQuery) ([]TracedMessage, error)
	// LogConnections appends to the connection log; ConnectionLog reads it.
	LogConnections(ctx context.Context, events []ConnectionEvent) error
	ConnectionLog(ctx context.Context, q ConnectionQuery) ([]ConnectionEvent, error)
	// ReceiveConnectorLevels reads the listeners' protocol logging levels
	// (Set-ReceiveConnector), by identity; SetReceiveConnectorLevel
	// stores one.
	ReceiveConnectorLevels(ctx context.Context) (map[string]string, error)
	SetReceiveConnectorLevel(ctx context.Context, identity, level string) error
	// AppendAudit records an admin change; SearchAudit reads them back.
	AppendAudit(ctx context.Context, e AuditEntry) error
	SearchAudit(ctx context.Context, q AuditQuery) ([]AuditEntry, error)
	// SaveAPIKey adds an API key (ErrConflict when the organization has
	// one of that name); APIKeys lists an organization's keys;
	// APIKeyByHash finds the key with a hash (ErrNotFound); DeleteAPIKey
	// removes one (ErrNotFound); TouchAPIKey records its last use.
	SaveAPIKey(ctx context.Context, k *APIKey) error
	APIKeys(ctx context.Context, orgID int64) ([]APIKey, error)
	APIKeyByHash(ctx context.Context, hash []byte) (*APIKey, error)
	DeleteAPIKey(ctx context.Context, orgID, id int64) error
	TouchAPIKey(ctx context.Context, id int64, at time.Time) error
	// RoleGroupMembers lists an organization's role group memberships;
	// MailboxRoleGroups the role groups one mailbox is in;
	// AddRoleGroupMember adds one (ErrConflict when it exists);
	// RemoveRoleGroupMember removes one (ErrNotFound). A membership goes
	// with its mailbox.
	RoleGroupMembers(ctx context.Context, orgID int64) ([]RoleGroupMember, error)
	MailboxRoleGroups(ctx context.Context, mailboxID int64) ([]string, error)
	AddRoleGroupMember(ctx context.Context, m RoleGroupMember) error
	RemoveRoleGroupMember(ctx context.Context, m RoleGroupMember) error
	// PruneTrace deletes trace events and connection log entries older
	// than a time (the trace retention), and the messages received before
	// it that nothing refers to any more. SQLite takes events in the
	// order they were recorded, up to the first one not yet due: one
	// recorded late with an older time waits for those before it. It
	// works in small transactions so that it never holds the writer for
	// long.
	PruneTrace(ctx context.Context, before time.Time) (int64, error)
	// ReclaimSpace gives space freed by deletions back to the file system.
	ReclaimSpace(ctx context.Context) error

	Ephemeral

	Close() error
}

// Ephemeral is short-lived state a front end keeps in the store so that
// every node sharing it sees the same: the admin center's sessions,
// one-time sign-in links and OpenID Connect sign-ins in progress. A record
// is a value under (kind, key) until it expires; key is a digest of the
// secret the browser holds (never the secret itself, so that a copy of the
// database signs nobody in). An expired record is never returned.
type Ephemeral interface {
	// PutEphemeral writes a record, replacing one under the same key.
	// When max > 0 and the kind then holds more than max records, the
	// expired ones and then those nearest to expiry are removed (never
	// the one just written), so that a flood of sign-ins cannot grow the
	// store without limit.
	PutEphemeral(ctx context.Context, kind string, key, value []byte, expires time.Time, max int) error
	// GetEphemeral reads a live record (ErrNotFound when there is none).
	GetEphemeral(ctx context.Context, kind string, key []byte, now time.Time) ([]byte, error)
	// TakeEphemeral reads and removes a record at once, for what may be
	// used once: of two nodes taking the same key, one gets it.
	// ErrNotFound when there is none or it had expired.
	TakeEphemeral(ctx context.Context, kind string, key []byte, now time.Time) ([]byte, error)
	// DeleteEphemeral removes a record, if there is one.
	DeleteEphemeral(ctx context.Context, kind string, key []byte) error
	// SweepEphemeral removes the records expired at now.
	SweepEphemeral(ctx context.Context, now time.Time) (int64, error)
}

// Server is a Store as a running server uses it: with the readiness
// probe (/readyz), the outbound queue's backlog per next hop (metrics),
// and the sweep of bodies a crash left behind, run at start.
type Server interface {
	Store
	// Probe commits a tiny write and reads it back.
	Probe(ctx context.Context) error
	// QueueStats returns the outbound backlog of the n deepest next hops,
	// the rest folded into one entry named "other".
	QueueStats(ctx context.Context, n int) ([]HopStats, error)
	// SweepBodies removes stored bodies no message refers to (a crash
	// between storing a body and committing its message).
	SweepBodies(ctx context.Context) (int, error)
}

// DirectoryWatcher is implemented by a store several nodes share
// (PostgreSQL): WatchDirectory calls changed after each committed change to
// the directory made by any node or process, within a second of its commit,
// and also each time it (re)connects to the database, since changes made
// while it was not listening went unheard; changed then receives all=true.
// It runs until ctx ends, reconnecting with backoff when the connection
// fails. The SQLite store has no such method: one node reads its own changes.
//
// keys names the rows changed, for the tables a snapshot applies row by
// row (directory.Key.Incremental), or a whole table (ID 0) for the others.
type DirectoryWatcher interface {
	WatchDirectory(ctx context.Context, changed func(all bool, keys []directory.Key))
}

// MaxDirectoryChanges caps the rows one incremental directory update
// reads: past it, reading the whole directory once is cheaper than
// reading row by row, and the caller's memory stays bounded.
const MaxDirectoryChanges = 1000

// DirectoryChanges is what changed in the directory after a position.
type DirectoryChanges struct {
	// Keys are the changed rows, each once, in the order first changed.
	Keys []directory.Key
	// Position is the change log position Keys run to.
	Position int64
	// All: the changes cannot be listed; read the whole directory.
	All bool
}

// MailboxChangeRelay is implemented by a store several nodes share
// (PostgreSQL): RelayMailboxChanges announces the mailboxes whose folders
// this node's commits changed to the other nodes, and wakes this node's
// watchers (store.Watch: IMAP IDLE) for the changes the others announce,
// until ctx ends. The SQLite store has no such method: one node wakes its
// own watchers.
type MailboxChangeRelay interface {
	RelayMailboxChanges(ctx context.Context)
}

// HopStats is the outbound queue's backlog for one next hop.
type HopStats struct {
	NextHop string
	Depth   int
	Oldest  time.Time
}

// Submission is one accepted message and its delivery work.
type Submission struct {
	OrgID        int64
	MessageID    string // the Message-ID header's value, without <>
	Subject      string
	ReceivedAt   time.Time
	EnvelopeFrom string
	AuthMailbox  int64 // 0 for anonymous submissions
	// InboundConnector names the connector that admitted anonymous mail.
	InboundConnector string
	ClientIP         string
	// SessionID is the SMTP session that submitted it ("" for messages
	// Postern generates): the message trace shows it, and it leads to the
	// session's log lines.
	SessionID string
	// Body is the message as it will be delivered, headers included; or,
	// with BodyFile, its first part (the header fields Postern adds).
	Body []byte
	// BodyFile, when set, is a file holding the rest of the message (a
	// spooled upload). Commit links it, or copies it when it cannot, into
	// the store's own body file and makes that durable before the commit
	// that refers to it; the caller may remove BodyFile once Commit
	// returns, and may commit the same file again (one message committed
	// once per organization).
	BodyFile string
	// Arrival, when set, is the message's count in Arrivals while it was
	// received: Commit ends it once the message is in the group
	// committer's queue.
	Arrival    *Arrival
	Recipients int // envelope recipients, for the recipient rate limit
	// ExternalRecipients are those of Recipients outside the sender's
	// organization, for the outbound spam policy's hourly limits.
	ExternalRecipients int
	// Events are trace events recorded with the message after Receive (an
	// outbound spam policy alert).
	Events []TraceEvent
	// AuthProtocol ("Basic" or "OAuth") and TLSVersion ("TLS1.3") of an
	// authenticated submission, for the SMTP AUTH clients report.
	AuthProtocol string
	TLSVersion   string
	// SentItems is the mailbox whose Sent Items folder gets a copy, 0 for none.
	SentItems int64
	Local     []LocalDelivery
	Remote    []RemoteDelivery

	// ID is set by Commit.
	ID int64
}

// LocalDelivery puts a copy into a mailbox folder, at NotBefore at the
// earliest (message-rate pacing); a zero NotBefore delivers at once.
type LocalDelivery struct {
	Mailbox   int64
	Folder    string
	Recipient string
	NotBefore time.Time
}

// RemoteDelivery queues a copy for an outside recipient.
type RemoteDelivery struct {
	Recipient string
	NotBefore time.Time
}

// RecipientCount is one mailbox's recipients submitted at a time.
type RecipientCount struct {
	Mailbox    int64
	At         time.Time
	Recipients int
	// External are those of Recipients outside the sender's organization.
	External int
}

// FolderStatistics is one row of Get-MailboxFolderStatistics.
type FolderStatistics struct {
	Name          string
	FolderPath    string
	FolderType    string
	ItemsInFolder int
	FolderSize    int64
}

// Item is a message in a folder; MessageBody(Message) reads it.
type Item struct {
	ID         int64
	Message    int64
	MessageID  string
	Subject    string
	From       string
	ReceivedAt time.Time
	Size       int64
}

// QueueItem is one recipient's copy waiting in a queue: a paced local
// delivery or an outbound one.
type QueueItem struct {
	ID          int64
	Message     int64
	MessageID   string
	Subject     string
	FromAddress string
	Recipient   string
	Local       bool
	NotBefore   time.Time
	Attempts    int
	LastError   string
	Size        int64
	ReceivedAt  time.Time
	// LeasedUntil is set while a delivery worker holds the item.
	LeasedUntil time.Time
	OrgID       int64
}

// OutboundItem is one outside recipient's copy, leased for delivery.
type OutboundItem struct {
	QueueID       int64
	Message       int64
	OrgID         int64
	MessageID     string
	Subject       string
	EnvelopeFrom  string // "" for a notification (null sender)
	Recipient     string
	Attempts      int
	ReceivedAt    time.Time
	DelayNotified bool
	Size          int64
}

// IssuerKey is a signing key of the built-in OAuth issuer.
type IssuerKey struct {
	Kid           string
	PrivateSealed string // sealed PKCS#8 PEM
	Created       time.Time
}

// SmtpAuthClientRow is one line of the SMTP AUTH clients report source.
type SmtpAuthClientRow struct {
	Mailbox      int64
	TLSVersion   string
	AuthProtocol string
	Messages     int64
	Last         time.Time
}

// MailboxSizeMaxAge bounds how stale MailboxSize may be for writes the
// store did not make itself.
const MailboxSizeMaxAge = 5 * time.Second

// SignIn is a row of the sign-in report: how often a mailbox was opened
// over a protocol, from an address, with a method, on one UTC day.
type SignIn struct {
	OrgID    int64
	Protocol string // SMTP, IMAP4, POP3
	Mailbox  int64
	// Actor is who signed in: the primary address of the mailbox whose
	// credentials were used (the mailbox itself, or a delegate), or the
	// application ID of an app-only token.
	Actor    string
	ClientIP string
	Method   string // Basic, OAuth
	Count    int64
	LastSeen time.Time
}

// SignInQuery selects the sign-in report's rows: an organization, the UTC
// days from Start to End, and optionally a protocol and a mailbox.
type SignInQuery struct {
	OrgID      int64
	Protocol   string
	Mailbox    int64
	Start, End time.Time
	Limit      int
}

// Trace events (Exchange message tracking's EventId names).
const (
	// EventReceive is a message accepted from a client. It is not stored
	// as an event: everything it says is in the message's own row (its
	// time, client, sign-in and connector), so TraceEvents makes it from
	// that row (ReceiveEvent). A row and its three index entries less for
	// every message committed (BENCHMARKS.md, "Ninth run"). Databases written
	// before 2026-12-04 hold stored ones; TraceEvents then shows those.
	EventReceive = "Receive"
	EventDeliver = "Deliver" // filed into a local mailbox
	EventSend    = "Send"    // accepted by the next hop
	EventDefer   = "Defer"   // a temporary failure; will be retried
	EventFail    = "Fail"    // a permanent failure, or given up
	EventDSN     = "DSN"     // a delivery status notification went to the sender
	EventDrop    = "Drop"    // removed from the queue by an admin, or a notification nobody could read, without NDR
	// EventAgentInfo records a policy's verdict on an accepted message (an
	// outbound spam policy alert), as Exchange's AGENTINFO entries do.
	EventAgentInfo = "AgentInfo"
)

// ReceiveEvent is a message's Receive event, made from its row: received
// at at, from clientIP, signed in as authMailbox (0: anonymous), through
// connector ("" for none). A message Postern made itself (a DSN) has no
// client.
func ReceiveEvent(at time.Time, clientIP string, authMailbox int64, connector string) TraceEvent {
	d := "client " + clientIP
	switch {
	case authMailbox != 0:
		d += ", SMTP AUTH mailbox " + strconv.FormatInt(authMailbox, 10)
	case connector != "":
		d += ", inbound connector " + connector
	case clientIP == "":
		d = "generated by Postern"
	}
	return TraceEvent{At: at, Event: EventReceive, Detail: d}
}

// WithReceive puts receive in front of a message's stored events, unless
// they hold a Receive of their own (stored before it was made from the
// message's row).
func WithReceive(receive TraceEvent, stored []TraceEvent) []TraceEvent {
	for _, e := range stored {
		if e.Event == EventReceive {
			return stored
		}
	}
	return append([]TraceEvent{receive}, stored...)
}

// Outcome is what happened to one queue item, or, with QueueID 0, an event
// to record without touching the queue (EventDSN). Send, Fail and Drop
// remove the item; Defer reschedules it at NextAttempt and ends its lease.
type Outcome struct {
	QueueID    int64
	Message    int64
	Recipient  string
	Event      string
	Detail     string // the remote reply or the local cause
	RemoteHost string
	At         time.Time
	// Defer only.
	NextAttempt   time.Time
	DelayNotified bool
}

// TraceQuery selects messages for Get-MessageTrace. Empty fields match
// everything; Sender and Recipient may contain * wildcards.
type TraceQuery struct {
	OrgID             int64
	Sender, Recipient string
	Start, End        time.Time
	MessageID         string // the Internet Message-ID, without <>
	Message           int64  // Postern's ID (MessageTraceId)
	FromIP            string
	Subject           string // contained in the subject
	Limit             int
}

// TracedMessage is a message with what happened to each recipient.
type TracedMessage struct {
	Message      int64
	MessageID    string
	Subject      string
	Sender       string
	ClientIP     string
	ReceivedAt   time.Time
	Size         int64
	AuthMailbox  int64
	AuthProtocol string
	TLSVersion   string
	Connector    string
	SessionID    string
	Recipients   []TracedRecipient
}

// TracedRecipient is one recipient's latest state.
type TracedRecipient struct {
	Address    string
	LastEvent  string // "" while it waits untried in the queue
	Detail     string
	RemoteHost string
	Queued     bool
}

// AuditEntry is one admin change (Search-AdminAuditLog).
type AuditEntry struct {
	OrgID      int64
	At         time.Time
	Caller     string
	Cmdlet     string
	Parameters string
	Object     string
	Succeeded  bool
	Error      string
}

// APIKey is a REST API sign-in: an organization, a role, and the SHA-256
// of the secret key.
type APIKey struct {
	ID       int64
	OrgID    int64
	Name     string
	Role     string
	Hash     []byte
	Prefix   string
	Created  time.Time
	LastUsed time.Time
	// Expires is when the key stops signing in; zero: never.
	Expires time.Time
}

// RoleGroupMember is a mailbox's membership of an admin role group
// (Add-RoleGroupMember), which lets it sign in to the web admin center.
type RoleGroupMember struct {
	OrgID     int64
	Role      string
	MailboxID int64
}

// AuditQuery selects audit entries, newest first.
type AuditQuery struct {
	OrgID      int64
	Cmdlets    []string
	Object     string
	Start, End time.Time
	Limit      int
}

// ConnectionEvent is a refusal before acceptance.
type ConnectionEvent struct {
	At        time.Time
	ClientIP  string
	Role      string // Submission, Submissions, MX
	Event     string // AuthFailed, MailRejected, RcptRejected, DataRejected
	SignIn    string // the user name an AUTH named
	Sender    string
	Recipient string
	Reply     string
	Detail    string
}

// ConnectionQuery selects connection log entries.
type ConnectionQuery struct {
	Start, End time.Time
	ClientIP   string
	Limit      int
}

// TraceEvent is one recorded step of a message.
type TraceEvent struct {
	At         time.Time
	Event      string
	Recipient  string
	Detail     string
	RemoteHost string
}

// Folders every mailbox has, with Exchange's names and types
// (Get-MailboxFolderStatistics).
var DefaultFolders = []struct{ Name, Type string }{
	{"Top of Information Store", "Root"},
	{"Inbox", "Inbox"},
	{"Sent Items", "SentItems"},
	{"Drafts", "Drafts"},
	{"Deleted Items", "DeletedItems"},
	{"Junk Email", "JunkEmail"},
	{"Outbox", "Outbox"},
	{"Archive", "Archive"},
}

// Folder names Postern delivers into.
const (
	Inbox     = "Inbox"
	SentItems = "Sent Items"
	JunkEmail = "Junk Email"
)
