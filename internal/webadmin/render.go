package webadmin

import (
	"bytes"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"path"
	"strings"
	"time"

	"postern.dev/postern/internal/cmdlet"
)

// parseTemplates makes one template set per page: the layout and the
// page's own "content" (and "partial", for the fragments the script swaps
// in).
func parseTemplates() map[string]*template.Template {
	funcs := template.FuncMap{
		"when": when,
		"add":  func(a, b int) int { return a + b },
		"join": strings.Join,
		// dict passes several values to a shared template.
		"dict": func(kv ...any) map[string]any {
			m := map[string]any{}
			for i := 0; i+1 < len(kv); i += 2 {
				k, _ := kv[i].(string)
				m[k] = kv[i+1]
			}
			return m
		},
	}
	base := template.Must(template.New("layout.html").Funcs(funcs).ParseFS(templateFS, "templates/layout.html"))
	names, _ := fs.Glob(templateFS, "templates/*.html")
	pages := map[string]*template.Template{}
	for _, n := range names {
		name := path.Base(n)
		if name == "layout.html" {
			continue
		}
		pages[strings.TrimSuffix(name, ".html")] = template.Must(template.Must(base.Clone()).ParseFS(templateFS, n))
	}
	return pages
}

// when shows a time as the pages do: UTC to the second, blank for none.
func when(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format("2006-01-02 15:04:05 UTC")
}

// Nav sections, for the left navigation's current item.
const (
	navHome            = "home"
	navUsers           = "users"
	navShared          = "shared"
	navDomains         = "domains"
	navMailFlow        = "mailflow"
	navConnectors      = "connectors"
	navTrace           = "trace"
	navTroubleshoot    = "troubleshoot"
	navAcceptedDomains = "accepteddomains"
	navQueues          = "queues"
	navAuthClients     = "smtpauthclients"
	navAuditLog        = "auditlog"
	navAuthPolicies    = "authpolicies"
	navDkim            = "dkim"
	navOAuth           = "oauth"
	navApiKeys         = "apikeys"
)

// base is what every signed-in page shows around its content.
type base struct {
	Title string
	// Center is "Microsoft 365 admin center" or "Exchange admin center",
	// as the page would be in Microsoft's.
	Center   string
	Nav      string
	Who      string
	Role     string
	Org      string
	OrgID    int64
	Orgs     []orgChoice
	CSRF     string
	Flash    string
	ViewOnly bool
	Errors   map[string]string
	Signed   bool
	// Refresh is a path on this site the page moves on to by itself.
	Refresh string
	// CertWarning warns that the served certificate expires soon.
	CertWarning string
}

type orgChoice struct {
	ID       int64
	Name     string
	Selected bool
}

// page fills the surroundings of a signed-in page.
func (q *request) page(title, center, nav string) base {
	b := base{Title: title, Center: center, Nav: nav, Who: q.who, Role: string(q.role), Org: q.org.Name, OrgID: q.org.ID,
		CSRF: q.sess.CSRF, Flash: q.takeFlash(), Signed: true, ViewOnly: !q.can("Set-CASMailbox")}
	b.CertWarning = q.h.certWarning()
	if q.sess.ServerAdmin {
		b.Role = "Server administrator"
		for _, o := range q.h.Admin.Organizations() {
			b.Orgs = append(b.Orgs, orgChoice{ID: o.ID, Name: o.Name, Selected: o.ID == q.org.ID})
		}
	}
	return b
}

// certWarnWithin is how close to its expiry the served certificate is
// warned about on every page: the server's log warns from the same point.
const certWarnWithin = 14 * 24 * time.Hour

// certWarning says that the served certificate expires within
// certWarnWithin (or has expired), "" otherwise. A mail client refuses an
// expired certificate, so every device stops sending at that moment.
func (h *Handler) certWarning() string {
	if h.CertNotAfter == nil {
		return ""
	}
	na := h.CertNotAfter()
	if na.IsZero() {
		return ""
	}
	left := na.Sub(h.now())
	switch {
	case left <= 0:
		return fmt.Sprintf("The server's TLS certificate expired on %s. Mail clients and devices refuse it: renew it now (tls_cert and tls_key, or [acme]).", na.UTC().Format("2006-01-02 15:04 UTC"))
	case left < certWarnWithin:
		days := int(left.Hours() / 24)
		in := fmt.Sprintf("in %d days", days)
		if days == 0 {
			in = "in less than a day"
		} else if days == 1 {
			in = "in 1 day"
		}
		return fmt.Sprintf("The server's TLS certificate expires on %s, %s. Renew it before then (tls_cert and tls_key, or [acme]), or mail clients and devices will refuse to connect.", na.UTC().Format("2006-01-02 15:04 UTC"), in)
	}
	return ""
}

// render writes a page, or only its "partial" template when the script
// asks for the fragment it swaps in (X-Partial).
func (h *Handler) render(w http.ResponseWriter, r *http.Request, status int, name string, data any) {
	t, ok := h.pages[name]
	if !ok {
		http.Error(w, "no template "+name, http.StatusInternalServerError)
		return
	}
	entry := "layout.html"
	if r.Header.Get("X-Partial") != "" && t.Lookup("partial") != nil {
		entry = "partial"
	} else if r.Header.Get("X-Flyout") != "" {
		entry = "content"
	}
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, entry, data); err != nil {
		h.log().Error("admin center: rendering a page", "page", name, "err", err)
		http.Error(w, "The page could not be rendered.", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if w.Header().Get("Cache-Control") == "" {
		w.Header().Set("Cache-Control", "no-store")
	}
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

// errorPage answers with a short page saying what went wrong.
func (h *Handler) errorPage(w http.ResponseWriter, r *http.Request, status int, msg string) {
	h.render(w, r, status, "error", struct {
		base
		Status  int
		Message string
	}{base{Title: http.StatusText(status)}, status, msg})
}

// fail shows an error of a read as a page of its own.
func (q *request) fail(err error) {
	status, errs := q.fieldErrors(err)
	msg := ""
	for _, m := range errs {
		msg = m
	}
	b := q.page(http.StatusText(status), "", "")
	q.h.render(q.w, q.r, status, "error", struct {
		base
		Status  int
		Message string
	}{b, status, msg})
}

// prop reads a property of a cmdlet's output object as text.
func prop(o *cmdlet.Object, name string) string {
	v, ok := o.Get(name)
	if !ok || v == nil {
		return ""
	}
	return cmdlet.FormatValue(v)
}
