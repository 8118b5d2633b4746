package oauth

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// Metadata is the part of an issuer's OpenID Connect discovery document
// (OpenID Connect Discovery 1.0 §3, RFC 8414 §2) that Postern uses.
type Metadata struct {
	Issuer        string `json:"issuer"`
	JwksURI       string `json:"jwks_uri"`
	TokenEndpoint string `json:"token_endpoint"`
}

// maxDocument bounds a metadata or JWKS response.
const maxDocument = 1 << 20

// URLPolicy decides which URLs the server may fetch keys, metadata and
// tokens from. Keys or tokens fetched in the clear could be replaced or
// read by anyone on the path, so only https is allowed; plain http to a
// loopback address only with AllowLoopbackHTTP, the server-level setting
// allow_insecure_http_loopback meant for tests' identity providers.
type URLPolicy struct {
	AllowLoopbackHTTP bool
}

// Check allows https URLs, and plain http to loopback when the policy
// says so.
func (p URLPolicy) Check(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return fmt.Errorf("%q is not an absolute URL", raw)
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		if !p.AllowLoopbackHTTP {
			return fmt.Errorf("%q must be an https URL", raw)
		}
		if ip := net.ParseIP(u.Hostname()); (ip != nil && ip.IsLoopback()) || u.Hostname() == "localhost" {
			return nil
		}
		return fmt.Errorf("%q must be an https URL (plain http is allowed only to loopback, with allow_insecure_http_loopback)", raw)
	}
	return fmt.Errorf("%q must be an https URL", raw)
}

// maxRedirects is as many as net/http follows by default.
const maxRedirects = 10

// checkRedirect refuses a redirect to a URL the policy does not allow
// (an https metadata URL answering 302 to http://...), so that a URL
// checked when an admin gave it cannot leave https when it is fetched.
func (p URLPolicy) checkRedirect(req *http.Request, via []*http.Request) error {
	if len(via) >= maxRedirects {
		return fmt.Errorf("stopped after %d redirects", maxRedirects)
	}
	if err := p.Check(req.URL.String()); err != nil {
		return fmt.Errorf("redirect refused: %w", err)
	}
	return nil
}

// policyTransport checks every request it carries, redirects included,
// against the policy, whatever client it is used in.
type policyTransport struct {
	base   http.RoundTripper
	policy URLPolicy
}

func (t policyTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if err := t.policy.Check(req.URL.String()); err != nil {
		return nil, err
	}
	return t.base.RoundTrip(req)
}

// Client returns an HTTP client that only fetches URLs the policy allows,
// on every hop of a redirect: for metadata, JWKS and token endpoints.
func (p URLPolicy) Client(timeout time.Duration) *http.Client {
	return &http.Client{Timeout: timeout, Transport: policyTransport{http.DefaultTransport, p}, CheckRedirect: p.checkRedirect}
}

// FetchMetadata reads an issuer's discovery document.
func FetchMetadata(ctx context.Context, client *http.Client, policy URLPolicy, metadataURL string) (*Metadata, error) {
	var m Metadata
	if err := getJSON(ctx, client, policy, metadataURL, &m); err != nil {
		return nil, err
	}
	if m.Issuer == "" || m.JwksURI == "" {
		return nil, fmt.Errorf("%s: the document has no issuer or jwks_uri", metadataURL)
	}
	if err := policy.Check(m.JwksURI); err != nil {
		return nil, fmt.Errorf("jwks_uri: %w", err)
	}
	return &m, nil
}

func fetchJWKS(ctx context.Context, client *http.Client, policy URLPolicy, uri string) (jose.JSONWebKeySet, error) {
	var set jose.JSONWebKeySet
	err := getJSON(ctx, client, policy, uri, &set)
	return set, err
}

// getJSON fetches a JSON document; the URL, and every redirect, must pass
// the policy whatever client is given.
func getJSON(ctx context.Context, client *http.Client, policy URLPolicy, raw string, v any) error {
	if err := policy.Check(raw); err != nil {
		return err
	}
	c := *client
	c.CheckRedirect = policy.checkRedirect
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, raw, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", raw, resp.Status)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxDocument+1))
	if err != nil {
		return err
	}
	if len(body) > maxDocument {
		return fmt.Errorf("%s: response larger than %d bytes", raw, maxDocument)
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("%s: %w", raw, err)
	}
	return nil
}
