package config

import (
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCheck(t *testing.T) {
	dir := t.TempDir()
	cert := filepath.Join(dir, "cert.pem")
	os.WriteFile(cert, []byte("x"), 0o600)
	secretFile := filepath.Join(dir, "oidc-secret")
	os.WriteFile(secretFile, []byte("s3cret\n"), 0o600)
	emptySecret := filepath.Join(dir, "empty-secret")
	os.WriteFile(emptySecret, []byte("\n"), 0o600)
	for _, tc := range []struct {
		name, file string
		want       []string // each a substring of one error, in order; none: the file is fine
	}{
		{"empty", "", nil},
		{"good", "hostname = \"mail.contoso.com\"\nsubmission = \"127.0.0.1:2587\"\nmx = \"off\"\nlog_level = \"debug\"\n[delivery]\nretry_min = \"30s\"\n", nil},
		{"both certs", "tls_cert = \"" + cert + "\"\ntls_key = \"" + cert + "\"\n", nil},
		{"syntax", "hostname = \"x\"\nmx = \n", []string{":2:"}},
		{"unknown key", "hostname = \"x\"\n\nsubmision = \":587\"\n", []string{":3:1: unknown key \"submision\""}},
		{"wrong type", "max_connections = \"many\"\n", []string{":1:"}},
		{"bad listener", "hostname = \"x\"\nsubmission = \"587\"\n", []string{":2:14: submission:"}},
		{"bad port", "mx = \"127.0.0.1:99999\"\n", []string{":1:6: mx:"}},
		{"log level", "log_level = \"loud\"\n", []string{":1:13: log_level:"}},
		{"log format", "log_format = \"xml\"\n", []string{":1:14: log_format:"}},
		{"cert without key", "tls_cert = \"" + cert + "\"\n", []string{":1:12: tls_cert: tls_key is missing"}},
		{"missing file", "tls_client_ca = \"" + filepath.Join(dir, "nope.pem") + "\"\n", []string{"tls_client_ca:", "no such file"}},
		{"table key", "[delivery]\nworkers = 4\nretry_min = \"2h\"\nretry_max = \"1h\"\n", []string{":3:13: delivery.retry_min:"}},
		{"negative", "[auth]\nlockout_duration = \"-1m\"\n", []string{":2:20: auth.lockout_duration: negative"}},
		{"two problems", "log_level = \"x\"\nmx = \"nope\"\n", []string{"mx:", "log_level:"}},
		{"public url", "public_url = \"http://x\"\n", []string{"public_url:"}},
		{"memory limit", "memory_limit = \"512MiB\"\n", nil},
		{"memory limit off", "memory_limit = \"off\"\n", nil},
		{"bad memory limit", "memory_limit = \"lots\"\n", []string{":1:16: memory_limit:"}},
		{"store", "[store]\nurl = \"postgres://postern:secret@127.0.0.1:5432/postern?sslmode=disable\"\n", nil},
		{"store not PostgreSQL", "[store]\nurl = \"mysql://u:hunter2@db/postern\"\n", []string{":2:7: store.url: scheme \"mysql\""}},
		{"store without database", "[store]\nurl = \"postgres://u:hunter2@db\"\n", []string{":2:7: store.url: want postgres://"}},
		{"acme", "hostname = \"mail.contoso.com\"\n[acme]\nenabled = true\nemail = \"admin@contoso.com\"\nnames = [\"smtp.contoso.com\", \"Mail.Fabrikam.COM.\"]\nhttp_listen = \":80\"\nrenew_before = \"720h\"\n", nil},
		{"acme off ignores the names", "hostname = \"localhost\"\n[acme]\nnames = [\"*.contoso.com\"]\n", nil},
		{"acme and cert files", "hostname = \"mail.contoso.com\"\ntls_cert = \"" + cert + "\"\ntls_key = \"" + cert + "\"\n[acme]\nenabled = true\n",
			[]string{":5:11: acme.enabled: ACME and tls_cert/tls_key are mutually exclusive"}},
		{"acme single-label hostname", "hostname = \"mail\"\n[acme]\nenabled = true\n", []string{":1:12: hostname: ACME needs a DNS name"}},
		{"acme bad names", "hostname = \"mail.contoso.com\"\n[acme]\nenabled = true\nnames = [\"*.contoso.com\", \"192.0.2.1\", \"MAIL.contoso.com\"]\n",
			[]string{"acme.names: \"*.contoso.com\": wildcard", "acme.names: \"192.0.2.1\" is an IP address", "acme.names: \"MAIL.contoso.com\" is listed twice"}},
		{"acme values", "[acme]\ndirectory_url = \"http://ca.test/dir\"\nemail = \"Admin <a@b.c>\"\nhttp_listen = \"80\"\nrenew_before = \"800h\"\n",
			[]string{"acme.directory_url:", "acme.http_listen:", "acme.email:", "acme.renew_before: 800h0m0s is longer than 720h"}},
		{"acme negative renew", "[acme]\nrenew_before = \"-1h\"\n", []string{"acme.renew_before: negative"}},
		{"oidc", "[webadmin.oidc]\nissuer = \"https://login.contoso.com/tenant/v2.0\"\nclient_id = \"postern\"\nclient_secret_file = \"" + secretFile + "\"\nclaim = \"upn\"\n", nil},
		{"oidc public client", "[webadmin.oidc]\nissuer = \"https://login.contoso.com\"\nclient_id = \"postern\"\n", nil},
		{"oidc loopback http allowed", "allow_insecure_http_loopback = true\n[webadmin.oidc]\nissuer = \"http://127.0.0.1:8080\"\nclient_id = \"postern\"\n", nil},
		{"oidc http", "[webadmin.oidc]\nissuer = \"http://127.0.0.1:8080\"\nclient_id = \"postern\"\n", []string{":2:10: webadmin.oidc.issuer: \"http://127.0.0.1:8080\" must be an https URL"}},
		{"oidc http off loopback", "allow_insecure_http_loopback = true\n[webadmin.oidc]\nissuer = \"http://idp.contoso.com\"\nclient_id = \"postern\"\n", []string{"webadmin.oidc.issuer:"}},
		{"oidc without client", "[webadmin.oidc]\nissuer = \"https://login.contoso.com\"\n", []string{"webadmin.oidc.client_id: missing"}},
		{"oidc without issuer", "[webadmin.oidc]\nclient_id = \"postern\"\n", []string{"webadmin.oidc.issuer: missing"}},
		{"oidc bad values", "[webadmin.oidc]\nissuer = \"https://login.contoso.com?x=1\"\nclient_id = \"postern\"\nclient_secret_file = \"" + emptySecret + "\"\nclaim = \"a b\"\n",
			[]string{"webadmin.oidc.issuer: \"https://login.contoso.com?x=1\" is not an issuer URL", "webadmin.oidc.client_secret_file:", "webadmin.oidc.claim: \"a b\" is not a claim name"}},
		{"oidc secret missing", "[webadmin.oidc]\nissuer = \"https://login.contoso.com\"\nclient_id = \"postern\"\nclient_secret_file = \"" + filepath.Join(dir, "nope") + "\"\n", []string{"webadmin.oidc.client_secret_file:", "no such file"}},
		{"acme root ca missing", "[acme]\nroot_ca_file = \"" + filepath.Join(dir, "nope.pem") + "\"\n", []string{"acme.root_ca_file:", "no such file"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "postern.toml")
			os.WriteFile(p, []byte(tc.file), 0o600)
			errs := Check(p)
			var got []string
			for _, e := range errs {
				got = append(got, e.Error())
				if !strings.HasPrefix(e.Error(), p+":") {
					t.Errorf("error without FILE:LINE:COL: %v", e)
				}
			}
			all := strings.Join(got, "\n")
			if len(tc.want) == 0 && len(errs) > 0 {
				t.Fatalf("Check: %v", all)
			}
			if len(tc.want) > 0 && len(errs) == 0 {
				t.Fatalf("Check accepted the file, want %q", tc.want)
			}
			for _, w := range tc.want {
				if !strings.Contains(all, w) {
					t.Errorf("errors %q lack %q", all, w)
				}
			}
		})
	}
	if errs := Check(filepath.Join(dir, "missing.toml")); len(errs) != 1 {
		t.Errorf("missing file: %v", errs)
	}
}

// FuzzCheck: any file gets a verdict, never a panic, and every error
// names the file with a line and column.
func FuzzCheck(f *testing.F) {
	f.Add("hostname = \"x\"\n[delivery]\nretry_min = \"2h\"\n")
	f.Add("a.b.c = 1\n[[x]]\ny = [1, {z = 2}]\n")
	f.Add("hostname = \"mail.contoso.com\"\n[acme]\nenabled = true\nnames = [\"xn--bcher-kva.example\", \"b\u00fccher.example\", \"a..b\"]\n")
	f.Fuzz(func(t *testing.T, file string) {
		p := filepath.Join(t.TempDir(), "c.toml")
		os.WriteFile(p, []byte(file), 0o600)
		for _, e := range Check(p) {
			if !strings.HasPrefix(e.Error(), p+":") {
				t.Fatalf("error without the file name: %v", e)
			}
		}
		keyPositions([]byte(file))
	})
}

// FuzzCheckStoreURL: any [store] url is judged without a panic, and a
// refusal never repeats the URL's password (it may quote the scheme).
func FuzzCheckStoreURL(f *testing.F) {
	for _, s := range []string{"postgres://u:secret@127.0.0.1:5432/db", "postgresql://u@h/db?sslmode=disable", "mysql://u:secret@h/db",
		"postgres://u:secret@h", "postgres://%zz", "", "postgres:///db", "postgres://[::1]:5432/db"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		err := CheckStoreURL(s)
		u, perr := url.Parse(s)
		if err == nil || perr != nil || u.User == nil {
			return
		}
		password, _ := u.User.Password()
		rest := strings.ReplaceAll(err.Error(), u.Scheme, "")
		if len(password) >= 4 && strings.Contains(rest, password) && !strings.Contains("postgres://USER@HOST:PORT/DATABASE; leave it empty for SQLite in the data directory only PostgreSQL is supported want with a host and a database not a URL", password) {
			t.Fatalf("the refusal of %q repeats its password: %v", s, err)
		}
	})
}
