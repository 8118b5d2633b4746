package admin

import (
	"context"
	"fmt"

	"postern.dev/postern/internal/cmdlet"
	"postern.dev/postern/internal/directory"
)

// oauthSpecs are the cmdlets of modern authentication: trusted issuers
// (on-premises Exchange's *-AuthServer), applications and their mailbox
// grants (Exchange Online's *-ServicePrincipal and *-MailboxPermission),
// and the SMTP AUTH clients report.
func (c *cmdlets) oauthSpecs(identity, optionalIdentity cmdlet.ParamSpec) []cmdlet.Spec {
	authServerParams := []cmdlet.ParamSpec{
		{Name: "AuthMetadataUrl", Type: cmdlet.String, Position: -1},
		{Name: "Audience", Type: cmdlet.String, Position: -1},
		{Name: "UserClaims", Type: cmdlet.StringList, MultiValued: true, Position: -1},
		{Name: "Enabled", Type: cmdlet.Bool, Position: -1},
	}
	accessRights := cmdlet.ParamSpec{Name: "AccessRights", Type: cmdlet.Enum, ValidValues: []string{"FullAccess"}, Position: -1, Required: true}
	user := cmdlet.ParamSpec{Name: "User", Type: cmdlet.String, Position: -1, Required: true}
	return []cmdlet.Spec{
		{Name: "Get-AuthServer", Output: "AuthServer", Access: cmdlet.ReadAccess, REST: cmdlet.Route{Op: cmdlet.RouteList, Path: "auth-servers", Description: "Trusted OAuth issuers."}, Synopsis: "Lists the trusted OAuth token issuers.", Params: []cmdlet.ParamSpec{optionalIdentity}, Run: c.getAuthServer},
		{Name: "New-AuthServer", Output: "AuthServer", Access: cmdlet.OrganizationAccess, REST: at(cmdlet.RouteCreate, "auth-servers"), Synopsis: "Trusts an OpenID Connect issuer: New-AuthServer -Name EntraID -AuthMetadataUrl <…/.well-known/openid-configuration> -Audience https://outlook.office365.com.",
			SupportsWhatIf: true, Params: append([]cmdlet.ParamSpec{{Name: "Name", Type: cmdlet.String, Position: 0, Required: true}}, authServerParams...), Run: c.newAuthServer},
		{Name: "Set-AuthServer", Output: cmdlet.NoOutput, Access: cmdlet.OrganizationAccess, REST: at(cmdlet.RouteUpdate, "auth-servers"), Synopsis: "Changes a trusted issuer; -RefreshAuthMetadata reads its discovery document again.", SupportsWhatIf: true,
			Params: append([]cmdlet.ParamSpec{identity, {Name: "Name", Type: cmdlet.String, Position: -1}, {Name: "RefreshAuthMetadata", Type: cmdlet.Switch, Position: -1}}, authServerParams...),
			Run:    c.setAuthServer},
		{Name: "Remove-AuthServer", Output: cmdlet.NoOutput, Access: cmdlet.OrganizationAccess, REST: at(cmdlet.RouteDelete, "auth-servers"), Synopsis: "Stops trusting an issuer.", SupportsWhatIf: true, Params: []cmdlet.ParamSpec{identity}, Run: c.removeAuthServer},

		{Name: "Get-ServicePrincipal", Output: "ServicePrincipal", Access: cmdlet.ReadAccess, REST: cmdlet.Route{Op: cmdlet.RouteList, Path: "service-principals", Description: "Service principals of applications that send with OAuth."}, Synopsis: "Lists the applications registered to send.", Params: []cmdlet.ParamSpec{optionalIdentity}, Run: c.getServicePrincipal},
		{Name: "New-ServicePrincipal", Output: "ServicePrincipal", Access: cmdlet.OrganizationAccess, REST: at(cmdlet.RouteCreate, "service-principals"), Synopsis: "Registers an application whose tokens (role SMTP.SendAsApp) may send: -AppId <client id> -ObjectId <object id>.", SupportsWhatIf: true,
			Params: []cmdlet.ParamSpec{{Name: "AppId", Type: cmdlet.String, Position: -1, Required: true}, {Name: "ObjectId", Type: cmdlet.String, Position: -1, Required: true},
				{Name: "DisplayName", Type: cmdlet.String, Position: -1}}, Run: c.newServicePrincipal},
		{Name: "Remove-ServicePrincipal", Output: cmdlet.NoOutput, Access: cmdlet.OrganizationAccess, REST: at(cmdlet.RouteDelete, "service-principals"), Synopsis: "Removes an application registration and its mailbox permissions.", SupportsWhatIf: true, Params: []cmdlet.ParamSpec{identity}, Run: c.removeServicePrincipal},

		{Name: "Get-MailboxPermission", Output: "MailboxPermission", Access: cmdlet.ReadAccess, REST: cmdlet.Route{Op: cmdlet.RouteList, Path: "mailbox-permissions", ItemList: true, Description: "Full Access permissions (applications that send as a mailbox); DELETE takes User and AccessRights as query parameters."}, Synopsis: "Lists FullAccess grants on mailboxes.", Params: []cmdlet.ParamSpec{optionalIdentity}, Run: c.getMailboxPermission},
		{Name: "Add-MailboxPermission", Output: cmdlet.NoOutput, Access: cmdlet.RecipientAccess, REST: at(cmdlet.RouteCreate, "mailbox-permissions"), Synopsis: "Grants -User (a service principal or a mailbox) FullAccess on a mailbox: it may then sign in to SMTP AUTH as it with a token.", SupportsWhatIf: true,
			Params: []cmdlet.ParamSpec{identity, user, accessRights}, Run: c.addMailboxPermission},
		{Name: "Remove-MailboxPermission", Output: cmdlet.NoOutput, Access: cmdlet.RecipientAccess, REST: at(cmdlet.RouteDelete, "mailbox-permissions"), Synopsis: "Revokes a FullAccess grant.", SupportsWhatIf: true, Params: []cmdlet.ParamSpec{identity, user, accessRights}, Run: c.removeMailboxPermission},

		{Name: "Get-OAuthApp", Output: "OAuthApp", Access: cmdlet.ReadAccess, REST: cmdlet.Route{Op: cmdlet.RouteList, Path: "oauth-apps", Description: "App registrations of the built-in OAuth issuer."}, Synopsis: "Lists the applications registered with Postern's built-in token issuer.", Params: []cmdlet.ParamSpec{optionalIdentity}, Run: c.getOAuthApp},
		{Name: "New-OAuthApp", Output: "OAuthApp", Access: cmdlet.OrganizationAccess, REST: at(cmdlet.RouteCreate, "oauth-apps"), Synopsis: "Registers an application with the built-in issuer (and as a service principal); shows its client secret once, or takes -Certificate (PEM text; the shell also reads a file) for private_key_jwt.", SupportsWhatIf: true,
			Params: []cmdlet.ParamSpec{{Name: "Name", Type: cmdlet.String, Position: 0, Required: true}, {Name: "Certificate", Type: cmdlet.String, Position: -1, IsContent: isPEM}}, Run: c.newOAuthApp},
		{Name: "New-OAuthAppSecret", Output: "OAuthApp", Access: cmdlet.OrganizationAccess, REST: cmdletOnly, Synopsis: "Adds a client secret to an application and shows it once; older secrets keep working.", SupportsWhatIf: true,
			Params: []cmdlet.ParamSpec{identity}, Run: c.newOAuthAppSecret},
		{Name: "Add-OAuthAppCertificate", Output: cmdlet.NoOutput, Access: cmdlet.OrganizationAccess, REST: cmdletOnly, Synopsis: "Registers a certificate whose key may sign the application's client assertions.", SupportsWhatIf: true,
			Params: []cmdlet.ParamSpec{identity, {Name: "Certificate", Type: cmdlet.String, Position: -1, Required: true, IsContent: isPEM}}, Run: c.addOAuthAppCertificate},
		{Name: "Remove-OAuthApp", Output: cmdlet.NoOutput, Access: cmdlet.OrganizationAccess, REST: at(cmdlet.RouteDelete, "oauth-apps"), Synopsis: "Deletes an application registration, its service principal and its mailbox permissions.", SupportsWhatIf: true,
			Params: []cmdlet.ParamSpec{identity}, Run: c.removeOAuthApp},
		{Name: "Rotate-OAuthSigningKey", Output: cmdlet.NoOutput, Access: cmdlet.ServerAccess, REST: cmdletOnly, Synopsis: "Gives the built-in issuer a new signing key; the previous one stays published for its tokens.", SupportsWhatIf: true, Run: c.rotateOAuthSigningKey},

		{Name: "Get-SmtpAuthClientReport", Output: "SmtpAuthClient", Access: cmdlet.ReadAccess, REST: cmdlet.Route{Op: cmdlet.RouteList, Path: "smtp-auth-clients", Noun: "SmtpAuthClient", Description: "The SMTP AUTH clients report: who sends with passwords and who with tokens."}, Synopsis: "Who sends with SMTP AUTH: messages, TLS versions and authentication protocol (Basic or OAuth) per sender over -Days (default 7, at most 90).",
			Params: []cmdlet.ParamSpec{{Name: "Days", Type: cmdlet.Int, Position: -1}}, Run: c.getSmtpAuthClientReport},
	}
}

func authServerParamsOf(inv *cmdlet.Invocation) AuthServerParams {
	p := AuthServerParams{UserClaims: multiValue(inv, "UserClaims"), Enabled: boolPtr(inv, "Enabled"), RefreshAuthMetadata: inv.Bool("RefreshAuthMetadata")}
	for name, dst := range map[string]**string{"Name": &p.Name, "AuthMetadataUrl": &p.AuthMetadataUrl, "Audience": &p.Audience} {
		if inv.Has(name) {
			v := inv.String(name)
			*dst = &v
		}
	}
	return p
}

func authServerObject(a *directory.AuthServer) *cmdlet.Object {
	return &cmdlet.Object{TypeName: "AuthServer", DefaultView: cmdlet.TableView,
		DefaultDisplay: []string{"Name", "IssuerIdentifier", "Audience", "Enabled"},
		Props: []cmdlet.Prop{
			{Name: "Name", Value: a.Name},
			{Name: "Identity", Value: a.Name},
			{Name: "IssuerIdentifier", Value: a.Issuer},
			{Name: "AuthMetadataUrl", Value: nullIfEmpty(a.AuthMetadataUrl)},
			{Name: "TokenIssuingEndpoint", Value: nullIfEmpty(a.TokenEndpoint)},
			{Name: "JwksUri", Value: a.JwksUri},
			{Name: "Audience", Value: a.Audience},
			{Name: "UserClaims", Value: anyList(a.UserClaims)},
			{Name: "Enabled", Value: a.Enabled},
			{Name: "IsBuiltIn", Value: a.BuiltIn},
			{Name: "WhenCreated", Value: a.WhenCreated},
		}}
}

func (c *cmdlets) getAuthServer(_ context.Context, inv *cmdlet.Invocation) ([]*cmdlet.Object, error) {
	as, err := c.svc.AuthServers(inv.String("Identity"))
	return objects(as, err, authServerObject)
}

func (c *cmdlets) newAuthServer(ctx context.Context, inv *cmdlet.Invocation) ([]*cmdlet.Object, error) {
	if whatIf(inv, "Creating auth server %q.", inv.String("Name")) {
		return nil, nil
	}
	a, err := c.svc.NewAuthServer(ctx, authServerParamsOf(inv))
	if err != nil {
		return nil, err
	}
	return []*cmdlet.Object{authServerObject(a)}, nil
}

func (c *cmdlets) setAuthServer(ctx context.Context, inv *cmdlet.Invocation) ([]*cmdlet.Object, error) {
	if whatIf(inv, "Setting auth server %q.", inv.String("Identity")) {
		return nil, nil
	}
	return nil, c.svc.SetAuthServer(ctx, inv.String("Identity"), authServerParamsOf(inv))
}

func (c *cmdlets) removeAuthServer(ctx context.Context, inv *cmdlet.Invocation) ([]*cmdlet.Object, error) {
	if whatIf(inv, "Removing auth server %q.", inv.String("Identity")) {
		return nil, nil
	}
	return nil, c.svc.RemoveAuthServer(ctx, inv.String("Identity"))
}

func principalObject(p *directory.ServicePrincipal) *cmdlet.Object {
	return &cmdlet.Object{TypeName: "ServicePrincipal", DefaultView: cmdlet.TableView,
		DefaultDisplay: []string{"DisplayName", "AppId", "ObjectId"},
		Props: []cmdlet.Prop{
			{Name: "DisplayName", Value: p.DisplayName},
			{Name: "AppId", Value: p.AppId},
			{Name: "ObjectId", Value: p.ObjectId},
			{Name: "Identity", Value: p.ObjectId},
			{Name: "WhenCreated", Value: p.WhenCreated},
		}}
}

func (c *cmdlets) getServicePrincipal(_ context.Context, inv *cmdlet.Invocation) ([]*cmdlet.Object, error) {
	ps, err := c.svc.ServicePrincipals(inv.String("Identity"))
	return objects(ps, err, principalObject)
}

func (c *cmdlets) newServicePrincipal(ctx context.Context, inv *cmdlet.Invocation) ([]*cmdlet.Object, error) {
	if whatIf(inv, "Creating service principal %q.", inv.String("AppId")) {
		return nil, nil
	}
	p, err := c.svc.NewServicePrincipal(ctx, inv.String("AppId"), inv.String("ObjectId"), inv.String("DisplayName"))
	if err != nil {
		return nil, err
	}
	return []*cmdlet.Object{principalObject(p)}, nil
}

func (c *cmdlets) removeServicePrincipal(ctx context.Context, inv *cmdlet.Invocation) ([]*cmdlet.Object, error) {
	if whatIf(inv, "Removing service principal %q.", inv.String("Identity")) {
		return nil, nil
	}
	return nil, c.svc.RemoveServicePrincipal(ctx, inv.String("Identity"))
}

func (c *cmdlets) getMailboxPermission(_ context.Context, inv *cmdlet.Invocation) ([]*cmdlet.Object, error) {
	ps, err := c.svc.MailboxPermissions(inv.String("Identity"))
	return objects(ps, err, func(p MailboxPermissionEntry) *cmdlet.Object {
		return &cmdlet.Object{TypeName: "MailboxPermission", DefaultView: cmdlet.TableView,
			DefaultDisplay: []string{"Identity", "User", "AccessRights", "IsInherited", "Deny"},
			Props: []cmdlet.Prop{
				{Name: "Identity", Value: p.Identity},
				{Name: "User", Value: p.User},
				{Name: "AccessRights", Value: []any{"FullAccess"}},
				{Name: "IsInherited", Value: false},
				{Name: "Deny", Value: false},
			}}
	})
}

func (c *cmdlets) addMailboxPermission(ctx context.Context, inv *cmdlet.Invocation) ([]*cmdlet.Object, error) {
	if whatIf(inv, "Adding FullAccess on %q for %q.", inv.String("Identity"), inv.String("User")) {
		return nil, nil
	}
	return nil, c.svc.AddMailboxPermission(ctx, inv.String("Identity"), inv.String("User"))
}

func (c *cmdlets) removeMailboxPermission(ctx context.Context, inv *cmdlet.Invocation) ([]*cmdlet.Object, error) {
	if whatIf(inv, "Removing FullAccess on %q for %q.", inv.String("Identity"), inv.String("User")) {
		return nil, nil
	}
	return nil, c.svc.RemoveMailboxPermission(ctx, inv.String("Identity"), inv.String("User"))
}

func (c *cmdlets) getSmtpAuthClientReport(ctx context.Context, inv *cmdlet.Invocation) ([]*cmdlet.Object, error) {
	days := int64(7)
	if inv.Has("Days") {
		days, _ = inv.Int("Days")
	}
	if days < 1 || days > 90 {
		return nil, invalidValue("Days", fmt.Sprint(days), "give 1 to 90 days")
	}
	rows, err := c.svc.SmtpAuthClients(ctx, int(days))
	return objects(rows, err, func(r SmtpAuthClient) *cmdlet.Object {
		pct := func(v string) string { return fmt.Sprintf("%.1f%%", r.TLS[v]) }
		return &cmdlet.Object{TypeName: "SmtpAuthClient", DefaultView: cmdlet.TableView,
			DefaultDisplay: []string{"SenderAddress", "MessagesSent", "TLS12", "TLS13", "AuthenticationProtocol"},
			Props: []cmdlet.Prop{
				{Name: "SenderAddress", Value: r.SenderAddress},
				{Name: "Domain", Value: r.Domain},
				{Name: "MessagesSent", Value: r.MessagesSent},
				{Name: "TLS10", Value: pct("TLS 1.0")},
				{Name: "TLS11", Value: pct("TLS 1.1")},
				{Name: "TLS12", Value: pct("TLS 1.2")},
				{Name: "TLS13", Value: pct("TLS 1.3")},
				{Name: "AuthenticationProtocol", Value: r.AuthenticationProtocol},
				{Name: "LastSent", Value: r.LastSent},
			}}
	})
}

func (c *cmdlets) oauthAppObject(a *directory.OAuthApp, clientSecret string) *cmdlet.Object {
	tokenEndpoint := ""
	for _, s := range c.svc.Dir.Load().Contents().AuthServers {
		if s.BuiltIn && s.OrgID == a.OrgID {
			tokenEndpoint = s.TokenEndpoint
		}
	}
	props := []cmdlet.Prop{
		{Name: "Name", Value: a.Name},
		{Name: "AppId", Value: a.AppId},
		{Name: "Identity", Value: a.Name},
		{Name: "Secrets", Value: int64(len(a.SecretHashes))},
		{Name: "Certificates", Value: int64(len(a.Certificates))},
		{Name: "TokenEndpoint", Value: nullIfEmpty(tokenEndpoint)},
		{Name: "Scope", Value: "https://outlook.office365.com/.default"},
		{Name: "WhenCreated", Value: a.WhenCreated},
	}
	display := []string{"Name", "AppId", "Secrets", "Certificates"}
	if clientSecret != "" {
		props = append(props, cmdlet.Prop{Name: "ClientSecret", Value: clientSecret})
		display = []string{"Name", "AppId", "ClientSecret", "TokenEndpoint"}
	}
	return &cmdlet.Object{TypeName: "OAuthApp", DefaultView: cmdlet.ListView, DefaultDisplay: display, Props: props}
}

func (c *cmdlets) getOAuthApp(_ context.Context, inv *cmdlet.Invocation) ([]*cmdlet.Object, error) {
	apps, err := c.svc.OAuthApps(inv.String("Identity"))
	return objects(apps, err, func(a *directory.OAuthApp) *cmdlet.Object { return c.oauthAppObject(a, "") })
}

func (c *cmdlets) newOAuthApp(ctx context.Context, inv *cmdlet.Invocation) ([]*cmdlet.Object, error) {
	if whatIf(inv, "Creating app %q.", inv.String("Name")) {
		return nil, nil
	}
	a, secret, err := c.svc.NewOAuthApp(ctx, inv.String("Name"), inv.String("Certificate"))
	if err != nil {
		return nil, err
	}
	return []*cmdlet.Object{c.oauthAppObject(a, secret)}, nil
}

func (c *cmdlets) newOAuthAppSecret(ctx context.Context, inv *cmdlet.Invocation) ([]*cmdlet.Object, error) {
	if whatIf(inv, "Adding a client secret to app %q.", inv.String("Identity")) {
		return nil, nil
	}
	secret, err := c.svc.NewOAuthAppSecret(ctx, inv.String("Identity"))
	if err != nil {
		return nil, err
	}
	apps, err := c.svc.OAuthApps(inv.String("Identity"))
	if err != nil {
		return nil, err
	}
	return []*cmdlet.Object{c.oauthAppObject(apps[0], secret)}, nil
}

func (c *cmdlets) addOAuthAppCertificate(ctx context.Context, inv *cmdlet.Invocation) ([]*cmdlet.Object, error) {
	if whatIf(inv, "Adding a certificate to app %q.", inv.String("Identity")) {
		return nil, nil
	}
	return nil, c.svc.AddOAuthAppCertificate(ctx, inv.String("Identity"), inv.String("Certificate"))
}

func (c *cmdlets) removeOAuthApp(ctx context.Context, inv *cmdlet.Invocation) ([]*cmdlet.Object, error) {
	if whatIf(inv, "Removing app %q.", inv.String("Identity")) {
		return nil, nil
	}
	return nil, c.svc.RemoveOAuthApp(ctx, inv.String("Identity"))
}

func (c *cmdlets) rotateOAuthSigningKey(ctx context.Context, inv *cmdlet.Invocation) ([]*cmdlet.Object, error) {
	if whatIf(inv, "Rotating the built-in issuer's signing key.") {
		return nil, nil
	}
	return nil, c.svc.RotateOAuthSigningKey(ctx)
}
