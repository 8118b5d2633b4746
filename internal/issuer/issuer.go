// Package issuer is Postern's built-in OAuth 2.0 token issuer, for sites
// without an identity provider of their own: applications registered with
// New-OAuthApp obtain short-lived access tokens with the client-credentials
// grant (RFC 6749 §4.4), proving themselves with a client secret
// (client_secret_basic or client_secret_post, §2.3.1) or with a JWT signed
// by a registered certificate's key (private_key_jwt, RFC 7523 §2.2), and
// use them with XOAUTH2 or OAUTHBEARER.
//
// It publishes an OpenID Connect discovery document and a JWKS, so any
// standard OAuth client library works against it unchanged, and signs
// RFC 9068 access tokens shaped like Entra ID's application tokens (roles
// SMTP.SendAsApp, IMAP.AccessAsApp, POP.AccessAsApp, appid, audience
// https://outlook.office365.com), so that
// code written for Microsoft 365 needs only a different token endpoint.
package issuer

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"postern.dev/postern/internal/secret"
	"postern.dev/postern/internal/store"
)

// TokenLifetime is how long an access token is valid: Entra ID's default
// for application tokens is 60–90 minutes.
const TokenLifetime = time.Hour

// keepKeys is how many signing keys stay published: the current one and
// the one before it, whose tokens may still be in use after a rotation.
const keepKeys = 2

// Audience is the aud of the tokens it issues, and the scope clients ask
// for is Audience + "/.default", as with Microsoft 365.
const Audience = "https://outlook.office365.com"

// Keys holds the issuer's signing keys.
type Keys struct {
	Store   store.Store
	Secrets *secret.Box

	mu   sync.RWMutex
	keys []signingKey // newest first
}

type signingKey struct {
	kid string
	key *ecdsa.PrivateKey
}

// Load reads the keys, making the first one when there is none.
func (k *Keys) Load(ctx context.Context) error {
	stored, err := k.Store.IssuerKeys(ctx)
	if err != nil {
		return err
	}
	if len(stored) == 0 {
		return k.Rotate(ctx)
	}
	var keys []signingKey
	for _, s := range stored {
		pemText, err := k.Secrets.Open(s.PrivateSealed)
		if err != nil {
			return fmt.Errorf("issuer key %s: %w", s.Kid, err)
		}
		block, _ := pem.Decode([]byte(pemText))
		if block == nil {
			return fmt.Errorf("issuer key %s: not PEM", s.Kid)
		}
		priv, err := x509.ParsePKCS8PrivateKey(block.Bytes)
		if err != nil {
			return fmt.Errorf("issuer key %s: %w", s.Kid, err)
		}
		ec, ok := priv.(*ecdsa.PrivateKey)
		if !ok {
			return fmt.Errorf("issuer key %s: not an ECDSA key", s.Kid)
		}
		keys = append(keys, signingKey{kid: s.Kid, key: ec})
	}
	k.mu.Lock()
	k.keys = keys
	k.mu.Unlock()
	return nil
}

// Rotate makes a new ES256 signing key, which signs from now on; the
// previous one stays published until its tokens have expired.
func (k *Keys) Rotate(ctx context.Context) error {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return err
	}
	sealed, err := k.Secrets.Seal(string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})))
	if err != nil {
		return err
	}
	pub, _ := x509.MarshalPKIXPublicKey(&priv.PublicKey)
	sum := sha256.Sum256(pub)
	kid := hex.EncodeToString(sum[:8])
	if err := k.Store.SaveIssuerKey(ctx, store.IssuerKey{Kid: kid, PrivateSealed: sealed, Created: time.Now().UTC()}, keepKeys); err != nil {
		return err
	}
	k.mu.Lock()
	k.keys = append([]signingKey{{kid: kid, key: priv}}, k.keys...)
	if len(k.keys) > keepKeys {
		k.keys = k.keys[:keepKeys]
	}
	k.mu.Unlock()
	return nil
}

// JWKS is the public key set.
func (k *Keys) JWKS() jose.JSONWebKeySet {
	k.mu.RLock()
	defer k.mu.RUnlock()
	var set jose.JSONWebKeySet
	for _, s := range k.keys {
		set.Keys = append(set.Keys, jose.JSONWebKey{Key: &s.key.PublicKey, KeyID: s.kid, Algorithm: string(jose.ES256), Use: "sig"})
	}
	return set
}

// Sign issues an access token for an application.
func (k *Keys) Sign(issuer, appID string, now time.Time) (string, error) {
	k.mu.RLock()
	if len(k.keys) == 0 {
		k.mu.RUnlock()
		return "", errors.New("the issuer has no signing key")
	}
	cur := k.keys[0]
	k.mu.RUnlock()
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: cur.key},
		(&jose.SignerOptions{}).WithType("at+jwt").WithHeader("kid", cur.kid))
	if err != nil {
		return "", err
	}
	var jti [16]byte
	rand.Read(jti[:])
	claims := map[string]any{
		"iss": issuer, "sub": appID, "aud": Audience, "appid": appID, "azp": appID, "client_id": appID,
		// Entra ID puts every application permission an admin consented to
		// in roles; the built-in issuer grants the three of Exchange's
		// legacy protocols. What the app may open is still only what
		// Add-MailboxPermission gave its service principal.
		"roles": []string{"SMTP.SendAsApp", "IMAP.AccessAsApp", "POP.AccessAsApp"}, "iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(TokenLifetime).Unix(),
		"jti": base64.RawURLEncoding.EncodeToString(jti[:]),
	}
	return jwt.Signed(signer).Claims(claims).Serialize()
}

// publicKey returns a certificate's key, for client assertions.
func publicKey(certPEM string) (crypto.PublicKey, *x509.Certificate, error) {
	block, _ := pem.Decode([]byte(certPEM))
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, nil, errors.New("not a PEM certificate")
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, nil, err
	}
	return cert.PublicKey, cert, nil
}
