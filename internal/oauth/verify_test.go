package oauth

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"postern.dev/postern/internal/testidp"
)

func setup(t *testing.T) (*testidp.IdP, *Verifier, []Issuer) {
	t.Helper()
	idp, err := testidp.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(idp.Close)
	md, err := FetchMetadata(context.Background(), nil2(), loopback, idp.MetadataURL)
	if err != nil {
		t.Fatal(err)
	}
	v := NewVerifier(nil, nil)
	v.URLs = loopback
	return idp, v, []Issuer{{Name: "Test IdP", Issuer: md.Issuer, JwksURI: md.JwksURI, Audience: "https://outlook.office365.com"}}
}

func TestVerify(t *testing.T) {
	idp, v, issuers := setup(t)
	aud := "https://outlook.office365.com"
	otherKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	ecKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	hour := time.Hour
	now := time.Now()
	unsigned := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","typ":"JWT"}`)) + "." +
		base64.RawURLEncoding.EncodeToString([]byte(`{"iss":"`+idp.URL+`","aud":"`+aud+`","exp":9999999999,"upn":"sean@contoso.com"}`)) + "."
	for _, tt := range []struct {
		name  string
		token string
		want  error
		user  string
		app   string
	}{
		{"delegated", idp.Token(testidp.Claims{"aud": aud, "scp": "SMTP.Send", "upn": "sean@contoso.com"}), nil, "sean@contoso.com", ""},
		{"preferred_username", idp.Token(testidp.Claims{"aud": aud, "scp": "SMTP.Send", "preferred_username": "chris@contoso.com"}), nil, "chris@contoso.com", ""},
		{"application", idp.Token(testidp.Claims{"aud": []string{"x", aud}, "roles": []string{"SMTP.SendAsApp"}, "appid": "app-1"}), nil, "", "app-1"},
		{"expired", idp.Token(testidp.Claims{"aud": aud, "exp": now.Add(-hour).Unix()}), ErrExpired, "", ""},
		{"expired within the skew", idp.Token(testidp.Claims{"aud": aud, "exp": now.Add(-time.Minute).Unix()}), nil, "", ""},
		{"not yet valid", idp.Token(testidp.Claims{"aud": aud, "nbf": now.Add(hour).Unix()}), ErrNotYetValid, "", ""},
		{"no expiry", idp.Token(testidp.Claims{"aud": aud, "exp": nil}), ErrNoExpiry, "", ""},
		{"wrong audience", idp.Token(testidp.Claims{"aud": "api://other"}), ErrAudience, "", ""},
		{"wrong issuer", idp.Token(testidp.Claims{"aud": aud, "iss": "https://evil.example"}), ErrUnknownIssuer, "", ""},
		{"unknown key", idp.Unpublished(testidp.Claims{"aud": aud}, "forged"), ErrUnknownKey, "", ""},
		{"wrong signature under a known kid", testidp.SignWith(otherKey, jose.RS256, "k1", testidp.Claims{"iss": idp.URL, "aud": aud, "exp": now.Add(hour).Unix()}), ErrSignature, "", ""},
		{"known kid, another algorithm", testidp.SignWith(ecKey, jose.ES256, "k1", testidp.Claims{"iss": idp.URL, "aud": aud, "exp": now.Add(hour).Unix()}), ErrUnknownKey, "", ""},
		{"alg none", unsigned, ErrMalformed, "", ""},
		{"garbage", "not.a.token", ErrMalformed, "", ""},
		{"empty", "", ErrMalformed, "", ""},
		{"oversized", strings.Repeat("a", MaxTokenSize+1), ErrTooLarge, "", ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			id, _, err := v.Verify(context.Background(), tt.token, issuers)
			if !errors.Is(err, tt.want) {
				t.Fatalf("err %v, want %v", err, tt.want)
			}
			if err == nil && (id.User != tt.user || id.AppID != tt.app || id.Issuer != "Test IdP") {
				t.Errorf("identity %+v", id)
			}
		})
	}
}

// A stream of tokens with unknown key IDs fetches the JWKS at most once per
// MinRefresh; a key rotation is picked up once that time has passed.
func TestKeyRefreshIsBounded(t *testing.T) {
	idp, v, issuers := setup(t)
	now := time.Now()
	v.now = func() time.Time { return now }
	aud := issuers[0].Audience
	if _, _, err := v.Verify(context.Background(), idp.Token(testidp.Claims{"aud": aud}), issuers); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 50; i++ {
		if _, _, err := v.Verify(context.Background(), idp.Unpublished(testidp.Claims{"aud": aud}, "forged"), issuers); !errors.Is(err, ErrUnknownKey) {
			t.Fatal(err)
		}
	}
	if n := idp.JWKSFetches(); n != 1 {
		t.Errorf("%d JWKS fetches, want 1", n)
	}
	if err := idp.Rotate(); err != nil {
		t.Fatal(err)
	}
	rotated := idp.Token(testidp.Claims{"aud": aud})
	if _, _, err := v.Verify(context.Background(), rotated, issuers); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("new key accepted before MinRefresh: %v", err)
	}
	now = now.Add(v.MinRefresh + time.Second)
	if _, _, err := v.Verify(context.Background(), rotated, issuers); err != nil {
		t.Fatalf("after MinRefresh: %v", err)
	}
}

// An identity provider that is down or slow: known keys keep working, and
// a token needing a fetch fails quickly as unavailable, not as invalid.
func TestKeysUnavailable(t *testing.T) {
	idp, v, issuers := setup(t)
	aud := issuers[0].Audience
	good := idp.Token(testidp.Claims{"aud": aud})
	idp.Down(true)
	if _, _, err := v.Verify(context.Background(), good, issuers); !errors.Is(err, ErrKeysUnavailable) {
		t.Fatalf("err %v, want ErrKeysUnavailable", err)
	}
	idp.Down(false)
	v.now = func() time.Time { return time.Now().Add(2 * v.MinRefresh) }
	if _, _, err := v.Verify(context.Background(), good, issuers); err != nil {
		t.Fatal(err)
	}
	idp.Down(true)
	if _, _, err := v.Verify(context.Background(), good, issuers); err != nil {
		t.Fatalf("a cached key stopped working while the IdP is down: %v", err)
	}

	slow := NewVerifier(nil2(), nil)
	slow.URLs = loopback
	slow.client.Timeout = 200 * time.Millisecond
	idp.Down(false)
	idp.Slow(2 * time.Second)
	start := time.Now()
	if _, _, err := slow.Verify(context.Background(), good, issuers); !errors.Is(err, ErrKeysUnavailable) || time.Since(start) > time.Second {
		t.Fatalf("slow IdP: %v after %v", err, time.Since(start))
	}
}

// loopback is the policy tests' plain-http identity providers need.
var loopback = URLPolicy{AllowLoopbackHTTP: true}

func TestURLPolicyCheck(t *testing.T) {
	for _, tt := range []struct {
		url            string
		strict, loopOK bool
	}{
		{"https://login.microsoftonline.com/x/v2.0/.well-known/openid-configuration", true, true},
		{"http://127.0.0.1:8080/x", false, true},
		{"http://[::1]:8080/x", false, true},
		{"http://localhost/x", false, true},
		{"http://idp.contoso.com/x", false, false},
		{"http://10.0.0.1/x", false, false},
		{"ftp://x/y", false, false},
		{"/relative", false, false},
		{"https://", false, false},
	} {
		if err := (URLPolicy{}).Check(tt.url); (err == nil) != tt.strict {
			t.Errorf("strict Check(%q) = %v", tt.url, err)
		}
		if err := loopback.Check(tt.url); (err == nil) != tt.loopOK {
			t.Errorf("loopback Check(%q) = %v", tt.url, err)
		}
	}
}

// TestRedirectLeavingHTTPS: a metadata URL that passed the check cannot
// be redirected to a URL that would not.
func TestRedirectLeavingHTTPS(t *testing.T) {
	plain := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(`{"issuer":"x","jwks_uri":"https://x/keys"}`))
	}))
	defer plain.Close()
	// The https server redirects to http on loopback: allowed only with
	// the test setting, and to a non-loopback http URL never.
	tlsSrv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		target := plain.URL + "/md"
		if r.URL.Path == "/away" {
			target = "http://idp.example/md"
		}
		http.Redirect(w, r, target, http.StatusFound)
	}))
	defer tlsSrv.Close()
	for _, tt := range []struct {
		policy URLPolicy
		path   string
		ok     bool
	}{
		{URLPolicy{}, "/md", false},
		{loopback, "/md", true},
		{loopback, "/away", false},
	} {
		c := tt.policy.Client(5 * time.Second)
		c.Transport = policyTransport{tlsSrv.Client().Transport, tt.policy}
		_, err := FetchMetadata(context.Background(), c, tt.policy, tlsSrv.URL+tt.path)
		if (err == nil) != tt.ok {
			t.Errorf("%+v %s: %v", tt.policy, tt.path, err)
		}
		if !tt.ok && (err == nil || !strings.Contains(err.Error(), "https")) {
			t.Errorf("%+v %s: the error should say https: %v", tt.policy, tt.path, err)
		}
	}
}

func FuzzVerify(f *testing.F) {
	idp, err := testidp.Start()
	if err != nil {
		f.Fatal(err)
	}
	defer idp.Close()
	issuers := []Issuer{{Name: "t", Issuer: idp.URL, JwksURI: idp.URL + "/keys", Audience: "a"}}
	v := NewVerifier(nil, nil)
	v.URLs = loopback
	f.Add(idp.Token(testidp.Claims{"aud": "a"}))
	f.Add("eyJhbGciOiJub25lIn0.e30.")
	f.Fuzz(func(t *testing.T, token string) {
		id, _, err := v.Verify(context.Background(), token, issuers)
		if err == nil && id == nil {
			t.Fatal("nil identity without error")
		}
	})
}

func nil2() *http.Client { return &http.Client{Timeout: 5 * time.Second} }

// BenchmarkVerify is the cost of one token check with the key cached: what
// each OAuth sign-in adds (compare argon2id's ~26 ms for a password).
func BenchmarkVerify(b *testing.B) {
	idp, err := testidp.Start()
	if err != nil {
		b.Fatal(err)
	}
	defer idp.Close()
	issuers := []Issuer{{Name: "t", Issuer: idp.URL, JwksURI: idp.URL + "/keys", Audience: "a"}}
	v := NewVerifier(nil, nil)
	v.URLs = loopback
	tok := idp.Token(testidp.Claims{"aud": "a", "scp": "SMTP.Send", "upn": "u@c"})
	for b.Loop() {
		if _, _, err := v.Verify(context.Background(), tok, issuers); err != nil {
			b.Fatal(err)
		}
	}
}

// FuzzURLPolicyCheck: whatever the text, a URL the strict policy allows
// is https with a host, and one the loopback policy allows beyond that is
// http to a loopback host.
func FuzzURLPolicyCheck(f *testing.F) {
	for _, s := range []string{"https://idp.example/x", "http://127.0.0.1:1/x", "http://localhost/x", "http://[::1]/", "HTTP://127.0.0.1/", "https://", "http://127.0.0.1@evil.example/"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		u, perr := url.Parse(raw)
		if (URLPolicy{}).Check(raw) == nil && (perr != nil || u.Scheme != "https" || u.Host == "") {
			t.Fatalf("strict policy allowed %q", raw)
		}
		if loopback.Check(raw) == nil && (perr != nil || u.Host == "") {
			t.Fatalf("loopback policy allowed %q", raw)
		}
		if loopback.Check(raw) == nil && u.Scheme != "https" {
			h := u.Hostname()
			if ip := net.ParseIP(h); h != "localhost" && (ip == nil || !ip.IsLoopback()) {
				t.Fatalf("loopback policy allowed http to %q (%q)", h, raw)
			}
		}
	})
}
