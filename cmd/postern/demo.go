package main

import (
	"context"
	"crypto/rand"
	"flag"
	"fmt"
	"io"
	"path/filepath"

	"postern.dev/postern/internal/admin"
	"postern.dev/postern/internal/config"
	"postern.dev/postern/internal/server"
	"postern.dev/postern/internal/smtpd"
)

// demoMailboxes are the people of Microsoft's own examples, plus a scanner.
var demoMailboxes = []string{"sean", "chris", "akol", "tjohnston", "kakers", "scanner"}

// applyDemoDefaults moves the listeners to unprivileged loopback ports and
// the data to ./postern-demo, unless flags said otherwise.
func applyDemoDefaults(cfg *config.Config, fs *flag.FlagSet) {
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	defaults := map[string]*string{
		"submission":  &cfg.Submission,
		"submissions": &cfg.Submissions,
		"mx":          &cfg.MX,
		"hostname":    &cfg.Hostname,
	}
	values := map[string]string{
		"submission": "127.0.0.1:2587", "submissions": "127.0.0.1:2465", "mx": "127.0.0.1:2525", "hostname": "localhost",
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
func setUpDemo(ctx context.Context, srv *server.Server, cfg config.Config, out io.Writer) error {
	svc := srv.Admin
	if ds, _ := svc.AcceptedDomains("contoso.com"); len(ds) == 0 {
		if _, err := svc.NewAcceptedDomain(ctx, "contoso.com", "contoso.com", "Authoritative"); err != nil {
			return err
		}
	}
	passwords := map[string]string{}
	for _, name := range demoMailboxes {
		pw := demoPassword()
		passwords[name] = pw
		if _, err := svc.Mailboxes(name, 0); err != nil {
			if _, err := svc.NewMailbox(ctx, admin.NewMailboxParams{Name: name, PrimarySmtpAddress: name + "@contoso.com", Password: pw}); err != nil {
				return err
			}
		} else if err := svc.SetMailbox(ctx, name, admin.SetMailboxParams{Password: &pw}); err != nil {
			return err
		}
	}
	if _, err := svc.Mailboxes("info", 0); err != nil {
		if _, err := svc.NewMailbox(ctx, admin.NewMailboxParams{Name: "info", PrimarySmtpAddress: "info@contoso.com", Shared: true}); err != nil {
			return err
		}
		if _, err := svc.AddRecipientPermission(ctx, "info@contoso.com", "scanner@contoso.com", "SendAs"); err != nil {
			return err
		}
	}
	enabled := false
	if err := svc.SetCASMailbox(ctx, "scanner@contoso.com", &enabled); err != nil {
		return err
	}

	sub := srv.Addr(smtpd.Submission)
	fmt.Fprintf(out, "\nPostern demo organization contoso.com is ready (data in %s).\n\n", cfg.Data)
	fmt.Fprintf(out, "Listeners: submission %v (STARTTLS), submissions %v (implicit TLS), mx %v\n", sub, srv.Addr(smtpd.Submissions), srv.Addr(smtpd.MX))
	fmt.Fprintf(out, "SMTP AUTH is disabled for the organization (the Exchange default) and enabled for scanner@contoso.com.\n\n")
	fmt.Fprintln(out, "Mailbox passwords (new at every start):")
	for _, name := range demoMailboxes {
		fmt.Fprintf(out, "  %-24s %s\n", name+"@contoso.com", passwords[name])
	}
	fmt.Fprintln(out, "  info@contoso.com         (shared mailbox; scanner has Send As on it)")
	if sub != nil {
		fmt.Fprintf(out, "\nSend a first message:\n  swaks --server %s --tls --tls-ca-path %s \\\n    --auth LOGIN --auth-user scanner@contoso.com --auth-password '%s' \\\n    --from scanner@contoso.com --to sean@contoso.com --header 'Subject: Scan from the copier'\n",
			sub, filepath.Join(cfg.Data, "tls", "cert.pem"), passwords["scanner"])
	}
	fmt.Fprintf(out, "\nThen look at sean's Inbox:\n  postern --data %s Get-MailboxFolderStatistics -Identity sean@contoso.com\n\n", cfg.Data)
	return nil
}

// demoPassword returns 16 random characters from an unambiguous alphabet.
func demoPassword() string {
	const alphabet = "abcdefghjkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"
	b := make([]byte, 16)
	rand.Read(b)
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b)
}
