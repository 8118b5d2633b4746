// Package oauth checks the OAuth 2.0 bearer tokens that sign in to SMTP
// AUTH (XOAUTH2, OAUTHBEARER): JWTs (RFC 7519) signed by a trusted issuer
// (an AuthServer), whose keys come from its OpenID Connect metadata and
// JWKS (RFC 8414, RFC 7517).
//
// The checks are those of RFC 9068 §4 and Microsoft's validation guidance:
// an allowed asymmetric signature algorithm (never "none", never HMAC with
// a public key), a key from the issuer's JWKS, iss, aud, exp and nbf with a
// small clock skew. What the token may do (scope SMTP.Send for a user,
// role SMTP.SendAsApp for an application) is decided by package policy.
//
// go-jose parses and verifies; the key cache is ours, because the issue is
// not only caching but bounding how often an unknown key ID can make
// Postern fetch the JWKS again (a stream of forged tokens must not turn
// into a stream of requests to the identity provider).
package oauth

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// Reasons a token is refused, for the admin's log; the client only ever
// sees "Authentication unsuccessful".
var (
	ErrMalformed     = errors.New("token is not a signed JWT")
	ErrTooLarge      = errors.New("token is larger than 16 KiB")
	ErrUnknownIssuer = errors.New("token issuer is not a trusted AuthServer")
	ErrUnknownKey    = errors.New("token key ID is not in the issuer's JWKS")
	ErrSignature     = errors.New("token signature is invalid")
	ErrExpired       = errors.New("token has expired")
	ErrNotYetValid   = errors.New("token is not valid yet")
	ErrAudience      = errors.New("token audience is not the AuthServer's Audience")
	ErrNoExpiry      = errors.New("token has no expiry")
	// ErrKeysUnavailable is temporary: the issuer's JWKS could not be
	// fetched and no cached key fits.
	ErrKeysUnavailable = errors.New("issuer keys unavailable")
)

// MaxTokenSize bounds what is parsed at all; Entra ID's tokens are 1–3 KiB.
const MaxTokenSize = 16 << 10

// allowedAlgs are the asymmetric algorithms accepted: a token naming any
// other (none, HS256) fails to parse.
var allowedAlgs = []jose.SignatureAlgorithm{jose.RS256, jose.RS384, jose.RS512, jose.PS256, jose.PS384, jose.PS512,
	jose.ES256, jose.ES384, jose.ES512, jose.EdDSA}

// Issuer is a trusted AuthServer as the verifier needs it.
type Issuer struct {
	ID         int64 // the AuthServer's
	Name       string
	Issuer     string
	JwksURI    string
	Audience   string
	UserClaims []string
	// Keys, when set, gives the issuer's keys directly (Postern's own
	// issuer, in the same process) instead of fetching JwksURI.
	Keys func() jose.JSONWebKeySet
}

// Identity is what a valid token says.
type Identity struct {
	Issuer  string // the AuthServer's Name
	Subject string
	// User is the user a delegated token names (from the first non-empty
	// user claim), empty for application tokens.
	User   string
	AppID  string // appid, azp or client_id
	Scopes []string
	Roles  []string
	// IssuedAt is the token's iat; zero when it has none.
	IssuedAt time.Time
}

// Verifier checks tokens. The zero value is not usable: use NewVerifier.
type Verifier struct {
	client *http.Client
	now    func() time.Time
	// Skew is the clock difference tolerated on exp and nbf.
	Skew time.Duration
	// MinRefresh is the least time between two fetches of one JWKS.
	MinRefresh time.Duration
	// URLs is the policy JWKS URIs are fetched under (https only unless
	// it allows loopback http).
	URLs URLPolicy

	mu   sync.Mutex
	sets map[string]*keySet // by JWKS URI
}

type keySet struct {
	mu      sync.Mutex
	keys    jose.JSONWebKeySet
	fetched time.Time
	err     error
}

// NewVerifier returns a verifier that fetches keys with client (nil: one
// with a 5-second timeout, so a slow identity provider costs a client at
// most that long).
func NewVerifier(client *http.Client, now func() time.Time) *Verifier {
	if client == nil {
		client = &http.Client{Timeout: 5 * time.Second}
	}
	if now == nil {
		now = time.Now
	}
	return &Verifier{client: client, now: now, Skew: 2 * time.Minute, MinRefresh: time.Minute, sets: map[string]*keySet{}}
}

// Verify checks a token against the trusted issuers and returns what it
// says. Errors are the reasons above, possibly wrapped with detail.
func (v *Verifier) Verify(ctx context.Context, token string, issuers []Issuer) (*Identity, *Issuer, error) {
	if len(token) > MaxTokenSize {
		return nil, nil, ErrTooLarge
	}
	tok, err := jwt.ParseSigned(token, allowedAlgs)
	if err != nil || len(tok.Headers) != 1 {
		return nil, nil, ErrMalformed
	}
	var unverified jwt.Claims
	if err := tok.UnsafeClaimsWithoutVerification(&unverified); err != nil {
		return nil, nil, ErrMalformed
	}
	var iss *Issuer
	for i := range issuers {
		if issuers[i].Issuer == unverified.Issuer {
			iss = &issuers[i]
			break
		}
	}
	if iss == nil {
		return nil, nil, fmt.Errorf("%w: %q", ErrUnknownIssuer, clip(unverified.Issuer))
	}
	var key *jose.JSONWebKey
	if iss.Keys != nil {
		if key = pick(iss.Keys(), tok.Headers[0].KeyID, string(tok.Headers[0].Algorithm)); key == nil {
			err = ErrUnknownKey
		}
	} else {
		key, err = v.key(ctx, iss.JwksURI, tok.Headers[0].KeyID, string(tok.Headers[0].Algorithm))
	}
	if err != nil {
		return nil, iss, err
	}
	var std jwt.Claims
	var extra map[string]any
	if err := tok.Claims(key, &std, &extra); err != nil {
		return nil, iss, ErrSignature
	}
	if std.Expiry == nil {
		return nil, iss, ErrNoExpiry
	}
	err = std.ValidateWithLeeway(jwt.Expected{Issuer: iss.Issuer, AnyAudience: jwt.Audience{iss.Audience}, Time: v.now()}, v.Skew)
	switch {
	case errors.Is(err, jwt.ErrExpired):
		return nil, iss, ErrExpired
	case errors.Is(err, jwt.ErrNotValidYet), errors.Is(err, jwt.ErrIssuedInTheFuture):
		return nil, iss, ErrNotYetValid
	case errors.Is(err, jwt.ErrInvalidAudience):
		return nil, iss, fmt.Errorf("%w: %v", ErrAudience, std.Audience)
	case err != nil:
		return nil, iss, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	id := &Identity{Issuer: iss.Name, Subject: std.Subject}
	if std.IssuedAt != nil {
		id.IssuedAt = std.IssuedAt.Time()
	}
	id.Scopes = strings.Fields(str(extra["scp"]) + " " + str(extra["scope"]))
	id.Roles = strList(extra["roles"])
	for _, c := range []string{"appid", "azp", "client_id"} {
		if id.AppID = str(extra[c]); id.AppID != "" {
			break
		}
	}
	claims := iss.UserClaims
	if len(claims) == 0 {
		claims = []string{"upn", "preferred_username", "email"}
	}
	for _, c := range claims {
		if id.User = str(extra[c]); id.User != "" {
			break
		}
	}
	return id, iss, nil
}

// key finds the verification key for kid in the issuer's JWKS, fetching
// the set when it is not cached, or when kid is unknown and the last fetch
// is older than MinRefresh (the issuer may have rotated its keys).
func (v *Verifier) key(ctx context.Context, uri, kid, alg string) (*jose.JSONWebKey, error) {
	v.mu.Lock()
	ks := v.sets[uri]
	if ks == nil {
		ks = &keySet{}
		v.sets[uri] = ks
	}
	v.mu.Unlock()

	ks.mu.Lock()
	defer ks.mu.Unlock()
	if k := pick(ks.keys, kid, alg); k != nil {
		return k, nil
	}
	// After a failed fetch, try again sooner (a tenth of MinRefresh), and
	// until then call the token unverifiable (temporary), not invalid.
	wait := v.MinRefresh
	if ks.err != nil {
		wait = v.MinRefresh / 10
	}
	if !ks.fetched.IsZero() && v.now().Sub(ks.fetched) < wait {
		if ks.err != nil {
			return nil, fmt.Errorf("%w: %v", ErrKeysUnavailable, ks.err)
		}
		return nil, ErrUnknownKey
	}
	keys, err := fetchJWKS(ctx, v.client, v.URLs, uri)
	ks.fetched, ks.err = v.now(), err
	if err != nil {
		// Keep the old keys: an identity provider that is down must not
		// lock out tokens signed by keys already known.
		return nil, fmt.Errorf("%w: %v", ErrKeysUnavailable, err)
	}
	ks.keys = keys
	if k := pick(keys, kid, alg); k != nil {
		return k, nil
	}
	return nil, ErrUnknownKey
}

// pick returns the signing key with the key ID (or the only signing key
// when the token names none).
func pick(set jose.JSONWebKeySet, kid, alg string) *jose.JSONWebKey {
	var only *jose.JSONWebKey
	n := 0
	for i := range set.Keys {
		k := &set.Keys[i]
		if !k.IsPublic() || (k.Use != "" && k.Use != "sig") || (k.Algorithm != "" && k.Algorithm != alg) {
			continue
		}
		if kid != "" && k.KeyID == kid {
			return k
		}
		only = k
		n++
	}
	if kid == "" && n == 1 {
		return only
	}
	return nil
}

func str(v any) string {
	s, _ := v.(string)
	return s
}

func strList(v any) []string {
	switch v := v.(type) {
	case string:
		return strings.Fields(v)
	case []any:
		var out []string
		for _, e := range v {
			if s, ok := e.(string); ok {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}

func clip(s string) string {
	if len(s) > 100 {
		return s[:100] + "..."
	}
	return s
}
