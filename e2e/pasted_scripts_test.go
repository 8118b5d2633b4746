package e2e

import (
	"encoding/base64"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestPastedScripts runs the corpus in testdata/pasted-scripts: scripts as
// admins paste them from Microsoft's Exchange Online documentation, each
// with its expected outcome (see the README there), against a running
// server through the CLI, with their files in the CLI's directory.
func TestPastedScripts(t *testing.T) {
	in := newInstance(t)
	in.admin("New-Mailbox", "-Name", "sean", "-DisplayName", "Sean Smith", "-PrimarySmtpAddress", "sean@contoso.com", "-Password", "Pass-word-1")
	in.admin("New-Mailbox", "-Name", "chris", "-DisplayName", "Chris Jones", "-PrimarySmtpAddress", "chris@contoso.com", "-Password", "Pass-word-1")
	in.admin("New-Mailbox", "-Name", "akol", "-PrimarySmtpAddress", "akol@contoso.com", "-Password", "Pass-word-1")
	in.admin("New-Mailbox", "-Name", "Info Desk", "-Alias", "info", "-Shared")
	in.shell(`Set-Mailbox sean -EmailAddresses @{Add="sean.smith@contoso.com"}`)
	in.admin("Set-CASMailbox", "-Identity", "sean", "-SmtpClientAuthenticationDisabled", "$false")
	in.start()

	// A message in the trace, for Get-MessageTrace | Get-MessageTraceDetail.
	c := dial(t, in.addrs["submission"])
	if r := c.login(in.tlsConfig(), "sean@contoso.com", "Pass-word-1"); !strings.HasPrefix(r, "235") {
		t.Fatalf("AUTH: %s", r)
	}
	if r := c.send("sean@contoso.com", []string{"chris@contoso.com"}, message("sean@contoso.com", "chris@contoso.com", "Quarterly numbers")); !strings.HasPrefix(r, "250") {
		t.Fatalf("send: %s", r)
	}
	if !waitUntil(30*time.Second, func() bool {
		return strings.Contains(in.shell("Get-MessageTrace | Format-Table Status"), "Delivered")
	}) {
		t.Fatalf("the message was not delivered:\n%s", in.shell("Get-MessageTrace | Format-List *"))
	}
	_, port := hostPort(t, in.addrs["submission"])

	files, err := filepath.Glob("testdata/pasted-scripts/*.*")
	if err != nil {
		t.Fatal(err)
	}
	ran := 0
	for _, file := range files {
		if strings.HasSuffix(file, ".md") {
			continue
		}
		ran++
		name := filepath.Base(file)
		src, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		script := strings.ReplaceAll(string(src), "{{submission}}", port)
		dir := t.TempDir()
		os.WriteFile(filepath.Join(dir, "users.csv"), []byte("DisplayName,UserPrincipalName\r\nSean Smith,sean@contoso.com\r\nChris Jones,chris@contoso.com\r\n"), 0o600)
		os.WriteFile(filepath.Join(dir, "allow.txt"), []byte("chris@contoso.com\r\nakol@contoso.com\r\n"), 0o600)
		path := filepath.Join(dir, name)
		os.WriteFile(path, []byte(script), 0o600)
		var cmd *exec.Cmd
		if strings.HasSuffix(name, ".sh") {
			cmd = exec.Command(requireTool(t, "bash"), path)
			cmd.Env = append(os.Environ(), "POSTERN="+binary+" --data "+in.data)
		} else {
			cmd = exec.Command(binary, "--data", in.data, "shell", "-f", name)
		}
		cmd.Dir = dir
		var stdout, stderr strings.Builder
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		runErr := cmd.Run()
		out := stdout.String() + stderr.String()
		failed := false
		for _, line := range strings.Split(script, "\n") {
			d, ok := strings.CutPrefix(strings.TrimRight(line, "\r"), "#! ")
			if !ok {
				continue
			}
			kind, arg, _ := strings.Cut(d, ": ")
			switch kind {
			case "source":
			case "expect":
				if !strings.Contains(out, arg) {
					t.Errorf("%s: output lacks %q", name, arg)
					failed = true
				}
			case "stderr":
				if !strings.Contains(stderr.String(), arg) {
					t.Errorf("%s: standard error lacks %q", name, arg)
					failed = true
				}
			case "reject":
				if strings.Contains(out, arg) {
					t.Errorf("%s: output has %q", name, arg)
					failed = true
				}
			case "match":
				if !regexp.MustCompile(arg).MatchString(out) {
					t.Errorf("%s: output does not match %q", name, arg)
					failed = true
				}
			case "file":
				fname, want, _ := strings.Cut(arg, ": ")
				b, err := os.ReadFile(filepath.Join(dir, fname))
				if err != nil || !strings.Contains(string(b), want) {
					t.Errorf("%s: %s lacks %q (%v):\n%s", name, fname, want, err, b)
					failed = true
				}
			case "fails":
				if runErr == nil || !strings.Contains(stderr.String(), arg) {
					t.Errorf("%s: want a failure with %q, got %v", name, arg, runErr)
					failed = true
				}
			default:
				t.Fatalf("%s: unknown directive %q", name, kind)
			}
		}
		if runErr != nil && !strings.Contains(script, "#! fails:") {
			t.Errorf("%s: %v", name, runErr)
			failed = true
		}
		if failed {
			t.Logf("%s output:\n%s", name, out)
		}
	}
	if ran < 20 {
		t.Errorf("the corpus has %d scripts", ran)
	}
}

// TestSTSRefreshTokensValidFrom: Set-User -STSRefreshTokensValidFrom
// revokes the tokens Postern's issuer gave before that time: a token that
// signed in a moment ago is refused with 535 5.7.3, and a token issued
// after the time signs in.
func TestSTSRefreshTokensValidFrom(t *testing.T) {
	curl := requireTool(t, "curl")
	adminAddr := freeAddr(t)
	base := "https://" + adminAddr
	in := newInstance(t, "--admin", adminAddr, "--public-url", base)
	scanner := in.mailbox("scanner", "Scan-Pass-1")
	app := in.shell("New-OAuthApp -Name 'Scan app' | Format-List *")
	appID, secret := fieldValue(app, "AppId"), fieldValue(app, "ClientSecret")
	in.admin("Add-MailboxPermission", "-Identity", scanner, "-User", "Scan app", "-AccessRights", "FullAccess")
	in.start()

	token := func() string {
		out, err := exec.Command(curl, "-sS", "--cacert", in.caFile(), "-u", appID+":"+secret, "-d", "grant_type=client_credentials",
			"-d", "scope=https://outlook.office365.com/.default", base+"/oauth2/v2.0/token").Output()
		var resp struct {
			AccessToken string `json:"access_token"`
		}
		if err != nil || json.Unmarshal(out, &resp) != nil || resp.AccessToken == "" {
			t.Fatalf("token: %v\n%s", err, out)
		}
		return resp.AccessToken
	}
	auth := func(tok string) string {
		c := dial(t, in.addrs["submission"])
		c.expect("EHLO scanner.contoso.com", "250")
		c.startTLS(in.tlsConfig())
		c.expect("EHLO scanner.contoso.com", "250")
		r := c.do("AUTH XOAUTH2 " + base64.StdEncoding.EncodeToString([]byte("user="+scanner+"\x01auth=Bearer "+tok+"\x01\x01")))
		if strings.HasPrefix(r, "334 ") {
			r = c.do("") // XOAUTH2's error challenge, then the final reply
		}
		return r
	}
	old := token()
	if r := auth(old); !strings.HasPrefix(r, "235") {
		t.Fatalf("before: %s", r)
	}
	// The token's iat is in whole seconds; one second later revokes it.
	var claims struct {
		IssuedAt int64 `json:"iat"`
	}
	parts := strings.Split(old, ".")
	payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
	if err := json.Unmarshal(payload, &claims); err != nil || claims.IssuedAt == 0 {
		t.Fatalf("iat: %v %s", err, payload)
	}
	validFrom := time.Unix(claims.IssuedAt+1, 0).UTC().Format(time.RFC3339)
	in.shell("Set-User -Identity " + scanner + " -STSRefreshTokensValidFrom '" + validFrom + "'")
	if got := in.shell("Get-User " + scanner + " | Format-List StsRefreshTokensValidFrom"); !strings.Contains(got, "StsRefreshTokensValidFrom :") ||
		strings.Contains(got, "StsRefreshTokensValidFrom : \n") {
		t.Errorf("Get-User:\n%s", got)
	}
	if r := auth(old); !strings.HasPrefix(r, "535 5.7.3 Authentication unsuccessful") {
		t.Errorf("the old token: %s", r)
	}
	// A token issued once the second has passed signs in.
	if !waitUntil(15*time.Second, func() bool { return strings.HasPrefix(auth(token()), "235") }) {
		t.Errorf("a new token is refused")
	}
}
