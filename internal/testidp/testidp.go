// Package testidp is an OpenID Connect identity provider on loopback for
// tests: it serves a discovery document and a JWKS over plain HTTP on
// 127.0.0.1, and signs whatever tokens a test asks for, good or bad.
package testidp

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
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
	mux := http.NewServeMux()
	mux.HandleFunc("/.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(map[string]string{"issuer": p.URL, "jwks_uri": p.URL + "/keys", "token_endpoint": p.URL + "/token"})
	})
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
