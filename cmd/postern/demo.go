package main

import (
	"context"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"postern.dev/postern/internal/admin"
	"postern.dev/postern/internal/cmdlet"
	"postern.dev/postern/internal/config"
	"postern.dev/postern/internal/server"
	"postern.dev/postern/internal/smtpd"
)

// demoMailboxes are the people of Microsoft's own examples, plus a scanner.
var demoMailboxes = []string{"sean", "chris", "akol", "tjohnston", "kakers", "scanner"}

// applyDemoDefaults moves the listeners to unprivileged loopback ports
// (the admin HTTPS listener, off by default, included: the demo shows the
// REST API) and the data to ./postern-demo, unless flags said otherwise.
func applyDemoDefaults(cfg *config.Config, fs *flag.FlagSet) {
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	defaults := map[string]*string{
		"submission":  &cfg.Submission,
		"submissions": &cfg.Submissions,
		"mx":          &cfg.MX,
		"hostname":    &cfg.Hostname,
		"admin":       &cfg.Admin,
		"imap":        &cfg.IMAP,
		"imaps":       &cfg.IMAPS,
		"pop3":        &cfg.POP3,
		"pop3s":       &cfg.POP3S,
	}
	values := map[string]string{
		"submission": "127.0.0.1:2587", "submissions": "127.0.0.1:2465", "mx": "127.0.0.1:2525", "hostname": "localhost",
		"admin": "127.0.0.1:2443", "imap": "127.0.0.1:2143", "imaps": "127.0.0.1:2993", "pop3": "127.0.0.1:2110", "pop3s": "127.0.0.1:2995",
	}
	for name, dst := range defaults {
		if !set[name] {
			*dst = values[name]
		}
	}
	if !set["data"] && cfg.Data == config.Defaults().Data {
		cfg.Data = "postern-demo"
	}
}

// setUpDemo creates (or refreshes) the contoso.com organization: the
// mailboxes get new random passwords at every start, and SMTP AUTH is set up
// as Microsoft recommends — off for the organization, on for the scanner.
// It runs cmdlets through the admin service as the server's administrator,
// as an admin typing them would: the same checks, and each change in the
// admin audit log.
func setUpDemo(ctx context.Context, srv *server.Server, cfg config.Config, out io.Writer) error {
	svc := srv.Admin
	run := func(name string, params map[string]any) ([]*cmdlet.Object, error) {
		objs, err := svc.Invoke(ctx, out, name, params)
		if err != nil {
			return nil, fmt.Errorf("demo setup: %s: %w", name, err)
		}
		return objs, nil
	}
	// exists runs a Get- cmdlet for one identity.
	exists := func(get, identity string) (bool, error) {
		objs, err := svc.Invoke(ctx, out, get, map[string]any{"Identity": identity})
		if errors.Is(err, admin.ErrNotFound) {
			return false, nil
		}
		if err != nil {
			return false, fmt.Errorf("demo setup: %s %s: %w", get, identity, err)
		}
		return len(objs) > 0, nil
	}
	if ok, err := exists("Get-AcceptedDomain", "contoso.com"); err != nil {
		return err
	} else if !ok {
		if _, err := run("New-AcceptedDomain", map[string]any{"Name": "contoso.com", "DomainName": "contoso.com", "DomainType": "Authoritative"}); err != nil {
			return err
		}
	}
	passwords := map[string]string{}
	for _, name := range demoMailboxes {
		pw := demoPassword()
		passwords[name] = pw
		ok, err := exists("Get-Mailbox", name)
		switch {
		case err != nil:
			return err
		case !ok:
			_, err = run("New-Mailbox", map[string]any{"Name": name, "PrimarySmtpAddress": name + "@contoso.com", "Password": pw})
		default:
			_, err = run("Set-Mailbox", map[string]any{"Identity": name, "Password": pw})
		}
		if err != nil {
			return err
		}
	}
	if ok, err := exists("Get-Mailbox", "info"); err != nil {
		return err
	} else if !ok {
		if _, err := run("New-Mailbox", map[string]any{"Name": "info", "PrimarySmtpAddress": "info@contoso.com", "Shared": true}); err != nil {
			return err
		}
		if _, err := run("Add-RecipientPermission", map[string]any{"Identity": "info@contoso.com", "Trustee": "scanner@contoso.com", "AccessRights": "SendAs"}); err != nil {
			return err
		}
	}
	if _, err := run("Set-CASMailbox", map[string]any{"Identity": "scanner@contoso.com", "SmtpClientAuthenticationDisabled": false}); err != nil {
		return err
	}
	// sean administers the organization in the web admin center.
	if err := svc.AddRoleGroupMember(ctx, string(admin.OrganizationManagement), "sean@contoso.com"); err != nil && !errors.Is(err, admin.ErrExists) {
		return err
	}

	// The REST API's sign-in: a new Organization Management key at every
	// start, like the passwords (the previous one is revoked).
	var apiKey string
	if cfg.Admin != "" && cfg.Admin != config.Off {
		if ok, err := exists("Get-ApiKey", "demo"); err != nil {
			return err
		} else if ok {
			if _, err := run("Remove-ApiKey", map[string]any{"Identity": "demo"}); err != nil {
				return err
			}
		}
		objs, err := run("New-ApiKey", map[string]any{"Name": "demo", "Role": string(admin.OrganizationManagement)})
		if err != nil {
			return err
		}
		if len(objs) == 1 {
			if v, ok := objs[0].Get("Key"); ok {
				apiKey, _ = v.(string)
			}
		}
		if apiKey == "" {
			return errors.New("demo setup: New-ApiKey returned no key")
		}
	}
	printDemoBanner(out, demoBanner{
		Command: commandPath(), Data: cfg.Data, CA: filepath.Join(cfg.Data, "tls", "cert.pem"),
		Submission: srv.Addr(smtpd.Submission), Submissions: srv.Addr(smtpd.Submissions), MX: srv.Addr(smtpd.MX),
		IMAP: srv.AccessAddr("imap"), IMAPS: srv.AccessAddr("imaps"), POP3: srv.AccessAddr("pop3"), POP3S: srv.AccessAddr("pop3s"),
		Admin: cfg.Admin, APIKey: apiKey, Passwords: passwords,
	})
	return nil
}

// demoBanner is what the demo prints once it is ready.
type demoBanner struct {
	Command, Data, CA           string
	Submission, Submissions, MX net.Addr
	IMAP, IMAPS, POP3, POP3S    net.Addr
	Admin, APIKey               string // Admin is config.Off when the listener is off
	Passwords                   map[string]string
}

// printDemoBanner prints the organization, every listener, the
// passwords and the API key, and commands that work as printed: the
// binary as it was invoked (bin/postern from make run) and the data
// directory as given.
func printDemoBanner(out io.Writer, b demoBanner) {
	str := func(a net.Addr, what string) string {
		if a == nil {
			return "off"
		}
		return a.String() + what
	}
	fmt.Fprintf(out, "\nPostern demo organization contoso.com is ready (data in %s).\n\n", b.Data)
	fmt.Fprintf(out, "Listeners: submission %s, submissions %s, mx %s\n", str(b.Submission, " (STARTTLS)"), str(b.Submissions, " (implicit TLS)"), str(b.MX, ""))
	fmt.Fprintf(out, "Reading mail: imap %s, imaps %s, pop3 %s, pop3s %s\n", str(b.IMAP, " (STARTTLS)"), str(b.IMAPS, " (implicit TLS)"), str(b.POP3, " (STLS)"), str(b.POP3S, " (implicit TLS)"))
	adminURL := ""
	if b.Admin != "" && b.Admin != config.Off {
		host, port, _ := net.SplitHostPort(b.Admin)
		if host == "" || host == "0.0.0.0" || host == "::" {
			host = "localhost"
		}
		if port == "0" {
			fmt.Fprintf(out, "Admin (REST API, OAuth issuer): HTTPS on the port in the log line \"listening role=admin\"\n")
		} else {
			adminURL = "https://" + net.JoinHostPort(host, port)
			fmt.Fprintf(out, "Admin (REST API, OAuth issuer): %s  (API reference: %s/api/v1/openapi.json)\n", adminURL, adminURL)
		}
	} else {
		fmt.Fprintf(out, "Admin HTTPS listener: off (--admin 127.0.0.1:2443 turns it on)\n")
	}
	fmt.Fprintf(out, "SMTP AUTH is disabled for the organization (the Exchange default) and enabled for scanner@contoso.com.\n\n")
	fmt.Fprintln(out, "Mailbox passwords (new at every start):")
	for _, name := range demoMailboxes {
		fmt.Fprintf(out, "  %-24s %s\n", name+"@contoso.com", b.Passwords[name])
	}
	fmt.Fprintln(out, "  info@contoso.com         (shared mailbox; scanner has Send As on it)")
	if b.APIKey != "" {
		fmt.Fprintf(out, "\nAdmin sign-in for the REST API (API key 'demo', Organization Management, new at every start):\n  %s\n", b.APIKey)
	}
	if b.Submission != nil {
		fmt.Fprintf(out, "\nSend a first message:\n  swaks --server %s --tls --tls-ca-path %s \\\n    --auth LOGIN --auth-user scanner@contoso.com --auth-password '%s' \\\n    --from scanner@contoso.com --to sean@contoso.com --header 'Subject: Scan from the copier'\n",
			b.Submission, b.CA, b.Passwords["scanner"])
	}
	fmt.Fprintf(out, "\nThen look at sean's Inbox:\n  %s --data %s Get-MailboxFolderStatistics -Identity sean@contoso.com\n", b.Command, b.Data)
	if b.IMAPS != nil {
		_, port, _ := net.SplitHostPort(b.IMAPS.String())
		fmt.Fprintf(out, "or read it over IMAP:\n  curl --cacert %s --user 'sean@contoso.com:%s' 'imaps://localhost:%s/INBOX;UID=1'\n",
			b.CA, b.Passwords["sean"], port)
	}
	if adminURL != "" && b.APIKey != "" {
		fmt.Fprintf(out, "or, over the REST API:\n  curl --cacert %s -H 'X-API-Key: %s' %s/api/v1/mailboxes\n", b.CA, b.APIKey, adminURL)
	}
	if adminURL != "" {
		fmt.Fprintf(out, "\nAdmin center (the Microsoft 365 and Exchange admin center pages): %s/\n  sign in as sean@contoso.com with sean's password above (Organization Management);\n  the server administrator: %s --data %s admin-link\n", adminURL, b.Command, b.Data)
	}
	fmt.Fprintf(out, "\nAdminister it:\n  %s --data %s shell\n  %s --data %s Get-Command\n", b.Command, b.Data, b.Command, b.Data)
	fmt.Fprintf(out, "Back it up while it runs:\n  %s backup --data %s --to contoso-backup.tar.gz\n\n", b.Command, b.Data)
}

// commandPath is how to run this binary again from the same directory:
// "postern" when that name on $PATH is this binary, otherwise the path it
// was started by (./bin/postern from make run).
func commandPath() string {
	arg0 := os.Args[0]
	self, err := os.Executable()
	if err != nil {
		return arg0
	}
	if onPath, err := exec.LookPath("postern"); err == nil {
		a, err1 := os.Stat(onPath)
		b, err2 := os.Stat(self)
		if err1 == nil && err2 == nil && os.SameFile(a, b) {
			return "postern"
		}
	}
	if strings.ContainsRune(arg0, filepath.Separator) {
		return arg0
	}
	return self
}

// demoPassword returns 16 random characters from an unambiguous alphabet
// in groups of four joined by '-': the dashes and the mixed letters and
// digits meet the password policy (3 of 4 character kinds).
func demoPassword() string {
	const alphabet = "abcdefghjkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"
	for {
		b := make([]byte, 16)
		rand.Read(b)
		var kinds [3]bool
		for i := range b {
			c := alphabet[int(b[i])%len(alphabet)]
			b[i] = c
			switch {
			case c >= 'a' && c <= 'z':
				kinds[0] = true
			case c >= 'A' && c <= 'Z':
				kinds[1] = true
			default:
				kinds[2] = true
			}
		}
		if n := btoi(kinds[0]) + btoi(kinds[1]) + btoi(kinds[2]); n >= 2 {
			s := string(b)
			return s[0:4] + "-" + s[4:8] + "-" + s[8:12] + "-" + s[12:16]
		}
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}
