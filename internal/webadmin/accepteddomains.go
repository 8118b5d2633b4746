package webadmin

import (
	"net/http"
	"strings"
)

// Exchange admin center: Mail flow > Accepted domains. The list, Add
// (New-AcceptedDomain), the type of each (Set-AcceptedDomain -DomainType
// Authoritative or InternalRelay), Set as default (-MakeDefault) and
// Remove (Remove-AcceptedDomain). The DNS records each domain needs are
// on the Microsoft 365 admin center's Settings > Domains page, which the
// list links to.

type acceptedDomainsData struct {
	base
	Rows      []domainRow
	CanChange bool
	// The add form's answers, kept when the service refuses them.
	Name, DomainName, DomainType string
}

func (h *Handler) acceptedDomains(q *request) {
	h.renderAcceptedDomains(q, http.StatusOK, acceptedDomainsData{DomainType: "Authoritative"}, nil)
}

func (h *Handler) renderAcceptedDomains(q *request, status int, d acceptedDomainsData, errs map[string]string) {
	ds, err := q.svc.AcceptedDomains("")
	if err != nil {
		q.fail(err)
		return
	}
	d.base = q.page("Accepted domains", eac, navAcceptedDomains)
	d.Errors = errs
	d.CanChange = q.can("Set-AcceptedDomain")
	for _, x := range ds {
		d.Rows = append(d.Rows, domainRow{Name: x.DomainName, Type: string(x.DomainType), Default: x.Default})
	}
	h.render(q.w, q.r, status, "accepteddomains", d)
}

// acceptedDomainAdd is the Add form: New-AcceptedDomain.
func (h *Handler) acceptedDomainAdd(q *request) {
	f := q.r.PostForm
	d := acceptedDomainsData{Name: strings.TrimSpace(f.Get("name")), DomainName: strings.TrimSpace(f.Get("domainName")), DomainType: f.Get("domainType")}
	if d.Name == "" {
		// Exchange names an accepted domain after the domain unless told.
		d.Name = d.DomainName
	}
	params := map[string]any{"Name": d.Name, "DomainName": d.DomainName}
	if d.DomainType != "" {
		params["DomainType"] = d.DomainType
	}
	if _, err := q.invoke("New-AcceptedDomain", params); err != nil {
		status, errs := q.fieldErrors(err)
		h.renderAcceptedDomains(q, status, d, errs)
		return
	}
	q.flash("The accepted domain " + d.DomainName + " was added. Publish its DNS records: Settings > Domains > " + d.DomainName + ".")
	q.redirect("/exchange/accepteddomains")
}

// acceptedDomainPost changes one domain: its type, or makes it the
// default (Set-AcceptedDomain), or removes it (Remove-AcceptedDomain).
func (h *Handler) acceptedDomainPost(q *request) {
	ds, err := q.svc.AcceptedDomains(q.r.PathValue("domain"))
	if err != nil || len(ds) != 1 {
		if err == nil {
			err = errNotFound(q.r.PathValue("domain"))
		}
		q.fail(err)
		return
	}
	dom := ds[0]
	f := q.r.PostForm
	var msg string
	switch f.Get("action") {
	case "type":
		_, err = q.invoke("Set-AcceptedDomain", map[string]any{"Identity": dom.Name, "DomainType": f.Get("domainType")})
		msg = "The domain " + dom.DomainName + " is now " + f.Get("domainType") + "."
	case "default":
		_, err = q.invoke("Set-AcceptedDomain", map[string]any{"Identity": dom.Name, "MakeDefault": true})
		msg = dom.DomainName + " is now the default domain."
	case "remove":
		_, err = q.invoke("Remove-AcceptedDomain", map[string]any{"Identity": dom.Name})
		msg = "The accepted domain " + dom.DomainName + " was removed."
	default:
		h.errorPage(q.w, q.r, http.StatusBadRequest, "Choose what to change: the type, the default domain, or remove.")
		return
	}
	if err != nil {
		status, errs := q.fieldErrors(err)
		// The error concerns this row: say which domain it is about.
		for k, v := range errs {
			errs[k] = dom.DomainName + ": " + v
		}
		if _, ok := errs["DomainType"]; !ok {
			errs = map[string]string{"": firstOf(errs)}
		} else {
			errs = map[string]string{"DomainType:" + dom.DomainName: errs["DomainType"]}
		}
		h.renderAcceptedDomains(q, status, acceptedDomainsData{DomainType: "Authoritative"}, errs)
		return
	}
	q.flash(msg)
	q.redirect("/exchange/accepteddomains")
}

func firstOf(m map[string]string) string {
	for _, v := range m {
		return v
	}
	return ""
}
