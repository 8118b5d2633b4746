package webadmin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/mail"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"postern.dev/postern/internal/directory"
	"postern.dev/postern/internal/limits"
)

// OIDC is the OpenID Connect identity provider an organization's admins
// may sign in with ([webadmin.oidc] in the configuration): the
// authorization-code flow with PKCE (OpenID Connect Core 3.1, RFC 7636).
// The ID token's address names a mailbox; the mailbox's role group
// membership grants the role, read again at every request as for a
// password sign-in.
type OIDC struct {
	Issuer, ClientID string
	// ClientSecret is empty for a public client.
	ClientSecret string
	// Claim names the claim holding the mailbox address; empty tries
	// "email", then "preferred_username".
	Claim string
	// RedirectURL is PUBLIC_URL/signin/oidc/callback, as registered at
	// the provider.
	RedirectURL string
	// HTTPClient fetches discovery, keys and tokens: the server's client
	// that refuses plain http except to loopback when allowed.
	HTTPClient *http.Client

	mu       sync.Mutex
	provider *oidc.Provider
	failedAt time.Time
}

// oidcCookie binds a sign-in in progress to the browser that started it.
// It is SameSite=Lax, not Strict: the callback is a top-level navigation
// from the provider's site, on which browsers send only Lax cookies.
const oidcCookie = "__Host-postern-oidc"

// flowTTL is how long a started sign-in may take at the provider.
const flowTTL = 10 * time.Minute

// maxFlowStartsPerMinute bounds the sign-ins one client address (IPv6 per
// /64) may start a minute. Starting one writes to the store before anyone
// has signed in (a transaction, on SQLite an fsync on the writer that
// files mail), so an anonymous client must not be able to start them as
// fast as it can send requests.
const maxFlowStartsPerMinute = 20

// admitFlowStart counts a sign-in started from ip against
// maxFlowStartsPerMinute, and reports whether it may go on.
func (h *Handler) admitFlowStart(ip netip.Addr, now time.Time) bool {
	ok, _ := h.flowStarts.Reserve(limits.Source(ip), limits.Count{External: 1}, now,
		func(u limits.Usage) bool { return u.Window.Total() < maxFlowStartsPerMinute })
	// The addresses whose minute has passed are forgotten now and then,
	// so that the counts stay as small as the recent sources.
	if h.flowStartCalls.Add(1)%256 == 0 {
		h.flowStarts.Sweep(now)
	}
	return ok
}

// maxFlows bounds the sign-ins in progress.
const maxFlows = 1024

// discoveryRetry is how long a failed discovery is remembered, so that
// requests to the sign-in link cannot make the server hammer a provider
// that is down.
const discoveryRetry = 30 * time.Second

// flow is one sign-in in progress: what the callback must find again.
// It is kept in the store (store.Ephemeral) under a digest of the
// cookie's identifier, so the provider may send the browser back to any
// node; each is usable once.
type flow struct {
	State    string `json:"state"`
	Nonce    string `json:"nonce"`
	Verifier string `json:"verifier"`
	Return   string `json:"return"`
}

// putFlow keeps a started sign-in until flowTTL has passed. Past
// maxFlows, those nearest to expiry go: a flood of started sign-ins can
// only make a genuine one start again.
func (h *Handler) putFlow(ctx context.Context, id string, f flow, now time.Time) error {
	v, err := json.Marshal(f)
	if err != nil {
		return err
	}
	return h.Admin.Store.PutEphemeral(ctx, kindFlow, tokenKey(id), v, now.Add(flowTTL), maxFlows)
}

// takeFlow removes and returns a live flow.
func (h *Handler) takeFlow(ctx context.Context, id string, now time.Time) (flow, bool) {
	v, err := h.Admin.Store.TakeEphemeral(ctx, kindFlow, tokenKey(id), now)
	var f flow
	if err != nil || json.Unmarshal(v, &f) != nil {
		return flow{}, false
	}
	return f, true
}

// discover returns the provider, fetching its discovery document the
// first time (and again after a failure, at most every discoveryRetry).
func (o *OIDC) discover(ctx context.Context, now time.Time) (*oidc.Provider, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.provider != nil {
		return o.provider, nil
	}
	if !o.failedAt.IsZero() && now.Sub(o.failedAt) < discoveryRetry {
		return nil, errors.New("the identity provider's discovery document could not be fetched a moment ago")
	}
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	// The provider keeps the client in the context for its key set's
	// later fetches; the timeout above covers only discovery.
	p, err := oidc.NewProvider(oidc.ClientContext(ctx, o.HTTPClient), o.Issuer)
	if err != nil {
		o.failedAt = now
		return nil, err
	}
	o.provider = p
	return p, nil
}

func (o *OIDC) oauth2Config(p *oidc.Provider) *oauth2.Config {
	return &oauth2.Config{ClientID: o.ClientID, ClientSecret: o.ClientSecret, Endpoint: p.Endpoint(), RedirectURL: o.RedirectURL,
		Scopes: []string{oidc.ScopeOpenID, "email", "profile"}}
}

// oidcStart sends the browser to the provider, with a fresh state, nonce
// and PKCE verifier kept under a random identifier in a short-lived
// cookie.
func (h *Handler) oidcStart(w http.ResponseWriter, r *http.Request) {
	o := h.OIDC
	if o == nil {
		h.errorPage(w, r, http.StatusNotFound, "Sign-in with an identity provider is not configured on this server.")
		return
	}
	p, err := o.discover(r.Context(), h.now())
	if err != nil {
		h.log().Warn("admin center: OIDC discovery failed", "issuer", o.Issuer, "err", err)
		h.renderSignin(w, r, http.StatusBadGateway, signinData{Error: "The identity provider cannot be reached. Try again in a minute, or sign in with your password."})
		return
	}
	if !h.admitFlowStart(clientIP(r), h.now()) {
		h.renderSignin(w, r, http.StatusTooManyRequests, signinData{Error: "Too many sign-ins were started from your address. Wait a minute and try again."})
		return
	}
	f := flow{State: randomToken(), Nonce: randomToken(), Verifier: oauth2.GenerateVerifier(), Return: safeReturn(r.URL.Query().Get("return"))}
	id := randomToken()
	if err := h.putFlow(r.Context(), id, f, h.now()); err != nil {
		h.storeUnavailable(w, r, err)
		return
	}
	http.SetCookie(w, &http.Cookie{Name: oidcCookie, Value: id, Path: "/", MaxAge: int(flowTTL / time.Second), HttpOnly: true, Secure: true, SameSite: http.SameSiteLaxMode})
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, o.oauth2Config(p).AuthCodeURL(f.State, oidc.Nonce(f.Nonce), oauth2.S256ChallengeOption(f.Verifier)), http.StatusSeeOther)
}

// oidcRefusal is a sign-in the callback refuses: what the admin reads,
// and what the log says.
type oidcRefusal struct {
	status int
	msg    string
	reason string
}

func (e *oidcRefusal) Error() string { return e.reason }

// oidcCallback completes the sign-in: the state must be the one this
// browser's cookie names, the code is redeemed with the PKCE verifier, and
// the ID token is verified (signature, issuer, audience, expiry) and must
// carry the flow's nonce.
func (h *Handler) oidcCallback(w http.ResponseWriter, r *http.Request) {
	o := h.OIDC
	if o == nil {
		h.errorPage(w, r, http.StatusNotFound, "Sign-in with an identity provider is not configured on this server.")
		return
	}
	http.SetCookie(w, &http.Cookie{Name: oidcCookie, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, Secure: true, SameSite: http.SameSiteLaxMode})
	mb, ret, err := h.oidcMailbox(r)
	if err != nil {
		var ref *oidcRefusal
		if !errors.As(err, &ref) {
			ref = &oidcRefusal{http.StatusBadGateway, "The sign-in with your identity provider could not be completed. Try again.", err.Error()}
		}
		h.log().Info("admin center OIDC sign-in refused", "remote", r.RemoteAddr, "reason", ref.reason)
		h.renderSignin(w, r, ref.status, signinData{Error: ref.msg})
		return
	}
	if !h.startSession(w, r, mb.ID, mb.OrgID, false) {
		return
	}
	h.log().Info("admin center sign-in", "user", mb.PrimarySmtpAddress, "remote", r.RemoteAddr, "method", "oidc")
	// The session cookie is SameSite=Strict, and this response ends a
	// navigation that began on the provider's site: a redirect from here
	// would still count as cross-site and arrive without it. A page that
	// moves on by itself (meta refresh, or its link) starts a same-site
	// navigation, which carries the cookie.
	w.Header().Set("Cache-Control", "no-store")
	h.render(w, r, http.StatusOK, "continue", struct {
		base
		Return string
	}{base{Title: "Signed in", Refresh: ret}, ret})
}

// oidcMailbox runs the callback's checks and returns the mailbox the ID
// token names, and the page to go on to.
func (h *Handler) oidcMailbox(r *http.Request) (*directory.Mailbox, string, error) {
	o, now := h.OIDC, h.now()
	expired := &oidcRefusal{http.StatusBadRequest, "The sign-in took too long or was started in another browser. Sign in again.", "no live flow for the cookie"}
	c, err := r.Cookie(oidcCookie)
	if err != nil || len(c.Value) > 64 {
		return nil, "", expired
	}
	f, ok := h.takeFlow(r.Context(), c.Value, now)
	if !ok {
		return nil, "", expired
	}
	q := r.URL.Query()
	if !tokensEqual(q.Get("state"), f.State) {
		return nil, "", &oidcRefusal{http.StatusBadRequest, "The sign-in could not be verified. Sign in again.", "state does not match the flow's"}
	}
	if e := q.Get("error"); e != "" {
		// RFC 6749 4.1.2.1: the provider refused (access_denied, ...).
		desc := q.Get("error_description")
		if len(desc) > 200 {
			desc = desc[:200]
		}
		return nil, "", &oidcRefusal{http.StatusUnauthorized, "Your identity provider did not sign you in: " + strings.TrimSpace(e+" "+desc), "provider error " + e}
	}
	code := q.Get("code")
	if code == "" || len(code) > 4096 {
		return nil, "", &oidcRefusal{http.StatusBadRequest, "The identity provider's answer has no authorization code. Sign in again.", "no code"}
	}
	p, err := o.discover(r.Context(), now)
	if err != nil {
		return nil, "", fmt.Errorf("discovery: %w", err)
	}
	ctx, cancel := context.WithTimeout(r.Context(), 15*time.Second)
	defer cancel()
	ctx = context.WithValue(ctx, oauth2.HTTPClient, o.HTTPClient)
	tok, err := o.oauth2Config(p).Exchange(ctx, code, oauth2.VerifierOption(f.Verifier))
	if err != nil {
		return nil, "", fmt.Errorf("redeeming the code: %w", err)
	}
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		return nil, "", errors.New("the token response has no id_token")
	}
	idt, err := p.Verifier(&oidc.Config{ClientID: o.ClientID, Now: h.now}).Verify(oidc.ClientContext(ctx, o.HTTPClient), raw)
	if err != nil {
		return nil, "", &oidcRefusal{http.StatusUnauthorized, "The identity provider's ID token was not valid. Sign in again.", "ID token: " + err.Error()}
	}
	if !tokensEqual(idt.Nonce, f.Nonce) {
		return nil, "", &oidcRefusal{http.StatusUnauthorized, "The identity provider's ID token was not valid. Sign in again.", "ID token nonce does not match the flow's"}
	}
	var claims map[string]any
	if err := idt.Claims(&claims); err != nil {
		return nil, "", fmt.Errorf("ID token claims: %w", err)
	}
	addr, why := addressClaim(claims, o.Claim)
	if addr == "" {
		return nil, "", &oidcRefusal{http.StatusForbidden, "Your identity provider did not say which mailbox you are: " + why, why}
	}
	mb := h.Admin.Dir.Load().MailboxBySignIn(addr)
	if mb == nil || mb.Type == directory.SharedMailbox {
		return nil, "", &oidcRefusal{http.StatusForbidden, "There is no mailbox " + addr + " on this server to sign in as.", "no mailbox " + addr}
	}
	if _, ok, err := h.Admin.MailboxRole(r.Context(), mb); err != nil || !ok {
		return nil, "", &oidcRefusal{http.StatusForbidden, errNoRole.Error(), "no role group: " + addr}
	}
	return mb, f.Return, nil
}

// addressClaim finds the mailbox address in an ID token's claims: the
// configured claim, else "email" (only if not marked unverified, OpenID
// Connect Core 5.1), then "preferred_username". It returns "" and why
// when there is none.
func addressClaim(claims map[string]any, name string) (string, string) {
	names := []string{name}
	if name == "" {
		names = []string{"email", "preferred_username"}
	}
	for _, n := range names {
		v, ok := claims[n].(string)
		if !ok || v == "" {
			continue
		}
		if n == "email" {
			if verified, ok := claims["email_verified"].(bool); ok && !verified {
				return "", "its email claim is not verified"
			}
		}
		v = strings.TrimSpace(v)
		if a, err := mail.ParseAddress(v); err != nil || a.Address != v || len(v) > 320 {
			return "", fmt.Sprintf("the %s claim is not an email address", n)
		}
		return strings.ToLower(v), ""
	}
	return "", fmt.Sprintf("the ID token has no %s claim", strings.Join(names, " or "))
}
