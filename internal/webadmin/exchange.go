package webadmin

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"time"

	"postern.dev/postern/internal/admin"
	"postern.dev/postern/internal/directory"
)

// Exchange admin center: Settings > Mail flow, Mail flow > Connectors
// (with the Add a connector wizard), Mail flow > Message trace.

const eac = "Exchange admin center"

type mailFlowData struct {
	base
	SmtpAuthOff      bool
	RejectDirectSend bool
	BasicAuthOff     bool
	AllowLegacyTLS   bool
	CanChange        bool
}

func (h *Handler) mailFlowSettings(q *request) {
	h.renderMailFlow(q, http.StatusOK, nil)
}

func (h *Handler) renderMailFlow(q *request, status int, errs map[string]string) {
	o := q.svc.Organization()
	d := mailFlowData{base: q.page("Mail flow settings", eac, navMailFlow), SmtpAuthOff: o.SmtpClientAuthenticationDisabled,
		RejectDirectSend: o.RejectDirectSend, BasicAuthOff: o.SmtpBasicAuthDisabled, AllowLegacyTLS: o.AllowLegacyTLSClients, CanChange: q.can("Set-TransportConfig")}
	d.Errors = errs
	h.render(q.w, q.r, status, "mailflow", d)
}

// mailFlowSettingsPost saves Settings > Mail flow: the organization's
// SMTP AUTH, Basic and legacy-TLS switches (Set-TransportConfig) and Direct Send
// rejection (Set-OrganizationConfig), each only when it changed.
func (h *Handler) mailFlowSettingsPost(q *request) {
	o := q.svc.Organization()
	f := q.r.PostForm
	transport := map[string]any{}
	if v := f.Get("smtpAuthOff") == "on"; v != o.SmtpClientAuthenticationDisabled {
		transport["SmtpClientAuthenticationDisabled"] = v
	}
	if v := f.Get("basicAuthOff") == "on"; v != o.SmtpBasicAuthDisabled {
		transport["SmtpBasicAuthDisabled"] = v
	}
	if v := f.Get("allowLegacyTls") == "on"; v != o.AllowLegacyTLSClients {
		transport["AllowLegacyTLSClients"] = v
	}
	changed := false
	if len(transport) > 0 {
		if _, err := q.invoke("Set-TransportConfig", transport); err != nil {
			status, errs := q.fieldErrors(err)
			h.renderMailFlow(q, status, errs)
			return
		}
		changed = true
	}
	if v := f.Get("rejectDirectSend") == "on"; v != o.RejectDirectSend {
		if _, err := q.invoke("Set-OrganizationConfig", map[string]any{"RejectDirectSend": v}); err != nil {
			status, errs := q.fieldErrors(err)
			h.renderMailFlow(q, status, errs)
			return
		}
		changed = true
	}
	if changed {
		q.flash("Changes saved.")
	} else {
		q.flash("No changes to save.")
	}
	q.redirect("/exchange/settings/mailflow")
}

// connectorRow is one line of Mail flow > Connectors.
type connectorRow struct {
	Name, From, To, Identified string
	Enabled, RequireTls        bool
}

func connectorFrom(c *directory.InboundConnector) string {
	if c.ConnectorType == directory.Partner {
		return "Partner organization"
	}
	return "Your organization's email server"
}

func identifiedBy(c *directory.InboundConnector) string {
	var parts []string
	if len(c.SenderIPAddresses) > 0 {
		ips := make([]string, len(c.SenderIPAddresses))
		for i, p := range c.SenderIPAddresses {
			ips[i] = p.String()
		}
		parts = append(parts, "IP addresses: "+strings.Join(ips, ", "))
	}
	if c.TlsSenderCertificateName != "" {
		parts = append(parts, "Certificate: "+c.TlsSenderCertificateName)
	}
	if len(c.SenderDomains) > 0 {
		parts = append(parts, "Sender domains: "+strings.Join(c.SenderDomains, ", "))
	}
	return strings.Join(parts, "; ")
}

type connectorsData struct {
	base
	Rows      []connectorRow
	CanChange bool
	// CanToggle shows each row's On/Off switch (Set-InboundConnector).
	CanToggle bool
}

func (h *Handler) connectors(q *request) {
	cs, err := q.svc.InboundConnectors("")
	if err != nil {
		q.fail(err)
		return
	}
	d := connectorsData{base: q.page("Connectors", eac, navConnectors), CanChange: q.can("New-InboundConnector"), CanToggle: q.can("Set-InboundConnector")}
	for _, c := range cs {
		d.Rows = append(d.Rows, connectorRow{Name: c.Name, From: connectorFrom(c), To: "Office 365", Identified: identifiedBy(c), Enabled: c.Enabled, RequireTls: c.RequireTls})
	}
	h.render(q.w, q.r, http.StatusOK, "connectors", d)
}

// wizard is the Add a connector wizard's answers, carried from step to
// step in the form, so that it needs no server-side state and no script.
type wizard struct {
	Step        int
	From        string // "server" or "partner"
	Name        string
	Description string
	TurnOn      bool
	By          string // "ip" or "cert"
	IPs         string
	CertName    string
	Domains     string
	RequireTls  bool
}

func wizardOf(f url.Values) wizard {
	w := wizard{From: f.Get("from"), Name: strings.TrimSpace(f.Get("name")), Description: f.Get("description"), TurnOn: f.Get("turnOn") == "on",
		By: f.Get("by"), IPs: f.Get("ips"), CertName: strings.TrimSpace(f.Get("certName")), Domains: f.Get("domains"), RequireTls: f.Get("requireTls") == "on"}
	if w.From != "partner" {
		w.From = "server"
	}
	if w.By != "cert" {
		w.By = "ip"
	}
	return w
}

// list splits a text area's entries (lines or commas).
func list(s string) []any {
	var out []any
	for _, f := range strings.FieldsFunc(s, func(r rune) bool { return r == '\n' || r == '\r' || r == ',' || r == ';' || r == ' ' }) {
		out = append(out, f)
	}
	return out
}

type wizardData struct {
	base
	W wizard
}

func (h *Handler) connectorWizard(q *request) {
	h.renderWizard(q, http.StatusOK, wizard{Step: 1, From: "server", TurnOn: true, By: "ip"}, nil)
}

func (h *Handler) renderWizard(q *request, status int, w wizard, errs map[string]string) {
	d := wizardData{base: q.page("Add a connector", eac, navConnectors), W: w}
	d.Errors = errs
	h.render(q.w, q.r, status, "wizard", d)
}

// wizardSteps: 1 New connector (from where), 2 Connector name,
// 3 Authenticating sent email (IP ranges or certificate), 4 Security
// restrictions, 5 Review connector.
const wizardSteps = 5

// connectorWizardPost moves the wizard a step (Next, Back) or creates
// the connector (New-InboundConnector) from the review step.
func (h *Handler) connectorWizardPost(q *request) {
	f := q.r.PostForm
	w := wizardOf(f)
	step := 1
	switch f.Get("step") {
	case "2":
		step = 2
	case "3":
		step = 3
	case "4":
		step = 4
	case "5":
		step = 5
	}
	switch f.Get("go") {
	case "back":
		w.Step = max(step-1, 1)
		h.renderWizard(q, http.StatusOK, w, nil)
		return
	case "next":
		// Only what the admin service cannot judge without the rest is
		// checked here: that the step's own field is not empty.
		if step == 2 && w.Name == "" {
			w.Step = 2
			h.renderWizard(q, http.StatusBadRequest, w, map[string]string{"Name": "Enter a name for the connector."})
			return
		}
		if step == 3 && ((w.By == "ip" && len(list(w.IPs)) == 0) || (w.By == "cert" && w.CertName == "")) {
			w.Step = 3
			field := "SenderIPAddresses"
			if w.By == "cert" {
				field = "TlsSenderCertificateName"
			}
			h.renderWizard(q, http.StatusBadRequest, w, map[string]string{field: "Enter at least one value."})
			return
		}
		w.Step = min(step+1, wizardSteps)
		h.renderWizard(q, http.StatusOK, w, nil)
		return
	case "create":
	default:
		w.Step = step
		h.renderWizard(q, http.StatusOK, w, nil)
		return
	}
	params := map[string]any{"Name": w.Name, "Enabled": w.TurnOn, "RequireTls": w.RequireTls, "ConnectorType": "OnPremises"}
	if w.From == "partner" {
		params["ConnectorType"] = "Partner"
	}
	if strings.TrimSpace(w.Description) != "" {
		params["Comment"] = w.Description
	}
	if w.By == "cert" {
		params["TlsSenderCertificateName"] = w.CertName
		// A certificate proves nothing without TLS.
		params["RequireTls"] = true
	} else {
		params["SenderIPAddresses"] = list(w.IPs)
	}
	if ds := list(w.Domains); len(ds) > 0 {
		params["SenderDomains"] = ds
	}
	if _, err := q.invoke("New-InboundConnector", params); err != nil {
		status, errs := q.fieldErrors(err)
		w.Step = 5
		for field := range errs {
			switch field {
			case "Name":
				w.Step = 2
			case "SenderIPAddresses", "TlsSenderCertificateName":
				w.Step = 3
			case "SenderDomains":
				w.Step = 4
			}
		}
		h.renderWizard(q, status, w, errs)
		return
	}
	q.flash("The connector " + w.Name + " was created.")
	q.redirect("/exchange/connectors")
}

type connectorData struct {
	base
	C         *directory.InboundConnector
	From      string
	IPs       string
	Domains   string
	CanChange bool
}

func (q *request) connectorOf() (*directory.InboundConnector, bool) {
	cs, err := q.svc.InboundConnectors(q.r.PathValue("name"))
	if err != nil || len(cs) != 1 {
		if err == nil {
			err = admin.NotFound(q.r.PathValue("name"))
		}
		q.fail(err)
		return nil, false
	}
	return cs[0], true
}

func (h *Handler) connectorPage(q *request) {
	c, ok := q.connectorOf()
	if !ok {
		return
	}
	h.renderConnector(q, c, http.StatusOK, nil)
}

func (h *Handler) renderConnector(q *request, c *directory.InboundConnector, status int, errs map[string]string) {
	ips := make([]string, len(c.SenderIPAddresses))
	for i, p := range c.SenderIPAddresses {
		ips[i] = p.String()
	}
	d := connectorData{base: q.page(c.Name, eac, navConnectors), C: c, From: connectorFrom(c), IPs: strings.Join(ips, "\n"),
		Domains: strings.Join(c.SenderDomains, "\n"), CanChange: q.can("Set-InboundConnector")}
	d.Errors = errs
	h.render(q.w, q.r, status, "connector", d)
}

// connectorPost saves the connector's edit form: Set-InboundConnector.
func (h *Handler) connectorPost(q *request) {
	c, ok := q.connectorOf()
	if !ok {
		return
	}
	f := q.r.PostForm
	params := map[string]any{"Identity": c.Name, "Enabled": f.Get("enabled") == "on", "RequireTls": f.Get("requireTls") == "on",
		"SenderIPAddresses": list(f.Get("ips")), "TlsSenderCertificateName": strings.TrimSpace(f.Get("certName")),
		"SenderDomains": list(f.Get("domains")), "Comment": f.Get("description")}
	if params["SenderIPAddresses"] == nil {
		params["SenderIPAddresses"] = []any{}
	}
	if params["SenderDomains"] == nil {
		params["SenderDomains"] = []any{}
	}
	if _, err := q.invoke("Set-InboundConnector", params); err != nil {
		status, errs := q.fieldErrors(err)
		h.renderConnector(q, c, status, errs)
		return
	}
	q.flash("Changes saved.")
	q.redirect("/exchange/connectors/" + url.PathEscape(c.Name))
}

// connectorToggle is the list's On/Off switch: Set-InboundConnector
// -Enabled, as the status toggle of EAC's connector list.
func (h *Handler) connectorToggle(q *request) {
	c, ok := q.connectorOf()
	if !ok {
		return
	}
	on := q.r.PostForm.Get("enabled") == "on"
	if _, err := q.invoke("Set-InboundConnector", map[string]any{"Identity": c.Name, "Enabled": on}); err != nil {
		q.fail(err)
		return
	}
	if on {
		q.flash("The connector " + c.Name + " is turned on.")
	} else {
		q.flash("The connector " + c.Name + " is turned off.")
	}
	q.redirect("/exchange/connectors")
}

func (h *Handler) connectorDelete(q *request) {
	c, ok := q.connectorOf()
	if !ok {
		return
	}
	if _, err := q.invoke("Remove-InboundConnector", map[string]any{"Identity": c.Name}); err != nil {
		status, errs := q.fieldErrors(err)
		h.renderConnector(q, c, status, errs)
		return
	}
	q.flash("The connector " + c.Name + " was deleted.")
	q.redirect("/exchange/connectors")
}

type traceData struct {
	base
	Sender, Recipient, Status, Days string
	Ran                             bool
	Rows                            []traceRow
	StatusChoices                   []string
}

type traceRow struct {
	Received                           time.Time
	Sender, Recipient, Subject, Status string
	DetailURL                          string
}

// messageTrace is Mail flow > Message trace: the query form (senders,
// recipients, time range, delivery status), and its results when it has
// run (Get-MessageTraceV2's filters).
func (h *Handler) messageTrace(q *request) {
	v := q.r.URL.Query()
	d := traceData{base: q.page("Message trace", eac, navTrace), Sender: v.Get("sender"), Recipient: v.Get("recipient"), Status: v.Get("status"), Days: v.Get("days"),
		StatusChoices: []string{admin.StatusDelivered, admin.StatusFailed, admin.StatusPending, admin.StatusFilteredAsSpam}}
	if d.Days == "" {
		d.Days = "2"
	}
	if v.Get("run") == "" {
		h.render(q.w, q.r, http.StatusOK, "trace", d)
		return
	}
	d.Ran = true
	params := map[string]any{"ResultSize": json.Number("1000")}
	if d.Sender != "" {
		params["SenderAddress"] = d.Sender
	}
	if d.Recipient != "" {
		params["RecipientAddress"] = d.Recipient
	}
	if d.Status != "" {
		params["Status"] = d.Status
	}
	days := map[string]time.Duration{"1": 24 * time.Hour, "2": 48 * time.Hour, "7": 7 * 24 * time.Hour, "10": 10 * 24 * time.Hour}[d.Days]
	if days == 0 {
		days = 48 * time.Hour
	}
	now := q.h.now().UTC()
	params["StartDate"] = now.Add(-days).Format(time.RFC3339)
	params["EndDate"] = now.Add(time.Minute).Format(time.RFC3339)
	objs, err := q.invoke("Get-MessageTraceV2", params)
	if err != nil {
		status, errs := q.fieldErrors(err)
		d.Errors = errs
		h.render(q.w, q.r, status, "trace", d)
		return
	}
	for _, o := range objs {
		received, _ := o.Get("Received")
		t, _ := received.(time.Time)
		r := traceRow{Received: t, Sender: prop(o, "SenderAddress"), Recipient: prop(o, "RecipientAddress"), Subject: prop(o, "Subject"), Status: prop(o, "Status")}
		r.DetailURL = "/exchange/messagetrace/" + url.PathEscape(prop(o, "MessageTraceId")) + "?recipient=" + url.QueryEscape(r.Recipient)
		d.Rows = append(d.Rows, r)
	}
	h.render(q.w, q.r, http.StatusOK, "trace", d)
}

type traceDetailData struct {
	base
	ID, Recipient string
	Events        []admin.TraceDetail
}

// messageTraceDetail is a message's detail for one recipient: its events
// (Get-MessageTraceDetail).
func (h *Handler) messageTraceDetail(q *request) {
	id, rcpt := q.r.PathValue("id"), q.r.URL.Query().Get("recipient")
	params := map[string]any{"MessageTraceId": id}
	if rcpt != "" {
		params["RecipientAddress"] = rcpt
	}
	objs, err := q.invoke("Get-MessageTraceDetail", params)
	if err != nil {
		q.fail(err)
		return
	}
	d := traceDetailData{base: q.page("Message trace details", eac, navTrace), ID: id, Recipient: rcpt}
	for _, o := range objs {
		date, _ := o.Get("Date")
		t, _ := date.(time.Time)
		d.Events = append(d.Events, admin.TraceDetail{Date: t, Event: prop(o, "Event"), Action: prop(o, "Action"), Detail: prop(o, "Detail")})
	}
	h.render(q.w, q.r, http.StatusOK, "tracedetail", d)
}
