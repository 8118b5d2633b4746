package admin

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"time"

	"postern.dev/postern/internal/address"
	"postern.dev/postern/internal/directory"
	"postern.dev/postern/internal/policy"
	"postern.dev/postern/internal/reply"
	"postern.dev/postern/internal/smtpclient"
	"postern.dev/postern/internal/store"
)

// SubmissionTest is what an admin knows about a device (Test-SmtpSubmission).
type SubmissionTest struct {
	Identity      string // the mailbox it signs in as, or the sender address
	ClientIP      string
	Port          int  // 587, 465 or 25
	UseTls        bool // STARTTLS on 587 and 25; 465 is always TLS
	Authenticated bool // it signs in (on 25; always on 587 and 465)
	OAuth         bool // it signs in with a token, not a password
	From          string
	Recipient     string
}

// Check is one step of the diagnosis.
type Check struct {
	Check string
	// Stage is when the server decides it (MAIL, RCPT, DATA); empty for
	// what comes before a transaction (port, TLS, sign-in).
	Stage  string
	Result string // Pass, Fail, Info
	Detail string // what was found, and the fix in Exchange terms
}

// Verdict is the reply the server would give the device at the first
// refusal, or "250 2.0.0 OK" when it would accept the message.
const acceptedVerdict = "250 2.0.0 OK"

// TestSubmission walks the decision chain the server walks, with the same
// policy functions, and says for each step what passes, what fails and
// how to fix it. It returns the checks and the verdict.
func (s *Service) TestSubmission(t SubmissionTest) ([]Check, string, error) {
	dir, org := s.Dir.Load(), s.org()
	var checks []Check
	add := func(check, result, detail string, args ...any) {
		checks = append(checks, Check{Check: check, Result: result, Detail: fmt.Sprintf(detail, args...)})
	}
	fail := func(check string, rep *reply.Reply, fix string, args ...any) ([]Check, string, error) {
		add(check, "Fail", fix, args...)
		return checks, reply.String(rep), nil
	}
	if t.Port == 0 {
		t.Port = 587
	}
	auth := t.Authenticated || t.Port == 587 || t.Port == 465
	switch t.Port {
	case 465:
		add("Port", "Pass", "Port 465: implicit TLS (SMTPS); the device must use SSL/TLS from the first byte, not STARTTLS.")
		t.UseTls = true
	case 587:
		add("Port", "Pass", "Port 587: SMTP AUTH client submission with STARTTLS, as smtp.office365.com.")
	case 25:
		if auth {
			add("Port", "Pass", "Port 25 with SMTP AUTH after STARTTLS.")
		} else {
			add("Port", "Pass", "Port 25 without sign-in: Direct Send or relay through an inbound connector.")
		}
	default:
		add("Port", "Fail", "Postern listens on 587 (STARTTLS), 465 (implicit TLS) and 25; port %d is none of them.", t.Port)
		return checks, "", nil
	}
	if auth && !t.UseTls {
		return fail("TLS", reply.NotAuthenticated, "AUTH is offered only after STARTTLS: turn on TLS/SSL (STARTTLS) in the device, or use port 465 with SSL. Without it the device cannot sign in and MAIL FROM gets 530 5.7.57.")
	}
	if t.UseTls {
		add("TLS", "Pass", "TLS 1.2 or 1.3 is required; devices limited to TLS 1.0/1.1 cannot connect (as Exchange Online since 2022).")
	}
	var from address.Address
	if t.From != "" {
		a, err := address.Parse(t.From)
		if err != nil {
			return checks, "", invalidValue("From", t.From, "give an email address")
		}
		from = a
	}
	var rcpt address.Address
	if t.Recipient != "" {
		a, err := address.Parse(t.Recipient)
		if err != nil {
			return checks, "", invalidValue("Recipient", t.Recipient, "give an email address")
		}
		rcpt = a
	}

	if auth {
		mb := dir.MailboxBySignIn(t.Identity)
		if mb == nil || mb.OrgID != org.ID {
			return fail("Mailbox", reply.AuthFailed, "No mailbox signs in as '%s': the device must use the mailbox's full address (its UPN) as user name.", t.Identity)
		}
		if mb.Type == directory.SharedMailbox && !t.OAuth {
			return fail("Mailbox", reply.AuthFailed, "'%s' is a shared mailbox: it has no password and cannot sign in. Sign in as a user mailbox with Send As on it (Add-RecipientPermission -Identity %s -Trustee <user> -AccessRights SendAs), or with a delegate's OAuth token.", mb.PrimarySmtpAddress, mb.PrimarySmtpAddress)
		}
		add("Mailbox", "Pass", "'%s' is a %s.", mb.PrimarySmtpAddress, mb.Type)
		method := policy.Basic
		if t.OAuth {
			method = policy.OAuth
		}
		facts := policy.AuthFacts{Mailbox: mb, CredentialsValid: true, Method: method, Org: dir.Organization(mb.OrgID),
			Policy: dir.EffectiveAuthenticationPolicy(mb)}
		if rep := policy.Authenticate(facts).SMTP(); rep != nil {
			return fail("SMTP AUTH", rep, "%s", authFix(rep, mb, facts.Policy))
		}
		add("SMTP AUTH", "Pass", "SMTP AUTH is allowed for '%s' with %s (with the right password or token; a wrong one gets 535 5.7.3).", mb.PrimarySmtpAddress, method)
		tx := &policy.Transaction{Dir: dir, Inputs: s.diagnosisInputs(), Mailbox: mb, From: from}
		if !from.IsZero() {
			// The device's From: header is taken to be its MAIL FROM.
			tx.Headers, tx.HeaderFrom = true, []string{from.Key()}
		}
		verdict := s.walkChain(tx, org.ID, rcpt, &checks)
		add("Limits", "Info", "At most %d recipients per message, 10,000 per 24 hours, 30 messages a minute (more are paced), 3 connections at once, %s per message.",
			policy.RecipientLimit(mb), Size(policy.SendSizeLimit(mb)))
		return checks, verdict, nil
	}

	// Anonymous on port 25: Direct Send or relay through a connector. The
	// identity, when it is an address, is the sender.
	if from.IsZero() && strings.Contains(t.Identity, "@") {
		from, _ = address.Parse(t.Identity)
	}
	ip, err := netip.ParseAddr(strings.TrimSpace(t.ClientIP))
	if err != nil {
		return checks, "", invalidValue("ClientIP", t.ClientIP, "give the device's IP address")
	}
	if !rcpt.IsZero() {
		if other := policy.RecipientOrganization(dir, rcpt); other != nil && other.ID != org.ID {
			add("Recipient", "Info", "%s is not an address of this organization: mail to it is judged by the organization that receives it, which this test does not show.", rcpt)
			return checks, "", nil
		}
	}
	// The diagnosis sees only the caller's organization: its domains,
	// mailboxes, connectors and filter policies. Another organization's
	// objects are neither named nor used, so that no admin can probe
	// another's setup with it.
	tx := &policy.Transaction{Dir: organizationView(dir, org.ID), Inputs: s.diagnosisInputs(),
		Client: policy.ClientFacts{IP: ip, TLS: t.UseTls}, From: from}
	verdict := s.walkChain(tx, org.ID, rcpt, &checks)
	if tx.Verdict.Attribution.Connector == nil && !from.IsZero() && verdict == acceptedVerdict {
		add("SPF", "Info", "Direct Send mail is checked with SPF, DKIM and DMARC: the domain's SPF record should include %s, or mail failing its DMARC policy goes to Junk Email.", ip)
	}
	return checks, verdict, nil
}

// walkChain runs the server's decision chain (policy.Transaction.Diagnose)
// for the transaction, every step in the server's order, and adds each
// step's result with what was found and the fix. It returns the verdict:
// the reply of the first step that refuses, as the server would answer,
// or acceptedVerdict. Without a recipient the RCPT TO steps are not
// applicable.
func (s *Service) walkChain(tx *policy.Transaction, org int64, rcpt address.Address, checks *[]Check) string {
	results := tx.Diagnose(policy.AtMail)
	if rcpt.IsZero() {
		results = append(results, tx.Unjudged(policy.AtRcpt)...)
	} else {
		tx.StartRecipient(rcpt)
		results = append(results, tx.Diagnose(policy.AtRcpt)...)
	}
	results = append(results, tx.Diagnose(policy.AtDataEnd)...)
	verdict := acceptedVerdict
	for _, r := range results {
		c := Check{Check: r.Step.Check, Stage: r.Step.Stage.String()}
		switch r.Outcome {
		case policy.Refuse, policy.Defer:
			if verdict == acceptedVerdict {
				verdict = reply.String(r.Reply)
			}
			c.Result = "Fail"
			when := "Refused with"
			if r.Outcome == policy.Defer {
				when = "The recipient is accepted, then the whole message is refused at end of DATA with"
			}
			c.Detail = fmt.Sprintf("%s %s. %s", when, reply.String(r.Reply), stepFix(r.Step.ID, r.Reply, tx))
		case policy.NotApplicable:
			c.Result, c.Detail = "NotApplicable", stepNotApplicable(r.Step.ID, tx)
		default:
			c.Result, c.Detail = "Pass", stepPass(r.Step.ID, tx, rcpt, org)
			if r.Step.ID == policy.StepInboundConnector && tx.Verdict.Attribution.Connector == nil {
				c.Result = "Info"
			}
		}
		*checks = append(*checks, c)
	}
	return verdict
}

// diagnosisInputs answers the chain's questions for Test-SmtpSubmission:
// mailbox sizes from the store; what only the running server counts (a
// source's messages this hour, another connection's slot) as allowed.
func (s *Service) diagnosisInputs() policy.Inputs {
	return diagnosisInputs{st: s.Store, now: time.Now()}
}

type diagnosisInputs struct {
	st  store.Store
	now time.Time
}

func (d diagnosisInputs) Now() time.Time { return d.now }

func (d diagnosisInputs) MailboxSize(mailbox int64) int64 {
	if d.st == nil {
		return 0
	}
	return d.st.MailboxSize(mailbox)
}

func (diagnosisInputs) SourceUsage(policy.SourceClass) (int, policy.SourceLimits) {
	return 0, policy.SourceLimits{}
}

func (diagnosisInputs) HoldSlot(int64) (bool, error) { return true, nil }

func (diagnosisInputs) AcceptedMailbox(int) *directory.Mailbox { return nil }

// stepPass says what a step found when it passed.
func stepPass(id policy.StepID, tx *policy.Transaction, rcpt address.Address, org int64) string {
	switch id {
	case policy.StepRestrictedSender:
		return fmt.Sprintf("The outbound spam policy has not restricted '%s'.", tx.Mailbox.PrimarySmtpAddress)
	case policy.StepSendSize:
		return fmt.Sprintf("The declared size is within the mailbox's MaxSendSize (%s).", Size(policy.SendSizeLimit(tx.Mailbox)))
	case policy.StepAnonymousSender:
		if tx.From.IsZero() {
			return "No sender address given: the null sender (<>) is accepted."
		}
		return fmt.Sprintf("The sender %s is accepted from this client.", tx.From)
	case policy.StepRoute, policy.StepAnonymousRecipient:
		return routeText(tx.Route, rcpt, org)
	case policy.StepInboundConnector:
		ip := tx.Client.IP
		if ic := tx.Verdict.Attribution.Connector; ic != nil {
			return fmt.Sprintf("%s matches the %s connector '%s'.", ip, ic.ConnectorType, ic.Name)
		}
		return fmt.Sprintf("%s matches no inbound connector of this organization: this is Direct Send, which can only reach the organization's own mailboxes. To relay to outside recipients, create one: New-InboundConnector -Name <name> -ConnectorType OnPremises -SenderIPAddresses %s.", ip, ip)
	case policy.StepConnectionFilter:
		if tx.AllowListed {
			return fmt.Sprintf("%s is on the organization's IP Allow List: it skips the IP Block List and source throttling.", tx.Client.IP)
		}
		return fmt.Sprintf("%s is not on the organization's IP Block List.", tx.Client.IP)
	case policy.StepSourceThrottling:
		kind := "Direct Send"
		if tx.Class == policy.ConnectorRelay {
			kind = "Connector relay"
		}
		return fmt.Sprintf("%s mail is throttled per source address per hour ([throttle] in the server's configuration); the running server counts it, this test does not.", kind)
	case policy.StepReceiveSize, policy.StepMessageReceiveSize:
		return "The message is within the recipient's MaxReceiveSize."
	case policy.StepReceiveQuota:
		return fmt.Sprintf("The mailbox %s is below its ProhibitSendReceiveQuota.", tx.Route.Mailbox.PrimarySmtpAddress)
	case policy.StepRecipientLimit:
		if tx.Mailbox != nil {
			return fmt.Sprintf("Within the mailbox's RecipientLimits (%d).", policy.RecipientLimit(tx.Mailbox))
		}
		return fmt.Sprintf("Within the organization's MaxRecipientEnvelopeLimit (%d).", policy.EnvelopeRecipientLimit(tx.Verdict.Org))
	case policy.StepConcurrentConnections:
		return "A mailbox may submit over 3 connections at once; a 4th is refused at end of DATA with 432 4.3.2. The running server counts them, this test does not."
	case policy.StepSendAs:
		return fmt.Sprintf("'%s' may send as %s.", tx.Mailbox.PrimarySmtpAddress, tx.From)
	case policy.StepSendQuota:
		return fmt.Sprintf("The mailbox %s is below its ProhibitSendQuota.", tx.Mailbox.PrimarySmtpAddress)
	}
	return "Passed."
}

// stepNotApplicable says why a step had nothing to judge.
func stepNotApplicable(id policy.StepID, tx *policy.Transaction) string {
	switch id {
	case policy.StepSendSize, policy.StepReceiveSize:
		return "Judged when the device declares the size (MAIL FROM SIZE=)."
	case policy.StepMessageReceiveSize:
		return "Judged on the message's size at end of DATA."
	case policy.StepSendAs:
		return "Give -From to check the device's From address."
	case policy.StepReceiveQuota, policy.StepSendQuota:
		return "No quota applies."
	case policy.StepSourceThrottling:
		if tx.AllowListed {
			return "The client is on the organization's IP Allow List."
		}
		return "Ordinary inbound mail is not throttled per source."
	}
	if tx.Rcpt.IsZero() {
		return "Give -Recipient to check what the server says at RCPT TO."
	}
	return "Nothing to judge."
}

// stepFix explains a step's refusal with its fix in Exchange terms.
func stepFix(id policy.StepID, rep *reply.Reply, tx *policy.Transaction) string {
	switch id {
	case policy.StepRestrictedSender:
		mb := tx.Mailbox
		why := ""
		if r := tx.Dir.RestrictedSender(mb.ID); r != nil {
			why = " (" + r.Reason + ")"
		}
		return fmt.Sprintf("The outbound spam policy restricted '%s'%s: run Remove-BlockedSenderAddress -SenderAddress %s, or raise the limits with Set-HostedOutboundSpamFilterPolicy.",
			mb.PrimarySmtpAddress, why, mb.PrimarySmtpAddress)
	case policy.StepSendSize:
		return fmt.Sprintf("The message is larger than the mailbox's MaxSendSize: raise it with Set-Mailbox -Identity %s -MaxSendSize.", tx.Mailbox.PrimarySmtpAddress)
	case policy.StepSendAs:
		mb := tx.Mailbox
		if rep == reply.NoFromHeader {
			return "The message has no From: header and a null sender: the device must set a From address."
		}
		return fmt.Sprintf("The From address %s differs from the mailbox and no Send As grant exists: set the device's From to %s, or run Add-RecipientPermission -Identity %s -Trustee %s -AccessRights SendAs.",
			tx.From, mb.PrimarySmtpAddress, tx.From, mb.PrimarySmtpAddress)
	case policy.StepRoute:
		return fmt.Sprintf("%s is in an Authoritative accepted domain and no mailbox has that address.", tx.Rcpt)
	case policy.StepConnectionFilter:
		ip := tx.Client.IP
		return fmt.Sprintf("%s is on the organization's IP Block List: remove it (Set-HostedConnectionFilterPolicy -Identity Default -IPBlockList @{Remove='<entry>'}) or add it to the IP Allow List (-IPAllowList @{Add='%s'}).", ip, ip)
	case policy.StepAnonymousSender:
		return anonymousFix(rep, tx.SenderAttribution, tx.From, tx.Client.IP)
	case policy.StepAnonymousRecipient:
		return anonymousFix(rep, tx.Verdict.Attribution, tx.From, tx.Client.IP)
	case policy.StepSourceThrottling:
		return "The source sent its hour's share of messages: it may send again as the hour passes, or raise [throttle] in the server's configuration, or add it to the IP Allow List."
	case policy.StepReceiveSize, policy.StepMessageReceiveSize:
		return "The message is larger than the recipient's MaxReceiveSize: raise it with Set-Mailbox -MaxReceiveSize."
	case policy.StepReceiveQuota:
		return fmt.Sprintf("The mailbox %s is full: free space, or raise Set-Mailbox -ProhibitSendReceiveQuota.", tx.Route.Mailbox.PrimarySmtpAddress)
	case policy.StepSendQuota:
		return fmt.Sprintf("The mailbox %s is over its send quota: free space, or raise Set-Mailbox -ProhibitSendQuota.", tx.Mailbox.PrimarySmtpAddress)
	case policy.StepRecipientLimit:
		return "Too many recipients for one message: send it in parts, or raise Set-Mailbox -RecipientLimits (Set-TransportConfig -MaxRecipientEnvelopeLimit for anonymous mail)."
	case policy.StepConcurrentConnections:
		return "The mailbox already submits over 3 connections: have the device reuse one connection."
	}
	return reply.String(rep)
}

// organizationView is the part of the directory that belongs to one
// organization, as a snapshot the policy functions can walk.
func organizationView(dir *directory.Snapshot, org int64) *directory.Snapshot {
	all := dir.Contents()
	var c directory.Contents
	for _, o := range all.Organizations {
		if o.ID == org {
			c.Organizations = append(c.Organizations, o)
		}
	}
	for _, d := range all.Domains {
		if d.OrgID == org {
			c.Domains = append(c.Domains, d)
		}
	}
	for _, m := range all.Mailboxes {
		if m.OrgID == org {
			c.Mailboxes = append(c.Mailboxes, m)
		}
	}
	for _, ic := range all.Connectors {
		if ic.OrgID == org {
			c.Connectors = append(c.Connectors, ic)
		}
	}
	for _, p := range all.ConnectionFilters {
		if p.OrgID == org {
			c.ConnectionFilters = append(c.ConnectionFilters, p)
		}
	}
	for _, p := range all.OutboundSpamPolicies {
		if p.OrgID == org {
			c.OutboundSpamPolicies = append(c.OutboundSpamPolicies, p)
		}
	}
	for _, r := range all.RestrictedSenders {
		if r.OrgID == org {
			c.RestrictedSenders = append(c.RestrictedSenders, r)
		}
	}
	return directory.NewSnapshot(c)
}

func routeText(r policy.Route, rcpt address.Address, org int64) string {
	if r.Destination == policy.Local && r.Mailbox.OrgID != org {
		return fmt.Sprintf("%s is a mailbox on this server: delivered to it.", rcpt)
	}
	if r.Destination == policy.Local {
		return fmt.Sprintf("%s is the mailbox %s: delivered to its Inbox.", rcpt, r.Mailbox.PrimarySmtpAddress)
	}
	return fmt.Sprintf("%s is outside the organization: queued for delivery.", rcpt)
}

// authFix explains a refusal of the SMTP AUTH chain with its fix.
func authFix(rep *reply.Reply, mb *directory.Mailbox, pol *directory.AuthenticationPolicy) string {
	switch rep {
	case reply.TenantAuthDisabled:
		return fmt.Sprintf("SMTP AUTH is disabled for the organization and the mailbox inherits it: run Set-CASMailbox -Identity %s -SmtpClientAuthenticationDisabled $false (or enable it for everyone with Set-TransportConfig -SmtpClientAuthenticationDisabled $false).", mb.PrimarySmtpAddress)
	case reply.MailboxAuthDisabled:
		return fmt.Sprintf("SMTP AUTH is disabled for the mailbox itself: run Set-CASMailbox -Identity %s -SmtpClientAuthenticationDisabled $false.", mb.PrimarySmtpAddress)
	case reply.SecurityDefaults:
		return "Security defaults block SMTP AUTH: run Set-OrganizationConfig -SecurityDefaultsEnabled $false."
	case reply.BasicAuthBlocked:
		name := ""
		if pol != nil {
			name = pol.Name
		}
		return fmt.Sprintf("The authentication policy '%s' blocks Basic authentication for SMTP: run Set-AuthenticationPolicy -Identity '%s' -AllowBasicAuthSmtp, assign another (Set-User -Identity %s -AuthenticationPolicy $null), or sign in with OAuth.", name, name, mb.PrimarySmtpAddress)
	case reply.BasicAuthRetired:
		return "Basic authentication is off for SMTP in the organization: sign in with OAuth (XOAUTH2), or run Set-TransportConfig -SmtpBasicAuthDisabled $false."
	}
	return reply.String(rep)
}

// anonymousFix explains a refusal of an anonymous client.
func anonymousFix(rep *reply.Reply, att policy.Attribution, from address.Address, ip netip.Addr) string {
	switch rep {
	case reply.RelayDenied:
		return fmt.Sprintf("The recipient is outside the organization and %s matches no OnPremises inbound connector: Direct Send can only reach the organization's mailboxes. Create one (New-InboundConnector -ConnectorType OnPremises -SenderIPAddresses %s) or have the device use SMTP AUTH on 587.", ip, ip)
	case reply.RelayDeniedATTR36:
		return fmt.Sprintf("The connector relays only for senders in the accepted domains, and %s is not in one: change the device's From address, or identify the server by a certificate connector whose TlsSenderCertificateName is an accepted domain (-TlsSenderCertificateName *.contoso.com), which relays for any sender.", from)
	case reply.RecipientAccessDenied:
		return "No mailbox has this address, and its domain is Authoritative (directory-based edge blocking): check the address, add it to a mailbox (Set-Mailbox -EmailAddresses @{Add='...'}), or make the domain InternalRelay if another server hosts it."
	case reply.DirectSendRejected:
		return fmt.Sprintf("RejectDirectSend is on and %s matches no IP- or certificate-based connector: create a Partner or OnPremises inbound connector for %s, or run Set-OrganizationConfig -RejectDirectSend $false.", ip, ip)
	case reply.TLSRequired:
		if att.Connector == nil {
			return "An inbound connector of the organization that matches this client requires TLS: turn on STARTTLS in the device, or set -RequireTls $false on the connector."
		}
		return fmt.Sprintf("The connector '%s' requires TLS: turn on STARTTLS in the device, or set -RequireTls $false on the connector.", att.Connector.Name)
	}
	return reply.String(rep)
}

// ProbeServer is the live mode, the Test-NetConnection step of the
// troubleshooting guides: it connects to addr as a device would and
// reports the banner, STARTTLS, the TLS version and certificate, and the
// AUTH mechanisms offered. implicitTLS is port 465's way.
//
// It connects where the caller says, so it is for the server's
// administrator only (reachOut): an organization's API key of any role
// gets ErrAccessDenied and no connection is opened.
func (s *Service) ProbeServer(ctx context.Context, addr string, implicitTLS bool) ([]Check, error) {
	if err := s.reachOut("Test-SmtpSubmission -Server"); err != nil {
		return nil, err
	}
	return probeServer(ctx, addr, implicitTLS), nil
}

func probeServer(ctx context.Context, addr string, implicitTLS bool) []Check {
	var checks []Check
	add := func(check, result, detail string, args ...any) {
		checks = append(checks, Check{Check: check, Result: result, Detail: fmt.Sprintf(detail, args...)})
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		add("Connect", "Fail", "%q is not host:port.", addr)
		return checks
	}
	t := smtpclient.Timeouts{Connect: 10 * time.Second, Greeting: 10 * time.Second, Command: 10 * time.Second}
	cfg := &tls.Config{ServerName: host, InsecureSkipVerify: true} // reported, not enforced
	var c *smtpclient.Client
	if implicitTLS {
		d := &tls.Dialer{NetDialer: &net.Dialer{Timeout: t.Connect}, Config: cfg}
		conn, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			add("Connect", "Fail", "No TLS connection to %s: %v. Check the address, the port and any firewall between the device and the server.", addr, err)
			return checks
		}
		c = smtpclient.NewClient(conn, host, t)
		if err := c.ReadGreeting(); err != nil {
			add("Banner", "Fail", "%v", err)
			c.Close()
			return checks
		}
	} else {
		if c, err = smtpclient.Dial(ctx, &net.Dialer{}, addr, host, t); err != nil {
			add("Connect", "Fail", "%v. Check the address, the port and any firewall between the device and the server.", err)
			return checks
		}
	}
	defer c.Quit()
	add("Banner", "Pass", "%s", c.Greeting)
	if err := c.Hello("postern-test"); err != nil {
		add("EHLO", "Fail", "%v", err)
		return checks
	}
	if !c.TLS() {
		if ok, _ := c.Extension("STARTTLS"); !ok {
			add("STARTTLS", "Fail", "The server does not offer STARTTLS: devices cannot sign in safely here.")
		} else if err := c.StartTLS(cfg, "postern-test"); err != nil {
			add("STARTTLS", "Fail", "%v", err)
			return checks
		} else {
			add("STARTTLS", "Pass", "Offered and negotiated.")
		}
	}
	if st, ok := c.TLSState(); ok {
		add("TLS", "Pass", "%s, %s.", tls.VersionName(st.Version), tls.CipherSuiteName(st.CipherSuite))
		if len(st.PeerCertificates) > 0 {
			leaf := st.PeerCertificates[0]
			result := "Pass"
			if time.Now().After(leaf.NotAfter) {
				result = "Fail"
			}
			add("Certificate", result, "Subject %s, names %v, issued by %s, valid until %s.", leaf.Subject.CommonName, leaf.DNSNames,
				leaf.Issuer.CommonName, leaf.NotAfter.Format("2006-01-02"))
		}
	}
	if ok, mechs := c.Extension("AUTH"); ok {
		add("AUTH", "Pass", "Mechanisms offered: %s.", mechs)
	} else {
		add("AUTH", "Info", "No AUTH offered: only anonymous mail (Direct Send, connectors) is possible here.")
	}
	return checks
}
