package admin

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"postern.dev/postern/internal/cmdlet"
	"postern.dev/postern/internal/directory"
	"postern.dev/postern/internal/store"
	"postern.dev/postern/internal/store/sqlite"
)

// failingStore is a real store whose domain and audit writes fail as a
// full disk makes them fail.
type failingStore struct {
	store.Store
	failSave, failAudit bool
}

var errDiskFull = fmt.Errorf("%w: database or disk is full (13)", store.ErrInternal)

func (f *failingStore) SaveDomain(ctx context.Context, d *directory.AcceptedDomain) error {
	if f.failSave {
		return errDiskFull
	}
	return f.Store.SaveDomain(ctx, d)
}

func (f *failingStore) AppendAudit(ctx context.Context, e store.AuditEntry) error {
	if f.failAudit {
		return errDiskFull
	}
	return f.Store.AppendAudit(ctx, e)
}

func testService(t *testing.T, st store.Store) *Service {
	t.Helper()
	svc := &Service{Store: st, Dir: &directory.Current{}, HashPassword: func(s string) (string, error) { return "h:" + s, nil }}
	if err := svc.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	return svc
}

func openStore(t *testing.T) store.Store {
	t.Helper()
	st, err := sqlite.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// TestAuditWarningSaysWhatHappened: a change that failed (disk full) is
// not reported as made; one that was made but not recorded says so.
func TestAuditWarningSaysWhatHappened(t *testing.T) {
	for _, tt := range []struct {
		name                string
		failSave, failAudit bool
		wantErr             bool
		want, notWant       string
	}{
		{"change and audit fail", true, true, true, "could not record this failed attempt", "the change was made"},
		{"only the audit fails", false, true, false, "the change was made, but the admin audit log could not record it", "failed attempt"},
		{"both work", false, false, false, "", "WARNING"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			fs := &failingStore{Store: openStore(t)}
			svc := testService(t, fs)
			fs.failSave, fs.failAudit = tt.failSave, tt.failAudit
			var out bytes.Buffer
			r := &cmdlet.Runner{Registry: Cmdlets(svc), Out: &out}
			err := r.RunArgs(context.Background(), []string{"New-AcceptedDomain", "-Name", "contoso.com", "-DomainName", "contoso.com", "-DomainType", "Authoritative"})
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v", err)
			}
			if tt.wantErr && !errors.Is(err, ErrInternal) {
				t.Errorf("a storage failure is not ErrInternal: %v", err)
			}
			if tt.want != "" && !strings.Contains(out.String(), tt.want) {
				t.Errorf("output %q lacks %q", out.String(), tt.want)
			}
			if strings.Contains(out.String(), tt.notWant) {
				t.Errorf("output %q says %q", out.String(), tt.notWant)
			}
		})
	}
}

// TestAuditEntryOfInternalFailure: the entry of a change that failed in
// the storage says so without the storage's words.
func TestAuditEntryOfInternalFailure(t *testing.T) {
	fs := &failingStore{Store: openStore(t)}
	svc := testService(t, fs)
	fs.failSave = true
	r := &cmdlet.Runner{Registry: Cmdlets(svc), Out: &bytes.Buffer{}}
	if err := r.RunArgs(context.Background(), []string{"New-AcceptedDomain", "-Name", "contoso.com", "-DomainName", "contoso.com"}); err == nil {
		t.Fatal("the change succeeded")
	}
	es, err := svc.AuditLog(context.Background(), nil, "", time.Time{}, time.Time{}, 10)
	if err != nil || len(es) != 1 {
		t.Fatalf("audit: %v %v", es, err)
	}
	if es[0].Succeeded || !strings.Contains(es[0].Error, "internal error") || strings.Contains(es[0].Error, "disk") {
		t.Errorf("audit entry: %+v", es[0])
	}
}

// TestAuditWarningHidesDetailFromOrganizations: an organization's key is
// told the audit failed, not the storage's own words.
func TestAuditWarningHidesDetailFromOrganizations(t *testing.T) {
	svc := testService(t, openStore(t))
	if w := svc.auditWarning(nil, errDiskFull); !strings.Contains(w, "disk is full") {
		t.Errorf("administrator: %q", w)
	}
	org := svc.As(Principal{Name: "k", OrgID: svc.org().ID, Role: OrganizationManagement})
	if w := org.auditWarning(errors.New("x"), errDiskFull); strings.Contains(w, "disk") {
		t.Errorf("organization key: %q", w)
	}
}

// TestReachOut: every role of an organization key is refused whatever
// makes the server connect where the caller says; the server's
// administrator is not.
func TestReachOut(t *testing.T) {
	svc := testService(t, openStore(t))
	ctx := context.Background()
	// An issuer the server's administrator trusted earlier.
	if err := svc.Store.SaveAuthServer(ctx, &directory.AuthServer{OrgID: svc.org().ID, Name: "idp", AuthMetadataUrl: "https://127.0.0.1:1/md",
		Issuer: "https://127.0.0.1:1", JwksUri: "https://127.0.0.1:1/keys", Audience: "a", Enabled: true}); err != nil {
		t.Fatal(err)
	}
	if err := svc.reload(ctx); err != nil {
		t.Fatal(err)
	}
	for _, role := range Roles {
		org := svc.As(Principal{Name: "k", OrgID: svc.org().ID, Role: role})
		if _, err := org.ProbeServer(ctx, "127.0.0.1:1", false); !errors.Is(err, ErrAccessDenied) {
			t.Errorf("%s ProbeServer: %v", role, err)
		}
		name, url, aud := "idp", "https://127.0.0.1:1/.well-known/openid-configuration", "a"
		if _, err := org.NewAuthServer(ctx, AuthServerParams{Name: &name, AuthMetadataUrl: &url, Audience: &aud}); !errors.Is(err, ErrAccessDenied) {
			t.Errorf("%s NewAuthServer: %v", role, err)
		}
		if err := org.SetAuthServer(ctx, "idp", AuthServerParams{RefreshAuthMetadata: true}); !errors.Is(err, ErrAccessDenied) {
			t.Errorf("%s SetAuthServer -RefreshAuthMetadata: %v", role, err)
		}
		other := "https://127.0.0.1:2/md"
		if err := org.SetAuthServer(ctx, "idp", AuthServerParams{AuthMetadataUrl: &other}); !errors.Is(err, ErrAccessDenied) {
			t.Errorf("%s SetAuthServer -AuthMetadataUrl: %v", role, err)
		}
		oc := "sh"
		hosts := &MultiValue{Set: []string{"127.0.0.1:1"}, IsSet: true}
		if _, err := org.NewOutboundConnector(ctx, OutboundConnectorParams{Name: &oc, SmartHosts: hosts}); !errors.Is(err, ErrAccessDenied) {
			t.Errorf("%s NewOutboundConnector -SmartHosts: %v", role, err)
		}
		tok := "https://127.0.0.1:1/token"
		if _, err := org.NewOutboundConnector(ctx, OutboundConnectorParams{Name: &oc, OAuthTokenEndpoint: &tok}); !errors.Is(err, ErrAccessDenied) {
			t.Errorf("%s NewOutboundConnector -OAuthTokenEndpoint: %v", role, err)
		}
	}
	// Changing what needs no fetch is not reaching out.
	off := false
	if err := svc.As(Principal{Name: "k", OrgID: svc.org().ID, Role: OrganizationManagement}).SetAuthServer(ctx, "idp", AuthServerParams{Enabled: &off}); err != nil {
		t.Errorf("Organization Management SetAuthServer -Enabled: %v", err)
	}
	if _, err := svc.ProbeServer(ctx, "not-an-address", false); err != nil {
		t.Errorf("administrator ProbeServer: %v", err)
	}
}

// TestURLsAreHTTPSOnly: the URLs admins give are https, unless the
// server-level test setting allows http to loopback.
func TestURLsAreHTTPSOnly(t *testing.T) {
	svc := testService(t, openStore(t))
	ctx := context.Background()
	name, aud := "idp", "a"
	for _, tt := range []struct {
		url       string
		allowLoop bool
		wantInURL bool // the refusal names the URL as not https
	}{
		{"http://127.0.0.1:1/.well-known/openid-configuration", false, true},
		{"http://idp.example/.well-known/openid-configuration", true, true},
		{"ftp://idp.example/x", true, true},
	} {
		svc.AllowInsecureHTTPLoopback = tt.allowLoop
		url := tt.url
		_, err := svc.NewAuthServer(ctx, AuthServerParams{Name: &name, AuthMetadataUrl: &url, Audience: &aud})
		if err == nil || !strings.Contains(err.Error(), "https") {
			t.Errorf("%s (loopback %v): %v", tt.url, tt.allowLoop, err)
		}
	}
}

func TestParseTimeSpan(t *testing.T) {
	day := 24 * time.Hour
	for _, tt := range []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"90", 90 * day, true},
		{"90.00:00:00", 90 * day, true},
		{"1.12:30:00", day + 12*time.Hour + 30*time.Minute, true},
		{"12:00:00", 12 * time.Hour, true},
		{"00:30", 30 * time.Minute, true},
		{"36h", 36 * time.Hour, true},
		{"1d12h", day + 12*time.Hour, true},
		{"7d", 7 * day, true},
		{"30m", 30 * time.Minute, true},
		{"0", 0, false},
		{"-5", 0, false},
		{"-1h", 0, false},
		{"1d-1h", 0, false},
		{"24:00:00", 0, false},
		{"1.2.3", 0, false},
		{"3651", 0, false}, // more than ten years
		{"", 0, false},
		{"soon", 0, false},
		{"99999999999999999999", 0, false},
	} {
		got, err := ParseTimeSpan(tt.in)
		if (err == nil) != tt.ok || (tt.ok && got != tt.want) {
			t.Errorf("ParseTimeSpan(%q) = %v, %v", tt.in, got, err)
		}
	}
}

func FuzzParseTimeSpan(f *testing.F) {
	for _, s := range []string{"90", "90.00:00:00", "12:00", "1d12h", "36h", "-1", "1.-1:00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := ParseTimeSpan(s)
		if err == nil && (d <= 0 || d > maxExpiresAfter) {
			t.Fatalf("ParseTimeSpan(%q) = %v", s, d)
		}
	})
}

// TestAPIKeyExpiry: a key signs in until its expiry and not after.
func TestAPIKeyExpiry(t *testing.T) {
	svc := testService(t, openStore(t))
	ctx := context.Background()
	_, long, err := svc.NewAPIKey(ctx, "long", ViewOnly, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.SignIn(ctx, long); err != nil {
		t.Errorf("an unexpired key: %v", err)
	}
	k, short, err := svc.NewAPIKey(ctx, "short", ViewOnly, time.Nanosecond)
	if err != nil || k.Expires.IsZero() {
		t.Fatal(k, err)
	}
	if _, err := svc.SignIn(ctx, short); !errors.Is(err, ErrAPIKeyExpired) || !errors.Is(err, ErrBadAPIKey) {
		t.Errorf("an expired key: %v", err)
	}
	keys, err := svc.APIKeys(ctx, "short")
	if err != nil || keys[0].Expires.IsZero() {
		t.Errorf("the expiry is not stored: %+v %v", keys, err)
	}
	if _, _, err := svc.NewAPIKey(ctx, "neg", ViewOnly, -time.Hour); err == nil {
		t.Error("a negative expiry was accepted")
	}
}
