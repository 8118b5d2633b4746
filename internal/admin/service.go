// Package admin is Postern's one admin service: every change to the
// directory goes through it, whichever front end asked (the admin socket
// with the CLI and shell on it, the REST API, the demo's setup).
// Validation, defaults, the role check, the admin audit log and the error
// messages admins see live here once.
//
// Errors name the object and the problem in Exchange's words, e.g.
// "The operation couldn't be performed because object 'x' couldn't be found."
//
// # Adding a cmdlet
//
// A cmdlet is one declaration: a cmdlet.Spec in one of the spec lists
// (cmdlets.go, cmdlets_*.go), registered by Cmdlets through register. The
// Spec carries, besides its name, synopsis, parameters and Run:
//
//   - Output: the TypeName of the objects it returns, or cmdlet.NoOutput.
//     The REST API's description takes the type's schema from
//     restapi's objectTypes, which must then list it.
//   - Access: cmdlet.ReadAccess (every role group), RecipientAccess
//     (Recipient Management and Organization Management),
//     OrganizationAccess (Organization Management) or ServerAccess (the
//     server's administrator only); see Role.Allows.
//   - REST: where the REST API serves it besides /api/v1/cmdlets/{name}:
//     cmdletOnly, a cmdlet.Route{Op: cmdlet.RouteList, Path: ...,
//     Description: ...} for the Get- cmdlet that owns a resource, or
//     at(cmdlet.RouteCreate|RouteUpdate|RouteDelete|RouteAction, path)
//     for the resource's other cmdlets.
//   - SupportsWhatIf for a cmdlet that changes something: each run of it
//     is written to the admin audit log.
//
// Nothing else is edited: the role groups, the REST API's routes and its
// OpenAPI document are derived from the registry, and
// TestEveryCmdletIsDeclared fails for a Spec that lacks part of its
// declaration. A cmdlet whose Access is missing runs for the server's
// administrator only.
package admin

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"strings"
	"sync"

	"postern.dev/postern/internal/directory"
	"postern.dev/postern/internal/issuer"
	"postern.dev/postern/internal/protolog"
	"postern.dev/postern/internal/secret"
	"postern.dev/postern/internal/store"
)

// Service is the admin service for one data directory.
type Service struct {
	Store store.Store
	// Dir receives a new snapshot after every change, so the SMTP path sees
	// it at the next command.
	Dir *directory.Current
	// HashPassword turns a new password into the stored hash.
	HashPassword func(string) (string, error)
	// Secrets seals the secrets admins give (smart-host passwords, OAuth
	// client secrets, DKIM keys) before they are stored.
	Secrets *secret.Box
	// Caller names who runs cmdlets, for the admin audit log; empty: the
	// local account.
	Caller string
	// Hostname names this server in queue identities (Server\NextHop).
	Hostname string
	// IssuerKeys are the built-in OAuth issuer's signing keys.
	IssuerKeys *issuer.Keys
	// Queue acts on the outbound queue (Retry-Queue, Remove-QueueMessage).
	Queue QueueControl
	// AllowInsecureHTTPLoopback lets URLs admins give (New-AuthServer
	// -AuthMetadataUrl, -OAuthTokenEndpoint) be plain http to a loopback
	// address: the server-level setting allow_insecure_http_loopback,
	// meant for tests' identity providers. Otherwise they are https only.
	AllowInsecureHTTPLoopback bool
	// ProtocolLog is the running server's protocol log: Set-ReceiveConnector
	// applies levels to it, Get-ProtocolLog reads it. Nil outside the
	// server (levels are then only stored).
	ProtocolLog *protolog.Log
	// Listeners returns the running server's listeners, for
	// Test-NetConnection. Nil outside the server.
	Listeners func() []Listener
	// SignIns writes the sign-ins the running server counted in memory,
	// before Get-MailboxSignInReport reads them. Nil outside the server.
	SignIns Flusher

	// mu serialises changes: read-validate-write must not interleave. It
	// is shared by the services As and ForOrganization derive.
	mu *sync.Mutex
	// orgID is the organization acted on; 0 means the first.
	orgID int64
	// scoped marks a service acting for an organization's admin (As):
	// role limits its cmdlets, and server-wide data is filtered to the
	// organization.
	scoped bool
	role   Role
}

// DefaultOrganizationName is the organization a fresh data directory gets.
const DefaultOrganizationName = "Default"

// Open loads the directory into s.Dir, creating the default organization
// on first use. A new organization starts with SMTP AUTH disabled, as
// Exchange Online tenants created after January 2020 do.
func (s *Service) Open(ctx context.Context) error {
	if s.mu == nil {
		s.mu = new(sync.Mutex)
	}
	if err := s.reload(ctx); err != nil {
		return err
	}
	if err := s.applyProtocolLogging(ctx); err != nil {
		return err
	}
	if s.org() != nil {
		return nil
	}
	org := &directory.Organization{Name: DefaultOrganizationName, GUID: newGUID(), SmtpClientAuthenticationDisabled: true,
		CASMailboxPlanImapEnabled: true, CASMailboxPlanPopEnabled: true}
	if err := s.Store.SaveOrganization(ctx, org); err != nil {
		return err
	}
	return s.reload(ctx)
}

func (s *Service) reload(ctx context.Context) error {
	c, err := s.Store.LoadDirectory(ctx)
	if err != nil {
		return fmt.Errorf("loading the directory: %w", err)
	}
	s.Dir.Store(directory.NewSnapshot(c))
	return nil
}

// catchUp brings the snapshot in force up to what the store holds after a
// change this node made: it reads only the rows the store's change log
// lists after the snapshot's position and applies them (O(changed rows)),
// or reads everything again when the log cannot say (pruned past, too many
// changes) or a changed table is not applied row by row. The caller holds
// s.mu, so no other change of this node interleaves.
func (s *Service) catchUp(ctx context.Context) error {
	ch, err := s.Store.DirectoryChanges(ctx, s.Dir.Load().Position())
	if err != nil {
		return fmt.Errorf("reading the directory changes: %w", err)
	}
	if ch.All || !incremental(ch.Keys) {
		return s.reload(ctx)
	}
	if len(ch.Keys) == 0 {
		return nil
	}
	d, err := s.Store.LoadDirectoryObjects(ctx, ch.Keys)
	if err != nil {
		return fmt.Errorf("loading the changed directory objects: %w", err)
	}
	d.Position = ch.Position
	s.Dir.Apply(d)
	return nil
}

// incremental reports whether every key can be applied row by row.
func incremental(keys []directory.Key) bool {
	for _, k := range keys {
		if !k.Incremental() {
			return false
		}
	}
	return true
}

// Reload reads the directory again and makes it the snapshot in force:
// on a node sharing its store with others, after another node's change
// when the change cannot be applied row by row, and after (re)connecting
// to the store's notifications (store.DirectoryWatcher). It waits for a
// change this node is making, so that an older read never replaces a
// newer one.
func (s *Service) Reload(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.reload(ctx)
}

// ApplyChanges reads the rows another node changed (keys, from the
// notifications of a store.DirectoryWatcher, which cover every change) and
// applies them to the snapshot in force, at a
// cost of O(len(keys)); it reads the whole directory instead when a key
// cannot be applied row by row or there are more than
// store.MaxDirectoryChanges. Like Reload it waits for a change this node
// is making, and it reads the rows after taking the lock, so the rows it
// applies are at least as new as any the snapshot holds.
func (s *Service) ApplyChanges(ctx context.Context, keys []directory.Key) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(keys) > store.MaxDirectoryChanges || !incremental(keys) {
		return s.reload(ctx)
	}
	d, err := s.Store.LoadDirectoryObjects(ctx, keys)
	if err != nil {
		return fmt.Errorf("loading the changed directory objects: %w", err)
	}
	// The read's log position may be taken as the snapshot's: whatever
	// else the log holds up to it was, or will be when it commits,
	// notified too. So the next local change reads only what followed.
	s.Dir.Apply(d)
	return nil
}

// org is the organization the service acts on: the one its admin belongs
// to (As), or the one the server administrator chose (ForOrganization),
// else the first (default) one.
func (s *Service) org() *directory.Organization {
	snap := s.Dir.Load()
	if s.orgID != 0 {
		if o := snap.Organization(s.orgID); o != nil {
			return o
		}
		// The organization is gone; act on an empty one rather than on
		// someone else's.
		return &directory.Organization{ID: s.orgID, Name: "(removed)"}
	}
	if orgs := snap.Organizations(); len(orgs) > 0 {
		return orgs[0]
	}
	return nil
}

// change runs fn under the change lock and brings the snapshot up to date
// afterwards (catchUp), also when fn failed part-way (the store's
// transactions keep each write whole; catching up makes the snapshot agree
// with what was written).
func (s *Service) change(ctx context.Context, fn func(dir *directory.Snapshot, org *directory.Organization) error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	err := fn(s.Dir.Load(), s.org())
	if rerr := s.catchUp(ctx); err == nil {
		err = rerr
	}
	return err
}

// Errors in Exchange's words. Those a front end must tell apart without
// reading the text (the REST API answers 404 and 409 for them) also wrap
// one of these kinds.

var (
	// ErrNotFound: no object has the identity given, in the caller's
	// organization.
	ErrNotFound = errors.New("not found")
	// ErrExists: the object to create exists already.
	ErrExists = errors.New("already exists")
	// ErrInternal: the server failed (the disk is full, the database is
	// unreadable), not the request. Front ends answer it with a generic
	// text and log the detail: it may name files and SQL.
	ErrInternal = store.ErrInternal
)

// kindError is an admin error: Exchange's message, and its kind.
type kindError struct {
	kind error
	msg  string
}

func (e *kindError) Error() string { return e.msg }
func (e *kindError) Unwrap() error { return e.kind }

// NotFound is Exchange's error for an identity that names no object.
func NotFound(identity string) error {
	return &kindError{ErrNotFound, fmt.Sprintf("The operation couldn't be performed because object '%s' couldn't be found.", identity)}
}

func ambiguous(identity string) error {
	return fmt.Errorf("The operation couldn't be performed because '%s' matches multiple entries.", identity)
}

func alreadyExists(kind, name string) error {
	return &kindError{ErrExists, fmt.Sprintf("The %s '%s' already exists.", kind, name)}
}

func invalidValue(param, value, why string) error {
	return fmt.Errorf("Cannot process argument transformation on parameter '%s'. The value '%s' is not valid: %s", param, value, why)
}

// storeError turns a store error into one naming the object.
func storeError(err error, kind, name string) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, store.ErrConflict):
		if _, addr, ok := strings.Cut(err.Error(), "the address "); ok {
			return &kindError{ErrExists, fmt.Sprintf("The proxy address \"SMTP:%s\" is already being used by another recipient.", addr)}
		}
		return alreadyExists(kind, name)
	case errors.Is(err, store.ErrNotFound):
		return NotFound(name)
	}
	return fmt.Errorf("%s '%s': %w", kind, name, err)
}

func newGUID() string {
	var b [16]byte
	rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}
