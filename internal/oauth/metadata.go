package oauth

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"

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

// CheckURL allows https, and plain http only to a loopback address (a
// test's identity provider): keys fetched in the clear could be replaced
// by anyone on the path.
func CheckURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return fmt.Errorf("%q is not an absolute URL", raw)
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		if ip := net.ParseIP(u.Hostname()); (ip != nil && ip.IsLoopback()) || u.Hostname() == "localhost" {
			return nil
		}
	}
	return fmt.Errorf("%q must be an https URL", raw)
}

// FetchMetadata reads an issuer's discovery document.
func FetchMetadata(ctx context.Context, client *http.Client, metadataURL string) (*Metadata, error) {
	var m Metadata
	if err := getJSON(ctx, client, metadataURL, &m); err != nil {
		return nil, err
	}
	if m.Issuer == "" || m.JwksURI == "" {
		return nil, fmt.Errorf("%s: the document has no issuer or jwks_uri", metadataURL)
	}
	if err := CheckURL(m.JwksURI); err != nil {
		return nil, fmt.Errorf("jwks_uri: %w", err)
	}
	return &m, nil
}

func fetchJWKS(ctx context.Context, client *http.Client, uri string) (jose.JSONWebKeySet, error) {
	var set jose.JSONWebKeySet
	err := getJSON(ctx, client, uri, &set)
	return set, err
}

func getJSON(ctx context.Context, client *http.Client, raw string, v any) error {
	if err := CheckURL(raw); err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, raw, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := client.Do(req)
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
