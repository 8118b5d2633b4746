package webadmin

import (
	"context"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"postern.dev/postern/internal/admin"
)

// TestDelegates: each right's page adds and removes a member through its
// cmdlet, and shows the admin service's refusal next to the field.
func TestDelegates(t *testing.T) {
	f := newFixture(t)
	b := f.browser()
	_, csrf := b.signIn("sean@contoso.com", pw)
	nina := f.svc.Dir.Load().MailboxByAddress("nina@contoso.com")
	held := map[string]func() []string{
		"sendas": func() []string {
			ps, _ := f.svc.RecipientPermissions("nina@contoso.com", "")
			var out []string
			for _, p := range ps {
				out = append(out, p.Trustee.PrimarySmtpAddress)
			}
			return out
		},
		"sendonbehalf": func() []string {
			dir := f.svc.Dir.Load()
			var out []string
			for _, id := range dir.MailboxByAddress("nina@contoso.com").GrantSendOnBehalfTo {
				out = append(out, dir.Mailbox(id).PrimarySmtpAddress)
			}
			return out
		},
		"fullaccess": func() []string {
			ps, _ := f.svc.MailboxPermissions("nina@contoso.com")
			var out []string
			for _, p := range ps {
				out = append(out, p.User)
			}
			return out
		},
	}
	for _, right := range []string{"sendas", "sendonbehalf", "fullaccess"} {
		t.Run(right, func(t *testing.T) {
			path := "/admin/users/" + nina.GUID + "/delegates/" + right
			status, page, _ := b.get(path)
			if status != http.StatusOK || !strings.Contains(page, `id="add-member"`) || !strings.Contains(page, "No members.") {
				t.Fatalf("GET %s = %d:\n%s", path, status, page)
			}
			status, _, hdr := b.post(path, url.Values{"csrf": {csrf}, "action": {"add"}, "member": {"scanner@contoso.com"}})
			if status != http.StatusSeeOther || hdr.Get("Location") != path {
				t.Fatalf("add = %d %q", status, hdr.Get("Location"))
			}
			if got := held[right](); !slices.Contains(got, "scanner@contoso.com") {
				t.Fatalf("after add: %v", got)
			}
			if _, page, _ := b.get(path); !strings.Contains(page, "<td>scanner@contoso.com</td>") || !strings.Contains(page, "was added") {
				t.Errorf("the page does not list the new member:\n%s", page)
			}
			// An unknown member: the admin service's words, next to the field.
			status, page, _ = b.post(path, url.Values{"csrf": {csrf}, "action": {"add"}, "member": {"ghost@contoso.com"}})
			if status < 400 || !strings.Contains(page[strings.Index(page, `id="member-error"`):], "ghost@contoso.com") {
				t.Errorf("unknown member = %d:\n%s", status, page)
			}
			// Another organization's mailbox is not a member either.
			if status, _, _ := b.post(path, url.Values{"csrf": {csrf}, "action": {"add"}, "member": {"secret@fabrikam.com"}}); status < 400 {
				t.Errorf("a Fabrikam member was accepted: %d", status)
			}
			status, _, _ = b.post(path, url.Values{"csrf": {csrf}, "action": {"remove"}, "member": {"scanner@contoso.com"}})
			if status != http.StatusSeeOther {
				t.Fatalf("remove = %d", status)
			}
			if got := held[right](); len(got) != 0 {
				t.Fatalf("after remove: %v", got)
			}
		})
	}
	// The flyout's Mail tab counts each right's members.
	b.post("/admin/users/"+nina.GUID+"/delegates/sendas", url.Values{"csrf": {csrf}, "action": {"add"}, "member": {"sean@contoso.com"}})
	if _, page, _ := b.get("/admin/users/" + nina.GUID + "?tab=mail"); !strings.Contains(page, `id="delegates-sendas">Send as</a> (1)`) || !strings.Contains(page, `id="delegates-fullaccess"`) {
		t.Errorf("Mail tab:\n%s", page)
	}
	// The change is audited under the admin's name.
	entries, err := f.svc.AuditLog(context.Background(), []string{"Add-RecipientPermission"}, "", time.Time{}, time.Time{}, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) == 0 || !strings.Contains(entries[0].Caller, "sean@contoso.com") {
		t.Errorf("audit log: %+v", entries)
	}
	for _, bad := range []string{"/admin/users/" + nina.GUID + "/delegates/owner"} {
		if status, _, _ := b.get(bad); status != http.StatusNotFound {
			t.Errorf("GET %s = %d", bad, status)
		}
	}
	if status, _, _ := b.post("/admin/users/"+nina.GUID+"/delegates/sendas", url.Values{"csrf": {csrf}, "action": {"grant"}, "member": {"scanner@contoso.com"}}); status != http.StatusBadRequest {
		t.Errorf("unknown action = %d", status)
	}
}

// TestDelegatesViewOnlyAndWall: a View-Only admin sees the members but no
// control, and a forged post is refused by the admin service; another
// organization's mailbox is not found.
func TestDelegatesViewOnlyAndWall(t *testing.T) {
	f := newFixture(t)
	nina := f.svc.Dir.Load().MailboxByAddress("nina@contoso.com")
	secret := f.svc.Dir.Load().MailboxByAddress("secret@fabrikam.com")
	vera := f.browser()
	_, csrf := vera.signIn("vera@contoso.com", pw)
	path := "/admin/users/" + nina.GUID + "/delegates/sendas"
	if status, page, _ := vera.get(path); status != http.StatusOK || strings.Contains(page, "add-member") || strings.Contains(page, ">Remove<") {
		t.Errorf("View-Only delegates page = %d:\n%s", status, page)
	}
	if status, _, _ := vera.post(path, url.Values{"csrf": {csrf}, "action": {"add"}, "member": {"scanner@contoso.com"}}); status != http.StatusForbidden {
		t.Errorf("View-Only forged add = %d, want 403", status)
	}
	if status, page, _ := vera.get("/admin/shared-mailboxes"); status != http.StatusOK || strings.Contains(page, "add-shared") {
		t.Errorf("View-Only shared mailboxes = %d:\n%s", status, page)
	}
	if status, _, _ := vera.post("/admin/shared-mailboxes", url.Values{"csrf": {csrf}, "name": {"Info"}, "address": {"info"}, "domain": {"contoso.com"}}); status != http.StatusForbidden {
		t.Errorf("View-Only forged shared mailbox = %d, want 403", status)
	}
	if ps, _ := f.svc.RecipientPermissions("", ""); len(ps) != 0 {
		t.Errorf("a refused post granted %v", ps)
	}
	sean := f.browser()
	_, csrf = sean.signIn("sean@contoso.com", pw)
	for _, right := range []string{"sendas", "sendonbehalf", "fullaccess"} {
		p := "/admin/users/" + secret.GUID + "/delegates/" + right
		if status, _, _ := sean.get(p); status != http.StatusNotFound {
			t.Errorf("GET %s = %d, want 404", p, status)
		}
		if status, _, _ := sean.post(p, url.Values{"csrf": {csrf}, "action": {"add"}, "member": {"sean@contoso.com"}}); status != http.StatusNotFound {
			t.Errorf("POST %s = %d, want 404", p, status)
		}
	}
	if ps, _ := mustFor(t, f.svc, "Fabrikam").RecipientPermissions("", ""); len(ps) != 0 {
		t.Errorf("Fabrikam's mailbox was granted %v", ps)
	}
	if after := f.svc.Dir.Load().MailboxByAddress("secret@fabrikam.com"); len(after.GrantSendOnBehalfTo) != 0 {
		t.Errorf("Fabrikam's mailbox was changed")
	}
}

func TestSharedMailboxes(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	fsvc := mustFor(t, f.svc, "Fabrikam")
	if _, err := fsvc.NewMailbox(ctx, admin.NewMailboxParams{Name: "fabinfo", PrimarySmtpAddress: "fabinfo@fabrikam.com", Shared: true}); err != nil {
		t.Fatal(err)
	}
	b := f.browser()
	_, csrf := b.signIn("sean@contoso.com", pw)
	status, page, _ := b.get("/admin/shared-mailboxes")
	if status != http.StatusOK || !strings.Contains(page, "There are no shared mailboxes yet.") || strings.Contains(page, "fabinfo") {
		t.Fatalf("Shared mailboxes = %d:\n%s", status, page)
	}
	status, _, hdr := b.post("/admin/shared-mailboxes", url.Values{"csrf": {csrf}, "name": {"Info desk"}, "address": {"info"}, "domain": {"contoso.com"}})
	if status != http.StatusSeeOther {
		t.Fatalf("add shared mailbox = %d", status)
	}
	info := f.svc.Dir.Load().MailboxByAddress("info@contoso.com")
	if info == nil || typeLabel(info) != "Shared mailbox" || info.DisplayName != "Info desk" {
		t.Fatalf("the shared mailbox: %+v", info)
	}
	if want := "/admin/users/" + info.GUID + "?tab=mail"; hdr.Get("Location") != want {
		t.Errorf("after adding: %q, want %q", hdr.Get("Location"), want)
	}
	if _, page, _ := b.get("/admin/shared-mailboxes"); !strings.Contains(page, "Info desk") || !strings.Contains(page, "info@contoso.com") {
		t.Errorf("the list does not show the new mailbox:\n%s", page)
	}
	// The same address again: Exchange's refusal, next to the field.
	status, page, _ = b.post("/admin/shared-mailboxes", url.Values{"csrf": {csrf}, "name": {"Info again"}, "address": {"info"}, "domain": {"contoso.com"}})
	if status < 400 || !strings.Contains(page[strings.Index(page, `id="shared-address-error"`):], "info") {
		t.Errorf("duplicate shared mailbox = %d:\n%s", status, page)
	}
	// Another organization's domain is not the admin's to use.
	if status, _, _ := b.post("/admin/shared-mailboxes", url.Values{"csrf": {csrf}, "name": {"X"}, "address": {"x"}, "domain": {"fabrikam.com"}}); status < 400 {
		t.Errorf("a shared mailbox in Fabrikam's domain = %d", status)
	}
	if status, _, _ := b.post("/admin/shared-mailboxes", url.Values{"csrf": {csrf}, "name": {""}, "address": {"y"}, "domain": {"contoso.com"}}); status != http.StatusBadRequest {
		t.Errorf("no name = %d", status)
	}
}

// TestEmailAppsList: Manage email apps lists the apps as Exchange does,
// the protocols Postern does not serve disabled and explained, and a
// forged box for one of them changes nothing.
func TestEmailAppsList(t *testing.T) {
	f := newFixture(t)
	b := f.browser()
	_, csrf := b.signIn("sean@contoso.com", pw)
	m := f.svc.Dir.Load().MailboxByAddress("scanner@contoso.com")
	_, page, _ := b.get("/admin/users/" + m.GUID + "/email-apps")
	last := -1
	for _, app := range []string{"Outlook on the web", "Outlook desktop (MAPI)", "Exchange Web Services", "Mobile (Exchange ActiveSync)", "IMAP", "POP", "Authenticated SMTP"} {
		i := strings.Index(page, ">"+app+"</label>")
		if i < 0 || i < last {
			t.Errorf("%q missing or out of Exchange's order", app)
		}
		last = i
	}
	for _, id := range []string{"owa", "mapi", "ews", "eas"} {
		if !strings.Contains(page, `id="`+id+`" disabled`) {
			t.Errorf("%s is not disabled", id)
		}
	}
	for _, id := range []string{"imap", "pop", "smtp"} {
		if strings.Contains(page, `id="`+id+`" disabled`) || !strings.Contains(page, `id="`+id+`" name="`+id+`"`) {
			t.Errorf("%s is not a live box", id)
		}
	}
	if !strings.Contains(page, "does not serve Outlook on the web") {
		t.Errorf("no note on the protocols not served")
	}
	before := *m
	b.post("/admin/users/"+m.GUID+"/email-apps", url.Values{"csrf": {csrf}, "owa": {"on"}, "ews": {"on"}, "imap": {"on"}, "pop": {"on"}, "inherit": {"on"}})
	after := f.svc.Dir.Load().MailboxByAddress("scanner@contoso.com")
	if after.ImapEnabled != before.ImapEnabled || after.PopEnabled != before.PopEnabled || after.SmtpClientAuthenticationDisabled != nil {
		t.Errorf("a post of unchanged live boxes changed the mailbox")
	}
}
