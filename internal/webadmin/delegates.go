package webadmin

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"postern.dev/postern/internal/directory"
)

// Microsoft 365 admin center: Teams & groups > Shared mailboxes, and a
// user's or shared mailbox's delegates (Mail > Mailbox permissions: Read
// and manage, Send as, Send on behalf). Each change is the cmdlet an
// Exchange admin types: Add-/Remove-MailboxPermission -AccessRights
// FullAccess, Add-/Remove-RecipientPermission -AccessRights SendAs,
// Set-Mailbox -GrantSendOnBehalfTo @{Add=...} / @{Remove=...}.

// delegateRight is one of the three kinds of delegate.
type delegateRight struct {
	Slug, Title, Label, Help string
	// Add and Remove name the cmdlets that change it; Cmdlet is the one
	// the page checks the role against.
	Cmdlet string
}

var delegateRights = []delegateRight{
	{Slug: "fullaccess", Title: "Read and manage permissions", Label: "Read and manage (Full Access)",
		Help:   "Members can open this mailbox and sign in to SMTP AUTH as it with their own OAuth token (Add-MailboxPermission -AccessRights FullAccess).",
		Cmdlet: "Add-MailboxPermission"},
	{Slug: "sendas", Title: "Send as permissions", Label: "Send as",
		Help:   "Members can send mail that appears to come from this mailbox: From is its address (Add-RecipientPermission -AccessRights SendAs).",
		Cmdlet: "Add-RecipientPermission"},
	{Slug: "sendonbehalf", Title: "Send on behalf of permissions", Label: "Send on behalf",
		Help:   "Members can send mail on behalf of this mailbox: From is its address and Sender theirs, shown as \"member on behalf of mailbox\" (Set-Mailbox -GrantSendOnBehalfTo).",
		Cmdlet: "Set-Mailbox"},
}

func rightOf(slug string) (delegateRight, bool) {
	i := slices.IndexFunc(delegateRights, func(r delegateRight) bool { return r.Slug == slug })
	if i < 0 {
		return delegateRight{}, false
	}
	return delegateRights[i], true
}

// delegates lists the members holding a right on a mailbox, as the admin
// service reports them (the same reads as the Get- cmdlets).
func (q *request) delegates(m *directory.Mailbox, slug string) ([]string, error) {
	var out []string
	switch slug {
	case "fullaccess":
		ps, err := q.svc.MailboxPermissions(m.GUID)
		if err != nil {
			return nil, err
		}
		for _, p := range ps {
			out = append(out, p.User)
		}
	case "sendas":
		ps, err := q.svc.RecipientPermissions(m.GUID, "")
		if err != nil {
			return nil, err
		}
		for _, p := range ps {
			out = append(out, p.Trustee.PrimarySmtpAddress)
		}
	case "sendonbehalf":
		dir := q.h.Admin.Dir.Load()
		for _, id := range m.GrantSendOnBehalfTo {
			if d := dir.Mailbox(id); d != nil {
				out = append(out, d.PrimarySmtpAddress)
			}
		}
	}
	slices.Sort(out)
	return out, nil
}

type delegatesData struct {
	base
	User        *directory.Mailbox
	DisplayName string
	Right       delegateRight
	Members     []string
	Member      string
	CanChange   bool
}

func (h *Handler) delegatesPage(q *request) {
	m, ok := q.mailboxOf()
	if !ok {
		return
	}
	right, ok := rightOf(q.r.PathValue("right"))
	if !ok {
		h.errorPage(q.w, q.r, http.StatusNotFound, "There is no such mailbox permission.")
		return
	}
	h.renderDelegates(q, m, right, http.StatusOK, "", nil)
}

func (h *Handler) renderDelegates(q *request, m *directory.Mailbox, right delegateRight, status int, member string, errs map[string]string) {
	members, err := q.delegates(m, right.Slug)
	if err != nil {
		q.fail(err)
		return
	}
	d := delegatesData{base: q.page(right.Title, m365, navOf(m)), User: m, DisplayName: displayName(m), Right: right, Members: members,
		Member: member, CanChange: q.can(right.Cmdlet)}
	d.Errors = errs
	h.render(q.w, q.r, status, "delegates", d)
}

// navOf is the navigation item a mailbox's pages belong under.
func navOf(m *directory.Mailbox) string {
	if m.Type == directory.SharedMailbox {
		return navShared
	}
	return navUsers
}

// maxMemberLen bounds a member's name in the form: an address (320) or a
// service principal's name.
const maxMemberLen = 320

// delegatesPost adds or removes one member: the right's cmdlet, run as
// the signed-in admin.
func (h *Handler) delegatesPost(q *request) {
	m, ok := q.mailboxOf()
	if !ok {
		return
	}
	right, ok := rightOf(q.r.PathValue("right"))
	if !ok {
		h.errorPage(q.w, q.r, http.StatusNotFound, "There is no such mailbox permission.")
		return
	}
	member := strings.TrimSpace(q.r.PostForm.Get("member"))
	action := q.r.PostForm.Get("action")
	if member == "" || len(member) > maxMemberLen {
		h.renderDelegates(q, m, right, http.StatusBadRequest, member, map[string]string{"member": "Enter the email address of the member."})
		return
	}
	var name string
	var params map[string]any
	switch right.Slug + " " + action {
	case "fullaccess add":
		name, params = "Add-MailboxPermission", map[string]any{"Identity": m.GUID, "User": member, "AccessRights": "FullAccess"}
	case "fullaccess remove":
		name, params = "Remove-MailboxPermission", map[string]any{"Identity": m.GUID, "User": member, "AccessRights": "FullAccess"}
	case "sendas add":
		name, params = "Add-RecipientPermission", map[string]any{"Identity": m.GUID, "Trustee": member, "AccessRights": "SendAs"}
	case "sendas remove":
		name, params = "Remove-RecipientPermission", map[string]any{"Identity": m.GUID, "Trustee": member, "AccessRights": "SendAs"}
	case "sendonbehalf add":
		name, params = "Set-Mailbox", map[string]any{"Identity": m.GUID, "GrantSendOnBehalfTo": map[string]any{"Add": []any{member}}}
	case "sendonbehalf remove":
		name, params = "Set-Mailbox", map[string]any{"Identity": m.GUID, "GrantSendOnBehalfTo": map[string]any{"Remove": []any{member}}}
	default:
		h.errorPage(q.w, q.r, http.StatusBadRequest, "Choose to add or remove a member.")
		return
	}
	if _, err := q.invoke(name, params); err != nil {
		status, errs := q.fieldErrors(err)
		// The cmdlets name the member's parameter (User, Trustee,
		// GrantSendOnBehalfTo); on this page it is the one field.
		if msg, ok := errs[""]; ok && status != http.StatusForbidden && status < 500 {
			errs = map[string]string{"member": msg}
		}
		for _, p := range []string{"User", "Trustee", "GrantSendOnBehalfTo"} {
			if msg, ok := errs[p]; ok {
				errs = map[string]string{"member": msg}
			}
		}
		h.renderDelegates(q, m, right, status, member, errs)
		return
	}
	if action == "add" {
		q.flash(fmt.Sprintf("%s was added to %s.", member, strings.ToLower(right.Title)))
	} else {
		q.flash(fmt.Sprintf("%s was removed from %s.", member, strings.ToLower(right.Title)))
	}
	q.redirect("/admin/users/" + url.PathEscape(m.GUID) + "/delegates/" + right.Slug)
}

// delegateCount is one line of the user flyout's Mailbox permissions.
type delegateCount struct {
	delegateRight
	Count int
}

func (q *request) delegateCounts(m *directory.Mailbox) []delegateCount {
	var out []delegateCount
	for _, r := range delegateRights {
		ms, _ := q.delegates(m, r.Slug)
		out = append(out, delegateCount{r, len(ms)})
	}
	return out
}

// sharedRow is one line of Shared mailboxes.
type sharedRow struct {
	GUID, DisplayName, Address string
	Members                    int
}

type sharedData struct {
	base
	Rows                  []sharedRow
	Domains               []string
	Name, Address, Domain string
	CanAdd                bool
}

// sharedMailboxes is Teams & groups > Shared mailboxes.
func (h *Handler) sharedMailboxes(q *request) {
	h.renderShared(q, http.StatusOK, sharedData{}, nil)
}

func (h *Handler) renderShared(q *request, status int, d sharedData, errs map[string]string) {
	all, err := q.svc.Mailboxes("", 0)
	if err != nil {
		q.fail(err)
		return
	}
	d.base = q.page("Shared mailboxes", m365, navShared)
	d.Errors = errs
	d.CanAdd = q.can("New-Mailbox")
	for _, m := range all {
		if m.Type != directory.SharedMailbox {
			continue
		}
		fa, _ := q.delegates(m, "fullaccess")
		d.Rows = append(d.Rows, sharedRow{GUID: m.GUID, DisplayName: displayName(m), Address: m.PrimarySmtpAddress, Members: len(fa)})
	}
	slices.SortFunc(d.Rows, func(a, b sharedRow) int {
		return strings.Compare(strings.ToLower(a.DisplayName), strings.ToLower(b.DisplayName))
	})
	ds, _ := q.svc.AcceptedDomains("")
	for _, x := range ds {
		d.Domains = append(d.Domains, x.DomainName)
	}
	h.render(q.w, q.r, status, "shared", d)
}

// sharedMailboxAdd is "+ Add a shared mailbox": New-Mailbox -Shared.
func (h *Handler) sharedMailboxAdd(q *request) {
	f := q.r.PostForm
	d := sharedData{Name: strings.TrimSpace(f.Get("name")), Address: strings.TrimSpace(f.Get("address")), Domain: f.Get("domain")}
	if d.Name == "" {
		h.renderShared(q, http.StatusBadRequest, d, map[string]string{"Name": "Enter a name for the shared mailbox."})
		return
	}
	if d.Address == "" {
		h.renderShared(q, http.StatusBadRequest, d, map[string]string{"PrimarySmtpAddress": "Enter an email address for the shared mailbox."})
		return
	}
	params := map[string]any{"Name": d.Address, "DisplayName": d.Name, "PrimarySmtpAddress": d.Address + "@" + d.Domain, "Shared": true}
	objs, err := q.invoke("New-Mailbox", params)
	if err != nil {
		status, errs := q.fieldErrors(err)
		// An address already in use names no parameter: it concerns the
		// Email field all the same. Access refusals stay at the top.
		if msg, ok := errs[""]; ok && status != http.StatusForbidden && status < 500 {
			errs = map[string]string{"PrimarySmtpAddress": msg}
		}
		h.renderShared(q, status, d, errs)
		return
	}
	q.flash(fmt.Sprintf("The shared mailbox %s was added. Add members under Read and manage to let them use it.", d.Address+"@"+d.Domain))
	if len(objs) == 1 {
		if guid := prop(objs[0], "ExchangeGuid"); guid != "" {
			q.redirect("/admin/users/" + url.PathEscape(guid) + "?tab=mail")
			return
		}
	}
	q.redirect("/admin/shared-mailboxes")
}
