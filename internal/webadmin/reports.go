package webadmin

import (
	"encoding/json"
	"net/http"
	"regexp"
	"strings"
	"time"
)

// Exchange admin center: Reports > SMTP AUTH clients
// (Get-SmtpAuthClientReport: who sends with passwords, who with tokens,
// over which TLS versions) and Audit > Admin audit log
// (Search-AdminAuditLog with its date, cmdlet and object filters). Both
// only read, so they are GET forms: they work without script and can be
// bookmarked.

type authClientRow struct {
	SenderAddress, Domain, MessagesSent, TLS10, TLS11, TLS12, TLS13, Protocol string
	LastSent                                                                  time.Time
}

type authClientsData struct {
	base
	Days string
	Rows []authClientRow
}

func (h *Handler) smtpAuthClients(q *request) {
	d := authClientsData{base: q.page("SMTP AUTH clients report", eac, navAuthClients), Days: q.r.URL.Query().Get("days")}
	if d.Days == "" {
		d.Days = "7"
	}
	objs, err := q.invoke("Get-SmtpAuthClientReport", map[string]any{"Days": json.Number(strings.TrimSpace(d.Days))})
	if err != nil {
		status, errs := q.fieldErrors(err)
		d.Errors = errs
		h.render(q.w, q.r, status, "smtpauthclients", d)
		return
	}
	for _, o := range objs {
		d.Rows = append(d.Rows, authClientRow{SenderAddress: prop(o, "SenderAddress"), Domain: prop(o, "Domain"), MessagesSent: prop(o, "MessagesSent"),
			TLS10: prop(o, "TLS10"), TLS11: prop(o, "TLS11"), TLS12: prop(o, "TLS12"), TLS13: prop(o, "TLS13"), Protocol: prop(o, "AuthenticationProtocol"),
			LastSent: timeProp(o, "LastSent")})
	}
	h.render(q.w, q.r, http.StatusOK, "smtpauthclients", d)
}

type auditRow struct {
	RunDate                                           time.Time
	Caller, Cmdlet, Parameters, Object, Error, Result string
}

type auditLogData struct {
	base
	Start, End, Cmdlets, Object string
	Ran                         bool
	Rows                        []auditRow
	// Changes lists the cmdlets that change something, for the cmdlet
	// filter's suggestions.
	Changes []string
}

// dateOnly is what a date input sends (HTML's valid date string).
var dateOnly = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}$`)

// maxAuditRows is how many entries one search shows, newest first.
const maxAuditRows = 1000

func (h *Handler) auditLog(q *request) {
	v := q.r.URL.Query()
	d := auditLogData{base: q.page("Admin audit log", eac, navAuditLog), Start: strings.TrimSpace(v.Get("start")), End: strings.TrimSpace(v.Get("end")),
		Cmdlets: strings.TrimSpace(v.Get("cmdlets")), Object: strings.TrimSpace(v.Get("object"))}
	for _, s := range q.runner.Registry.Specs() {
		if n := s.Name; strings.HasPrefix(n, "New-") || strings.HasPrefix(n, "Set-") || strings.HasPrefix(n, "Remove-") || strings.HasPrefix(n, "Add-") ||
			strings.HasPrefix(n, "Retry-") || strings.HasPrefix(n, "Rotate-") {
			d.Changes = append(d.Changes, n)
		}
	}
	params := map[string]any{"ResultSize": json.Number("1000")}
	if d.Start != "" {
		params["StartDate"] = d.Start
	}
	if d.End != "" {
		// A day given alone ends at its last second: the search includes it.
		if dateOnly.MatchString(d.End) {
			params["EndDate"] = d.End + " 23:59:59"
		} else {
			params["EndDate"] = d.End
		}
	}
	if cs := list(d.Cmdlets); len(cs) > 0 {
		params["Cmdlets"] = cs
	}
	if d.Object != "" {
		params["ObjectIds"] = d.Object
	}
	d.Ran = true
	objs, err := q.invoke("Search-AdminAuditLog", params)
	if err != nil {
		status, errs := q.fieldErrors(err)
		d.Errors, d.Ran = errs, false
		h.render(q.w, q.r, status, "auditlog", d)
		return
	}
	for i, o := range objs {
		if i == maxAuditRows {
			break
		}
		r := auditRow{RunDate: timeProp(o, "RunDate"), Caller: prop(o, "Caller"), Cmdlet: prop(o, "CmdletName"), Parameters: prop(o, "CmdletParameters"),
			Object: prop(o, "ObjectModified"), Error: prop(o, "Error"), Result: "Succeeded"}
		if prop(o, "Succeeded") != "True" {
			r.Result = "Failed"
		}
		d.Rows = append(d.Rows, r)
	}
	h.render(q.w, q.r, http.StatusOK, "auditlog", d)
}
