package restapi_test

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"postern.dev/postern/internal/admin"
)

// TestReachOutIsForTheServerAdministrator: no organization key, of any
// role, makes the server connect to a place it names (issue 11), and the
// probe does not even open the connection.
func TestReachOutIsForTheServerAdministrator(t *testing.T) {
	f := newFixture(t)
	// A listener that counts connections: the live probe must not reach it.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	hits := make(chan struct{}, 16)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			hits <- struct{}{}
			c.Close()
		}
	}()
	reqs := []struct{ path, body string }{
		{"cmdlets/Test-SmtpSubmission", `{"Server": "` + ln.Addr().String() + `"}`},
		{"cmdlets/New-AuthServer", `{"Name": "idp", "AuthMetadataUrl": "https://` + ln.Addr().String() + `/.well-known/openid-configuration", "Audience": "a"}`},
		{"cmdlets/New-OutboundConnector", `{"Name": "sh", "RecipientDomains": "*", "SmartHosts": "` + ln.Addr().String() + `", "UseMXRecord": false}`},
		{"cmdlets/New-OutboundConnector", `{"Name": "tok", "RecipientDomains": "*", "OAuthTokenEndpoint": "https://127.0.0.1:1/token"}`},
	}
	for _, key := range []string{"ops", "helpdesk", "auditor", "fabops"} {
		for _, r := range reqs {
			if code, body := f.do(f.keys[key], "POST", r.path, r.body); code != 403 {
				t.Errorf("%s %s = %d %v, want 403", key, r.path, code, body)
			}
		}
	}
	select {
	case <-hits:
		t.Error("an organization key made the server connect")
	default:
	}
	// The server's administrator may probe.
	checks, err := f.svc.ProbeServer(context.Background(), ln.Addr().String(), false)
	if err != nil || len(checks) == 0 {
		t.Fatalf("ProbeServer as the administrator: %v %v", checks, err)
	}
	select {
	case <-hits:
	case <-time.After(30 * time.Second):
		t.Error("the administrator's probe did not connect")
	}
}

// TestRESTReadsNoFiles: over REST, shell file features are refused and a
// -Certificate that is not PEM text is not read as a path.
func TestRESTReadsNoFiles(t *testing.T) {
	f := newFixture(t)
	dir := t.TempDir()
	secret := filepath.Join(dir, "secret.txt")
	os.WriteFile(secret, []byte("TOP-SECRET-CONTENT"), 0o600)
	for _, r := range []struct{ path, body string }{
		{"cmdlets/Get-Content", `{"Path": "` + secret + `"}`},
		{"cmdlets/Export-Csv", `{"Path": "` + filepath.Join(dir, "out.csv") + `"}`},
		{"cmdlets/New-OAuthApp", `{"Name": "x", "Certificate": "` + secret + `"}`},
		{"oauth-apps", `{"Name": "y", "Certificate": "` + secret + `"}`},
	} {
		code, body := f.do(f.keys["ops"], "POST", r.path, r.body)
		if code == 200 || code == 201 || strings.Contains(strings.ToLower(toText(body)), "top-secret") {
			t.Errorf("POST %s = %d %v", r.path, code, body)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "out.csv")); err == nil {
		t.Error("Export-Csv wrote a file over REST")
	}
}

// TestExpiredKey: a key past -ExpiresAfter no longer signs in.
func TestExpiredKey(t *testing.T) {
	f := newFixture(t)
	_, key, err := f.svc.NewAPIKey(context.Background(), "short", admin.OrganizationManagement, time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		code, body := f.do(key, "GET", "mailboxes", "")
		if code == 401 {
			if !strings.Contains(toText(body), "expired") {
				t.Errorf("401 without saying why: %v", body)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the expired key still signs in: %d", code)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if code, _ := f.do(f.keys["ops"], "GET", "mailboxes", ""); code != 200 {
		t.Errorf("a key without expiry = %d", code)
	}
}

func toText(body map[string]any) string {
	if e, ok := body["error"].(map[string]any); ok {
		s, _ := e["message"].(string)
		return s
	}
	return ""
}
