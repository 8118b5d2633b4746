// Package webadmin is Postern's web admin center: the pages of
// Microsoft's Microsoft 365 admin center and Exchange admin center that
// the device guides point to (Users > Active users > Mail > Manage email
// apps and Mailbox permissions, Teams & groups > Shared mailboxes,
// Settings > Domains, the "Run tests" diagnostics; Exchange's Settings >
// Mail flow, Mail flow > Connectors, Accepted domains, Queues and Message
// trace, Reports > SMTP AUTH clients, the admin audit log, and the
// security pages: authentication policies and security defaults, DKIM,
// OAuth apps, API keys), served at the root of the admin HTTPS listener
// beside the REST API.
//
// It is the fourth front end over the one admin service. Every change a
// page makes is the cmdlet an admin would type (Set-CASMailbox,
// Set-TransportConfig, New-InboundConnector, ...), invoked through the
// signed-in admin's cmdlet registry, so the admin service checks the role
// and writes the admin audit log under the admin's name; reads call the
// same service methods as the Get- cmdlets, confined to the admin's
// organization (admin.Service.As). No business rule lives in a handler.
//
// Pages are server-rendered (html/template) and work without JavaScript:
// every read is a GET, every change a form POST answered by a redirect. A
// small script embedded in the binary (static/admin.js, written for
// Postern: htmx is not available on the build machines without a
// download) only improves them: search and paging swap the users table in
// place, and a user opens in a flyout.
//
// Sign-in: an organization's admin signs in with a mailbox address and
// password, checked by the same sign-in service as SMTP AUTH (the
// per-address throttle, smart lockout and verification gate are shared),
// or with the OpenID Connect provider the server's administrator
// configured (authorization-code flow with PKCE, oidc.go), whose ID token
// names the mailbox;
// the role is the widest of the mailbox's role groups (Add-RoleGroupMember)
// and is read again at every request. The server administrator signs in
// with a one-time link `postern admin-link` prints (through the admin
// socket, which only the data directory's owner can open) and may switch
// between organizations. Sessions are kept in the store (store.Ephemeral,
// so that any node serves any browser) under the digest of an HttpOnly,
// Secure, SameSite=Strict cookie, with an idle and an absolute timeout and
// a CSRF token checked on every POST.
package webadmin

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"postern.dev/postern/internal/admin"
	"postern.dev/postern/internal/cmdlet"
	"postern.dev/postern/internal/directory"
	"postern.dev/postern/internal/limits"
	"postern.dev/postern/internal/signin"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Resolver is what the domain page's live DNS check asks: the server's
// configured resolver.
type Resolver interface {
	LookupMX(ctx context.Context, name string) ([]*net.MX, error)
	LookupTXT(ctx context.Context, name string) ([]string, error)
}

// Handler serves the admin center.
type Handler struct {
	// Admin is the server administrator's service; each request acts on
	// the service of the signed-in admin's organization and role.
	Admin *admin.Service
	// Authn checks mailbox passwords (the SMTP AUTH sign-in service).
	Authn *signin.Authenticator
	// Resolver answers the domain page's DNS checks; nil disables them.
	Resolver Resolver
	// Hostname is the server's name, the MX target the domain page shows.
	Hostname string
	Log      *slog.Logger
	// Now is the clock; nil: time.Now.
	Now func() time.Time
	// OIDC is the identity provider the sign-in page offers; nil: none.
	OIDC *OIDC
	// CertNotAfter is the served certificate's expiry: every page warns
	// when it is near (certWarning); nil: no warning.
	CertNotAfter func() time.Time
	// IdleTimeout and AbsoluteTimeout end sessions (defaults 1 h, 12 h).
	IdleTimeout, AbsoluteTimeout time.Duration

	once     sync.Once
	mux      *http.ServeMux
	sessions *sessionStore
	links    linkStore
	// flowStarts counts the OIDC sign-ins each client address started in
	// the last minute (admitFlowStart).
	flowStarts     *limits.Window[netip.Prefix]
	flowStartCalls atomic.Int64
	pages          map[string]*template.Template
	regMu          sync.Mutex
	registries     map[string]*cmdlet.Registry
}

// Cookie names. The __Host- prefix makes browsers refuse the cookie
// unless it is Secure, has Path=/ and no Domain (RFC 6265bis 4.1.3.2), so
// no other host can plant one.
const (
	sessionCookie = "__Host-postern-session"
	signinCookie  = "__Host-postern-signin"
)

// maxSessions bounds the sessions kept in the store.
const maxSessions = 10000

// maxForm bounds a form post: the largest form is a connector's IP ranges.
const maxForm = 64 << 10

func (h *Handler) init() {
	h.once.Do(func() {
		if h.IdleTimeout == 0 {
			h.IdleTimeout = time.Hour
		}
		if h.AbsoluteTimeout == 0 {
			h.AbsoluteTimeout = 12 * time.Hour
		}
		h.sessions = newSessionStore(h.Admin.Store, h.IdleTimeout, h.AbsoluteTimeout, maxSessions)
		h.links = linkStore{st: h.Admin.Store, ttl: 10 * time.Minute}
		h.flowStarts = limits.NewWindow[netip.Prefix](time.Minute, 6, time.Minute)
		h.pages = parseTemplates()
		h.registries = map[string]*cmdlet.Registry{}
		h.routes()
	})
}

func (h *Handler) now() time.Time {
	if h.Now != nil {
		return h.Now()
	}
	return time.Now()
}

func (h *Handler) log() *slog.Logger {
	if h.Log != nil {
		return h.Log
	}
	return slog.Default()
}

// Register mounts the admin center at the root of mux; more specific
// patterns (the REST API under /api/v1/, /metrics) keep their own.
func (h *Handler) Register(mux *http.ServeMux) {
	h.init()
	mux.Handle("/", h)
}

// ServeHTTP serves one request, with the headers every answer carries.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.init()
	hd := w.Header()
	// Everything is served from here: no inline script, no frame, no
	// form posting elsewhere.
	hd.Set("Content-Security-Policy", "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'; base-uri 'none'")
	hd.Set("X-Content-Type-Options", "nosniff")
	// same-origin, not no-referrer: under no-referrer browsers send
	// "Origin: null" with the admin center's own form posts, which the
	// origin check must refuse; nothing is sent to other sites either way.
	hd.Set("Referrer-Policy", "same-origin")
	hd.Set("X-Frame-Options", "DENY")
	h.mux.ServeHTTP(w, r)
}

// NewAdminLink returns a one-time sign-in path for the server
// administrator (`postern admin-link`): it works once, within ten
// minutes.
func (h *Handler) NewAdminLink(ctx context.Context) (string, error) {
	h.init()
	t, err := h.links.create(ctx, h.now())
	if err != nil {
		return "", fmt.Errorf("storing the sign-in link: %w", err)
	}
	return "/signin/link/" + t, nil
}

func (h *Handler) routes() {
	m := http.NewServeMux()
	m.HandleFunc("GET /{$}", h.root)
	m.HandleFunc("GET /signin", h.signinPage)
	m.HandleFunc("POST /signin", h.signinPost)
	m.HandleFunc("GET /signin/link/{token}", h.linkPage)
	m.HandleFunc("POST /signin/link/{token}", h.linkPost)
	m.HandleFunc("POST /signout", h.signout)
	m.HandleFunc("GET /signin/oidc", h.oidcStart)
	m.HandleFunc("GET /signin/oidc/callback", h.oidcCallback)
	m.Handle("GET /static/", http.StripPrefix("/static/", http.HandlerFunc(serveStatic)))

	page := func(pattern string, fn func(*request)) { m.HandleFunc(pattern, h.signedIn(fn)) }
	page("GET /admin", h.home)
	page("POST /admin/organization", h.switchOrganization)
	page("GET /admin/users", h.activeUsers)
	page("POST /admin/users", h.bulkUsers)
	page("GET /admin/users/new", h.addUserPage)
	page("POST /admin/users/new", h.addUserPost)
	page("GET /admin/users/{id}", h.userPage)
	page("GET /admin/users/{id}/email-apps", h.emailAppsPage)
	page("POST /admin/users/{id}/email-apps", h.emailAppsPost)
	page("GET /admin/users/{id}/password", h.passwordPage)
	page("POST /admin/users/{id}/password", h.passwordPost)
	page("GET /admin/users/{id}/delegates/{right}", h.delegatesPage)
	page("POST /admin/users/{id}/delegates/{right}", h.delegatesPost)
	page("GET /admin/shared-mailboxes", h.sharedMailboxes)
	page("POST /admin/shared-mailboxes", h.sharedMailboxAdd)
	page("GET /admin/settings/domains", h.domainsPage)
	page("GET /admin/settings/domains/{domain}", h.domainPage)
	page("GET /admin/troubleshoot", h.runTests)
	page("GET /exchange/settings/mailflow", h.mailFlowSettings)
	page("POST /exchange/settings/mailflow", h.mailFlowSettingsPost)
	page("GET /exchange/connectors", h.connectors)
	page("GET /exchange/connectors/new", h.connectorWizard)
	page("POST /exchange/connectors/new", h.connectorWizardPost)
	page("GET /exchange/connectors/{name}", h.connectorPage)
	page("POST /exchange/connectors/{name}", h.connectorPost)
	page("POST /exchange/connectors/{name}/delete", h.connectorDelete)
	page("POST /exchange/connectors/{name}/enabled", h.connectorToggle)
	page("GET /exchange/accepteddomains", h.acceptedDomains)
	page("POST /exchange/accepteddomains", h.acceptedDomainAdd)
	page("POST /exchange/accepteddomains/{domain}", h.acceptedDomainPost)
	page("GET /exchange/queues", h.queues)
	page("POST /exchange/queues/retry", h.queueRetry)
	page("POST /exchange/queues/remove", h.queueMessageRemove)
	page("GET /exchange/reports/smtpauthclients", h.smtpAuthClients)
	page("GET /exchange/auditlog", h.auditLog)
	page("GET /exchange/authpolicies", h.authPolicies)
	page("POST /exchange/authpolicies", h.authPolicyAdd)
	page("POST /exchange/authpolicies/{name}", h.authPolicyPost)
	page("POST /exchange/securitydefaults", h.securityDefaultsPost)
	page("GET /exchange/dkim", h.dkimPage)
	page("POST /exchange/dkim/{domain}", h.dkimPost)
	page("GET /exchange/oauth", h.oauthPage)
	page("POST /exchange/oauth", h.oauthPost)
	page("GET /exchange/apikeys", h.apiKeys)
	page("POST /exchange/apikeys", h.apiKeyAdd)
	page("POST /exchange/apikeys/{name}/delete", h.apiKeyRemove)
	page("GET /exchange/messagetrace", h.messageTrace)
	page("GET /exchange/messagetrace/{id}", h.messageTraceDetail)
	m.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		h.errorPage(w, r, http.StatusNotFound, "There is no page at "+r.URL.Path+".")
	})
	h.mux = m
}

func serveStatic(w http.ResponseWriter, r *http.Request) {
	sub, _ := fs.Sub(staticFS, "static")
	// The files change only with the binary; a day's caching is safe
	// across restarts of the same build and short enough across upgrades.
	w.Header().Set("Cache-Control", "public, max-age=86400")
	http.FileServerFS(sub).ServeHTTP(w, r)
}

func (h *Handler) root(w http.ResponseWriter, r *http.Request) {
	if _, ok, _ := h.currentSession(r); ok {
		http.Redirect(w, r, "/admin", http.StatusSeeOther)
		return
	}
	http.Redirect(w, r, "/signin", http.StatusSeeOther)
}

// request is one signed-in page request.
type request struct {
	h    *Handler
	w    http.ResponseWriter
	r    *http.Request
	sess session
	// svc is the admin service acting for the admin: confined to the
	// organization, limited to the role.
	svc    *admin.Service
	runner *cmdlet.Runner
	org    *directory.Organization
	// who names the admin on the page and in the audit log.
	who  string
	role admin.Role
}

// currentSession finds the request's live session; err is a failure of
// the store.
func (h *Handler) currentSession(r *http.Request) (session, bool, error) {
	c, err := r.Cookie(sessionCookie)
	if err != nil || len(c.Value) > 64 {
		return session{}, false, nil
	}
	return h.sessions.get(r.Context(), c.Value, h.now())
}

// storeUnavailable answers a request the store could not serve (the
// database unreachable, on several nodes): nothing was changed.
func (h *Handler) storeUnavailable(w http.ResponseWriter, r *http.Request, err error) {
	h.log().Error("admin center: the store is unavailable", "path", r.URL.Path, "err", err)
	h.errorPage(w, r, http.StatusServiceUnavailable, "The admin center cannot reach its database right now. Nothing was changed; try again in a moment.")
}

// signedIn runs a page for a signed-in admin: it finds the session,
// resolves the admin's current role (a mailbox that lost its role or was
// removed is signed out), checks the CSRF token and origin of a POST, and
// gives the page the admin's service and cmdlets.
func (h *Handler) signedIn(fn func(*request)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		sess, ok, err := h.currentSession(r)
		if err != nil {
			h.storeUnavailable(w, r, err)
			return
		}
		if !ok {
			if r.Method == http.MethodGet {
				http.Redirect(w, r, "/signin?return="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
				return
			}
			h.errorPage(w, r, http.StatusForbidden, "Your session has ended. Sign in again.")
			return
		}
		if r.Method == http.MethodPost {
			r.Body = http.MaxBytesReader(w, r.Body, maxForm)
			if err := r.ParseForm(); err != nil {
				h.errorPage(w, r, http.StatusBadRequest, "The form could not be read: it is too large or malformed.")
				return
			}
			if !sameOrigin(r) || !tokensEqual(r.PostForm.Get("csrf"), sess.CSRF) {
				h.log().Warn("admin center: POST refused: missing or wrong CSRF token", "path", r.URL.Path, "remote", r.RemoteAddr)
				h.errorPage(w, r, http.StatusForbidden, "The request was refused: the form's security token is missing or out of date. Reload the page and try again.")
				return
			}
		}
		q := &request{h: h, w: w, r: r, sess: sess}
		if err := h.principal(q); err != nil {
			h.sessions.remove(r.Context(), sess.id)
			h.clearCookie(w, sessionCookie)
			h.renderSignin(w, r, http.StatusForbidden, signinData{Error: err.Error()})
			return
		}
		fn(q)
	}
}

// errNoRole is a signed-in mailbox with no admin role group left.
var errNoRole = errors.New("You don't have permission to use the admin center: your account is not a member of an admin role group (Organization Management, Recipient Management or View-Only Organization Management).")

// principal resolves who the session acts as, now.
func (h *Handler) principal(q *request) error {
	dir := h.Admin.Dir.Load()
	if q.sess.ServerAdmin {
		org := dir.Organization(q.sess.OrgID)
		if org == nil {
			if orgs := dir.Organizations(); len(orgs) > 0 {
				org = orgs[0]
			}
		}
		if org == nil {
			return errors.New("The server has no organization.")
		}
		svc, err := h.Admin.ForOrganization(org.GUID)
		if err != nil {
			return err
		}
		svc.Caller = "server administrator (admin center)"
		q.svc, q.org, q.who, q.role = svc, org, "Server administrator", admin.OrganizationManagement
		q.runner = h.runnerFor("server\x00"+org.GUID, svc)
		return nil
	}
	mb := dir.Mailbox(q.sess.MailboxID)
	if mb == nil || mb.OrgID != q.sess.OrgID {
		return errors.New("Your account no longer exists. Sign in again.")
	}
	role, ok, err := h.Admin.MailboxRole(q.r.Context(), mb)
	if err != nil {
		return errors.New("Your role could not be read; try again.")
	}
	if !ok {
		return errNoRole
	}
	p := admin.Principal{Name: mb.PrimarySmtpAddress + " (admin center)", OrgID: mb.OrgID, Role: role}
	q.svc, q.org, q.who, q.role = h.Admin.As(p), dir.Organization(mb.OrgID), mb.PrimarySmtpAddress, role
	if q.org == nil {
		return errors.New("Your organization no longer exists.")
	}
	q.runner = h.runnerFor(fmt.Sprintf("%d\x00%s\x00%s", mb.OrgID, p.Name, role), q.svc)
	return nil
}

// maxRegistries bounds the cached cmdlet registries; past it the cache
// starts afresh. A registry is bound to one principal and costs a
// noticeable share of a small request to build.
const maxRegistries = 256

func (h *Handler) runnerFor(key string, svc *admin.Service) *cmdlet.Runner {
	h.regMu.Lock()
	reg, ok := h.registries[key]
	if !ok {
		if len(h.registries) >= maxRegistries {
			h.registries = map[string]*cmdlet.Registry{}
		}
		reg = admin.Cmdlets(svc)
		h.registries[key] = reg
	}
	h.regMu.Unlock()
	return &cmdlet.Runner{Registry: reg, Out: &strings.Builder{}, NoFiles: true}
}

// sameOrigin refuses a POST whose Origin (or, without one, Referer)
// names another site: the CSRF token is the defence, this is a second.
func sameOrigin(r *http.Request) bool {
	src := r.Header.Get("Origin")
	if src == "" {
		src = r.Header.Get("Referer")
	}
	if src == "" || src == "null" {
		// Browsers send Origin with every POST; a client without it is
		// not a browser another site could drive.
		return src == ""
	}
	u, err := url.Parse(src)
	return err == nil && strings.EqualFold(u.Host, r.Host)
}

// can reports whether the admin's role includes a cmdlet: pages show
// change controls only then. The admin service checks again on the
// change itself, so a forged POST is refused all the same.
func (q *request) can(cmdletName string) bool {
	if q.sess.ServerAdmin {
		return true
	}
	spec, ok := q.runner.Registry.Lookup(cmdletName)
	return ok && q.role.Allows(spec.Access)
}

// invoke runs a cmdlet as the signed-in admin: role-checked and audited
// by the admin service.
func (q *request) invoke(name string, params map[string]any) ([]*cmdlet.Object, error) {
	return q.runner.Invoke(q.r.Context(), name, params)
}

// clientIP is the address the request came from.
func clientIP(r *http.Request) netip.Addr {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap()
}

// setCookie sets one of the admin center's cookies: HttpOnly, Secure,
// SameSite=Strict, for the whole host and the browser session only.
func (h *Handler) setCookie(w http.ResponseWriter, name, value string) {
	http.SetCookie(w, &http.Cookie{Name: name, Value: value, Path: "/", HttpOnly: true, Secure: true, SameSite: http.SameSiteStrictMode})
}

func (h *Handler) clearCookie(w http.ResponseWriter, name string) {
	http.SetCookie(w, &http.Cookie{Name: name, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, Secure: true, SameSite: http.SameSiteStrictMode})
}

// flash leaves a notice for the next page.
func (q *request) flash(msg string) {
	if err := q.h.sessions.update(q.r.Context(), q.sess.id, q.h.now(), func(s *sessionRecord) { s.Flash = msg }); err != nil {
		q.h.log().Error("admin center: saving a notice in the session", "err", err)
	}
}

// takeFlash returns the session's notice, clearing it in the store: only
// a page that has one costs a write.
func (q *request) takeFlash() string {
	if q.sess.Flash == "" {
		return ""
	}
	return q.h.sessions.takeFlash(q.r.Context(), q.sess.id, q.h.now())
}

// redirect answers a successful POST (post/redirect/get).
func (q *request) redirect(path string) {
	http.Redirect(q.w, q.r, path, http.StatusSeeOther)
}

// paramOf finds the parameter an admin service error concerns, so that a
// form shows it next to its field: "parameter 'DomainName'".
var paramOf = regexp.MustCompile(`parameter '([A-Za-z]+)'`)

// fieldErrors files an error under the form field it names, else under
// "" (the form as a whole), and gives the status to answer with. Server
// failures show a generic text; their detail goes to the log.
func (q *request) fieldErrors(err error) (int, map[string]string) {
	msg, status := err.Error(), http.StatusBadRequest
	switch {
	case errors.Is(err, admin.ErrInternal):
		q.h.log().Error("admin center: change failed", "path", q.r.URL.Path, "err", err)
		msg, status = "The server could not complete the change; the details are in its log.", http.StatusInternalServerError
	case errors.Is(err, admin.ErrAccessDenied):
		status = http.StatusForbidden
	case errors.Is(err, admin.ErrNotFound):
		status = http.StatusNotFound
	case errors.Is(err, admin.ErrExists):
		status = http.StatusConflict
	}
	if m := paramOf.FindStringSubmatch(msg); m != nil {
		return status, map[string]string{m[1]: msg}
	}
	return status, map[string]string{"": msg}
}
