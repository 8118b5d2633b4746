package webadmin

import (
	"net/http"
	"strconv"
	"strings"
)

// signinData is the sign-in page.
type signinData struct {
	base
	Token    string
	Username string
	Return   string
	Error    string
	// OIDC offers the identity provider's sign-in.
	OIDC bool
}

// safeReturn keeps a return path on this site: a path, never a scheme or
// another host ("//evil.example" and "/\evil.example" included).
func safeReturn(p string) string {
	if !strings.HasPrefix(p, "/") || strings.HasPrefix(p, "//") || strings.HasPrefix(p, "/\\") || len(p) > 2048 {
		return "/admin"
	}
	return p
}

// signinToken is the sign-in form's own CSRF token (double submit: a
// cookie and a hidden field that must agree), so that another site cannot
// sign a browser in to an account of its choosing.
func (h *Handler) signinToken(w http.ResponseWriter, r *http.Request) string {
	if c, err := r.Cookie(signinCookie); err == nil && len(c.Value) == 43 {
		return c.Value
	}
	t := randomToken()
	h.setCookie(w, signinCookie, t)
	return t
}

func (h *Handler) renderSignin(w http.ResponseWriter, r *http.Request, status int, d signinData) {
	d.Title = "Sign in"
	d.OIDC = h.OIDC != nil
	d.Token = h.signinToken(w, r)
	if d.Return == "" {
		d.Return = safeReturn(r.URL.Query().Get("return"))
	}
	w.Header().Set("Cache-Control", "no-store")
	h.render(w, r, status, "signin", d)
}

func (h *Handler) signinPage(w http.ResponseWriter, r *http.Request) {
	if _, ok, _ := h.currentSession(r); ok {
		http.Redirect(w, r, "/admin", http.StatusSeeOther)
		return
	}
	h.renderSignin(w, r, http.StatusOK, signinData{})
}

// signinFailed is all a failed sign-in learns: which of name or password
// was wrong, or whether the account exists, stays unsaid.
const signinFailed = "Your account or password is incorrect."

func (h *Handler) signinPost(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 8<<10)
	if err := r.ParseForm(); err != nil {
		h.renderSignin(w, r, http.StatusBadRequest, signinData{Error: "The form could not be read."})
		return
	}
	c, err := r.Cookie(signinCookie)
	if err != nil || !tokensEqual(r.PostForm.Get("csrf"), c.Value) || !sameOrigin(r) {
		h.log().Warn("admin center: sign-in form refused: missing or wrong CSRF token or origin", "remote", r.RemoteAddr, "cookie", err == nil, "origin", r.Header.Get("Origin"))
		h.renderSignin(w, r, http.StatusForbidden, signinData{Error: "The sign-in form has expired. Try again."})
		return
	}
	user, password := strings.TrimSpace(r.PostForm.Get("username")), r.PostForm.Get("password")
	d := signinData{Username: user, Return: safeReturn(r.PostForm.Get("return"))}
	if user == "" || password == "" || len(user) > 320 || len(password) > 1024 {
		d.Error = "Enter your email address and password."
		h.renderSignin(w, r, http.StatusBadRequest, d)
		return
	}
	mb, refusal := h.Authn.AdminCenter(r.Context(), clientIP(r), user, password)
	if refusal != nil {
		h.log().Info("admin center sign-in refused", "user", user, "remote", r.RemoteAddr, "reason", refusal.Reason)
		d.Error = signinFailed
		status := http.StatusUnauthorized
		if refusal.Temporary || refusal.Close {
			d.Error, status = "Too many failed sign-ins from your address. Wait a few minutes and try again.", http.StatusTooManyRequests
		}
		h.renderSignin(w, r, status, d)
		return
	}
	if _, ok, err := h.Admin.MailboxRole(r.Context(), mb); err != nil || !ok {
		h.log().Info("admin center sign-in refused: no role group", "user", user, "remote", r.RemoteAddr)
		d.Error = errNoRole.Error()
		h.renderSignin(w, r, http.StatusForbidden, d)
		return
	}
	if !h.startSession(w, r, mb.ID, mb.OrgID, false) {
		return
	}
	h.log().Info("admin center sign-in", "user", mb.PrimarySmtpAddress, "remote", r.RemoteAddr)
	http.Redirect(w, r, d.Return, http.StatusSeeOther)
}

// startSession signs the browser in. A new session identifier every time
// (never one the browser brought) rules out session fixation.
// It reports false, having answered, when the store could not keep the
// session.
func (h *Handler) startSession(w http.ResponseWriter, r *http.Request, mailboxID, orgID int64, serverAdmin bool) bool {
	sess, err := h.sessions.create(r.Context(), h.now(), mailboxID, orgID, serverAdmin)
	if err != nil {
		h.storeUnavailable(w, r, err)
		return false
	}
	h.setCookie(w, sessionCookie, sess.id)
	h.clearCookie(w, signinCookie)
	return true
}

// linkPage shows the server administrator's one-time link as a button:
// the link is used up by the POST, so that a mail scanner or a browser
// prefetching the URL cannot spend it, and the session cookie is set by a
// same-site request (SameSite=Strict cookies set after a cross-site
// navigation would not be sent on the redirect that follows).
func (h *Handler) linkPage(w http.ResponseWriter, r *http.Request) {
	token := r.PathValue("token")
	if !h.links.valid(r.Context(), token, h.now()) {
		h.renderSignin(w, r, http.StatusForbidden, signinData{Error: "This sign-in link has been used or has expired. Run postern admin-link for a new one."})
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	h.render(w, r, http.StatusOK, "link", signinData{base: base{Title: "Sign in as the server administrator"}, Token: h.signinToken(w, r)})
}

func (h *Handler) linkPost(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 8<<10)
	r.ParseForm()
	c, err := r.Cookie(signinCookie)
	if err != nil || !tokensEqual(r.PostForm.Get("csrf"), c.Value) || !sameOrigin(r) {
		h.renderSignin(w, r, http.StatusForbidden, signinData{Error: "The sign-in form has expired. Open the link again."})
		return
	}
	if !h.links.use(r.Context(), r.PathValue("token"), h.now()) {
		h.renderSignin(w, r, http.StatusForbidden, signinData{Error: "This sign-in link has been used or has expired. Run postern admin-link for a new one."})
		return
	}
	var orgID int64
	if orgs := h.Admin.Organizations(); len(orgs) > 0 {
		orgID = orgs[0].ID
	}
	if !h.startSession(w, r, 0, orgID, true) {
		return
	}
	h.log().Info("admin center sign-in", "user", "server administrator", "remote", r.RemoteAddr)
	http.Redirect(w, r, "/admin", http.StatusSeeOther)
}

func (h *Handler) signout(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 8<<10)
	r.ParseForm()
	if sess, ok, _ := h.currentSession(r); ok {
		// Only the page's own form may sign out: another site must not be
		// able to end the admin's session either.
		if !tokensEqual(r.PostForm.Get("csrf"), sess.CSRF) {
			h.errorPage(w, r, http.StatusForbidden, "The request was refused: the form's security token is missing or out of date.")
			return
		}
		if err := h.sessions.remove(r.Context(), sess.id); err != nil {
			h.storeUnavailable(w, r, err)
			return
		}
	}
	h.clearCookie(w, sessionCookie)
	http.Redirect(w, r, "/signin", http.StatusSeeOther)
}

// switchOrganization is the server administrator's organization picker.
func (h *Handler) switchOrganization(q *request) {
	if !q.sess.ServerAdmin {
		q.h.errorPage(q.w, q.r, http.StatusForbidden, "Only the server's administrator can switch organizations.")
		return
	}
	id, _ := strconv.ParseInt(q.r.PostForm.Get("organization"), 10, 64)
	if h.Admin.Dir.Load().Organization(id) == nil {
		q.h.errorPage(q.w, q.r, http.StatusNotFound, "There is no such organization.")
		return
	}
	if err := h.sessions.update(q.r.Context(), q.sess.id, h.now(), func(s *sessionRecord) { s.OrgID = id }); err != nil {
		h.storeUnavailable(q.w, q.r, err)
		return
	}
	q.redirect("/admin")
}
