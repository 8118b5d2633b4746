package admin

import (
	"context"
	"fmt"
	"strings"

	"postern.dev/postern/internal/cmdlet"
	"postern.dev/postern/internal/directory"
)

// deliverySpecs are the cmdlets of outbound delivery: outbound connectors
// (Exchange Online's), DKIM (Exchange Online's) and the queue (Exchange
// Server's).
func (c *cmdlets) deliverySpecs(identity, optionalIdentity cmdlet.ParamSpec) []cmdlet.Spec {
	return []cmdlet.Spec{
		{Name: "Get-OutboundConnector", Output: "OutboundConnector", Access: cmdlet.ReadAccess, REST: cmdlet.Route{Op: cmdlet.RouteList, Path: "outbound-connectors", Description: "Outbound connectors: smart hosts."}, Synopsis: "Lists outbound connectors.", Params: []cmdlet.ParamSpec{optionalIdentity}, Run: c.getOutboundConnector},
		{Name: "New-OutboundConnector", Output: "OutboundConnector", Access: cmdlet.OrganizationAccess, REST: at(cmdlet.RouteCreate, "outbound-connectors"), Synopsis: "Creates an outbound connector: mail for -RecipientDomains goes through -SmartHosts (with -UseMXRecord $false), signing in with -AuthMechanism Basic|XOAUTH2 if needed.",
			SupportsWhatIf: true, Params: append([]cmdlet.ParamSpec{{Name: "Name", Type: cmdlet.String, Position: 0, Required: true}}, outboundParams...), Run: c.newOutboundConnector},
		{Name: "Set-OutboundConnector", Output: cmdlet.NoOutput, Access: cmdlet.OrganizationAccess, REST: at(cmdlet.RouteUpdate, "outbound-connectors"), Synopsis: "Changes an outbound connector.", SupportsWhatIf: true,
			Params: append([]cmdlet.ParamSpec{identity, {Name: "Name", Type: cmdlet.String, Position: -1}}, outboundParams...), Run: c.setOutboundConnector},
		{Name: "Remove-OutboundConnector", Output: cmdlet.NoOutput, Access: cmdlet.OrganizationAccess, REST: at(cmdlet.RouteDelete, "outbound-connectors"), Synopsis: "Deletes an outbound connector.", SupportsWhatIf: true, Params: []cmdlet.ParamSpec{identity}, Run: c.removeOutboundConnector},

		{Name: "Get-DkimSigningConfig", Output: "DkimSigningConfig", Access: cmdlet.ReadAccess, REST: cmdlet.Route{Op: cmdlet.RouteList, Path: "dkim-signing-configs", Description: "DKIM signing per domain; POST .../{domain}/rotate switches selectors."}, Synopsis: "Shows DKIM signing: the TXT records to publish (Selector1PublicKey at Selector1CNAME, and selector 2's).", Params: []cmdlet.ParamSpec{optionalIdentity}, Run: c.getDkimSigningConfig},
		{Name: "New-DkimSigningConfig", Output: "DkimSigningConfig", Access: cmdlet.OrganizationAccess, REST: at(cmdlet.RouteCreate, "dkim-signing-configs"), Synopsis: "Creates DKIM keys for an accepted domain: New-DkimSigningConfig -DomainName contoso.com -Enabled $true.", SupportsWhatIf: true,
			Params: []cmdlet.ParamSpec{{Name: "DomainName", Type: cmdlet.String, Position: -1, Required: true}, {Name: "Enabled", Type: cmdlet.Bool, Position: -1, Required: true},
				{Name: "KeySize", Type: cmdlet.Int, Position: -1}, {Name: "Algorithm", Type: cmdlet.Enum, ValidValues: []string{"RSA", "Ed25519"}, Position: -1}},
			Run: c.newDkimSigningConfig},
		{Name: "Set-DkimSigningConfig", Output: cmdlet.NoOutput, Access: cmdlet.OrganizationAccess, REST: at(cmdlet.RouteUpdate, "dkim-signing-configs"), Synopsis: "Turns DKIM signing on or off for a domain (-Enabled).", SupportsWhatIf: true,
			Params: []cmdlet.ParamSpec{identity, {Name: "Enabled", Type: cmdlet.Bool, Position: -1}}, Run: c.setDkimSigningConfig},
		{Name: "Rotate-DkimSigningConfig", Output: cmdlet.NoOutput, Access: cmdlet.OrganizationAccess, REST: at(cmdlet.RouteAction, "dkim-signing-configs"), Synopsis: "Signs with the other selector from now on and gives the retired one a new key.", SupportsWhatIf: true,
			Params: []cmdlet.ParamSpec{identity, {Name: "KeySize", Type: cmdlet.Int, Position: -1}}, Run: c.rotateDkimSigningConfig},

		{Name: "Get-Queue", Output: "Queue", Access: cmdlet.ReadAccess, REST: cmdlet.Route{Op: cmdlet.RouteList, Path: "queues", Description: "Delivery queues; POST .../{identity}/retry retries one now."}, Synopsis: "Lists the delivery queues: outbound per next hop, and paced local deliveries (Submission).", Params: []cmdlet.ParamSpec{optionalIdentity}, Run: c.getQueue},
		{Name: "Get-QueueMessage", Output: "QueueMessage", Access: cmdlet.ReadAccess, REST: cmdlet.Route{Op: cmdlet.RouteList, Path: "queue-messages", Description: "Queued messages, a recipient's copy each; DELETE removes one (WithNDR as a query parameter)."}, Synopsis: "Lists queued messages, one row per recipient (-Queue to pick one queue).",
			Params: []cmdlet.ParamSpec{optionalIdentity, {Name: "Queue", Type: cmdlet.String, Position: -1}}, Run: c.getQueueMessage},
		{Name: "Retry-Queue", Output: cmdlet.NoOutput, Access: cmdlet.OrganizationAccess, REST: at(cmdlet.RouteAction, "queues"), Synopsis: "Tries a queue's waiting messages now.", SupportsWhatIf: true, Params: []cmdlet.ParamSpec{identity}, Run: c.retryQueue},
		{Name: "Remove-QueueMessage", Output: cmdlet.NoOutput, Access: cmdlet.OrganizationAccess, REST: at(cmdlet.RouteDelete, "queue-messages"), Synopsis: "Removes a queued message, with a non-delivery report to its sender unless -WithNDR $false.", SupportsWhatIf: true,
			Params: []cmdlet.ParamSpec{identity, {Name: "WithNDR", Type: cmdlet.Bool, Position: -1}}, Run: c.removeQueueMessage},
	}
}

var outboundParams = []cmdlet.ParamSpec{
	{Name: "ConnectorType", Type: cmdlet.Enum, ValidValues: []string{"OnPremises", "Partner"}, Position: -1},
	{Name: "RecipientDomains", Type: cmdlet.StringList, MultiValued: true, Position: -1},
	{Name: "SmartHosts", Type: cmdlet.StringList, MultiValued: true, Position: -1},
	{Name: "UseMXRecord", Type: cmdlet.Bool, Position: -1},
	{Name: "TlsSettings", Type: cmdlet.String, Position: -1},
	{Name: "TlsDomain", Type: cmdlet.String, Position: -1},
	{Name: "Enabled", Type: cmdlet.Bool, Position: -1},
	{Name: "Comment", Type: cmdlet.String, Position: -1},
	{Name: "AuthMechanism", Type: cmdlet.Enum, ValidValues: []string{"None", "Basic", "XOAUTH2"}, Position: -1},
	{Name: "SmtpUser", Type: cmdlet.String, Position: -1},
	{Name: "SmtpPassword", Type: cmdlet.SecureString, Position: -1},
	{Name: "OAuthTokenEndpoint", Type: cmdlet.String, Position: -1},
	{Name: "OAuthClientId", Type: cmdlet.String, Position: -1},
	{Name: "OAuthClientSecret", Type: cmdlet.SecureString, Position: -1},
	{Name: "OAuthScope", Type: cmdlet.String, Position: -1},
}

func outboundParamsOf(inv *cmdlet.Invocation) OutboundConnectorParams {
	p := OutboundConnectorParams{
		RecipientDomains: multiValue(inv, "RecipientDomains"), SmartHosts: multiValue(inv, "SmartHosts"),
		UseMXRecord: boolPtr(inv, "UseMXRecord"), Enabled: boolPtr(inv, "Enabled"),
	}
	for name, dst := range map[string]**string{"Name": &p.Name, "ConnectorType": &p.ConnectorType, "TlsSettings": &p.TlsSettings,
		"TlsDomain": &p.TlsDomain, "Comment": &p.Comment, "AuthMechanism": &p.AuthMechanism, "SmtpUser": &p.SmtpUser,
		"SmtpPassword": &p.SmtpPassword, "OAuthTokenEndpoint": &p.OAuthTokenEndpoint, "OAuthClientId": &p.OAuthClientId,
		"OAuthClientSecret": &p.OAuthClientSecret, "OAuthScope": &p.OAuthScope} {
		if inv.Has(name) {
			v := inv.String(name)
			*dst = &v
		}
	}
	return p
}

func anyList(s []string) []any {
	out := make([]any, len(s))
	for i, v := range s {
		out[i] = v
	}
	return out
}

// outboundObject shows a connector. Secrets are never shown: only whether
// one is set.
func outboundObject(oc *directory.OutboundConnector) *cmdlet.Object {
	return &cmdlet.Object{TypeName: "OutboundConnector", DefaultView: cmdlet.TableView,
		DefaultDisplay: []string{"Name", "RecipientDomains", "SmartHosts", "UseMXRecord", "Enabled"},
		Props: []cmdlet.Prop{
			{Name: "Name", Value: oc.Name},
			{Name: "Identity", Value: oc.Name},
			{Name: "ConnectorType", Value: string(oc.ConnectorType)},
			{Name: "RecipientDomains", Value: anyList(oc.RecipientDomains)},
			{Name: "SmartHosts", Value: anyList(oc.SmartHosts)},
			{Name: "UseMXRecord", Value: oc.UseMXRecord},
			{Name: "TlsSettings", Value: nullIfEmpty(string(oc.TlsSettings))},
			{Name: "TlsDomain", Value: nullIfEmpty(oc.TlsDomain)},
			{Name: "Enabled", Value: oc.Enabled},
			{Name: "Comment", Value: nullIfEmpty(oc.Comment)},
			{Name: "AuthMechanism", Value: string(oc.AuthMechanism)},
			{Name: "SmtpUser", Value: nullIfEmpty(oc.SmtpUser)},
			{Name: "SmtpPasswordSet", Value: oc.SmtpPasswordSealed != ""},
			{Name: "OAuthTokenEndpoint", Value: nullIfEmpty(oc.OAuthTokenEndpoint)},
			{Name: "OAuthClientId", Value: nullIfEmpty(oc.OAuthClientId)},
			{Name: "OAuthClientSecretSet", Value: oc.OAuthClientSecretSealed != ""},
			{Name: "OAuthScope", Value: nullIfEmpty(oc.OAuthScope)},
			{Name: "WhenCreated", Value: oc.WhenCreated},
		}}
}

func (c *cmdlets) getOutboundConnector(_ context.Context, inv *cmdlet.Invocation) ([]*cmdlet.Object, error) {
	cs, err := c.svc.OutboundConnectors(inv.String("Identity"))
	return objects(cs, err, outboundObject)
}

func (c *cmdlets) newOutboundConnector(ctx context.Context, inv *cmdlet.Invocation) ([]*cmdlet.Object, error) {
	if whatIf(inv, "Creating outbound connector %q.", inv.String("Name")) {
		return nil, nil
	}
	oc, err := c.svc.NewOutboundConnector(ctx, outboundParamsOf(inv))
	if err != nil {
		return nil, err
	}
	return []*cmdlet.Object{outboundObject(oc)}, nil
}

func (c *cmdlets) setOutboundConnector(ctx context.Context, inv *cmdlet.Invocation) ([]*cmdlet.Object, error) {
	if whatIf(inv, "Setting outbound connector %q.", inv.String("Identity")) {
		return nil, nil
	}
	return nil, c.svc.SetOutboundConnector(ctx, inv.String("Identity"), outboundParamsOf(inv))
}

func (c *cmdlets) removeOutboundConnector(ctx context.Context, inv *cmdlet.Invocation) ([]*cmdlet.Object, error) {
	if whatIf(inv, "Removing outbound connector %q.", inv.String("Identity")) {
		return nil, nil
	}
	return nil, c.svc.RemoveOutboundConnector(ctx, inv.String("Identity"))
}

// dkimObject shows a DKIM configuration with Exchange's property names.
// Selector1CNAME is where the record goes: Postern hosts no DNS zone to
// point a CNAME at, so the admin publishes Selector1PublicKey as a TXT
// record at that name.
func dkimObject(d *directory.DkimSigningConfig) *cmdlet.Object {
	sel := func(n int) string { return directory.SelectorName(n) + "._domainkey." + d.Domain }
	var rotate any
	if !d.RotateOnDate.IsZero() {
		rotate = d.RotateOnDate
	}
	return &cmdlet.Object{TypeName: "DkimSigningConfig", DefaultView: cmdlet.TableView,
		DefaultDisplay: []string{"Domain", "Enabled"},
		Props: []cmdlet.Prop{
			{Name: "Domain", Value: d.Domain},
			{Name: "Enabled", Value: d.Enabled},
			{Name: "Status", Value: "Valid"},
			{Name: "Selector1CNAME", Value: sel(1)},
			{Name: "Selector1PublicKey", Value: d.Selector1PublicKey},
			{Name: "Selector1KeySize", Value: int64(d.KeySize)},
			{Name: "Selector2CNAME", Value: sel(2)},
			{Name: "Selector2PublicKey", Value: d.Selector2PublicKey},
			{Name: "Selector2KeySize", Value: int64(d.KeySize)},
			{Name: "SelectorBeforeRotateOnDate", Value: directory.SelectorName(3 - d.ActiveSelector)},
			{Name: "SelectorAfterRotateOnDate", Value: directory.SelectorName(d.ActiveSelector)},
			{Name: "RotateOnDate", Value: rotate},
			{Name: "KeyCreationTime", Value: d.KeyCreationTime},
			{Name: "Algorithm", Value: d.Algorithm},
			{Name: "HeaderCanonicalization", Value: "Relaxed"},
			{Name: "BodyCanonicalization", Value: "Relaxed"},
			{Name: "NumberOfBytesToSign", Value: "All"},
			{Name: "IncludeKeyExpiration", Value: false},
			{Name: "IncludeSignatureCreationTime", Value: false},
			{Name: "Identity", Value: d.Domain},
			{Name: "Name", Value: d.Domain},
			{Name: "WhenCreated", Value: d.WhenCreated},
		}}
}

func (c *cmdlets) getDkimSigningConfig(_ context.Context, inv *cmdlet.Invocation) ([]*cmdlet.Object, error) {
	ds, err := c.svc.DkimSigningConfigs(inv.String("Identity"))
	return objects(ds, err, dkimObject)
}

func (c *cmdlets) newDkimSigningConfig(ctx context.Context, inv *cmdlet.Invocation) ([]*cmdlet.Object, error) {
	if whatIf(inv, "Creating DKIM signing configuration for %q.", inv.String("DomainName")) {
		return nil, nil
	}
	size, _ := inv.Int("KeySize")
	d, err := c.svc.NewDkimSigningConfig(ctx, inv.String("DomainName"), inv.Bool("Enabled"), inv.String("Algorithm"), int(size))
	if err != nil {
		return nil, err
	}
	return []*cmdlet.Object{dkimObject(d)}, nil
}

func (c *cmdlets) setDkimSigningConfig(ctx context.Context, inv *cmdlet.Invocation) ([]*cmdlet.Object, error) {
	if whatIf(inv, "Setting DKIM signing configuration %q.", inv.String("Identity")) {
		return nil, nil
	}
	return nil, c.svc.SetDkimSigningConfig(ctx, inv.String("Identity"), boolPtr(inv, "Enabled"))
}

func (c *cmdlets) rotateDkimSigningConfig(ctx context.Context, inv *cmdlet.Invocation) ([]*cmdlet.Object, error) {
	if whatIf(inv, "Rotating DKIM keys of %q.", inv.String("Identity")) {
		return nil, nil
	}
	size, _ := inv.Int("KeySize")
	return nil, c.svc.RotateDkimSigningConfig(ctx, inv.String("Identity"), int(size))
}

func (c *cmdlets) getQueue(ctx context.Context, inv *cmdlet.Invocation) ([]*cmdlet.Object, error) {
	qs, err := c.svc.Queues(ctx, inv.String("Identity"))
	return objects(qs, err, func(q QueueInfo) *cmdlet.Object {
		var retry any
		if !q.NextRetryTime.IsZero() {
			retry = q.NextRetryTime
		}
		return &cmdlet.Object{TypeName: "Queue", DefaultView: cmdlet.TableView,
			DefaultDisplay: []string{"Identity", "DeliveryType", "Status", "MessageCount", "NextHopDomain"},
			Props: []cmdlet.Prop{
				{Name: "Identity", Value: q.Identity},
				{Name: "DeliveryType", Value: q.DeliveryType},
				{Name: "Status", Value: q.Status},
				{Name: "MessageCount", Value: q.MessageCount},
				{Name: "NextHopDomain", Value: q.NextHopDomain},
				{Name: "LastError", Value: nullIfEmpty(q.LastError)},
				{Name: "NextRetryTime", Value: retry},
			}}
	})
}

func (c *cmdlets) getQueueMessage(ctx context.Context, inv *cmdlet.Invocation) ([]*cmdlet.Object, error) {
	ms, err := c.svc.QueueMessages(ctx, inv.String("Identity"), inv.String("Queue"))
	return objects(ms, err, func(m QueuedMessage) *cmdlet.Object {
		return &cmdlet.Object{TypeName: "QueueMessage", DefaultView: cmdlet.TableView,
			DefaultDisplay: []string{"Identity", "FromAddress", "Recipient", "Status", "Size", "Subject"},
			Props: []cmdlet.Prop{
				{Name: "Identity", Value: m.Identity},
				{Name: "FromAddress", Value: m.FromAddress},
				{Name: "Recipient", Value: m.Recipient},
				{Name: "Status", Value: m.Status},
				{Name: "Size", Value: Size(m.Size)},
				{Name: "Subject", Value: m.Subject},
				{Name: "Queue", Value: m.Queue},
				{Name: "InternetMessageId", Value: "<" + m.MessageID + ">"},
				{Name: "DateReceived", Value: m.ReceivedAt},
				{Name: "NextRetryTime", Value: m.NotBefore},
				{Name: "RetryCount", Value: int64(m.Attempts)},
				{Name: "LastError", Value: nullIfEmpty(m.LastError)},
			}}
	})
}

func (c *cmdlets) retryQueue(ctx context.Context, inv *cmdlet.Invocation) ([]*cmdlet.Object, error) {
	if whatIf(inv, "Retrying queue %q.", inv.String("Identity")) {
		return nil, nil
	}
	_, err := c.svc.RetryQueue(ctx, inv.String("Identity"))
	return nil, err
}

func (c *cmdlets) removeQueueMessage(ctx context.Context, inv *cmdlet.Invocation) ([]*cmdlet.Object, error) {
	withNDR := true // Exchange's default
	if inv.Has("WithNDR") {
		withNDR = inv.Bool("WithNDR")
	}
	if whatIf(inv, "Removing queued message %q (WithNDR %s).", inv.String("Identity"), strings.ToUpper(fmt.Sprint(withNDR)[:1])+fmt.Sprint(withNDR)[1:]) {
		return nil, nil
	}
	_, err := c.svc.RemoveQueueMessage(ctx, inv.String("Identity"), withNDR)
	return nil, err
}
