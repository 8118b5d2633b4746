package webadmin

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"postern.dev/postern/internal/directory"
)

// Microsoft 365 admin center: Users > Active users, a user's flyout (its
// Account and Mail tabs), Manage email apps, Add a user, Reset password.

const m365 = "Microsoft 365 admin center"

// userRow is one line of Active users.
type userRow struct {
	GUID, DisplayName, Username, Type string
	SMTP                              string
}

// smtpState says how a mailbox stands with SMTP AUTH, and why.
func smtpState(m *directory.Mailbox, org *directory.Organization) string {
	switch {
	case m.SmtpClientAuthenticationDisabled == nil && org.SmtpClientAuthenticationDisabled:
		return "Off (organization setting)"
	case m.SmtpClientAuthenticationDisabled == nil:
		return "On (organization setting)"
	case *m.SmtpClientAuthenticationDisabled:
		return "Off"
	}
	return "On"
}

// pageSize is how many users one page of Active users shows.
const pageSize = 100

type usersData struct {
	base
	Query              string
	Rows               []userRow
	Total, Page, Pages int
	First, Last        int
	PrevURL, NextURL   string
	CanChange          bool
}

// activeUsers is Users > Active users: searched and paged on the server,
// so that it stays fast with tens of thousands of mailboxes (a page
// costs a scan of the snapshot in memory, not a query).
func (h *Handler) activeUsers(q *request) {
	query := strings.TrimSpace(q.r.URL.Query().Get("q"))
	if len(query) > 256 {
		query = query[:256]
	}
	page, _ := strconv.Atoi(q.r.URL.Query().Get("page"))
	page = max(page, 1)
	all, err := q.svc.Mailboxes("", 0)
	if err != nil {
		q.fail(err)
		return
	}
	matches := all
	if query != "" {
		lq := strings.ToLower(query)
		matches = make([]*directory.Mailbox, 0, 64)
		for _, m := range all {
			if strings.Contains(strings.ToLower(m.DisplayName), lq) || strings.Contains(m.PrimarySmtpAddress, lq) ||
				strings.Contains(m.UserPrincipalName, lq) || strings.Contains(strings.ToLower(m.Name), lq) {
				matches = append(matches, m)
			}
		}
	}
	d := usersData{base: q.page("Active users", m365, navUsers), Query: query, Total: len(matches), CanChange: q.can("Set-CASMailbox")}
	d.Pages = max((len(matches)+pageSize-1)/pageSize, 1)
	page = min(page, d.Pages)
	d.Page = page
	start, end := (page-1)*pageSize, min(page*pageSize, len(matches))
	// The snapshot keeps mailboxes in creation order; Microsoft lists
	// users by display name. Sorting a copy of the matches costs a few
	// milliseconds at 10,000 (BENCHMARKS.md), well inside a page's budget.
	sorted := slices.Clone(matches)
	slices.SortFunc(sorted, func(a, b *directory.Mailbox) int {
		return strings.Compare(strings.ToLower(displayName(a)), strings.ToLower(displayName(b)))
	})
	for _, m := range sorted[start:end] {
		d.Rows = append(d.Rows, userRow{GUID: m.GUID, DisplayName: displayName(m), Username: m.UserPrincipalName, Type: typeLabel(m), SMTP: smtpState(m, q.org)})
	}
	if len(matches) > 0 {
		d.First, d.Last = start+1, end
	}
	link := func(p int) string {
		v := url.Values{}
		if query != "" {
			v.Set("q", query)
		}
		v.Set("page", strconv.Itoa(p))
		return "/admin/users?" + v.Encode()
	}
	if page > 1 {
		d.PrevURL = link(page - 1)
	}
	if page < d.Pages {
		d.NextURL = link(page + 1)
	}
	h.render(q.w, q.r, http.StatusOK, "users", d)
}

func displayName(m *directory.Mailbox) string {
	if m.DisplayName != "" {
		return m.DisplayName
	}
	return m.Name
}

func typeLabel(m *directory.Mailbox) string {
	if m.Type == directory.SharedMailbox {
		return "Shared mailbox"
	}
	return "User"
}

// bulkUsers applies Manage email apps' Authenticated SMTP to the users
// selected in Active users: one Set-CASMailbox per user, as the
// PowerShell loop in Microsoft's article does.
func (h *Handler) bulkUsers(q *request) {
	ids := q.r.PostForm["id"]
	var value any
	switch q.r.PostForm.Get("action") {
	case "smtp-on":
		value = false
	case "smtp-off":
		value = true
	case "smtp-inherit":
		value = nil
	default:
		h.errorPage(q.w, q.r, http.StatusBadRequest, "Choose what to do with the selected users.")
		return
	}
	if len(ids) == 0 {
		q.flash("Select one or more users first.")
		q.redirect("/admin/users")
		return
	}
	if len(ids) > 1000 {
		h.errorPage(q.w, q.r, http.StatusBadRequest, "Select at most 1,000 users at a time.")
		return
	}
	done, failed := 0, []string{}
	for _, id := range ids {
		if _, err := q.invoke("Set-CASMailbox", map[string]any{"Identity": id, "SmtpClientAuthenticationDisabled": value}); err != nil {
			_, fe := q.fieldErrors(err)
			for _, m := range fe {
				failed = append(failed, m)
			}
			continue
		}
		done++
	}
	msg := fmt.Sprintf("Authenticated SMTP updated for %d user(s).", done)
	if len(failed) > 0 {
		msg += " Not updated: " + strings.Join(failed[:min(len(failed), 5)], " ")
	}
	q.flash(msg)
	q.redirect("/admin/users")
}

// mailboxOf finds the mailbox a page's URL names, in the admin's
// organization only: another organization's mailbox is "not found", the
// same answer as a mailbox that does not exist.
func (q *request) mailboxOf() (*directory.Mailbox, bool) {
	ms, err := q.svc.Mailboxes(q.r.PathValue("id"), 1)
	if err != nil || len(ms) != 1 {
		if err == nil {
			err = fmt.Errorf("no such user")
		}
		q.fail(err)
		return nil, false
	}
	return ms[0], true
}

type userData struct {
	base
	User        *directory.Mailbox
	DisplayName string
	Tab         string
	SMTP        string
	Roles       []string
	CanReset    bool
	Delegates   []delegateCount
}

// userPage is a user's flyout, its Account and Mail tabs.
func (h *Handler) userPage(q *request) {
	m, ok := q.mailboxOf()
	if !ok {
		return
	}
	d := userData{base: q.page(displayName(m), m365, navOf(m)), User: m, DisplayName: displayName(m), Tab: "account", SMTP: smtpState(m, q.org),
		CanReset: q.can("Set-Mailbox") && m.Type != directory.SharedMailbox}
	if q.r.URL.Query().Get("tab") == "mail" {
		d.Tab = "mail"
		d.Delegates = q.delegateCounts(m)
	}
	if roles, err := q.h.Admin.Store.MailboxRoleGroups(q.r.Context(), m.ID); err == nil {
		d.Roles = roles
	}
	h.render(q.w, q.r, http.StatusOK, "user", d)
}

type emailAppsData struct {
	base
	User        *directory.Mailbox
	DisplayName string
	IMAP, POP   bool
	SMTP        bool
	// Inherits: the mailbox's SmtpClientAuthenticationDisabled is $null.
	Inherits   bool
	OrgSMTPOff bool
	CanChange  bool
}

func (h *Handler) emailAppsPage(q *request) {
	m, ok := q.mailboxOf()
	if !ok {
		return
	}
	h.renderEmailApps(q, m, http.StatusOK, nil)
}

func (h *Handler) renderEmailApps(q *request, m *directory.Mailbox, status int, errs map[string]string) {
	d := emailAppsData{base: q.page("Manage email apps", m365, navUsers), User: m, DisplayName: displayName(m), IMAP: m.ImapEnabled, POP: m.PopEnabled,
		SMTP: smtpEnabled(m, q.org), Inherits: m.SmtpClientAuthenticationDisabled == nil, OrgSMTPOff: q.org.SmtpClientAuthenticationDisabled,
		CanChange: q.can("Set-CASMailbox")}
	d.Errors = errs
	h.render(q.w, q.r, status, "emailapps", d)
}

// smtpEnabled is whether SMTP AUTH is on for the mailbox, its own setting
// winning over the organization's ($null inherits).
func smtpEnabled(m *directory.Mailbox, org *directory.Organization) bool {
	if m.SmtpClientAuthenticationDisabled != nil {
		return !*m.SmtpClientAuthenticationDisabled
	}
	return !org.SmtpClientAuthenticationDisabled
}

// emailAppsPost is Save changes: one Set-CASMailbox with what changed.
// The Authenticated SMTP box maps as Microsoft's does (checked =
// -SmtpClientAuthenticationDisabled $false, unchecked = $true); "Use the
// organization setting" restores $null, unless the box itself was changed
// (then the box is what the admin meant).
func (h *Handler) emailAppsPost(q *request) {
	m, ok := q.mailboxOf()
	if !ok {
		return
	}
	f := q.r.PostForm
	params := map[string]any{}
	if imap := f.Get("imap") == "on"; imap != m.ImapEnabled {
		params["ImapEnabled"] = imap
	}
	if pop := f.Get("pop") == "on"; pop != m.PopEnabled {
		params["PopEnabled"] = pop
	}
	smtp, shown := f.Get("smtp") == "on", f.Get("smtp_shown") == "on"
	switch {
	case smtp != shown:
		params["SmtpClientAuthenticationDisabled"] = !smtp
	case f.Get("inherit") == "on" && m.SmtpClientAuthenticationDisabled != nil:
		params["SmtpClientAuthenticationDisabled"] = nil
	case f.Get("inherit") != "on" && m.SmtpClientAuthenticationDisabled == nil:
		params["SmtpClientAuthenticationDisabled"] = !smtp
	}
	if len(params) == 0 {
		q.flash("No changes to save.")
		q.redirect("/admin/users/" + url.PathEscape(m.GUID) + "/email-apps")
		return
	}
	params["Identity"] = m.GUID
	if _, err := q.invoke("Set-CASMailbox", params); err != nil {
		status, errs := q.fieldErrors(err)
		h.renderEmailApps(q, m, status, errs)
		return
	}
	q.flash("Changes saved.")
	q.redirect("/admin/users/" + url.PathEscape(m.GUID) + "/email-apps")
}

type addUserData struct {
	base
	Domains                       []string
	DisplayName, Username, Domain string
}

func (h *Handler) addUserPage(q *request) {
	h.renderAddUser(q, http.StatusOK, addUserData{}, nil)
}

func (h *Handler) renderAddUser(q *request, status int, d addUserData, errs map[string]string) {
	d.base = q.page("Add a user", m365, navUsers)
	d.Errors = errs
	ds, _ := q.svc.AcceptedDomains("")
	for _, x := range ds {
		d.Domains = append(d.Domains, x.DomainName)
	}
	h.render(q.w, q.r, status, "adduser", d)
}

// addUserPost is Add a user: New-Mailbox with a password.
func (h *Handler) addUserPost(q *request) {
	f := q.r.PostForm
	d := addUserData{DisplayName: strings.TrimSpace(f.Get("displayName")), Username: strings.TrimSpace(f.Get("username")), Domain: f.Get("domain")}
	if d.Username == "" {
		h.renderAddUser(q, http.StatusBadRequest, d, map[string]string{"Name": "Enter a username."})
		return
	}
	params := map[string]any{"Name": d.Username, "PrimarySmtpAddress": d.Username + "@" + d.Domain, "Password": f.Get("password")}
	if d.DisplayName != "" {
		params["DisplayName"] = d.DisplayName
	}
	objs, err := q.invoke("New-Mailbox", params)
	if err != nil {
		status, errs := q.fieldErrors(err)
		h.renderAddUser(q, status, d, errs)
		return
	}
	q.flash(fmt.Sprintf("%s was added.", d.Username+"@"+d.Domain))
	if len(objs) == 1 {
		if guid := prop(objs[0], "ExchangeGuid"); guid != "" {
			q.redirect("/admin/users/" + url.PathEscape(guid))
			return
		}
	}
	q.redirect("/admin/users")
}

type passwordData struct {
	base
	User        *directory.Mailbox
	DisplayName string
}

func (h *Handler) passwordPage(q *request) {
	m, ok := q.mailboxOf()
	if !ok {
		return
	}
	h.render(q.w, q.r, http.StatusOK, "password", passwordData{base: q.page("Reset password", m365, navUsers), User: m, DisplayName: displayName(m)})
}

// passwordPost is Reset password: Set-Mailbox -Password.
func (h *Handler) passwordPost(q *request) {
	m, ok := q.mailboxOf()
	if !ok {
		return
	}
	pw := q.r.PostForm.Get("password")
	var err error
	if pw == "" {
		err = fmt.Errorf("Cannot process argument transformation on parameter 'Password'. Enter a new password.")
	} else {
		_, err = q.invoke("Set-Mailbox", map[string]any{"Identity": m.GUID, "Password": pw})
	}
	if err != nil {
		status, errs := q.fieldErrors(err)
		d := passwordData{base: q.page("Reset password", m365, navUsers), User: m, DisplayName: displayName(m)}
		d.Errors = errs
		h.render(q.w, q.r, status, "password", d)
		return
	}
	q.flash("The password was reset.")
	q.redirect("/admin/users/" + url.PathEscape(m.GUID))
}
