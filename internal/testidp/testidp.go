// Package testidp is an OpenID Connect identity provider on loopback for
// tests: it serves a discovery document and a JWKS over plain HTTP on
// 127.0.0.1, and signs whatever tokens a test asks for, good or bad. It
// also runs the authorization-code flow with PKCE (OpenID Connect Core
// 3.1, RFC 7636) for relying parties a test registers (AddClient): a
// sign-in form at /authorize that takes any user a test added (AddUser),
// and a token endpoint that checks the code, the client and the PKCE
// verifier before it issues an ID token.
package testidp

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"html/template"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// IdP is a running identity provider.
type IdP struct {
	URL         string // base URL; the issuer
	MetadataURL string // URL/.well-known/openid-configuration

	srv      *httptest.Server
	mu       sync.Mutex
	keys     []signingKey // keys[0] signs; all are published
	down     atomic.Bool
	delay    atomic.Int64
	jwksHits atomic.Int32

	// The authorization-code flow: registered clients, users who may
	// sign in, codes issued and not yet redeemed.
	clients map[string]client
	users   map[string]Claims
	codes   map[string]grant
	tamper  func(Claims)
	tokens  atomic.Int32
}

type client struct {
	secret    string
	redirects []string
}

// grant is an authorization code waiting to be redeemed.
type grant struct {
	clientID, redirect, challenge, nonce, user string
	expires                                    time.Time
}

type signingKey struct {
	kid string
	key crypto.Signer
	alg jose.SignatureAlgorithm
}

// Start runs an IdP with one RSA key.
func Start() (*IdP, error) {
	p := &IdP{}
	if err := p.Rotate(); err != nil {
		return nil, err
	}
	p.clients, p.users, p.codes = map[string]client{}, map[string]Claims{}, map[string]grant{}
	mux := http.NewServeMux()
	mux.HandleFunc("/.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(map[string]any{"issuer": p.URL, "jwks_uri": p.URL + "/keys", "token_endpoint": p.URL + "/token",
			"authorization_endpoint": p.URL + "/authorize", "response_types_supported": []string{"code"},
			"subject_types_supported": []string{"public"}, "id_token_signing_alg_values_supported": []string{"RS256"},
			"code_challenge_methods_supported": []string{"S256"}, "scopes_supported": []string{"openid", "email", "profile"}})
	})
	mux.HandleFunc("GET /authorize", p.authorizePage)
	mux.HandleFunc("POST /authorize", p.authorizePost)
	mux.HandleFunc("POST /token", p.token)
	mux.HandleFunc("/keys", func(w http.ResponseWriter, r *http.Request) {
		p.jwksHits.Add(1)
		time.Sleep(time.Duration(p.delay.Load()))
		if p.down.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		p.mu.Lock()
		var set jose.JSONWebKeySet
		for _, k := range p.keys {
			set.Keys = append(set.Keys, jose.JSONWebKey{Key: k.key.Public(), KeyID: k.kid, Algorithm: string(k.alg), Use: "sig"})
		}
		p.mu.Unlock()
		json.NewEncoder(w).Encode(set)
	})
	p.srv = httptest.NewServer(mux)
	p.URL = p.srv.URL
	p.MetadataURL = p.URL + "/.well-known/openid-configuration"
	return p, nil
}

// Close stops the IdP.
func (p *IdP) Close() { p.srv.Close() }

// Down makes the JWKS endpoint fail (503) or work again.
func (p *IdP) Down(down bool) { p.down.Store(down) }

// Slow delays every JWKS response.
func (p *IdP) Slow(d time.Duration) { p.delay.Store(int64(d)) }

// JWKSFetches counts requests for the JWKS.
func (p *IdP) JWKSFetches() int { return int(p.jwksHits.Load()) }

// Rotate adds a new signing key, which signs from now on; older keys stay
// published.
func (p *IdP) Rotate() error {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.keys = append([]signingKey{{kid: fmt.Sprintf("k%d", len(p.keys)+1), key: key, alg: jose.RS256}}, p.keys...)
	return nil
}

// Claims are a token's claims; Token fills iss, iat, nbf and exp (one hour)
// unless the test sets them.
type Claims map[string]any

// Token signs claims with the current key.
func (p *IdP) Token(c Claims) string {
	p.mu.Lock()
	k := p.keys[0]
	p.mu.Unlock()
	return SignWith(k.key, k.alg, k.kid, p.withDefaults(c))
}

// Unpublished signs with a fresh key that the JWKS does not contain, under
// the given key ID.
func (p *IdP) Unpublished(c Claims, kid string) string {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	return SignWith(key, jose.ES256, kid, p.withDefaults(c))
}

func (p *IdP) withDefaults(c Claims) Claims {
	out := Claims{"iss": p.URL, "iat": time.Now().Unix(), "nbf": time.Now().Unix(), "exp": time.Now().Add(time.Hour).Unix()}
	for k, v := range c {
		if v == nil {
			delete(out, k)
		} else {
			out[k] = v
		}
	}
	return out
}

// SignWith signs claims as a JWT with any key.
func SignWith(key crypto.Signer, alg jose.SignatureAlgorithm, kid string, c Claims) string {
	opts := (&jose.SignerOptions{}).WithType("JWT")
	if kid != "" {
		opts = opts.WithHeader("kid", kid)
	}
	sig, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: key}, opts)
	if err != nil {
		panic(err)
	}
	tok, err := jwt.Signed(sig).Claims(map[string]any(c)).Serialize()
	if err != nil {
		panic(err)
	}
	return tok
}

// AddClient registers a relying party for the authorization-code flow;
// an empty secret makes it a public client (PKCE only).
func (p *IdP) AddClient(id, secret string, redirectURIs ...string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.clients[id] = client{secret: secret, redirects: redirectURIs}
}

// AddUser lets login sign in at the authorization endpoint. Its ID token
// carries sub = login and email = login unless claims say otherwise (a
// nil value removes a claim).
func (p *IdP) AddUser(login string, claims Claims) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.users[login] = claims
}

// TamperIDToken changes the claims of the ID tokens the token endpoint
// issues from now on (nil: no change), for tests of a relying party's
// checks: another audience, another nonce, an expired token.
func (p *IdP) TamperIDToken(fn func(Claims)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.tamper = fn
}

// TokenRequests counts the token endpoint's successful code redemptions.
func (p *IdP) TokenRequests() int { return int(p.tokens.Load()) }

var authorizeForm = template.Must(template.New("authorize").Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Test IdP sign-in</title></head><body>
<h1>Test IdP</h1>
{{if .Error}}<p id="idp-error">{{.Error}}</p>{{end}}
<form method="post" action="/authorize">
{{range $k, $v := .Params}}<input type="hidden" name="{{$k}}" value="{{$v}}">
{{end}}<label for="idp-username">User</label> <input id="idp-username" name="login">
<button type="submit" id="idp-signin">Sign in</button>
</form></body></html>`))

// authorizeCheck validates an authorization request (OpenID Connect Core
// 3.1.2.1): errors the RP must not be redirected with are returned as
// text; PKCE is required, S256 only.
func (p *IdP) authorizeCheck(v url.Values) (client, error) {
	p.mu.Lock()
	c, ok := p.clients[v.Get("client_id")]
	p.mu.Unlock()
	switch {
	case !ok:
		return c, fmt.Errorf("unknown client_id %q", v.Get("client_id"))
	case !slices.Contains(c.redirects, v.Get("redirect_uri")):
		return c, fmt.Errorf("redirect_uri %q is not registered", v.Get("redirect_uri"))
	case v.Get("response_type") != "code":
		return c, fmt.Errorf("response_type must be code")
	case v.Get("code_challenge") == "" || v.Get("code_challenge_method") != "S256":
		return c, fmt.Errorf("PKCE with S256 is required")
	case v.Get("state") == "" || v.Get("nonce") == "":
		return c, fmt.Errorf("state and nonce are required")
	}
	return c, nil
}

func (p *IdP) authorizePage(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if _, err := p.authorizeCheck(q); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	params := map[string]string{}
	for _, k := range []string{"client_id", "redirect_uri", "response_type", "scope", "state", "nonce", "code_challenge", "code_challenge_method"} {
		params[k] = q.Get(k)
	}
	authorizeForm.Execute(w, map[string]any{"Params": params})
}

func (p *IdP) authorizePost(w http.ResponseWriter, r *http.Request) {
	r.ParseForm()
	f := r.PostForm
	if _, err := p.authorizeCheck(f); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	login := f.Get("login")
	p.mu.Lock()
	_, known := p.users[login]
	code := randomString()
	if known {
		p.codes[code] = grant{clientID: f.Get("client_id"), redirect: f.Get("redirect_uri"), challenge: f.Get("code_challenge"),
			nonce: f.Get("nonce"), user: login, expires: time.Now().Add(time.Minute)}
	}
	p.mu.Unlock()
	if !known {
		params := map[string]string{}
		for k := range f {
			if k != "login" {
				params[k] = f.Get(k)
			}
		}
		w.WriteHeader(http.StatusUnauthorized)
		authorizeForm.Execute(w, map[string]any{"Params": params, "Error": "unknown user " + login})
		return
	}
	u, _ := url.Parse(f.Get("redirect_uri"))
	rq := u.Query()
	rq.Set("code", code)
	rq.Set("state", f.Get("state"))
	u.RawQuery = rq.Encode()
	http.Redirect(w, r, u.String(), http.StatusFound)
}

// token redeems an authorization code (OpenID Connect Core 3.1.3): the
// client authenticates (client_secret_basic or _post) unless public, the
// redirect_uri is the one authorized, and the code_verifier hashes to
// the code_challenge (RFC 7636 4.6). A code works once.
func (p *IdP) token(w http.ResponseWriter, r *http.Request) {
	r.ParseForm()
	f := r.PostForm
	fail := func(code, desc string) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		json.NewEncoder(w).Encode(map[string]string{"error": code, "error_description": desc})
	}
	if f.Get("grant_type") != "authorization_code" {
		fail("unsupported_grant_type", "only authorization_code")
		return
	}
	id, secret, basic := r.BasicAuth()
	if basic {
		id, _ = url.QueryUnescape(id)
		secret, _ = url.QueryUnescape(secret)
	} else {
		id, secret = f.Get("client_id"), f.Get("client_secret")
	}
	p.mu.Lock()
	g, ok := p.codes[f.Get("code")]
	delete(p.codes, f.Get("code"))
	c, known := p.clients[id]
	user := p.users[g.user]
	tamper := p.tamper
	p.mu.Unlock()
	sum := sha256.Sum256([]byte(f.Get("code_verifier")))
	switch {
	case !known || c.secret != "" && subtle.ConstantTimeCompare([]byte(secret), []byte(c.secret)) != 1:
		fail("invalid_client", "client authentication failed")
		return
	case !ok || time.Now().After(g.expires) || g.clientID != id:
		fail("invalid_grant", "unknown, used or expired code")
		return
	case g.redirect != f.Get("redirect_uri"):
		fail("invalid_grant", "redirect_uri differs from the authorization request's")
		return
	case base64.RawURLEncoding.EncodeToString(sum[:]) != g.challenge:
		fail("invalid_grant", "code_verifier does not match the code_challenge")
		return
	}
	claims := Claims{"sub": g.user, "aud": id, "nonce": g.nonce, "email": g.user}
	for k, v := range user {
		claims[k] = v
	}
	if tamper != nil {
		tamper(claims)
	}
	p.tokens.Add(1)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	json.NewEncoder(w).Encode(map[string]any{"access_token": randomString(), "token_type": "Bearer", "expires_in": 3600, "id_token": p.Token(claims)})
}

func randomString() string {
	var b [24]byte
	rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}
