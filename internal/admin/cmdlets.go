package admin

import (
	"context"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"postern.dev/postern/internal/cmdlet"
	"postern.dev/postern/internal/directory"
)

// Cmdlets returns the registry of every cmdlet, bound to svc. Names and
// parameters are Exchange Online's (Exchange Server's for the queue ones).
func Cmdlets(svc *Service) *cmdlet.Registry {
	r := cmdlet.NewRegistry()
	cmdlet.RegisterBuiltins(r)
	c := &cmdlets{svc}
	identity := cmdlet.ParamSpec{Name: "Identity", Type: cmdlet.Identity, Position: 0, Required: true}
	optionalIdentity := cmdlet.ParamSpec{Name: "Identity", Type: cmdlet.Identity, Position: 0}
	resultSize := cmdlet.ParamSpec{Name: "ResultSize", Type: cmdlet.IntOrUnlimited, Position: -1}
	filter := cmdlet.ParamSpec{Name: "Filter", Type: cmdlet.String, Position: -1}
	smtpAuth := cmdlet.ParamSpec{Name: "SmtpClientAuthenticationDisabled", Type: cmdlet.NullableBool, Position: -1}
	recipientTypeDetails := cmdlet.ParamSpec{Name: "RecipientTypeDetails", Type: cmdlet.StringList, Position: -1, Help: "UserMailbox, SharedMailbox (a list selects either)."}

	for _, s := range []cmdlet.Spec{
		{Name: "Get-TransportConfig", Output: "TransportConfig", Access: cmdlet.ReadAccess, REST: cmdlet.Route{Op: cmdlet.RouteList, Path: "transport-config", Singleton: true, Description: "Transport settings, including the organization's SMTP AUTH switch (Get-/Set-TransportConfig)."}, Synopsis: "Shows the organization's transport settings, AllowLegacyTLSClients among them: whether the weak protocol versions TLS 1.0 and TLS 1.1 are allowed for SMTP AUTH on the legacy listener (--submission-legacy).", Run: c.getTransportConfig},
		{Name: "Set-TransportConfig", Output: cmdlet.NoOutput, Access: cmdlet.OrganizationAccess, REST: at(cmdlet.RouteUpdate, "transport-config"), Synopsis: "Changes organization-wide transport settings: -SmtpClientAuthenticationDisabled $true turns SMTP AUTH off for every mailbox that inherits it; -SmtpBasicAuthDisabled $true allows only OAuth; -MaxRecipientEnvelopeLimit (1 to 1000, or Unlimited for 1000) caps the recipients of one anonymous message; -AllowLegacyTLSClients $true lets the organization's mailboxes use SMTP AUTH over the weak protocol versions TLS 1.0 and TLS 1.1 on the legacy listener (--submission-legacy) only, never on the others (off by default).",
			SupportsWhatIf: true, Params: []cmdlet.ParamSpec{{Name: "SmtpClientAuthenticationDisabled", Type: cmdlet.Bool, Position: -1},
				{Name: "SmtpBasicAuthDisabled", Type: cmdlet.Bool, Position: -1}, {Name: "MaxRecipientEnvelopeLimit", Type: cmdlet.String, Position: -1},
				{Name: "AllowLegacyTLSClients", Type: cmdlet.Bool, Position: -1,
					Help: "$true allows TLS 1.0 and TLS 1.1 (weak, deprecated protocol versions) for SMTP AUTH on the legacy listener (--submission-legacy), as Exchange Online's smtp-legacy.office365.com; the other listeners always require TLS 1.2 or later."}}, Run: c.setTransportConfig},
		{Name: "Get-OrganizationConfig", Output: "OrganizationConfig", Access: cmdlet.ReadAccess, REST: cmdlet.Route{Op: cmdlet.RouteList, Path: "organization-config", Singleton: true, Description: "Organization-wide settings (Get-/Set-OrganizationConfig)."}, Synopsis: "Shows organization-wide settings.", Run: c.getOrganizationConfig},
		{Name: "Set-OrganizationConfig", Output: cmdlet.NoOutput, Access: cmdlet.OrganizationAccess, REST: at(cmdlet.RouteUpdate, "organization-config"), Synopsis: "Changes organization-wide settings: security defaults and the default authentication policy.", SupportsWhatIf: true,
			Params: []cmdlet.ParamSpec{{Name: "SecurityDefaultsEnabled", Type: cmdlet.Bool, Position: -1}, {Name: "DefaultAuthenticationPolicy", Type: cmdlet.String, Position: -1},
				{Name: "RejectDirectSend", Type: cmdlet.Bool, Position: -1}},
			Run: c.setOrganizationConfig},
		{Name: "Get-AcceptedDomain", Output: "AcceptedDomain", Access: cmdlet.ReadAccess, REST: cmdlet.Route{Op: cmdlet.RouteList, Path: "accepted-domains", Description: "Accepted domains."}, Synopsis: "Lists the domains the organization accepts mail for.", Params: []cmdlet.ParamSpec{optionalIdentity}, Run: c.getAcceptedDomain},
		{Name: "New-AcceptedDomain", Output: "AcceptedDomain", Access: cmdlet.OrganizationAccess, REST: at(cmdlet.RouteCreate, "accepted-domains"), Synopsis: "Adds an accepted domain.", SupportsWhatIf: true, Params: []cmdlet.ParamSpec{
			{Name: "Name", Type: cmdlet.String, Position: 0, Required: true},
			{Name: "DomainName", Type: cmdlet.String, Position: -1, Required: true},
			{Name: "DomainType", Type: cmdlet.Enum, Position: -1, ValidValues: []string{"Authoritative", "InternalRelay"}},
		}, Run: c.newAcceptedDomain},
		{Name: "Set-AcceptedDomain", Output: cmdlet.NoOutput, Access: cmdlet.OrganizationAccess, REST: at(cmdlet.RouteUpdate, "accepted-domains"), Synopsis: "Changes an accepted domain's type, or makes it the default.", SupportsWhatIf: true, Params: []cmdlet.ParamSpec{identity,
			{Name: "DomainType", Type: cmdlet.Enum, Position: -1, ValidValues: []string{"Authoritative", "InternalRelay"}},
			{Name: "MakeDefault", Type: cmdlet.Switch, Position: -1},
		}, Run: c.setAcceptedDomain},
		{Name: "Remove-AcceptedDomain", Output: cmdlet.NoOutput, Access: cmdlet.OrganizationAccess, REST: at(cmdlet.RouteDelete, "accepted-domains"), Synopsis: "Removes an accepted domain that no mailbox uses.", SupportsWhatIf: true, Params: []cmdlet.ParamSpec{identity}, Run: c.removeAcceptedDomain},
		{Name: "Get-Mailbox", Output: "Mailbox", Access: cmdlet.ReadAccess, REST: cmdlet.Route{Op: cmdlet.RouteList, Path: "mailboxes", Description: "Mailboxes."}, Synopsis: "Lists mailboxes.", Params: []cmdlet.ParamSpec{optionalIdentity, resultSize, filter, recipientTypeDetails}, Run: c.getMailbox},
		{Name: "New-Mailbox", Output: "Mailbox", Access: cmdlet.RecipientAccess, REST: at(cmdlet.RouteCreate, "mailboxes"), Synopsis: "Creates a user mailbox (with -Password) or a shared mailbox (-Shared).", SupportsWhatIf: true, Params: []cmdlet.ParamSpec{
			{Name: "Name", Type: cmdlet.String, Position: 0, Required: true},
			{Name: "DisplayName", Type: cmdlet.String, Position: -1},
			{Name: "Alias", Type: cmdlet.String, Position: -1},
			{Name: "PrimarySmtpAddress", Type: cmdlet.String, Position: -1},
			{Name: "MicrosoftOnlineServicesID", Type: cmdlet.String, Position: -1},
			{Name: "Password", Type: cmdlet.SecureString, Position: -1},
			{Name: "Shared", Type: cmdlet.Switch, Position: -1},
		}, Run: c.newMailbox},
		{Name: "Set-Mailbox", Output: cmdlet.NoOutput, Access: cmdlet.RecipientAccess, REST: at(cmdlet.RouteUpdate, "mailboxes"), Synopsis: "Changes a mailbox: addresses, limits, Send on Behalf, password.", SupportsWhatIf: true, Params: []cmdlet.ParamSpec{identity,
			{Name: "DisplayName", Type: cmdlet.String, Position: -1},
			{Name: "PrimarySmtpAddress", Type: cmdlet.String, Position: -1},
			{Name: "EmailAddresses", Type: cmdlet.StringList, MultiValued: true, Position: -1},
			{Name: "RecipientLimits", Type: cmdlet.Int, Position: -1},
			{Name: "MaxSendSize", Type: cmdlet.ByteSize, Position: -1},
			{Name: "MaxReceiveSize", Type: cmdlet.ByteSize, Position: -1},
			{Name: "GrantSendOnBehalfTo", Type: cmdlet.StringList, MultiValued: true, Position: -1},
			{Name: "Password", Type: cmdlet.SecureString, Position: -1},
			{Name: "IssueWarningQuota", Type: cmdlet.ByteSize, Position: -1},
			{Name: "ProhibitSendQuota", Type: cmdlet.ByteSize, Position: -1},
			{Name: "ProhibitSendReceiveQuota", Type: cmdlet.ByteSize, Position: -1},
		}, Run: c.setMailbox},
		{Name: "Remove-Mailbox", Output: cmdlet.NoOutput, Access: cmdlet.RecipientAccess, REST: at(cmdlet.RouteDelete, "mailboxes"), Synopsis: "Deletes a mailbox and its contents.", SupportsWhatIf: true, Params: []cmdlet.ParamSpec{identity}, Run: c.removeMailbox},
		{Name: "Get-CASMailbox", Output: "CASMailbox", Access: cmdlet.ReadAccess, REST: cmdlet.Route{Op: cmdlet.RouteList, Path: "cas-mailboxes", Description: "Mailboxes' client access settings: SMTP AUTH, IMAP4 and POP3."}, Synopsis: "Shows mailboxes' client access settings, including SMTP AUTH.", Params: []cmdlet.ParamSpec{optionalIdentity, resultSize, filter}, Run: c.getCASMailbox},
		{Name: "Set-CASMailbox", Output: cmdlet.NoOutput, Access: cmdlet.RecipientAccess, REST: at(cmdlet.RouteUpdate, "cas-mailboxes"), Synopsis: "Changes a mailbox's client access settings: -SmtpClientAuthenticationDisabled $true|$false|$null ($null inherits the organization's), -ImapEnabled and -PopEnabled $true|$false.",
			SupportsWhatIf: true, Params: []cmdlet.ParamSpec{identity, smtpAuth, {Name: "ImapEnabled", Type: cmdlet.Bool, Position: -1},
				{Name: "PopEnabled", Type: cmdlet.Bool, Position: -1}}, Run: c.setCASMailbox},
		{Name: "Get-User", Output: "User", Access: cmdlet.ReadAccess, REST: cmdlet.Route{Op: cmdlet.RouteList, Path: "users", Description: "Users and their authentication policy."}, Synopsis: "Shows users and their authentication policy.", Params: []cmdlet.ParamSpec{optionalIdentity, resultSize, filter, recipientTypeDetails}, Run: c.getUser},
		{Name: "Set-User", Output: cmdlet.NoOutput, Access: cmdlet.RecipientAccess, REST: at(cmdlet.RouteUpdate, "users"), Synopsis: "Assigns a user's authentication policy (-AuthenticationPolicy name|$null); -STSRefreshTokensValidFrom <date> revokes the OAuth tokens issued before it.", SupportsWhatIf: true,
			Params: []cmdlet.ParamSpec{identity, {Name: "AuthenticationPolicy", Type: cmdlet.String, Position: -1},
				{Name: "STSRefreshTokensValidFrom", Type: cmdlet.Any, Position: -1}}, Run: c.setUser},
		{Name: "Get-AuthenticationPolicy", Output: "AuthenticationPolicy", Access: cmdlet.ReadAccess, REST: cmdlet.Route{Op: cmdlet.RouteList, Path: "authentication-policies", Description: "Authentication policies (Basic authentication for SMTP, IMAP4 and POP3)."}, Synopsis: "Lists authentication policies.", Params: []cmdlet.ParamSpec{optionalIdentity}, Run: c.getAuthenticationPolicy},
		{Name: "New-AuthenticationPolicy", Output: "AuthenticationPolicy", Access: cmdlet.OrganizationAccess, REST: at(cmdlet.RouteCreate, "authentication-policies"), Synopsis: "Creates an authentication policy; it blocks Basic authentication for SMTP, IMAP4 and POP3 unless -AllowBasicAuthSmtp, -AllowBasicAuthImap or -AllowBasicAuthPop is given.", SupportsWhatIf: true,
			Params: append([]cmdlet.ParamSpec{{Name: "Name", Type: cmdlet.String, Position: 0, Required: true}}, policySwitches...),
			Run:    c.newAuthenticationPolicy},
		{Name: "Set-AuthenticationPolicy", Output: cmdlet.NoOutput, Access: cmdlet.OrganizationAccess, REST: at(cmdlet.RouteUpdate, "authentication-policies"), Synopsis: "Changes an authentication policy: -AllowBasicAuthSmtp, -AllowBasicAuthImap, -AllowBasicAuthPop, or :$false to block.", SupportsWhatIf: true,
			Params: append([]cmdlet.ParamSpec{identity}, policySwitches...), Run: c.setAuthenticationPolicy},
		{Name: "Remove-AuthenticationPolicy", Output: cmdlet.NoOutput, Access: cmdlet.OrganizationAccess, REST: at(cmdlet.RouteDelete, "authentication-policies"), Synopsis: "Deletes an authentication policy that nothing uses.", SupportsWhatIf: true, Params: []cmdlet.ParamSpec{identity}, Run: c.removeAuthenticationPolicy},
		{Name: "Get-RecipientPermission", Output: "RecipientPermission", Access: cmdlet.ReadAccess, REST: cmdlet.Route{Op: cmdlet.RouteList, Path: "recipient-permissions", ItemList: true, Description: "Send As permissions; the identity is the mailbox, DELETE takes Trustee and AccessRights as query parameters."}, Synopsis: "Lists Send As permissions.", Params: []cmdlet.ParamSpec{optionalIdentity, {Name: "Trustee", Type: cmdlet.String, Position: -1}}, Run: c.getRecipientPermission},
		{Name: "Add-RecipientPermission", Output: "RecipientPermission", Access: cmdlet.RecipientAccess, REST: at(cmdlet.RouteCreate, "recipient-permissions"), Synopsis: "Grants -Trustee Send As on -Identity.", SupportsWhatIf: true, Params: []cmdlet.ParamSpec{identity,
			{Name: "Trustee", Type: cmdlet.String, Position: -1, Required: true},
			{Name: "AccessRights", Type: cmdlet.Enum, ValidValues: []string{"SendAs"}, Position: -1, Required: true},
		}, Run: c.addRecipientPermission},
		{Name: "Remove-RecipientPermission", Output: cmdlet.NoOutput, Access: cmdlet.RecipientAccess, REST: at(cmdlet.RouteDelete, "recipient-permissions"), Synopsis: "Revokes a Send As permission.", SupportsWhatIf: true, Params: []cmdlet.ParamSpec{identity,
			{Name: "Trustee", Type: cmdlet.String, Position: -1, Required: true},
			{Name: "AccessRights", Type: cmdlet.Enum, ValidValues: []string{"SendAs"}, Position: -1, Required: true},
		}, Run: c.removeRecipientPermission},
		{Name: "Get-MailboxFolderStatistics", Output: "MailboxFolderStatistics", Access: cmdlet.ReadAccess, REST: cmdletOnly, Synopsis: "Lists a mailbox's folders with their item counts and sizes.", Params: []cmdlet.ParamSpec{identity}, Run: c.getMailboxFolderStatistics},
		{Name: "Get-InboundConnector", Output: "InboundConnector", Access: cmdlet.ReadAccess, REST: cmdlet.Route{Op: cmdlet.RouteList, Path: "inbound-connectors", Description: "Inbound connectors: relay by IP range or TLS certificate."}, Synopsis: "Lists inbound connectors.", Params: []cmdlet.ParamSpec{optionalIdentity}, Run: c.getInboundConnector},
		{Name: "New-InboundConnector", Output: "InboundConnector", Access: cmdlet.OrganizationAccess, REST: at(cmdlet.RouteCreate, "inbound-connectors"), Synopsis: "Creates an inbound connector: how anonymous mail on port 25 is recognised (by IP range or TLS certificate).",
			SupportsWhatIf: true, Params: append([]cmdlet.ParamSpec{{Name: "Name", Type: cmdlet.String, Position: 0, Required: true}}, connectorParams...), Run: c.newInboundConnector},
		{Name: "Set-InboundConnector", Output: cmdlet.NoOutput, Access: cmdlet.OrganizationAccess, REST: at(cmdlet.RouteUpdate, "inbound-connectors"), Synopsis: "Changes an inbound connector.", SupportsWhatIf: true,
			Params: append([]cmdlet.ParamSpec{identity, {Name: "Name", Type: cmdlet.String, Position: -1}}, connectorParams...), Run: c.setInboundConnector},
		{Name: "Remove-InboundConnector", Output: cmdlet.NoOutput, Access: cmdlet.OrganizationAccess, REST: at(cmdlet.RouteDelete, "inbound-connectors"), Synopsis: "Deletes an inbound connector.", SupportsWhatIf: true, Params: []cmdlet.ParamSpec{identity}, Run: c.removeInboundConnector},
	} {
		c.register(r, s)
	}
	for _, s := range c.deliverySpecs(identity, optionalIdentity) {
		c.register(r, s)
	}
	for _, s := range c.oauthSpecs(identity, optionalIdentity) {
		c.register(r, s)
	}
	for _, s := range c.traceSpecs() {
		c.register(r, s)
	}
	for _, s := range c.protocolLogSpecs() {
		c.register(r, s)
	}
	for _, s := range c.accessSpecs(identity, optionalIdentity) {
		c.register(r, s)
	}
	for _, s := range c.mailAccessSpecs(identity) {
		c.register(r, s)
	}
	for _, s := range c.filterSpecs() {
		c.register(r, s)
	}
	for _, s := range c.roleGroupSpecs() {
		c.register(r, s)
	}
	for _, s := range c.compatSpecs() {
		c.register(r, s)
	}
	return r
}

// Invoke runs one cmdlet with named parameters (as JSON decodes them, see
// cmdlet.Runner.Invoke) for a caller inside the server, such as the demo's
// setup: through the same role check and admin audit log as every other
// front end, as whoever s acts for. What the cmdlet tells the host
// (warnings) goes to host, which may be nil.
func (s *Service) Invoke(ctx context.Context, host io.Writer, name string, params map[string]any) ([]*cmdlet.Object, error) {
	if host == nil {
		host = io.Discard
	}
	return (&cmdlet.Runner{Registry: Cmdlets(s), Out: host}).Invoke(ctx, name, params)
}

// register adds one of Postern's cmdlets with its declaration (Output,
// Access, REST on the Spec) as written. Its Run goes through the admin
// service's one door, Service.run: the role check before, the audit entry
// after. Every front end — the admin socket and the CLI and shell on it,
// the REST API, the demo's setup (Service.Invoke) — calls cmdlets from a
// registry made here, so none can skip either.
func (c *cmdlets) register(r *cmdlet.Registry, s cmdlet.Spec) {
	decl, work := s, s.Run
	s.Run = func(ctx context.Context, inv *cmdlet.Invocation) ([]*cmdlet.Object, error) {
		return c.svc.run(ctx, &decl, inv, work)
	}
	r.Register(s)
}

// cmdletOnly is the REST route of a cmdlet served only at
// /api/v1/cmdlets/{name}.
var cmdletOnly = cmdlet.Route{Op: cmdlet.RouteCmdletOnly}

// at is the REST route of a resource's cmdlet other than its list (whose
// route also describes the resource).
func at(op cmdlet.RouteOp, path string) cmdlet.Route { return cmdlet.Route{Op: op, Path: path} }

type cmdlets struct{ svc *Service }

// objects turns a Get- cmdlet's items into output objects.
func objects[T any](items []T, err error, object func(T) *cmdlet.Object) ([]*cmdlet.Object, error) {
	if err != nil {
		return nil, err
	}
	out := make([]*cmdlet.Object, 0, len(items))
	for _, it := range items {
		out = append(out, object(it))
	}
	return out, nil
}

// connectorParams are the parameters New- and Set-InboundConnector share.
var connectorParams = []cmdlet.ParamSpec{
	{Name: "ConnectorType", Type: cmdlet.Enum, ValidValues: []string{"OnPremises", "Partner"}, Position: -1},
	{Name: "SenderDomains", Type: cmdlet.StringList, MultiValued: true, Position: -1},
	{Name: "SenderIPAddresses", Type: cmdlet.StringList, MultiValued: true, Position: -1},
	{Name: "TlsSenderCertificateName", Type: cmdlet.String, Position: -1},
	{Name: "TlsSenderCertificateFingerprints", Type: cmdlet.StringList, MultiValued: true, Position: -1},
	{Name: "RequireTls", Type: cmdlet.Bool, Position: -1},
	{Name: "RestrictDomainsToIPAddresses", Type: cmdlet.Bool, Position: -1},
	{Name: "RestrictDomainsToCertificate", Type: cmdlet.Bool, Position: -1},
	{Name: "Enabled", Type: cmdlet.Bool, Position: -1},
	{Name: "Comment", Type: cmdlet.String, Position: -1},
	{Name: "ProtocolLoggingLevel", Type: cmdlet.Enum, ValidValues: []string{LoggingVerbose, LoggingNone}, Position: -1,
		Help: "Verbose writes the sessions judged under this connector to the organization's protocol log (Get-ProtocolLog -Identity <connector>)."},
}

func connectorParamsOf(inv *cmdlet.Invocation) InboundConnectorParams {
	p := InboundConnectorParams{
		SenderDomains: multiValue(inv, "SenderDomains"), SenderIPAddresses: multiValue(inv, "SenderIPAddresses"),
		TlsSenderCertificateFingerprints: multiValue(inv, "TlsSenderCertificateFingerprints"),
		RequireTls:                       boolPtr(inv, "RequireTls"), RestrictDomainsToIPAddresses: boolPtr(inv, "RestrictDomainsToIPAddresses"),
		RestrictDomainsToCertificate: boolPtr(inv, "RestrictDomainsToCertificate"), Enabled: boolPtr(inv, "Enabled"),
	}
	for name, dst := range map[string]**string{"Name": &p.Name, "ConnectorType": &p.ConnectorType,
		"TlsSenderCertificateName": &p.TlsSenderCertificateName, "Comment": &p.Comment, "ProtocolLoggingLevel": &p.ProtocolLoggingLevel} {
		if inv.Has(name) {
			v := inv.String(name)
			*dst = &v
		}
	}
	return p
}

func connectorObject(ic *directory.InboundConnector) *cmdlet.Object {
	ips := make([]any, len(ic.SenderIPAddresses))
	for i, p := range ic.SenderIPAddresses {
		ips[i] = p.String()
	}
	list := func(s []string) []any {
		out := make([]any, len(s))
		for i, v := range s {
			out[i] = v
		}
		return out
	}
	return &cmdlet.Object{TypeName: "InboundConnector", DefaultView: cmdlet.TableView,
		DefaultDisplay: []string{"Name", "ConnectorType", "SenderIPAddresses", "TlsSenderCertificateName", "Enabled"},
		Props: []cmdlet.Prop{
			{Name: "Name", Value: ic.Name},
			{Name: "Identity", Value: ic.Name},
			{Name: "ConnectorType", Value: string(ic.ConnectorType)},
			{Name: "SenderDomains", Value: list(ic.SenderDomains)},
			{Name: "SenderIPAddresses", Value: ips},
			{Name: "TlsSenderCertificateName", Value: nullIfEmpty(ic.TlsSenderCertificateName)},
			{Name: "TlsSenderCertificateFingerprints", Value: list(ic.TlsSenderCertificateFingerprints)},
			{Name: "RequireTls", Value: ic.RequireTls},
			{Name: "RestrictDomainsToIPAddresses", Value: ic.RestrictDomainsToIPAddresses},
			{Name: "RestrictDomainsToCertificate", Value: ic.RestrictDomainsToCertificate},
			{Name: "Enabled", Value: ic.Enabled},
			{Name: "Comment", Value: nullIfEmpty(ic.Comment)},
			{Name: "ProtocolLoggingLevel", Value: ic.ProtocolLoggingLevel()},
			{Name: "WhenCreated", Value: ic.WhenCreated},
		}}
}

func (c *cmdlets) getInboundConnector(_ context.Context, inv *cmdlet.Invocation) ([]*cmdlet.Object, error) {
	cs, err := c.svc.InboundConnectors(inv.String("Identity"))
	return objects(cs, err, connectorObject)
}

func (c *cmdlets) newInboundConnector(ctx context.Context, inv *cmdlet.Invocation) ([]*cmdlet.Object, error) {
	if whatIf(inv, "Creating inbound connector %q.", inv.String("Name")) {
		return nil, nil
	}
	ic, err := c.svc.NewInboundConnector(ctx, connectorParamsOf(inv))
	if err != nil {
		return nil, err
	}
	return []*cmdlet.Object{connectorObject(ic)}, nil
}

func (c *cmdlets) setInboundConnector(ctx context.Context, inv *cmdlet.Invocation) ([]*cmdlet.Object, error) {
	if whatIf(inv, "Setting inbound connector %q.", inv.String("Identity")) {
		return nil, nil
	}
	return nil, c.svc.SetInboundConnector(ctx, inv.String("Identity"), connectorParamsOf(inv))
}

func (c *cmdlets) removeInboundConnector(ctx context.Context, inv *cmdlet.Invocation) ([]*cmdlet.Object, error) {
	if whatIf(inv, "Removing inbound connector %q.", inv.String("Identity")) {
		return nil, nil
	}
	return nil, c.svc.RemoveInboundConnector(ctx, inv.String("Identity"))
}

func whatIf(inv *cmdlet.Invocation, format string, args ...any) bool {
	if inv.WhatIf {
		inv.Printf("What if: "+format+"\n", args...)
	}
	return inv.WhatIf
}

// boolPtr returns the value of a Bool/NullableBool parameter if given.
func boolPtr(inv *cmdlet.Invocation, name string) *bool {
	if !inv.Has(name) {
		return nil
	}
	return inv.NullableBool(name)
}

func (c *cmdlets) getTransportConfig(_ context.Context, _ *cmdlet.Invocation) ([]*cmdlet.Object, error) {
	o := c.svc.Organization()
	return []*cmdlet.Object{{TypeName: "TransportConfig", DefaultView: cmdlet.ListView, Props: []cmdlet.Prop{
		{Name: "Identity", Value: "Transport Settings"},
		{Name: "SmtpClientAuthenticationDisabled", Value: o.SmtpClientAuthenticationDisabled},
		{Name: "SmtpBasicAuthDisabled", Value: o.SmtpBasicAuthDisabled},
		{Name: "MaxRecipientEnvelopeLimit", Value: envelopeLimitText(o.MaxRecipientEnvelopeLimit)},
		{Name: "AllowLegacyTLSClients", Value: o.AllowLegacyTLSClients},
	}}}, nil
}

// envelopeLimitText shows MaxRecipientEnvelopeLimit as Exchange does: a
// number, or Unlimited.
func envelopeLimitText(n int) string {
	if n <= 0 {
		return "Unlimited"
	}
	return strconv.Itoa(n)
}

// parseEnvelopeLimit reads -MaxRecipientEnvelopeLimit: Unlimited or 1 to
// 1000 ("You can enter a custom value up to 1000", reference 4.1).
func parseEnvelopeLimit(v string) (int, error) {
	v = strings.TrimSpace(v)
	if strings.EqualFold(v, "Unlimited") {
		return 0, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > directory.MaxRecipientLimits {
		return 0, invalidValue("MaxRecipientEnvelopeLimit", v, "give a number from 1 to 1000, or Unlimited")
	}
	return n, nil
}

func (c *cmdlets) setTransportConfig(ctx context.Context, inv *cmdlet.Invocation) ([]*cmdlet.Object, error) {
	p := OrganizationParams{SmtpClientAuthenticationDisabled: boolPtr(inv, "SmtpClientAuthenticationDisabled"),
		SmtpBasicAuthDisabled: boolPtr(inv, "SmtpBasicAuthDisabled"), AllowLegacyTLSClients: boolPtr(inv, "AllowLegacyTLSClients")}
	if inv.Has("MaxRecipientEnvelopeLimit") {
		n, err := parseEnvelopeLimit(inv.String("MaxRecipientEnvelopeLimit"))
		if err != nil {
			return nil, err
		}
		p.MaxRecipientEnvelopeLimit = &n
	}
	if whatIf(inv, "Setting transport configuration \"Transport Settings\".") {
		return nil, nil
	}
	return nil, c.svc.SetOrganization(ctx, p)
}

func (c *cmdlets) getOrganizationConfig(_ context.Context, _ *cmdlet.Invocation) ([]*cmdlet.Object, error) {
	o := c.svc.Organization()
	return []*cmdlet.Object{{TypeName: "OrganizationConfig", DefaultView: cmdlet.ListView, Props: []cmdlet.Prop{
		{Name: "Name", Value: o.Name},
		{Name: "Identity", Value: o.Name},
		{Name: "Guid", Value: o.GUID},
		{Name: "SecurityDefaultsEnabled", Value: o.SecurityDefaultsEnabled},
		{Name: "DefaultAuthenticationPolicy", Value: nullIfEmpty(o.DefaultAuthenticationPolicy)},
		{Name: "RejectDirectSend", Value: o.RejectDirectSend},
		{Name: "WhenCreated", Value: o.WhenCreated},
	}}}, nil
}

func (c *cmdlets) setOrganizationConfig(ctx context.Context, inv *cmdlet.Invocation) ([]*cmdlet.Object, error) {
	p := OrganizationParams{SecurityDefaultsEnabled: boolPtr(inv, "SecurityDefaultsEnabled"), RejectDirectSend: boolPtr(inv, "RejectDirectSend")}
	if inv.Has("DefaultAuthenticationPolicy") {
		name := inv.String("DefaultAuthenticationPolicy")
		p.DefaultAuthenticationPolicy = &name
	}
	if whatIf(inv, "Setting organization configuration %q.", c.svc.Organization().Name) {
		return nil, nil
	}
	return nil, c.svc.SetOrganization(ctx, p)
}

func nullIfEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func domainObject(d *directory.AcceptedDomain) *cmdlet.Object {
	return &cmdlet.Object{TypeName: "AcceptedDomain", DefaultView: cmdlet.TableView,
		DefaultDisplay: []string{"Name", "DomainName", "DomainType", "Default"},
		Props: []cmdlet.Prop{
			{Name: "Name", Value: d.Name},
			{Name: "DomainName", Value: d.DomainName},
			{Name: "DomainType", Value: string(d.DomainType)},
			{Name: "Default", Value: d.Default},
			{Name: "Identity", Value: d.Name},
			{Name: "WhenCreated", Value: d.WhenCreated},
		}}
}

func (c *cmdlets) getAcceptedDomain(_ context.Context, inv *cmdlet.Invocation) ([]*cmdlet.Object, error) {
	ds, err := c.svc.AcceptedDomains(inv.String("Identity"))
	return objects(ds, err, domainObject)
}

func (c *cmdlets) newAcceptedDomain(ctx context.Context, inv *cmdlet.Invocation) ([]*cmdlet.Object, error) {
	if whatIf(inv, "Creating accepted domain %q.", inv.String("DomainName")) {
		return nil, nil
	}
	d, err := c.svc.NewAcceptedDomain(ctx, inv.String("Name"), inv.String("DomainName"), inv.String("DomainType"))
	if err != nil {
		return nil, err
	}
	return []*cmdlet.Object{domainObject(d)}, nil
}

func (c *cmdlets) setAcceptedDomain(ctx context.Context, inv *cmdlet.Invocation) ([]*cmdlet.Object, error) {
	if whatIf(inv, "Setting accepted domain %q.", inv.String("Identity")) {
		return nil, nil
	}
	return nil, c.svc.SetAcceptedDomain(ctx, inv.String("Identity"), inv.String("DomainType"), inv.Bool("MakeDefault"))
}

func (c *cmdlets) removeAcceptedDomain(ctx context.Context, inv *cmdlet.Invocation) ([]*cmdlet.Object, error) {
	if whatIf(inv, "Removing accepted domain %q.", inv.String("Identity")) {
		return nil, nil
	}
	return nil, c.svc.RemoveAcceptedDomain(ctx, inv.String("Identity"))
}

// resultSize reads -ResultSize: a number, or Unlimited (0). Without it,
// Exchange returns at most 1000 objects.
func resultSize(inv *cmdlet.Invocation) int {
	if !inv.Has("ResultSize") {
		return 1000
	}
	n, _ := inv.Int("ResultSize")
	return int(n)
}

func (c *cmdlets) mailboxes(inv *cmdlet.Invocation, object func(*directory.Mailbox) *cmdlet.Object) ([]*cmdlet.Object, error) {
	keep, err := recipientTypeFilter(inv)
	if err != nil {
		return nil, err
	}
	if !inv.Has("Filter") && keep == nil {
		ms, err := c.svc.Mailboxes(inv.String("Identity"), resultSize(inv))
		return objects(ms, err, object)
	}
	// -RecipientTypeDetails and -Filter (OPATH) are applied to every
	// mailbox, then -ResultSize.
	f, err := cmdlet.CompileFilter(inv.String("Filter"))
	if !inv.Has("Filter") {
		f, err = cmdlet.CompileFilter("$true")
	}
	if err != nil {
		return nil, err
	}
	ms, err := c.svc.Mailboxes(inv.String("Identity"), 0)
	if keep != nil {
		ms = slices.DeleteFunc(ms, func(m *directory.Mailbox) bool { return !keep(m) })
	}
	all, err := objects(ms, err, object)
	if err != nil {
		return nil, err
	}
	limit := resultSize(inv)
	var out []*cmdlet.Object
	for _, o := range all {
		ok, err := f.Match(context.Background(), o)
		if err != nil {
			return nil, err
		}
		if ok {
			out = append(out, o)
		}
		if limit > 0 && len(out) == limit {
			break
		}
	}
	return out, nil
}

func (c *cmdlets) mailboxObject(m *directory.Mailbox) *cmdlet.Object {
	dir := c.svc.Dir.Load()
	addrs := []any{"SMTP:" + m.PrimarySmtpAddress}
	for _, a := range m.EmailAddresses {
		addrs = append(addrs, "smtp:"+a)
	}
	var onBehalf []any
	for _, id := range m.GrantSendOnBehalfTo {
		if t := dir.Mailbox(id); t != nil {
			onBehalf = append(onBehalf, t.Name)
		}
	}
	return &cmdlet.Object{TypeName: "Mailbox", DefaultView: cmdlet.TableView,
		DefaultDisplay: []string{"Name", "Alias", "PrimarySmtpAddress", "RecipientTypeDetails"},
		Props: []cmdlet.Prop{
			{Name: "Name", Value: m.Name},
			{Name: "Alias", Value: m.Alias},
			{Name: "DisplayName", Value: m.DisplayName},
			{Name: "Identity", Value: m.Name},
			{Name: "PrimarySmtpAddress", Value: m.PrimarySmtpAddress},
			{Name: "UserPrincipalName", Value: m.UserPrincipalName},
			{Name: "EmailAddresses", Value: addrs},
			{Name: "RecipientTypeDetails", Value: string(m.Type)},
			{Name: "RecipientLimits", Value: int64(m.RecipientLimits)},
			{Name: "MaxSendSize", Value: Size(m.MaxSendSize)},
			{Name: "MaxReceiveSize", Value: Size(m.MaxReceiveSize)},
			{Name: "IssueWarningQuota", Value: quotaText(m.IssueWarningQuota)},
			{Name: "ProhibitSendQuota", Value: quotaText(m.ProhibitSendQuota)},
			{Name: "ProhibitSendReceiveQuota", Value: quotaText(m.ProhibitSendReceiveQuota)},
			{Name: "GrantSendOnBehalfTo", Value: nonNilList(onBehalf)},
			{Name: "ExchangeGuid", Value: m.GUID},
			{Name: "Guid", Value: m.GUID},
			{Name: "WhenCreated", Value: m.WhenCreated},
		}}
}

func nonNilList(v []any) []any {
	if v == nil {
		return []any{}
	}
	return v
}

func (c *cmdlets) getMailbox(_ context.Context, inv *cmdlet.Invocation) ([]*cmdlet.Object, error) {
	return c.mailboxes(inv, c.mailboxObject)
}

func (c *cmdlets) newMailbox(ctx context.Context, inv *cmdlet.Invocation) ([]*cmdlet.Object, error) {
	p := NewMailboxParams{
		Name: inv.String("Name"), DisplayName: inv.String("DisplayName"), Alias: inv.String("Alias"),
		PrimarySmtpAddress: inv.String("PrimarySmtpAddress"), Password: inv.String("Password"), Shared: inv.Bool("Shared"),
	}
	if p.PrimarySmtpAddress == "" {
		p.PrimarySmtpAddress = inv.String("MicrosoftOnlineServicesID")
	}
	if whatIf(inv, "Creating mailbox %q.", p.Name) {
		return nil, nil
	}
	m, err := c.svc.NewMailbox(ctx, p)
	if err != nil {
		return nil, err
	}
	return []*cmdlet.Object{c.mailboxObject(m)}, nil
}

// multiValue reads a multi-valued parameter: a list replaces, a hashtable
// @{Add=...; Remove=...} edits.
func multiValue(inv *cmdlet.Invocation, name string) *MultiValue {
	if !inv.Has(name) {
		return nil
	}
	if h, ok := inv.Args[name].(*cmdlet.Hashtable); ok {
		return &MultiValue{Add: cmdlet.Strings(h.Get("Add")), Remove: cmdlet.Strings(h.Get("Remove"))}
	}
	return &MultiValue{IsSet: true, Set: cmdlet.Strings(inv.Args[name])}
}

func (c *cmdlets) setMailbox(ctx context.Context, inv *cmdlet.Invocation) ([]*cmdlet.Object, error) {
	p := SetMailboxParams{EmailAddresses: multiValue(inv, "EmailAddresses"), GrantSendOnBehalfTo: multiValue(inv, "GrantSendOnBehalfTo")}
	for name, dst := range map[string]**string{"DisplayName": &p.DisplayName, "PrimarySmtpAddress": &p.PrimarySmtpAddress, "Password": &p.Password} {
		if inv.Has(name) {
			v := inv.String(name)
			*dst = &v
		}
	}
	if inv.Has("RecipientLimits") {
		n, _ := inv.Int("RecipientLimits")
		v := int(n)
		p.RecipientLimits = &v
	}
	for name, dst := range map[string]**int64{"MaxSendSize": &p.MaxSendSize, "MaxReceiveSize": &p.MaxReceiveSize} {
		if inv.Has(name) {
			// Unlimited means the platform maximum, 150 MB, as in Exchange Online.
			n, unlimited := inv.Int(name)
			if unlimited {
				n = directory.MaxMessageSize
			}
			*dst = &n
		}
	}
	var err error
	if p.Quotas, err = quotaParams(inv); err != nil {
		return nil, err
	}
	if whatIf(inv, "Setting mailbox %q.", inv.String("Identity")) {
		return nil, nil
	}
	return nil, c.svc.SetMailbox(ctx, inv.String("Identity"), p)
}

func (c *cmdlets) removeMailbox(ctx context.Context, inv *cmdlet.Invocation) ([]*cmdlet.Object, error) {
	if whatIf(inv, "Removing mailbox %q.", inv.String("Identity")) {
		return nil, nil
	}
	return nil, c.svc.RemoveMailbox(ctx, inv.String("Identity"))
}

func casObject(m *directory.Mailbox) *cmdlet.Object {
	var disabled any
	if m.SmtpClientAuthenticationDisabled != nil {
		disabled = *m.SmtpClientAuthenticationDisabled
	}
	return &cmdlet.Object{TypeName: "CASMailbox", DefaultView: cmdlet.TableView,
		DefaultDisplay: []string{"Name", "PrimarySmtpAddress", "SmtpClientAuthenticationDisabled", "ImapEnabled", "PopEnabled"},
		Props: []cmdlet.Prop{
			{Name: "Name", Value: m.Name},
			{Name: "Identity", Value: m.Name},
			{Name: "DisplayName", Value: m.DisplayName},
			{Name: "PrimarySmtpAddress", Value: m.PrimarySmtpAddress},
			{Name: "SmtpClientAuthenticationDisabled", Value: disabled},
			{Name: "ImapEnabled", Value: m.ImapEnabled},
			{Name: "PopEnabled", Value: m.PopEnabled},
		}}
}

func (c *cmdlets) getCASMailbox(_ context.Context, inv *cmdlet.Invocation) ([]*cmdlet.Object, error) {
	return c.mailboxes(inv, casObject)
}

func (c *cmdlets) setCASMailbox(ctx context.Context, inv *cmdlet.Invocation) ([]*cmdlet.Object, error) {
	p := CASMailboxParams{ImapEnabled: boolPtr(inv, "ImapEnabled"), PopEnabled: boolPtr(inv, "PopEnabled")}
	if inv.Has("SmtpClientAuthenticationDisabled") {
		p.SetSmtpClientAuth, p.SmtpClientAuthenticationDisabled = true, inv.NullableBool("SmtpClientAuthenticationDisabled")
	}
	if !p.SetSmtpClientAuth && p.ImapEnabled == nil && p.PopEnabled == nil {
		return nil, nil
	}
	if whatIf(inv, "Setting CAS mailbox %q.", inv.String("Identity")) {
		return nil, nil
	}
	return nil, c.svc.UpdateCASMailbox(ctx, inv.String("Identity"), p)
}

func userObject(m *directory.Mailbox) *cmdlet.Object {
	return &cmdlet.Object{TypeName: "User", DefaultView: cmdlet.TableView,
		DefaultDisplay: []string{"Name", "RecipientTypeDetails", "AuthenticationPolicy"},
		Props: []cmdlet.Prop{
			{Name: "Name", Value: m.Name},
			{Name: "Identity", Value: m.Name},
			{Name: "UserPrincipalName", Value: m.UserPrincipalName},
			{Name: "DisplayName", Value: m.DisplayName},
			{Name: "RecipientTypeDetails", Value: string(m.Type)},
			{Name: "AuthenticationPolicy", Value: nullIfEmpty(m.AuthenticationPolicy)},
			{Name: "StsRefreshTokensValidFrom", Value: tokensValidFrom(m.TokensValidFrom)},
			{Name: "Guid", Value: m.GUID},
		}}
}

func (c *cmdlets) getUser(_ context.Context, inv *cmdlet.Invocation) ([]*cmdlet.Object, error) {
	return c.mailboxes(inv, userObject)
}

func (c *cmdlets) setUser(ctx context.Context, inv *cmdlet.Invocation) ([]*cmdlet.Object, error) {
	var validFrom time.Time
	if inv.Has("STSRefreshTokensValidFrom") {
		var err error
		if validFrom, err = stsValidFrom(inv); err != nil {
			return nil, err
		}
	}
	if !inv.Has("AuthenticationPolicy") && validFrom.IsZero() {
		return nil, nil
	}
	if whatIf(inv, "Setting user %q.", inv.String("Identity")) {
		return nil, nil
	}
	if inv.Has("AuthenticationPolicy") {
		if err := c.svc.SetUser(ctx, inv.String("Identity"), inv.String("AuthenticationPolicy")); err != nil {
			return nil, err
		}
	}
	if !validFrom.IsZero() {
		return nil, c.svc.SetTokensValidFrom(ctx, inv.String("Identity"), validFrom)
	}
	return nil, nil
}

// tokensValidFrom shows StsRefreshTokensValidFrom: blank when never set.
func tokensValidFrom(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t
}

func policyObject(p *directory.AuthenticationPolicy) *cmdlet.Object {
	return &cmdlet.Object{TypeName: "AuthenticationPolicy", DefaultView: cmdlet.ListView, Props: []cmdlet.Prop{
		{Name: "Name", Value: p.Name},
		{Name: "Identity", Value: p.Name},
		{Name: "AllowBasicAuthSmtp", Value: p.AllowBasicAuthSmtp},
		{Name: "AllowBasicAuthImap", Value: p.AllowBasicAuthImap},
		{Name: "AllowBasicAuthPop", Value: p.AllowBasicAuthPop},
		{Name: "WhenCreated", Value: p.WhenCreated},
	}}
}

func (c *cmdlets) getAuthenticationPolicy(_ context.Context, inv *cmdlet.Invocation) ([]*cmdlet.Object, error) {
	ps, err := c.svc.AuthenticationPolicies(inv.String("Identity"))
	return objects(ps, err, policyObject)
}

func (c *cmdlets) newAuthenticationPolicy(ctx context.Context, inv *cmdlet.Invocation) ([]*cmdlet.Object, error) {
	if whatIf(inv, "Creating authentication policy %q.", inv.String("Name")) {
		return nil, nil
	}
	p, err := c.svc.NewAuthenticationPolicy(ctx, inv.String("Name"), policySwitchesOf(inv))
	if err != nil {
		return nil, err
	}
	return []*cmdlet.Object{policyObject(p)}, nil
}

func (c *cmdlets) setAuthenticationPolicy(ctx context.Context, inv *cmdlet.Invocation) ([]*cmdlet.Object, error) {
	if whatIf(inv, "Setting authentication policy %q.", inv.String("Identity")) {
		return nil, nil
	}
	return nil, c.svc.SetAuthenticationPolicy(ctx, inv.String("Identity"), policySwitchesOf(inv))
}

func (c *cmdlets) removeAuthenticationPolicy(ctx context.Context, inv *cmdlet.Invocation) ([]*cmdlet.Object, error) {
	if whatIf(inv, "Removing authentication policy %q.", inv.String("Identity")) {
		return nil, nil
	}
	return nil, c.svc.RemoveAuthenticationPolicy(ctx, inv.String("Identity"))
}

func permissionObject(p Permission) *cmdlet.Object {
	return &cmdlet.Object{TypeName: "RecipientPermission", DefaultView: cmdlet.TableView,
		DefaultDisplay: []string{"Identity", "Trustee", "AccessControlType", "AccessRights"},
		Props: []cmdlet.Prop{
			{Name: "Identity", Value: p.Identity.Name},
			{Name: "Trustee", Value: p.Trustee.PrimarySmtpAddress},
			{Name: "AccessControlType", Value: "Allow"},
			{Name: "AccessRights", Value: []any{"SendAs"}},
			{Name: "IsInherited", Value: false},
			{Name: "InheritanceType", Value: "None"},
		}}
}

func (c *cmdlets) getRecipientPermission(_ context.Context, inv *cmdlet.Invocation) ([]*cmdlet.Object, error) {
	ps, err := c.svc.RecipientPermissions(inv.String("Identity"), inv.String("Trustee"))
	return objects(ps, err, permissionObject)
}

func (c *cmdlets) addRecipientPermission(ctx context.Context, inv *cmdlet.Invocation) ([]*cmdlet.Object, error) {
	if whatIf(inv, "Adding recipient permission 'SendAs' for user %q on recipient %q.", inv.String("Trustee"), inv.String("Identity")) {
		return nil, nil
	}
	p, err := c.svc.AddRecipientPermission(ctx, inv.String("Identity"), inv.String("Trustee"), inv.String("AccessRights"))
	if err != nil {
		return nil, err
	}
	return []*cmdlet.Object{permissionObject(p)}, nil
}

func (c *cmdlets) removeRecipientPermission(ctx context.Context, inv *cmdlet.Invocation) ([]*cmdlet.Object, error) {
	if whatIf(inv, "Removing recipient permission 'SendAs' for user %q on recipient %q.", inv.String("Trustee"), inv.String("Identity")) {
		return nil, nil
	}
	return nil, c.svc.RemoveRecipientPermission(ctx, inv.String("Identity"), inv.String("Trustee"), inv.String("AccessRights"))
}

func (c *cmdlets) getMailboxFolderStatistics(ctx context.Context, inv *cmdlet.Invocation) ([]*cmdlet.Object, error) {
	m, stats, err := c.svc.FolderStatistics(ctx, inv.String("Identity"))
	if err != nil {
		return nil, err
	}
	var out []*cmdlet.Object
	for _, f := range stats {
		out = append(out, &cmdlet.Object{TypeName: "MailboxFolderStatistics", DefaultView: cmdlet.TableView,
			DefaultDisplay: []string{"Name", "FolderPath", "ItemsInFolder", "FolderSize"},
			Props: []cmdlet.Prop{
				{Name: "Name", Value: f.Name},
				{Name: "FolderPath", Value: f.FolderPath},
				{Name: "FolderType", Value: f.FolderType},
				{Name: "ItemsInFolder", Value: int64(f.ItemsInFolder)},
				{Name: "FolderSize", Value: Size(f.FolderSize)},
				{Name: "Identity", Value: m.Name + `\` + strings.TrimPrefix(f.FolderPath, "/")},
			}})
	}
	return out, nil
}
