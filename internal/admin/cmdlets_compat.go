package admin

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"
	"time"

	"postern.dev/postern/internal/cmdlet"
	"postern.dev/postern/internal/directory"
)

// The cmdlets and parameters that let scripts pasted from Microsoft's
// documentation run as they are (issue 15): Connect-/Disconnect-
// ExchangeOnline and Import-Module, which have nothing to do here;
// Test-NetConnection against this server; Get-Mailbox and Get-User
// -RecipientTypeDetails; Set-User -STSRefreshTokensValidFrom.

// Listener is a listener of the running server, as Test-NetConnection
// finds it.
type Listener struct {
	Addr net.Addr
	// ImplicitTLS: the client speaks TLS first (465, 993, 995).
	ImplicitTLS bool
}

// connectParams are Connect-ExchangeOnline's parameters (ExchangeOnline-
// Management 3.x). Switches take no value; the others take one.
var connectParams = func() []cmdlet.ParamSpec {
	var ps []cmdlet.ParamSpec
	for _, n := range []string{"BypassMailboxAnchoring", "Device", "DisableWAM", "EnableErrorReporting", "InlineCredential", "LoadCmdletHelp",
		"ManagedIdentity", "ShowBanner", "SkipLoadingCmdletHelp", "SkipLoadingFormatData", "UseRPSSession", "Confirm"} {
		ps = append(ps, cmdlet.ParamSpec{Name: n, Type: cmdlet.Switch, Position: cmdlet.Named})
	}
	for _, n := range []string{"UserPrincipalName", "Organization", "AppId", "CertificateThumbprint", "Certificate", "CertificateFilePath",
		"CertificatePassword", "Credential", "DelegatedOrganization", "AccessToken", "ConnectionUri", "AzureADAuthorizationEndpointUri",
		"ExchangeEnvironmentName", "CommandName", "FormatTypeName", "LogDirectoryPath", "LogLevel", "ManagedIdentityAccountId", "PageSize",
		"Prefix", "PSSessionOption", "ShowProgress", "SigningCertificate", "TrackPerformance", "UseMultithreading"} {
		ps = append(ps, cmdlet.ParamSpec{Name: n, Type: cmdlet.Any, Position: cmdlet.Named})
	}
	ps[slices.IndexFunc(ps, func(p cmdlet.ParamSpec) bool { return p.Name == "UserPrincipalName" })].Position = 0
	return ps
}()

// recipientTypes are the values of -RecipientTypeDetails that Exchange
// accepts for mailboxes; Postern's mailboxes are UserMailbox or
// SharedMailbox, so the others select nothing.
var recipientTypes = []string{"DiscoveryMailbox", "EquipmentMailbox", "GroupMailbox", "LegacyMailbox", "LinkedMailbox", "LinkedRoomMailbox",
	"RoomMailbox", "SchedulingMailbox", "SharedMailbox", "TeamMailbox", "UserMailbox", "MailUser", "User", "DisabledUser", "GuestMailUser"}

func (c *cmdlets) compatSpecs() []cmdlet.Spec {
	return []cmdlet.Spec{
		{Name: "Connect-ExchangeOnline", Output: cmdlet.NoOutput, Access: cmdlet.ReadAccess, REST: cmdletOnly, Synopsis: "Accepted so that scripts written for Exchange Online run: the shell is already connected to this server; the parameters are ignored.",
			Params: connectParams, Run: c.connectExchangeOnline},
		{Name: "Disconnect-ExchangeOnline", Output: cmdlet.NoOutput, Access: cmdlet.ReadAccess, REST: cmdletOnly, Synopsis: "Accepted so that scripts written for Exchange Online run; there is no session to end.",
			Params: []cmdlet.ParamSpec{{Name: "Confirm", Type: cmdlet.Switch, Position: cmdlet.Named}, {Name: "ConnectionId", Type: cmdlet.Any, Position: cmdlet.Named},
				{Name: "ModulePrefix", Type: cmdlet.Any, Position: cmdlet.Named}, {Name: "WhatIf", Type: cmdlet.Switch, Position: cmdlet.Named}},
			Run: func(_ context.Context, inv *cmdlet.Invocation) ([]*cmdlet.Object, error) {
				inv.Warn("Disconnect-ExchangeOnline: Postern's shell has no remote session to end; nothing was done.")
				return nil, nil
			}},
		{Name: "Import-Module", Output: cmdlet.NoOutput, Access: cmdlet.ReadAccess, REST: cmdletOnly, Synopsis: "Accepted for ExchangeOnlineManagement, whose cmdlets this shell has built in.",
			Params: []cmdlet.ParamSpec{{Name: "Name", Type: cmdlet.StringList, Position: 0, Required: true}, {Name: "Force", Type: cmdlet.Switch, Position: cmdlet.Named},
				{Name: "MinimumVersion", Type: cmdlet.Any, Position: cmdlet.Named}, {Name: "RequiredVersion", Type: cmdlet.Any, Position: cmdlet.Named}},
			Run: func(_ context.Context, inv *cmdlet.Invocation) ([]*cmdlet.Object, error) {
				for _, m := range cmdlet.Strings(inv.Args["Name"]) {
					if !strings.EqualFold(m, "ExchangeOnlineManagement") {
						return nil, fmt.Errorf("The specified module '%s' was not loaded because no valid module file was found in any module directory. This shell has the cmdlets of ExchangeOnlineManagement built in.", m)
					}
				}
				return nil, nil
			}},
		{Name: "Test-NetConnection", Output: "TestNetConnectionResult", Access: cmdlet.ServerAccess, REST: cmdletOnly, Aliases: []string{"tnc"}, Synopsis: "Connects to one of this server's TCP ports (-ComputerName localhost, its host name or smtp.office365.com, -Port 587) and reads its greeting; server administrators only.",
			Params: []cmdlet.ParamSpec{
				{Name: "ComputerName", Type: cmdlet.String, Position: 0, Help: "This server: localhost, a loopback address, its host name, or smtp.office365.com (which devices configured for Exchange Online use)."},
				{Name: "Port", Type: cmdlet.Int, Position: cmdlet.Named},
				{Name: "CommonTCPPort", Type: cmdlet.Enum, Position: cmdlet.Named, ValidValues: []string{"HTTP", "RDP", "SMB", "WINRM"}},
				{Name: "InformationLevel", Type: cmdlet.Enum, Position: cmdlet.Named, ValidValues: []string{"Detailed", "Quiet"}},
			},
			Run: c.testNetConnection},
	}
}

func (c *cmdlets) connectExchangeOnline(_ context.Context, inv *cmdlet.Invocation) ([]*cmdlet.Object, error) {
	org := c.svc.Organization()
	name := ""
	if org != nil {
		name = org.Name
	}
	inv.Warn("Connect-ExchangeOnline: Postern's shell is already connected to this server's admin service, organization '%s'; the sign-in parameters are ignored.", name)
	return nil, nil
}

// recipientTypeFilter reads -RecipientTypeDetails (a list, as in
// Exchange): nil when it is not given.
func recipientTypeFilter(inv *cmdlet.Invocation) (func(*directory.Mailbox) bool, error) {
	if !inv.Has("RecipientTypeDetails") {
		return nil, nil
	}
	want := map[string]bool{}
	for _, v := range cmdlet.Strings(inv.Args["RecipientTypeDetails"]) {
		// "SharedMailbox,UserMailbox" as one string, as pasted from docs
		// that write the list in quotes.
		for _, t := range strings.Split(v, ",") {
			t = strings.TrimSpace(t)
			i := slices.IndexFunc(recipientTypes, func(r string) bool { return strings.EqualFold(r, t) })
			if i < 0 {
				return nil, fmt.Errorf(`Cannot bind parameter 'RecipientTypeDetails'. Cannot convert value "%s" to type "Microsoft.Exchange.Data.Directory.Recipient.RecipientTypeDetails". Error: "Unable to match the identifier name %s to a valid enumerator name. Specify one of the following enumerator names and try again: %s"`,
					t, t, strings.Join(recipientTypes, ", "))
			}
			want[recipientTypes[i]] = true
		}
	}
	return func(m *directory.Mailbox) bool {
		// A user mailbox is also a User for Get-User.
		return want[string(m.Type)] || want["User"] && m.Type == directory.UserMailbox
	}, nil
}

// stsValidFrom reads -STSRefreshTokensValidFrom: a date, or text that
// parses as one ($([System.DateTime]::UtcNow), (Get-Date), "2026-01-02").
func stsValidFrom(inv *cmdlet.Invocation) (time.Time, error) {
	switch v := inv.Args["STSRefreshTokensValidFrom"].(type) {
	case time.Time:
		return v, nil
	case nil:
		return time.Time{}, invalidValue("STSRefreshTokensValidFrom", "", "give a date, such as $([System.DateTime]::UtcNow)")
	default:
		return ParseDate("STSRefreshTokensValidFrom", inv.String("STSRefreshTokensValidFrom"))
	}
}

// SetTokensValidFrom revokes the OAuth tokens issued to sign in to a
// mailbox before t (Set-User -STSRefreshTokensValidFrom): a token whose
// iat is earlier is refused at AUTH XOAUTH2/OAUTHBEARER from then on.
// Postern's issuer gives no refresh tokens (the client-credentials grant
// has none, RFC 6749 section 4.4.3); its access tokens and any identity
// provider's are what this cuts off.
func (s *Service) SetTokensValidFrom(ctx context.Context, identity string, t time.Time) error {
	return s.change(ctx, func(dir *directory.Snapshot, org *directory.Organization) error {
		cur, err := findMailbox(dir, org, identity)
		if err != nil {
			return err
		}
		m := *cur
		// Tokens carry whole seconds (iat, RFC 7519 section 4.1.6).
		m.TokensValidFrom = t.UTC().Truncate(time.Second)
		return storeError(s.Store.SaveMailbox(ctx, &m), "user", m.Name)
	})
}

// ownNames are the names Test-NetConnection accepts for this server:
// besides localhost, its host name and this machine's, the Exchange
// Online endpoints that devices set up from Microsoft's guides point at,
// which Postern stands in for.
func (c *cmdlets) ownName(name string) bool {
	n := strings.ToLower(strings.TrimSuffix(strings.TrimSpace(name), "."))
	if n == "localhost" || n == "" || strings.EqualFold(n, c.svc.Hostname) {
		return true
	}
	if h, err := os.Hostname(); err == nil && strings.EqualFold(n, h) {
		return true
	}
	return n == "smtp.office365.com" || n == "outlook.office365.com" || strings.HasSuffix(n, ".mail.protection.outlook.com")
}

// testNetConnection connects to one of this server's ports and reads its
// greeting. It is the server administrator's: it never connects anywhere
// but this machine (a loopback address, or the address a listener of
// this server is bound to), so that it cannot be turned into a port
// scanner, and organization admins cannot run it at all.
func (c *cmdlets) testNetConnection(ctx context.Context, inv *cmdlet.Invocation) ([]*cmdlet.Object, error) {
	if c.svc.scoped {
		return nil, &kindError{ErrAccessDenied, "Test-NetConnection acts on the whole server; only the server's administrator can run it."}
	}
	name := inv.String("ComputerName")
	if name == "" {
		name = "localhost"
	}
	port, _ := inv.Int("Port")
	if inv.Has("CommonTCPPort") {
		port = map[string]int64{"HTTP": 80, "RDP": 3389, "SMB": 445, "WINRM": 5985}[inv.String("CommonTCPPort")]
	}
	if !inv.Has("Port") && !inv.Has("CommonTCPPort") {
		return nil, fmt.Errorf("Test-NetConnection tests a TCP port of this server here (no ICMP ping): give -Port, such as -Port 587.")
	}
	if port < 1 || port > 65535 {
		return nil, invalidValue("Port", fmt.Sprint(port), "give a TCP port from 1 to 65535")
	}
	target, implicitTLS, err := c.resolveOwn(name, int(port))
	if err != nil {
		return nil, err
	}
	res := probe(ctx, target, implicitTLS)
	if inv.String("InformationLevel") == "Quiet" {
		return []*cmdlet.Object{{TypeName: "System.Boolean", Props: []cmdlet.Prop{{Name: "TcpTestSucceeded", Value: res.ok}}, DefaultView: cmdlet.ListView}}, nil
	}
	if !res.ok {
		inv.Warn("TCP connect to (%s : %d) failed", target.Addr(), target.Port())
	}
	var source any
	if res.source.IsValid() {
		source = res.source.Addr().String()
	}
	return []*cmdlet.Object{{TypeName: "TestNetConnectionResult", DefaultView: cmdlet.ListView,
		Props: []cmdlet.Prop{
			{Name: "ComputerName", Value: name},
			{Name: "RemoteAddress", Value: target.Addr().String()},
			{Name: "RemotePort", Value: int64(target.Port())},
			{Name: "InterfaceAlias", Value: "lo"},
			{Name: "SourceAddress", Value: source},
			{Name: "TcpTestSucceeded", Value: res.ok},
			{Name: "Banner", Value: nullIfEmpty(res.banner)},
		}}}, nil
}

// resolveOwn maps a name of this server and a port to the address to
// connect to: a loopback address as given; for a name, the listener
// bound to that port (the loopback address when it listens on every
// address), else 127.0.0.1. Any other name or address is refused.
func (c *cmdlets) resolveOwn(name string, port int) (netip.AddrPort, bool, error) {
	host := strings.Trim(name, "[]")
	if ip, err := netip.ParseAddr(host); err == nil {
		if !ip.Unmap().IsLoopback() {
			return netip.AddrPort{}, false, c.notOwn(name)
		}
		ap := netip.AddrPortFrom(ip.Unmap(), uint16(port))
		return ap, c.implicitTLS(port), nil
	}
	if !c.ownName(host) {
		return netip.AddrPort{}, false, c.notOwn(name)
	}
	if c.svc.Listeners != nil {
		for _, l := range c.svc.Listeners() {
			ap, err := netip.ParseAddrPort(l.Addr.String())
			if err != nil || int(ap.Port()) != port {
				continue
			}
			ip := ap.Addr().Unmap()
			if ip.IsUnspecified() {
				ip = netip.MustParseAddr("127.0.0.1")
				if ap.Addr().Is6() && !ap.Addr().Is4In6() {
					ip = netip.IPv6Loopback()
				}
			}
			return netip.AddrPortFrom(ip, uint16(port)), l.ImplicitTLS, nil
		}
	}
	return netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(port)), c.implicitTLS(port), nil
}

// implicitTLS tells whether the listener on port speaks TLS first.
func (c *cmdlets) implicitTLS(port int) bool {
	if c.svc.Listeners != nil {
		for _, l := range c.svc.Listeners() {
			if ap, err := netip.ParseAddrPort(l.Addr.String()); err == nil && int(ap.Port()) == port {
				return l.ImplicitTLS
			}
		}
	}
	return port == 465 || port == 993 || port == 995
}

func (c *cmdlets) notOwn(name string) error {
	names := "localhost, a loopback address"
	if c.svc.Hostname != "" {
		names += ", " + c.svc.Hostname
	}
	return invalidValue("ComputerName", name, "Test-NetConnection tests this server only ("+names+", or smtp.office365.com for it); use it from the device's network to test the path from there")
}

type probeResult struct {
	ok     bool
	source netip.AddrPort
	banner string
}

// probe connects and reads the greeting line (an SMTP 220, IMAP * OK,
// POP3 +OK), through TLS for the implicit-TLS ports. It never sends
// anything but QUIT-like goodbyes, and gives up after a few seconds.
func probe(ctx context.Context, target netip.AddrPort, implicitTLS bool) probeResult {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", target.String())
	if err != nil {
		return probeResult{}
	}
	defer conn.Close()
	res := probeResult{ok: true}
	if la, err := netip.ParseAddrPort(conn.LocalAddr().String()); err == nil {
		res.source = la
	}
	conn.SetDeadline(time.Now().Add(3 * time.Second))
	var rw net.Conn = conn
	if implicitTLS {
		// Only the greeting is read, from this server itself: the
		// certificate is not what is tested here.
		tc := tls.Client(conn, &tls.Config{InsecureSkipVerify: true, ServerName: "localhost"})
		if err := tc.HandshakeContext(ctx); err != nil {
			res.banner = "(TLS handshake failed: " + err.Error() + ")"
			return res
		}
		rw = tc
	}
	r := bufio.NewReaderSize(rw, 1024)
	for range 20 {
		line, err := r.ReadString('\n')
		line = strings.TrimRight(line, "\r\n")
		if line != "" {
			res.banner = line
		}
		if err != nil || len(line) < 4 || line[3] != '-' {
			break // the last line of a multi-line SMTP greeting has "220 "
		}
	}
	switch {
	case strings.HasPrefix(res.banner, "220"):
		fmt.Fprint(rw, "QUIT\r\n")
	case strings.HasPrefix(res.banner, "* OK"):
		fmt.Fprint(rw, "a LOGOUT\r\n")
	case strings.HasPrefix(res.banner, "+OK"):
		fmt.Fprint(rw, "QUIT\r\n")
	}
	return res
}
