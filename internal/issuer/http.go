package issuer

import (
	"encoding/json"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"postern.dev/postern/internal/auth"
	"postern.dev/postern/internal/directory"
)

// Paths, as Entra ID lays them out, so that a URL template written for
// login.microsoftonline.com needs only its host changed.
const (
	MetadataPath = "/.well-known/openid-configuration"
	KeysPath     = "/discovery/v2.0/keys"
	TokenPath    = "/oauth2/v2.0/token"
)

// Handler serves the discovery document, the JWKS and the token endpoint.
type Handler struct {
	Keys      *Keys
	Directory *directory.Current
	// Issuer is the issuer identifier, the base URL of the endpoints.
	Issuer   string
	Throttle auth.AddressThrottle
	// Gate bounds the argon2id verifications of client secrets, shared
	// with SMTP AUTH (nil: unbounded, for tests).
	Gate *auth.Gate
	Log  *slog.Logger
	Now  func() time.Time

	mu   sync.Mutex
	seen map[string]time.Time // client assertion jti → expiry, against replay
}

// Register adds the endpoints to mux.
func (h *Handler) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET "+MetadataPath, h.metadata)
	mux.HandleFunc("GET "+KeysPath, h.jwks)
	mux.HandleFunc("POST "+TokenPath, h.token)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func (h *Handler) metadata(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{
		"issuer":                                h.Issuer,
		"jwks_uri":                              h.Issuer + KeysPath,
		"token_endpoint":                        h.Issuer + TokenPath,
		"grant_types_supported":                 []string{"client_credentials"},
		"token_endpoint_auth_methods_supported": []string{"client_secret_basic", "client_secret_post", "private_key_jwt"},
		"token_endpoint_auth_signing_alg_values_supported": []string{"RS256", "PS256", "ES256"},
		"response_types_supported":                         []string{"token"},
		"scopes_supported":                                 []string{Audience + "/.default"},
		"id_token_signing_alg_values_supported":            []string{"ES256"},
	})
}

func (h *Handler) jwks(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, h.Keys.JWKS())
}

// tokenError is RFC 6749 §5.2's error response.
func tokenError(w http.ResponseWriter, status int, code, description string) {
	if status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Basic realm="postern"`)
	}
	writeJSON(w, status, map[string]string{"error": code, "error_description": description})
}

const assertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

// token runs the client-credentials grant.
func (h *Handler) token(w http.ResponseWriter, r *http.Request) {
	now := h.Now()
	ip := clientIP(r)
	// Reserve, not Check then Failure: parallel requests from one address
	// must not all pass before the first failure is counted.
	attempt, delay, verdict := h.Throttle.Reserve(ip, now)
	if verdict == auth.Unavailable {
		tokenError(w, http.StatusServiceUnavailable, "temporarily_unavailable", "the sign-in service is unavailable; try again later")
		return
	}
	if verdict != auth.Admit {
		tokenError(w, http.StatusTooManyRequests, "temporarily_unavailable", "too many failed attempts from this address")
		return
	}
	failed := false
	defer func() { attempt.Done(failed, h.Now()) }()
	if delay > 0 {
		time.Sleep(delay)
	}
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		tokenError(w, http.StatusBadRequest, "invalid_request", "the request body is not a form")
		return
	}
	if gt := r.PostForm.Get("grant_type"); gt != "client_credentials" {
		tokenError(w, http.StatusBadRequest, "unsupported_grant_type", "only client_credentials is supported")
		return
	}
	for _, s := range strings.Fields(r.PostForm.Get("scope")) {
		if s != Audience+"/.default" {
			tokenError(w, http.StatusBadRequest, "invalid_scope", "the scope must be "+Audience+"/.default")
			return
		}
	}
	app, reason := h.authenticate(r, ip, now)
	if reason == errBusy {
		tokenError(w, http.StatusServiceUnavailable, "temporarily_unavailable", "too many sign-ins in progress; try again later")
		return
	}
	if app == nil {
		failed = true
		if h.Log != nil {
			h.Log.Warn("token request refused", "ip", ip, "client_id", r.PostForm.Get("client_id"), "reason", reason)
		}
		tokenError(w, http.StatusUnauthorized, "invalid_client", "client authentication failed")
		return
	}
	tok, err := h.Keys.Sign(h.Issuer, app.AppId, now)
	if err != nil {
		tokenError(w, http.StatusInternalServerError, "server_error", "the token could not be signed")
		return
	}
	if h.Log != nil {
		h.Log.Info("token issued", "ip", ip, "app", app.Name, "client_id", app.AppId)
	}
	writeJSON(w, http.StatusOK, map[string]any{"access_token": tok, "token_type": "Bearer", "expires_in": int(TokenLifetime.Seconds())})
}

// authenticate finds the client and checks its proof: exactly one of a
// client secret (HTTP Basic or form) or a client assertion.
func (h *Handler) authenticate(r *http.Request, ip netip.Addr, now time.Time) (*directory.OAuthApp, string) {
	dir := h.Directory.Load()
	form := r.PostForm
	basicID, basicSecret, hasBasic := r.BasicAuth()
	if hasBasic {
		// RFC 6749 §2.3.1: the credentials are form-urlencoded first.
		basicID, _ = url.QueryUnescape(basicID)
		basicSecret, _ = url.QueryUnescape(basicSecret)
	}
	methods := 0
	for _, used := range []bool{hasBasic, form.Get("client_secret") != "", form.Get("client_assertion") != ""} {
		if used {
			methods++
		}
	}
	if methods != 1 {
		return nil, "the request must use exactly one client authentication method"
	}
	if a := form.Get("client_assertion"); a != "" {
		if form.Get("client_assertion_type") != assertionType {
			return nil, "client_assertion_type is not " + assertionType
		}
		return h.checkAssertion(dir, a, form.Get("client_id"), now)
	}
	id, secret := form.Get("client_id"), form.Get("client_secret")
	if hasBasic {
		id, secret = basicID, basicSecret
	}
	app := dir.OAuthApp(id)
	reason := ""
	verify := func() {
		if app == nil {
			auth.DummyVerify(secret) // the same cost as a known client
			reason = "unknown client_id"
			return
		}
		for _, hash := range app.SecretHashes {
			if ok, err := auth.VerifyPassword(hash, secret); ok && err == nil {
				return
			}
		}
		reason = "wrong client secret"
	}
	if h.Gate == nil {
		verify()
	} else if h.Gate.Do(ip, verify) != nil {
		return nil, errBusy
	}
	if reason != "" {
		return nil, reason
	}
	return app, ""
}

// errBusy is authenticate's reason when the verification gate refused.
const errBusy = "password verifications are busy"

// assertionAlgs are the algorithms a client assertion may use.
var assertionAlgs = []jose.SignatureAlgorithm{jose.RS256, jose.RS384, jose.RS512, jose.PS256, jose.PS384, jose.PS512,
	jose.ES256, jose.ES384, jose.ES512}

// checkAssertion verifies an RFC 7523 client assertion: signed by the key
// of one of the app's certificates, iss and sub the client ID, aud the
// token endpoint (or the issuer), unexpired, and not seen before.
func (h *Handler) checkAssertion(dir *directory.Snapshot, assertion, clientID string, now time.Time) (*directory.OAuthApp, string) {
	tok, err := jwt.ParseSigned(assertion, assertionAlgs)
	if err != nil {
		return nil, "client_assertion is not a signed JWT"
	}
	var unverified jwt.Claims
	if err := tok.UnsafeClaimsWithoutVerification(&unverified); err != nil {
		return nil, "client_assertion claims do not parse"
	}
	app := dir.OAuthApp(unverified.Issuer)
	if app == nil || (clientID != "" && clientID != app.AppId) {
		return nil, "client_assertion names an unknown client"
	}
	var claims jwt.Claims
	verified := false
	for _, c := range app.Certificates {
		pub, cert, err := publicKey(c)
		if err != nil || now.After(cert.NotAfter) || now.Before(cert.NotBefore) {
			continue
		}
		if tok.Claims(pub, &claims) == nil {
			verified = true
			break
		}
	}
	if !verified {
		return nil, "client_assertion is not signed by a registered certificate"
	}
	if claims.Expiry == nil || claims.ID == "" {
		return nil, "client_assertion lacks exp or jti"
	}
	expected := jwt.Expected{Issuer: app.AppId, Subject: app.AppId, Time: now}
	if err := claims.ValidateWithLeeway(expected, time.Minute); err != nil {
		return nil, "client_assertion: " + err.Error()
	}
	if !slices.ContainsFunc(claims.Audience, func(a string) bool { return a == h.Issuer+TokenPath || a == h.Issuer }) {
		return nil, "client_assertion audience is not the token endpoint"
	}
	if !h.firstUse(claims.ID, claims.Expiry.Time(), now) {
		return nil, "client_assertion was used before (jti replay)"
	}
	return app, ""
}

// firstUse records an assertion's jti until it expires and reports
// whether it is new (RFC 7523 §3 item 7).
func (h *Handler) firstUse(jti string, exp, now time.Time) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.seen == nil {
		h.seen = map[string]time.Time{}
	}
	for k, e := range h.seen {
		if now.After(e.Add(time.Minute)) {
			delete(h.seen, k)
		}
	}
	if _, dup := h.seen[jti]; dup {
		return false
	}
	if len(h.seen) > 100000 {
		return false // refuse rather than grow without bound
	}
	h.seen[jti] = exp
	return true
}

func clientIP(r *http.Request) netip.Addr {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return netip.Addr{}
	}
	a, _ := netip.ParseAddr(host)
	return a.Unmap()
}
