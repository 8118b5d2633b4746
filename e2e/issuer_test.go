package e2e

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestBuiltInIssuer: an application registered with New-OAuthApp gets a
// token from Postern's own token endpoint with standard OAuth client code
// (python3's oauthlib with a client secret; PyJWT's client assertion with a
// certificate; curl with HTTP Basic) and sends with XOAUTH2.
func TestBuiltInIssuer(t *testing.T) {
	py := debianPython(t, "oauthlib", "requests", "jwt")
	curl := requireTool(t, "curl")
	adminAddr := freeAddr(t)
	base := "https://" + adminAddr
	in := newInstance(t, "--admin", adminAddr, "--public-url", base)
	scanner := in.mailbox("scanner", "Scan-Pass-1")
	app := in.shell("New-OAuthApp -Name 'Scan app' | Format-List *")
	appID, secret := fieldValue(app, "AppId"), fieldValue(app, "ClientSecret")
	if appID == "" || len(secret) < 40 {
		t.Fatalf("New-OAuthApp:\n%s", app)
	}
	if shown := in.shell("Get-OAuthApp | Format-List *"); strings.Contains(shown, secret) {
		t.Error("Get-OAuthApp shows the client secret")
	}
	in.admin("Add-MailboxPermission", "-Identity", scanner, "-User", "Scan app", "-AccessRights", "FullAccess")

	// A certificate app for private_key_jwt.
	dir := t.TempDir()
	keyFile, certFile := writeCert(t, dir)
	certApp := in.shell("New-OAuthApp -Name 'Cert app' -Certificate " + certFile + " | Format-List *")
	certAppID := fieldValue(certApp, "AppId")
	in.admin("Add-MailboxPermission", "-Identity", scanner, "-User", "Cert app", "-AccessRights", "FullAccess")
	in.start()
	if got := in.shell("Get-AuthServer -Identity Postern | Format-List IssuerIdentifier,IsBuiltIn"); !strings.Contains(got, base) {
		t.Fatalf("built-in AuthServer:\n%s", got)
	}

	host, port := hostPort(t, in.addrs["submission"])
	script := `import sys, ssl, smtplib, time, uuid, requests, jwt
from oauthlib.oauth2 import BackendApplicationClient
base, ca, app_id, secret, cert_app, key_file, host, port = sys.argv[1:9]
scope = ["https://outlook.office365.com/.default"]
md = requests.get(base + "/.well-known/openid-configuration", verify=ca).json()
form = {"Content-Type": "application/x-www-form-urlencoded"}

def send(token, user, subject):
    ctx = ssl.create_default_context(cafile=ca)
    ctx.check_hostname = False
    with smtplib.SMTP(host, int(port)) as s:
        s.starttls(context=ctx)
        s.ehlo()
        code, text = s.auth("XOAUTH2", lambda c=None: "user=%s\x01auth=Bearer %s\x01\x01" % (user, token), initial_response_ok=True)
        s.sendmail(user, [user], ("From: %s\r\nSubject: %s\r\n\r\nx\r\n" % (user, subject)).encode())
    print("sent", subject)

# 1. client secret, with oauthlib
client = BackendApplicationClient(client_id=app_id)
body = client.prepare_request_body(client_secret=secret, scope=scope, include_client_id=True)
r = requests.post(md["token_endpoint"], data=body, headers=form, verify=ca)
token = client.parse_request_body_response(r.text)["access_token"]
print("expires_in", client.token["expires_in"])
send(token, "scanner@contoso.com", "secret")

# 2. a wrong secret
body = client.prepare_request_body(client_secret="wrong", scope=scope, include_client_id=True)
r = requests.post(md["token_endpoint"], data=body, headers=form, verify=ca)
print("wrong secret", r.status_code, r.json()["error"])

# 3. a client assertion signed with the certificate's key (RFC 7523)
now = int(time.time())
claims = {"iss": cert_app, "sub": cert_app, "aud": md["token_endpoint"], "jti": str(uuid.uuid4()), "nbf": now, "exp": now + 300}
assertion = jwt.encode(claims, open(key_file).read(), algorithm="RS256")
data = {"grant_type": "client_credentials", "client_id": cert_app, "scope": scope[0],
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer", "client_assertion": assertion}
r = requests.post(md["token_endpoint"], data=data, verify=ca)
send(r.json()["access_token"], "scanner@contoso.com", "assertion")
r = requests.post(md["token_endpoint"], data=data, verify=ca)
print("replayed assertion", r.status_code, r.json()["error"])

# 4. a scope for something else
body = client.prepare_request_body(client_secret=secret, scope=["https://graph.microsoft.com/.default"], include_client_id=True)
r = requests.post(md["token_endpoint"], data=body, headers=form, verify=ca)
print("other scope", r.status_code, r.json()["error"])
`
	out, err := exec.Command(py, "-c", script, base, in.caFile(), appID, secret, certAppID, keyFile, host, port).CombinedOutput()
	if err != nil {
		t.Fatalf("python3: %v\n%s\n%s", err, out, in.log.String())
	}
	for _, want := range []string{"expires_in 3600", "sent secret", "wrong secret 401 invalid_client", "sent assertion",
		"replayed assertion 401 invalid_client", "other scope 400 invalid_scope"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("python output lacks %q:\n%s", want, out)
		}
	}

	// curl with HTTP Basic (client_secret_basic).
	out, err = exec.Command(curl, "-sS", "--cacert", in.caFile(), "-u", appID+":"+secret, "-d", "grant_type=client_credentials",
		"-d", "scope=https://outlook.office365.com/.default", base+"/oauth2/v2.0/token").CombinedOutput()
	if err != nil || !strings.Contains(string(out), `"token_type":"Bearer"`) {
		t.Errorf("curl: %v\n%s", err, out)
	}

	// After Rotate-OAuthSigningKey, tokens signed with the old key still
	// work (the key stays published), and so do new ones.
	in.admin("Rotate-OAuthSigningKey")
	if n := in.folderCount(scanner, "Inbox"); n != 2 {
		t.Errorf("scanner's Inbox: %d, want 2", n)
	}
	if got := in.shell("Get-SmtpAuthClientReport | Format-Table SenderAddress,AuthenticationProtocol"); !strings.Contains(got, "OAuth") {
		t.Errorf("report:\n%s", got)
	}
}

// writeCert makes an RSA key and a self-signed certificate for it.
func writeCert(t *testing.T, dir string) (keyFile, certFile string) {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Cert app"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, _ := x509.MarshalPKCS8PrivateKey(key)
	keyFile, certFile = filepath.Join(dir, "app.key"), filepath.Join(dir, "app.crt")
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600)
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	return keyFile, certFile
}
