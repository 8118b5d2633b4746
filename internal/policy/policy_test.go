package policy

import (
	"fmt"
	"testing"

	"postern.dev/postern/internal/address"
	"postern.dev/postern/internal/directory"
	"postern.dev/postern/internal/reply"
)

func ptr(b bool) *bool { return &b }

func TestAuthenticate(t *testing.T) {
	allow := &directory.AuthenticationPolicy{Name: "AllowSmtp", AllowBasicAuthSmtp: true}
	block := &directory.AuthenticationPolicy{Name: "BlockBasic"}
	tests := []struct {
		name        string
		creds       bool
		shared      bool
		mailbox     *bool // Set-CASMailbox -SmtpClientAuthenticationDisabled
		org         bool  // Set-TransportConfig -SmtpClientAuthenticationDisabled
		secDefaults bool
		policy      *directory.AuthenticationPolicy
		method      AuthMethod
		want        *reply.Reply
	}{
		{name: "wrong password", creds: false, want: reply.AuthFailed},
		{name: "wrong password hides tenant switch", creds: false, org: true, want: reply.AuthFailed},
		{name: "wrong password hides mailbox switch", creds: false, mailbox: ptr(true), want: reply.AuthFailed},
		{name: "shared mailbox", creds: true, shared: true, want: reply.AuthFailed},
		{name: "org on, mailbox inherits", creds: true, want: nil},
		{name: "org off, mailbox inherits", creds: true, org: true, want: reply.TenantAuthDisabled},
		{name: "org off, mailbox enabled wins", creds: true, org: true, mailbox: ptr(false), want: nil},
		{name: "org on, mailbox disabled wins", creds: true, mailbox: ptr(true), want: reply.MailboxAuthDisabled},
		{name: "org off, mailbox disabled", creds: true, org: true, mailbox: ptr(true), want: reply.MailboxAuthDisabled},
		{name: "security defaults", creds: true, secDefaults: true, want: reply.SecurityDefaults},
		{name: "security defaults beat mailbox enable", creds: true, org: true, mailbox: ptr(false), secDefaults: true, want: reply.SecurityDefaults},
		{name: "tenant switch reported before security defaults", creds: true, org: true, secDefaults: true, want: reply.TenantAuthDisabled},
		{name: "policy blocks basic", creds: true, policy: block, want: reply.BasicAuthBlocked},
		{name: "policy allows basic", creds: true, policy: allow, want: nil},
		{name: "policy never blocks oauth", creds: true, policy: block, method: OAuth, want: nil},
		{name: "oauth still needs smtp auth enabled", creds: true, org: true, method: OAuth, want: reply.TenantAuthDisabled},
		{name: "oauth blocked by security defaults", creds: true, secDefaults: true, method: OAuth, want: reply.SecurityDefaults},
		{name: "switch reported before policy", creds: true, mailbox: ptr(true), policy: block, want: reply.MailboxAuthDisabled},
		{name: "security defaults before policy", creds: true, secDefaults: true, policy: block, want: reply.SecurityDefaults},
		{name: "enabled mailbox still policy blocked", creds: true, org: true, mailbox: ptr(false), policy: block, want: reply.BasicAuthBlocked},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			typ := directory.UserMailbox
			if tt.shared {
				typ = directory.SharedMailbox
			}
			f := AuthFacts{
				Mailbox:          &directory.Mailbox{Type: typ, SmtpClientAuthenticationDisabled: tt.mailbox},
				CredentialsValid: tt.creds,
				Method:           tt.method,
				Org:              &directory.Organization{SmtpClientAuthenticationDisabled: tt.org, SecurityDefaultsEnabled: tt.secDefaults},
				Policy:           tt.policy,
			}
			if got := Authenticate(f).SMTP(); got != tt.want {
				t.Errorf("Authenticate = %v, want %v", describe(got), describe(tt.want))
			}
		})
	}
	if got := Authenticate(AuthFacts{CredentialsValid: true, Org: &directory.Organization{}}).SMTP(); got != reply.AuthFailed {
		t.Errorf("unknown mailbox: got %v", describe(got))
	}
}

// TestAuthenticateExhaustive checks every combination of the switches
// against the rules stated the other way round: a login succeeds exactly when
// the credentials are good, the mailbox is a user mailbox (or a shared one
// reached with a token), the effective SMTP AUTH switch is on, security
// defaults are off, and Basic is allowed where used (by the organization and
// by the authentication policy).
func TestAuthenticateExhaustive(t *testing.T) {
	mailboxSettings := []*bool{nil, ptr(true), ptr(false)}
	policies := []*directory.AuthenticationPolicy{nil, {AllowBasicAuthSmtp: true}, {AllowBasicAuthSmtp: false}}
	n := 0
	for _, creds := range []bool{false, true} {
		for _, shared := range []bool{false, true} {
			for _, mbx := range mailboxSettings {
				for _, org := range []bool{false, true} {
					for _, sd := range []bool{false, true} {
						for _, pol := range policies {
							for _, method := range []AuthMethod{Basic, OAuth} {
								for _, basicOff := range []bool{false, true} {
									typ := directory.UserMailbox
									if shared {
										typ = directory.SharedMailbox
									}
									got := Authenticate(AuthFacts{
										Mailbox:          &directory.Mailbox{Type: typ, SmtpClientAuthenticationDisabled: mbx},
										CredentialsValid: creds, Method: method, Policy: pol,
										Org: &directory.Organization{SmtpClientAuthenticationDisabled: org, SecurityDefaultsEnabled: sd, SmtpBasicAuthDisabled: basicOff},
									}).SMTP()
									effectiveDisabled := org
									if mbx != nil {
										effectiveDisabled = *mbx
									}
									basicBlocked := method == Basic && (basicOff || pol != nil && !pol.AllowBasicAuthSmtp)
									sharedBasic := shared && method == Basic
									wantOK := creds && !sharedBasic && !effectiveDisabled && !sd && !basicBlocked
									if (got == nil) != wantOK {
										t.Errorf("creds=%v shared=%v mailbox=%v org=%v sd=%v policy=%v %v: got %s", creds, shared, fmtBool(mbx), org, sd, pol, method, describe(got))
									}
									if got != nil && (!creds || sharedBasic) && got != reply.AuthFailed {
										t.Errorf("a failed sign-in must not reveal settings: got %s", describe(got))
									}
									if basicOff && method == Basic && creds && !sharedBasic && got != reply.BasicAuthRetired {
										t.Errorf("Basic with Basic off: got %s", describe(got))
									}
									n++
								}
							}
						}
					}
				}
			}
		}
	}
	if n != 2*2*3*2*2*3*2*2 {
		t.Fatalf("covered %d combinations", n)
	}
}

func fmtBool(b *bool) string {
	if b == nil {
		return "$null"
	}
	return fmt.Sprint(*b)
}

func describe(r *reply.Reply) string {
	if r == nil {
		return "allowed"
	}
	return reply.String(r)
}

// contoso builds a small directory: sean, chris (who granted scanner Send As
// and sean Send on Behalf) and the info shared mailbox.
func contoso() (*directory.Snapshot, map[string]*directory.Mailbox) {
	mb := map[string]*directory.Mailbox{
		"sean":    {ID: 1, OrgID: 1, PrimarySmtpAddress: "sean@contoso.com", UserPrincipalName: "sean@contoso.com", EmailAddresses: []string{"sean.k@contoso.com"}, Type: directory.UserMailbox},
		"chris":   {ID: 2, OrgID: 1, PrimarySmtpAddress: "chris@contoso.com", UserPrincipalName: "chris@contoso.com", Type: directory.UserMailbox, GrantSendOnBehalfTo: []int64{1}},
		"scanner": {ID: 3, OrgID: 1, PrimarySmtpAddress: "scanner@contoso.com", UserPrincipalName: "scanner@contoso.com", Type: directory.UserMailbox},
		"info":    {ID: 4, OrgID: 1, PrimarySmtpAddress: "info@contoso.com", UserPrincipalName: "info@contoso.com", Type: directory.SharedMailbox},
	}
	snap := directory.NewSnapshot(directory.Contents{
		Organizations: []*directory.Organization{{ID: 1, Name: "contoso"}},
		Domains: []*directory.AcceptedDomain{
			{ID: 1, OrgID: 1, DomainName: "contoso.com", DomainType: directory.Authoritative},
			{ID: 2, OrgID: 1, DomainName: "fabrikam.com", DomainType: directory.InternalRelay},
		},
		Mailboxes:   []*directory.Mailbox{mb["sean"], mb["chris"], mb["scanner"], mb["info"]},
		Permissions: []*directory.RecipientPermission{{OrgID: 1, Identity: 4, Trustee: 3}, {OrgID: 1, Identity: 2, Trustee: 3}},
	})
	return snap, mb
}

func TestCheckSendAs(t *testing.T) {
	dir, mb := contoso()
	tests := []struct {
		name     string
		login    string
		envelope string
		from     []string
		sender   string
		denied   string // the address named in the refusal; "" = allowed
	}{
		{name: "own primary", login: "sean", envelope: "sean@contoso.com", from: []string{"sean@contoso.com"}},
		{name: "own proxy address", login: "sean", envelope: "sean.k@contoso.com", from: []string{"sean.k@contoso.com"}},
		{name: "null envelope, own From", login: "sean", envelope: "", from: []string{"sean@contoso.com"}},
		{name: "envelope of another mailbox", login: "sean", envelope: "chris@contoso.com", from: []string{"sean@contoso.com"}, denied: "chris@contoso.com"},
		{name: "From of another mailbox", login: "sean", envelope: "sean@contoso.com", from: []string{"chris@contoso.com"}, denied: "chris@contoso.com"},
		{name: "From outside the organization", login: "sean", envelope: "sean@contoso.com", from: []string{"ceo@outside.example"}, denied: "ceo@outside.example"},
		{name: "Send As on shared mailbox", login: "scanner", envelope: "info@contoso.com", from: []string{"info@contoso.com"}},
		{name: "Send As on user mailbox", login: "scanner", envelope: "scanner@contoso.com", from: []string{"chris@contoso.com"}},
		{name: "Send As is not transitive", login: "sean", envelope: "sean@contoso.com", from: []string{"info@contoso.com"}, denied: "info@contoso.com"},
		{name: "Send on Behalf with own Sender", login: "sean", envelope: "sean@contoso.com", from: []string{"chris@contoso.com"}, sender: "sean@contoso.com"},
		{name: "Send on Behalf needs the grant", login: "scanner", envelope: "scanner@contoso.com", from: []string{"sean@contoso.com"}, sender: "scanner@contoso.com", denied: "sean@contoso.com"},
		{name: "Send on Behalf needs Sender to be the login", login: "sean", envelope: "sean@contoso.com", from: []string{"chris@contoso.com"}, sender: "chris@contoso.com", denied: "chris@contoso.com"},
		{name: "Sender of another mailbox", login: "sean", envelope: "sean@contoso.com", from: []string{"sean@contoso.com"}, sender: "chris@contoso.com", denied: "chris@contoso.com"},
		{name: "no From: the envelope stands in", login: "sean", envelope: "sean@contoso.com", from: nil},
		{name: "no From, null envelope", login: "sean", envelope: "", from: nil, denied: "-nofrom"},
		{name: "second From address checked", login: "sean", envelope: "sean@contoso.com", from: []string{"sean@contoso.com", "ceo@contoso.com"}, sender: "sean@contoso.com", denied: "ceo@contoso.com"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := CheckSendAs(dir, SenderFacts{Login: mb[tt.login], EnvelopeFrom: tt.envelope, HeaderFrom: tt.from, HeaderSender: tt.sender})
			var want *reply.Reply
			switch tt.denied {
			case "":
			case "-nofrom":
				want = reply.NoFromHeader
			default:
				want = reply.SendAsDenied(mb[tt.login].PrimarySmtpAddress, tt.denied)
			}
			if describe(got) != describe(want) {
				t.Errorf("got %s\nwant %s", describe(got), describe(want))
			}
		})
	}
}

func TestRouteAuthenticated(t *testing.T) {
	dir, mb := contoso()
	tests := []struct {
		rcpt    string
		dest    Destination
		mailbox *directory.Mailbox
		refused bool
	}{
		{rcpt: "sean@contoso.com", dest: Local, mailbox: mb["sean"]},
		{rcpt: "Sean@Contoso.COM", dest: Local, mailbox: mb["sean"]},
		{rcpt: "sean.k@contoso.com", dest: Local, mailbox: mb["sean"]},
		{rcpt: "info@contoso.com", dest: Local, mailbox: mb["info"]},
		{rcpt: "nobody@contoso.com", refused: true},
		{rcpt: "nobody@fabrikam.com", dest: Outbound},
		{rcpt: "someone@outside.example", dest: Outbound},
	}
	for _, tt := range tests {
		t.Run(tt.rcpt, func(t *testing.T) {
			a, err := address.Parse(tt.rcpt)
			if err != nil {
				t.Fatal(err)
			}
			route, rep := RouteAuthenticated(dir, a)
			if tt.refused {
				want := reply.RecipientNotFound(tt.rcpt)
				if rep == nil || reply.String(rep) != reply.String(want) {
					t.Fatalf("got %v, want %s", describe(rep), reply.String(want))
				}
				return
			}
			if rep != nil || route.Destination != tt.dest || route.Mailbox != tt.mailbox {
				t.Fatalf("got %+v %s", route, describe(rep))
			}
		})
	}
}

func TestLimits(t *testing.T) {
	m := &directory.Mailbox{RecipientLimits: 2, MaxSendSize: 1 << 20}
	if CheckRecipientCount(m, 2) != nil || CheckRecipientCount(m, 3) == nil {
		t.Error("RecipientLimits 2 must allow 2 and refuse the 3rd")
	}
	if got := CheckRecipientCount(&directory.Mailbox{}, 501); got != reply.RecipientLimitExceeded {
		t.Errorf("default limit 500: got %s", describe(got))
	}
	if CheckSize(m, 1<<20) != nil {
		t.Error("a message of exactly MaxSendSize must pass")
	}
	got := CheckSize(m, 1<<20+1)
	if got == nil || reply.String(got) != "552 5.3.4 Message size exceeds fixed maximum message size of 1048576 bytes (MaxSendSize 1 MB)" {
		t.Errorf("got %s", describe(got))
	}
	if SendSizeLimit(&directory.Mailbox{MaxSendSize: 1 << 40}) != directory.MaxMessageSize {
		t.Error("MaxSendSize is capped at the platform maximum")
	}
}
