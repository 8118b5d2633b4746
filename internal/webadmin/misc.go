package webadmin

import (
	"encoding/json"
	"net/http"
	"strconv"

	"postern.dev/postern/internal/admin"
)

func errNotFound(identity string) error { return admin.NotFound(identity) }

type homeData struct {
	base
	Users, Connectors, Domains int
	SmtpAuthOff                bool
}

// home is the admin center's landing page.
func (h *Handler) home(q *request) {
	ms, _ := q.svc.Mailboxes("", 0)
	cs, _ := q.svc.InboundConnectors("")
	ds, _ := q.svc.AcceptedDomains("")
	h.render(q.w, q.r, http.StatusOK, "home", homeData{base: q.page("Home", m365, navHome), Users: len(ms), Connectors: len(cs), Domains: len(ds),
		SmtpAuthOff: q.svc.Organization().SmtpClientAuthenticationDisabled})
}

type testsData struct {
	base
	Identity, From, Recipient, ClientIP, Port string
	UseTls                                    bool
	Ran                                       bool
	Checks                                    []admin.Check
	Pass                                      bool
}

// runTests is the "Run tests" diagnostics flyout: Test-SmtpSubmission
// for a mailbox (or sender), address and port, each check with its fix,
// as Microsoft's "Can't send mail from a device" diagnostic shows it. It
// changes nothing, so it is a GET: the form works without script and the
// result can be bookmarked.
func (h *Handler) runTests(q *request) {
	v := q.r.URL.Query()
	d := testsData{base: q.page("Run tests: Can't send mail from a device", m365, navTroubleshoot), Identity: v.Get("identity"), From: v.Get("from"),
		Recipient: v.Get("recipient"), ClientIP: v.Get("clientIP"), Port: v.Get("port"), UseTls: v.Get("useTls") != "off"}
	if d.Port == "" {
		d.Port = "587"
	}
	if v.Get("run") == "" {
		h.render(q.w, q.r, http.StatusOK, "tests", d)
		return
	}
	port, err := strconv.Atoi(d.Port)
	params := map[string]any{"UseTls": d.UseTls}
	if err == nil {
		params["Port"] = json.Number(strconv.Itoa(port))
	}
	for k, val := range map[string]string{"Identity": d.Identity, "From": d.From, "Recipient": d.Recipient, "ClientIP": d.ClientIP} {
		if val != "" {
			params[k] = val
		}
	}
	if port == 25 && d.Identity != "" && d.From == "" {
		params["Authenticated"] = true
	}
	objs, err := q.invoke("Test-SmtpSubmission", params)
	if err != nil {
		status, errs := q.fieldErrors(err)
		d.Errors = errs
		h.render(q.w, q.r, status, "tests", d)
		return
	}
	d.Ran, d.Pass = true, true
	for _, o := range objs {
		c := admin.Check{Check: prop(o, "Check"), Result: prop(o, "Result"), Detail: prop(o, "Detail")}
		if c.Result == "Fail" {
			d.Pass = false
		}
		d.Checks = append(d.Checks, c)
	}
	h.render(q.w, q.r, http.StatusOK, "tests", d)
}
