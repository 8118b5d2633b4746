// Package storetest is the one test suite of store.Store: every
// implementation (internal/store/sqlite, internal/store/postgres) runs it
// from its own tests with Run, so that both are held to the same
// behaviour by the same assertions. What only one implementation has (body
// files on disk, SQLite's migrations, the group committer's internals)
// stays in that implementation's own tests.
package storetest

import (
	"context"
	"errors"
	"io"
	"testing"
	"time"

	"postern.dev/postern/internal/directory"
	"postern.dev/postern/internal/store"
)

// Backend is one implementation's storage for one test.
type Backend struct {
	// Open opens the store. Every call within one test opens the same
	// storage, so a test can close the store and open it again to see what
	// survived; the suite closes what it opened.
	Open func(t *testing.T) store.Store
	// LargeBodies counts the bodies the store keeps apart from their
	// message rows (SQLite's body files, PostgreSQL's blobs), to check
	// that releasing a message gives its body back.
	LargeBodies func(t *testing.T) int
}

// Run runs every test of the suite as a subtest; newBackend gives each a
// fresh, empty storage.
func Run(t *testing.T, newBackend func(t *testing.T) Backend) {
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := &harness{t: t, b: newBackend(t)}
			t.Cleanup(func() {
				if h.s != nil {
					h.s.Close()
				}
			})
			h.reopen()
			tc.fn(t, h)
		})
	}
}

var tests = []struct {
	name string
	fn   func(t *testing.T, h *harness)
}{
	{"DirectoryRoundTrip", testDirectoryRoundTrip},
	{"DirectoryObjects", testDirectoryObjects},
	{"DirectoryChanges", testDirectoryChanges},
	{"IncrementalDirectoryMatchesRebuild", testIncrementalMatchesRebuild},
	{"AddressConflictLeavesNothingHalfWritten", testAddressConflict},
	{"GroupCommitAndPacing", testGroupCommitAndPacing},
	{"MailboxSizes", testMailboxSizes},
	{"SignInReport", testSignInReport},
	{"MailUIDsAndChanges", testMailUIDsAndChanges},
	{"ExpungeReleasesBodies", testExpungeReleasesBodies},
	{"MailFolders", testMailFolders},
	{"MailConcurrency", testMailConcurrency},
	{"GroupCommitUIDs", testGroupCommitUIDs},
	{"LargeBodies", testLargeBodies},
	{"InlineBodyReleased", testInlineBodyReleased},
	{"OutboundLeases", testOutboundLeases},
	{"ConcurrentClaimsNeverShareAnItem", testConcurrentClaims},
	{"DeferAndNotices", testDeferAndNotices},
	{"MessageTraceQueries", testMessageTraceQueries},
	{"PruneTrace", testPruneTrace},
	{"ConnectionLog", testConnectionLog},
	{"Audit", testAudit},
	{"APIKeys", testAPIKeys},
	{"Ephemeral", testEphemeral},
	{"IssuerKeys", testIssuerKeys},
	{"SmtpAuthClients", testSmtpAuthClients},
	{"ReceiveConnectorLevels", testReceiveConnectorLevels},
	{"QueueStats", testQueueStats},
	{"Probe", testProbe},
	{"FilterPolicies", testFilterPolicies},
	{"RoleGroups", testRoleGroups},
}

// harness holds the store a test works on.
type harness struct {
	t *testing.T
	b Backend
	s store.Store
}

// reopen closes the store and opens the same storage again.
func (h *harness) reopen() store.Store {
	h.t.Helper()
	if h.s != nil {
		must(h.t, h.s.Close())
	}
	h.s = h.b.Open(h.t)
	return h.s
}

func (h *harness) largeBodies() int {
	h.t.Helper()
	return h.b.LargeBodies(h.t)
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// seed saves an organization with a domain and two mailboxes: sean, and
// chris, who granted sean Send on Behalf.
func seed(t *testing.T, s store.Store) (*directory.Organization, *directory.Mailbox, *directory.Mailbox) {
	t.Helper()
	ctx := context.Background()
	org := &directory.Organization{Name: "contoso", GUID: "g", SmtpClientAuthenticationDisabled: true}
	must(t, s.SaveOrganization(ctx, org))
	must(t, s.SaveDomain(ctx, &directory.AcceptedDomain{OrgID: org.ID, Name: "contoso.com", DomainName: "contoso.com", DomainType: directory.Authoritative, Default: true}))
	sean := &directory.Mailbox{OrgID: org.ID, Name: "sean", PrimarySmtpAddress: "sean@contoso.com", UserPrincipalName: "sean@contoso.com",
		EmailAddresses: []string{"sk@contoso.com"}, Type: directory.UserMailbox, RecipientLimits: 500}
	must(t, s.SaveMailbox(ctx, sean))
	chris := &directory.Mailbox{OrgID: org.ID, Name: "chris", PrimarySmtpAddress: "chris@contoso.com", UserPrincipalName: "chris@contoso.com",
		Type: directory.UserMailbox, GrantSendOnBehalfTo: []int64{sean.ID}}
	must(t, s.SaveMailbox(ctx, chris))
	return org, sean, chris
}

func readBody(t *testing.T, s store.Store, id int64) []byte {
	t.Helper()
	rc, err := s.MessageBody(context.Background(), id)
	must(t, err)
	defer rc.Close()
	b, err := io.ReadAll(rc)
	must(t, err)
	return b
}

func folderByName(t *testing.T, s store.Store, mailbox int64, name string) store.MailFolder {
	t.Helper()
	f, err := s.MailFolderByName(context.Background(), mailbox, name)
	must(t, err)
	return f
}

// commitTo commits a one-recipient message filed into a mailbox folder
// (none for mailbox 0), with a Sent Items copy for sentItems (0: none).
func commitTo(t *testing.T, s store.Store, org, mailbox int64, folder, body string, sentItems int64) int64 {
	t.Helper()
	sub := &store.Submission{OrgID: org, MessageID: "m", Subject: "s", ReceivedAt: time.Now(), EnvelopeFrom: "a@contoso.com",
		Body: []byte(body), Recipients: 1, SentItems: sentItems}
	if mailbox != 0 {
		sub.Local = []store.LocalDelivery{{Mailbox: mailbox, Folder: folder, Recipient: "x@contoso.com"}}
	}
	must(t, s.Commit(context.Background(), sub))
	return sub.ID
}

func folderCounts(t *testing.T, s store.Store, mailbox int64) map[string]int {
	t.Helper()
	stats, err := s.FolderStatistics(context.Background(), mailbox)
	must(t, err)
	out := map[string]int{}
	for _, f := range stats {
		out[f.Name] = f.ItemsInFolder
	}
	if len(out) != len(store.DefaultFolders) {
		t.Fatalf("mailbox %d has %d folders", mailbox, len(out))
	}
	return out
}

// isNotFound reports an ErrNotFound, however wrapped.
func isNotFound(err error) bool { return errors.Is(err, store.ErrNotFound) }
