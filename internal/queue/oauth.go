package queue

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"postern.dev/postern/internal/directory"
	"postern.dev/postern/internal/secret"
)

// refreshBefore is how long before expiry a token is replaced, so that a
// token is never presented in its last minutes (a long session could
// otherwise outlive it).
const refreshBefore = 5 * time.Minute

// tokenCache holds one OAuth 2.0 client-credentials token source (RFC 6749
// §4.4) per connector configuration. x/oauth2 does the token request and
// the caching; this keys it so a changed secret or endpoint takes a new
// token at once.
type tokenCache struct {
	client *http.Client
	mu     sync.Mutex
	byKey  map[tokenKey]oauth2.TokenSource
}

type tokenKey struct {
	connector                               int64
	endpoint, clientID, secretSealed, scope string
}

func newTokenCache(c *http.Client) *tokenCache {
	return &tokenCache{client: c, byKey: map[tokenKey]oauth2.TokenSource{}}
}

func keyOf(oc *directory.OutboundConnector) tokenKey {
	return tokenKey{oc.ID, oc.OAuthTokenEndpoint, oc.OAuthClientId, oc.OAuthClientSecretSealed, oc.OAuthScope}
}

// token returns a valid access token for the connector, fetching one when
// there is none or it is about to expire.
func (t *tokenCache) token(ctx context.Context, oc *directory.OutboundConnector, box *secret.Box) (string, error) {
	k := keyOf(oc)
	t.mu.Lock()
	src := t.byKey[k]
	if src == nil {
		clientSecret, err := box.Open(oc.OAuthClientSecretSealed)
		if err != nil {
			t.mu.Unlock()
			return "", fmt.Errorf("the connector %s's OAuthClientSecret: %w", oc.Name, err)
		}
		cc := &clientcredentials.Config{
			ClientID:     oc.OAuthClientId,
			ClientSecret: clientSecret,
			TokenURL:     oc.OAuthTokenEndpoint,
			AuthStyle:    oauth2.AuthStyleInParams, // Microsoft identity platform's documented form
		}
		if oc.OAuthScope != "" {
			cc.Scopes = []string{oc.OAuthScope}
		}
		// The source outlives any one delivery: its context only carries
		// the HTTP client.
		base := context.WithValue(context.Background(), oauth2.HTTPClient, t.client)
		src = oauth2.ReuseTokenSourceWithExpiry(nil, cc.TokenSource(base), refreshBefore)
		t.byKey[k] = src
	}
	t.mu.Unlock()
	tok, err := src.Token()
	if err != nil {
		return "", fmt.Errorf("OAuth token endpoint %s: %s", oc.OAuthTokenEndpoint, tokenError(err))
	}
	return tok.AccessToken, nil
}

// forget drops the cached token of a connector.
func (t *tokenCache) forget(oc *directory.OutboundConnector) {
	t.mu.Lock()
	delete(t.byKey, keyOf(oc))
	t.mu.Unlock()
}

// tokenError says briefly why the endpoint refused: its status, error code
// and description (RFC 6749 §5.2), not its whole body.
func tokenError(err error) string {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		s := ""
		if re.Response != nil {
			s = re.Response.Status
		}
		if re.ErrorCode != "" {
			s += " " + re.ErrorCode
		}
		if re.ErrorDescription != "" {
			d := re.ErrorDescription
			if len(d) > 200 {
				d = d[:200] + "..."
			}
			s += ": " + d
		}
		if s != "" {
			return s
		}
	}
	return err.Error()
}
