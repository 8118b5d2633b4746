package webadmin

import (
	"context"
	"net/http"
	"strings"
	"time"

	"postern.dev/postern/internal/directory"
)

// Settings > Domains: the organization's accepted domains, and for each
// the DNS records to publish (MX, SPF, DKIM selectors, DMARC) with a live
// check of each through the server's configured resolver.

type domainRow struct {
	Name, Type string
	Default    bool
}

type domainsData struct {
	base
	Rows []domainRow
}

func (h *Handler) domainsPage(q *request) {
	ds, err := q.svc.AcceptedDomains("")
	if err != nil {
		q.fail(err)
		return
	}
	d := domainsData{base: q.page("Domains", m365, navDomains)}
	for _, x := range ds {
		d.Rows = append(d.Rows, domainRow{Name: x.DomainName, Type: string(x.DomainType), Default: x.Default})
	}
	h.render(q.w, q.r, http.StatusOK, "domains", d)
}

// dnsRecord is one record to publish, and what the live check found.
type dnsRecord struct {
	Type, Name, Value, Purpose string
	// Status: "" (not checked), "OK", "Missing", "Different", "Error".
	Status, Found string
}

type domainData struct {
	base
	Domain  string
	Records []dnsRecord
	Checked bool
}

// dnsCheckTimeout bounds the live check of one domain's records.
const dnsCheckTimeout = 5 * time.Second

// domainPage shows the records to publish for one accepted domain; with
// ?check=1 it looks each up.
func (h *Handler) domainPage(q *request) {
	ds, err := q.svc.AcceptedDomains(q.r.PathValue("domain"))
	if err != nil || len(ds) != 1 {
		if err == nil {
			err = errNotFound(q.r.PathValue("domain"))
		}
		q.fail(err)
		return
	}
	dom := ds[0].DomainName
	d := domainData{base: q.page(dom, m365, navDomains), Domain: dom, Records: h.records(q, dom)}
	if q.r.URL.Query().Get("check") != "" && h.Resolver != nil {
		ctx, cancel := context.WithTimeout(q.r.Context(), dnsCheckTimeout)
		defer cancel()
		for i := range d.Records {
			h.check(ctx, &d.Records[i])
		}
		d.Checked = true
	}
	h.render(q.w, q.r, http.StatusOK, "domain", d)
}

// records are what the domain needs published for Postern to receive
// its mail and for receivers to trust what it sends.
func (h *Handler) records(q *request, dom string) []dnsRecord {
	host := h.Hostname
	out := []dnsRecord{
		{Type: "MX", Name: dom, Value: "0 " + host + ".", Purpose: "Mail for the domain comes to this server."},
		{Type: "TXT", Name: dom, Value: "v=spf1 mx -all", Purpose: "SPF: the domain's mail is sent by its MX hosts (add the addresses of other senders, and include: for a smart host)."},
	}
	cfgs, _ := q.svc.DkimSigningConfigs(dom)
	for _, c := range cfgs {
		for sel, key := range map[int]string{1: c.Selector1PublicKey, 2: c.Selector2PublicKey} {
			if key == "" {
				continue
			}
			purpose := "DKIM: the public key of " + directory.SelectorName(sel)
			if sel == c.ActiveSelector {
				purpose += " (signing now)"
			}
			out = append(out, dnsRecord{Type: "TXT", Name: directory.SelectorName(sel) + "._domainkey." + dom, Value: key, Purpose: purpose})
		}
	}
	if len(cfgs) == 0 {
		out = append(out, dnsRecord{Type: "TXT", Name: "selector1._domainkey." + dom, Purpose: "DKIM: not set up yet. Run New-DkimSigningConfig -DomainName " + dom + " -Enabled $true for the keys to publish."})
	}
	out = append(out, dnsRecord{Type: "TXT", Name: "_dmarc." + dom, Value: "v=DMARC1; p=quarantine; adkim=r; aspf=r", Purpose: "DMARC: what receivers do with mail that fails SPF and DKIM."})
	return out
}

// check looks one record up and compares what is published.
func (h *Handler) check(ctx context.Context, r *dnsRecord) {
	if r.Value == "" {
		return
	}
	if r.Type == "MX" {
		mxs, err := h.Resolver.LookupMX(ctx, r.Name)
		if err != nil {
			r.Status, r.Found = "Missing", dnsError(err)
			return
		}
		want := strings.TrimSuffix(strings.Fields(r.Value)[1], ".")
		var found []string
		for _, mx := range mxs {
			found = append(found, mx.Host)
			if strings.EqualFold(strings.TrimSuffix(mx.Host, "."), want) {
				r.Status = "OK"
			}
		}
		r.Found = strings.Join(found, ", ")
		if r.Status == "" {
			r.Status = "Different"
		}
		return
	}
	txts, err := h.Resolver.LookupTXT(ctx, r.Name)
	if err != nil {
		r.Status, r.Found = "Missing", dnsError(err)
		return
	}
	// The kind of record is what matters (a domain's SPF may rightly list
	// more than this server), except for DKIM, whose key must be exact.
	prefix := strings.Fields(r.Value)[0]
	for _, t := range txts {
		switch {
		case strings.Contains(r.Name, "._domainkey.") && squash(t) == squash(r.Value):
			r.Status, r.Found = "OK", t
			return
		case !strings.Contains(r.Name, "._domainkey.") && strings.HasPrefix(strings.ToLower(t), strings.ToLower(prefix)):
			r.Status, r.Found = "OK", t
			return
		}
	}
	r.Status, r.Found = "Different", strings.Join(txts, " | ")
	if len(txts) == 0 {
		r.Status = "Missing"
	}
}

// squash drops the spaces a DNS console or a split TXT string adds.
func squash(s string) string { return strings.Join(strings.Fields(s), "") }

func dnsError(err error) string {
	if strings.Contains(err.Error(), "no such host") {
		return "no record"
	}
	return "lookup failed: " + err.Error()
}
