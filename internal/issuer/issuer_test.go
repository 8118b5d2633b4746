package issuer

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"postern.dev/postern/internal/auth"
	"postern.dev/postern/internal/directory"
	"postern.dev/postern/internal/oauth"
	"postern.dev/postern/internal/secret"
	"postern.dev/postern/internal/store/sqlite"
)

func TestTokenEndpoint(t *testing.T) {
	st, err := sqlite.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	box, _ := secret.LoadOrCreate(filepath.Join(t.TempDir(), "k"))
	keys := &Keys{Store: st, Secrets: box}
	if err := keys.Load(context.Background()); err != nil {
		t.Fatal(err)
	}
	hash, _ := auth.HashPassword("s3cret")
	dir := &directory.Current{}
	dir.Store(directory.NewSnapshot(directory.Contents{OAuthApps: []*directory.OAuthApp{{OrgID: 1, Name: "app", AppId: "app-1", SecretHashes: []string{hash}}}}))
	mux := http.NewServeMux()
	srv := httptest.NewServer(mux)
	defer srv.Close()
	(&Handler{Keys: keys, Directory: dir, Issuer: srv.URL, Throttle: auth.NewThrottle(auth.DefaultThrottleConfig), Now: time.Now}).Register(mux)

	post := func(form url.Values, user, pass string) (int, map[string]any) {
		req, _ := http.NewRequest("POST", srv.URL+TokenPath, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if user != "" {
			req.SetBasicAuth(user, pass)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var body map[string]any
		json.NewDecoder(resp.Body).Decode(&body)
		return resp.StatusCode, body
	}
	cc := url.Values{"grant_type": {"client_credentials"}}
	with := func(kv ...string) url.Values {
		v := url.Values{}
		for k, vs := range cc {
			v[k] = vs
		}
		for i := 0; i < len(kv); i += 2 {
			v.Set(kv[i], kv[i+1])
		}
		return v
	}
	for _, tt := range []struct {
		name       string
		form       url.Values
		user, pass string
		status     int
		errCode    string
	}{
		{"client_secret_post", with("client_id", "app-1", "client_secret", "s3cret", "scope", Audience+"/.default"), "", "", 200, ""},
		{"client_secret_basic", cc, "app-1", "s3cret", 200, ""},
		{"wrong secret", with("client_id", "app-1", "client_secret", "nope"), "", "", 401, "invalid_client"},
		{"unknown client", with("client_id", "app-9", "client_secret", "s3cret"), "", "", 401, "invalid_client"},
		{"two methods", with("client_id", "app-1", "client_secret", "s3cret"), "app-1", "s3cret", 401, "invalid_client"},
		{"no method", with("client_id", "app-1"), "", "", 401, "invalid_client"},
		{"password grant", url.Values{"grant_type": {"password"}, "username": {"x"}}, "app-1", "s3cret", 400, "unsupported_grant_type"},
		{"other scope", with("client_id", "app-1", "client_secret", "s3cret", "scope", "https://graph.microsoft.com/.default"), "", "", 400, "invalid_scope"},
		{"garbage assertion", with("client_assertion_type", assertionType, "client_assertion", "x.y.z"), "", "", 401, "invalid_client"},
	} {
		status, body := post(tt.form, tt.user, tt.pass)
		if status != tt.status || (tt.errCode != "" && body["error"] != tt.errCode) {
			t.Errorf("%s: %d %v", tt.name, status, body)
			continue
		}
		if status != 200 {
			continue
		}
		// The token verifies as an application token for app-1.
		v := oauth.NewVerifier(nil, nil)
		v.URLs.AllowLoopbackHTTP = true
		id, _, err := v.Verify(context.Background(), body["access_token"].(string), []oauth.Issuer{{Issuer: srv.URL, Audience: Audience,
			JwksURI: srv.URL + KeysPath}})
		if err != nil || id.AppID != "app-1" || strings.Join(id.Roles, " ") != "SMTP.SendAsApp IMAP.AccessAsApp POP.AccessAsApp" || body["expires_in"].(float64) != 3600 {
			t.Errorf("%s: token %v %+v %v", tt.name, err, id, body)
		}
	}
}
