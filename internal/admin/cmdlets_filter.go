package admin

import (
	"context"
	"fmt"

	"postern.dev/postern/internal/cmdlet"
	"postern.dev/postern/internal/directory"
)

// filterSpecs are the outbound spam policy, the connection filter policy
// and the restricted entities list (Exchange Online Protection's cmdlets).
func (c *cmdlets) filterSpecs() []cmdlet.Spec {
	policyIdentity := cmdlet.ParamSpec{Name: "Identity", Type: cmdlet.Identity, Position: 0,
		Help: "Default: each organization has one policy of this kind."}
	limit := func(name, help string) cmdlet.ParamSpec {
		return cmdlet.ParamSpec{Name: name, Type: cmdlet.Int, Position: -1, Help: help}
	}
	sender := []cmdlet.ParamSpec{
		{Name: "SenderAddress", Type: cmdlet.String, Position: -1},
		{Name: "Identity", Type: cmdlet.Identity, Position: 0, Help: "The sender address (Postern's name for -SenderAddress, as the REST API uses it)."},
	}
	return []cmdlet.Spec{
		{Name: "Get-HostedOutboundSpamFilterPolicy", Output: "HostedOutboundSpamFilterPolicy", Access: cmdlet.ReadAccess, REST: cmdlet.Route{Op: cmdlet.RouteList, Path: "hosted-outbound-spam-filter-policy", Singleton: true, Description: "The outbound spam policy: recipient limits per hour and day, and the action when one is exceeded (Get-/Set-HostedOutboundSpamFilterPolicy)."}, Synopsis: "Shows the organization's outbound spam policy: recipient limits and the action when one is exceeded.",
			Params: []cmdlet.ParamSpec{policyIdentity}, Run: c.getOutboundSpamPolicy},
		{Name: "Set-HostedOutboundSpamFilterPolicy", Output: cmdlet.NoOutput, Access: cmdlet.OrganizationAccess, REST: at(cmdlet.RouteUpdate, "hosted-outbound-spam-filter-policy"), Synopsis: "Changes the outbound spam policy: -RecipientLimitExternalPerHour, -RecipientLimitInternalPerHour, -RecipientLimitPerDay (0 to 10000; 0 uses the service defaults) and -ActionWhenThresholdReached Alert|BlockUser|BlockUserForToday.",
			SupportsWhatIf: true, Params: []cmdlet.ParamSpec{policyIdentity,
				limit("RecipientLimitExternalPerHour", "Recipients outside the organization one mailbox may send to per hour; 0: no limit of the policy's own."),
				limit("RecipientLimitInternalPerHour", "Recipients inside the organization one mailbox may send to per hour; 0: no limit of the policy's own."),
				limit("RecipientLimitPerDay", "Recipients one mailbox may send to per day; 0: the service's 10,000."),
				{Name: "ActionWhenThresholdReached", Type: cmdlet.Enum, ValidValues: directory.OutboundSpamActions, Position: -1,
					Help: "Alert tells the admin; BlockUser restricts the sender until Remove-BlockedSenderAddress; BlockUserForToday (the default) until the next UTC day."},
			}, Run: c.setOutboundSpamPolicy},
		{Name: "Get-HostedConnectionFilterPolicy", Output: "HostedConnectionFilterPolicy", Access: cmdlet.ReadAccess, REST: cmdlet.Route{Op: cmdlet.RouteList, Path: "hosted-connection-filter-policy", Singleton: true, Description: "The connection filter policy: the IP Allow List and IP Block List for anonymous mail (Get-/Set-HostedConnectionFilterPolicy)."}, Synopsis: "Shows the organization's connection filter policy: the IP Allow List and the IP Block List for anonymous mail on port 25.",
			Params: []cmdlet.ParamSpec{policyIdentity}, Run: c.getConnectionFilterPolicy},
		{Name: "Set-HostedConnectionFilterPolicy", Output: cmdlet.NoOutput, Access: cmdlet.OrganizationAccess, REST: at(cmdlet.RouteUpdate, "hosted-connection-filter-policy"), Synopsis: "Changes the IP Allow List and the IP Block List: single addresses, ranges (first-last) or CIDR IPs (/24 to /32; IPv6 /48 to /128 beyond Exchange), at most 1273 each; a list, @{Add=...;Remove=...}, or $null to empty.",
			SupportsWhatIf: true, Params: []cmdlet.ParamSpec{policyIdentity,
				{Name: "IPAllowList", Type: cmdlet.StringList, MultiValued: true, Position: -1,
					Help: "Sources never refused by the block list and never throttled; attribution still applies."},
				{Name: "IPBlockList", Type: cmdlet.StringList, MultiValued: true, Position: -1,
					Help: "Sources whose anonymous mail to the organization is refused with 550 5.7.606."},
			}, Run: c.setConnectionFilterPolicy},
		{Name: "Get-BlockedSenderAddress", Output: "BlockedSenderAddress", Access: cmdlet.ReadAccess, REST: cmdlet.Route{Op: cmdlet.RouteList, Path: "blocked-sender-addresses", Description: "Senders the outbound spam policy restricted; DELETE .../{address} releases one (Remove-BlockedSenderAddress)."}, Synopsis: "Lists the senders the outbound spam policy restricted (the restricted entities list); they get 550 5.1.8 until released or until the restriction ends.",
			Params: sender, Run: c.getBlockedSenderAddress},
		{Name: "Remove-BlockedSenderAddress", Output: cmdlet.NoOutput, Access: cmdlet.OrganizationAccess, REST: at(cmdlet.RouteDelete, "blocked-sender-addresses"), Synopsis: "Releases a restricted sender: it may send again at once, and is not restricted again before the next UTC day.",
			SupportsWhatIf: true, Params: append(sender, cmdlet.ParamSpec{Name: "Reason", Type: cmdlet.String, Position: -1, Help: "Why the sender is released, for the audit log."}),
			Run: c.removeBlockedSenderAddress},
	}
}

func outboundSpamPolicyObject(p *directory.OutboundSpamFilterPolicy) *cmdlet.Object {
	var changed any
	if !p.WhenChanged.IsZero() {
		changed = p.WhenChanged
	}
	return &cmdlet.Object{TypeName: "HostedOutboundSpamFilterPolicy", DefaultView: cmdlet.ListView, Props: []cmdlet.Prop{
		{Name: "Name", Value: directory.DefaultPolicyName},
		{Name: "Identity", Value: directory.DefaultPolicyName},
		{Name: "IsDefault", Value: true},
		{Name: "RecipientLimitExternalPerHour", Value: int64(p.RecipientLimitExternalPerHour)},
		{Name: "RecipientLimitInternalPerHour", Value: int64(p.RecipientLimitInternalPerHour)},
		{Name: "RecipientLimitPerDay", Value: int64(p.RecipientLimitPerDay)},
		{Name: "ActionWhenThresholdReached", Value: p.ActionWhenThresholdReached},
		{Name: "WhenChanged", Value: changed},
	}}
}

func connectionFilterPolicyObject(p *directory.ConnectionFilterPolicy) *cmdlet.Object {
	list := func(rs []directory.IPRange) []any {
		out := make([]any, len(rs))
		for i, r := range rs {
			out[i] = r.String()
		}
		return out
	}
	var changed any
	if !p.WhenChanged.IsZero() {
		changed = p.WhenChanged
	}
	return &cmdlet.Object{TypeName: "HostedConnectionFilterPolicy", DefaultView: cmdlet.ListView, Props: []cmdlet.Prop{
		{Name: "Name", Value: directory.DefaultPolicyName},
		{Name: "Identity", Value: directory.DefaultPolicyName},
		{Name: "IsDefault", Value: true},
		{Name: "IPAllowList", Value: list(p.IPAllowList)},
		{Name: "IPBlockList", Value: list(p.IPBlockList)},
		// The safe list is Microsoft's third-party allow list; Postern has
		// none to turn on.
		{Name: "EnableSafeList", Value: false},
		{Name: "WhenChanged", Value: changed},
	}}
}

func blockedSenderObject(r *directory.RestrictedSender) *cmdlet.Object {
	var expires any
	if !r.ExpiresAt.IsZero() {
		expires = r.ExpiresAt
	}
	return &cmdlet.Object{TypeName: "BlockedSenderAddress", DefaultView: cmdlet.TableView,
		DefaultDisplay: []string{"SenderAddress", "Reason", "CreatedDatetime"},
		Props: []cmdlet.Prop{
			{Name: "SenderAddress", Value: r.SenderAddress},
			{Name: "Identity", Value: r.SenderAddress},
			{Name: "Reason", Value: r.Reason},
			{Name: "Action", Value: r.Action},
			{Name: "CreatedDatetime", Value: r.CreatedAt},
			{Name: "ExpiresDatetime", Value: expires},
		}}
}

func (c *cmdlets) getOutboundSpamPolicy(_ context.Context, inv *cmdlet.Invocation) ([]*cmdlet.Object, error) {
	p, err := c.svc.OutboundSpamPolicy(inv.String("Identity"))
	if err != nil {
		return nil, err
	}
	return []*cmdlet.Object{outboundSpamPolicyObject(p)}, nil
}

func (c *cmdlets) setOutboundSpamPolicy(ctx context.Context, inv *cmdlet.Invocation) ([]*cmdlet.Object, error) {
	var p OutboundSpamPolicyParams
	for name, dst := range map[string]**int{"RecipientLimitExternalPerHour": &p.RecipientLimitExternalPerHour,
		"RecipientLimitInternalPerHour": &p.RecipientLimitInternalPerHour, "RecipientLimitPerDay": &p.RecipientLimitPerDay} {
		if inv.Has(name) {
			n, _ := inv.Int(name)
			v := int(max(min(n, 1<<31-1), -1))
			*dst = &v
		}
	}
	if inv.Has("ActionWhenThresholdReached") {
		v := inv.String("ActionWhenThresholdReached")
		p.ActionWhenThresholdReached = &v
	}
	if whatIf(inv, "Setting the outbound spam filter policy %q.", directory.DefaultPolicyName) {
		return nil, nil
	}
	return nil, c.svc.SetOutboundSpamPolicy(ctx, inv.String("Identity"), p)
}

func (c *cmdlets) getConnectionFilterPolicy(_ context.Context, inv *cmdlet.Invocation) ([]*cmdlet.Object, error) {
	p, err := c.svc.ConnectionFilterPolicy(inv.String("Identity"))
	if err != nil {
		return nil, err
	}
	return []*cmdlet.Object{connectionFilterPolicyObject(p)}, nil
}

func (c *cmdlets) setConnectionFilterPolicy(ctx context.Context, inv *cmdlet.Invocation) ([]*cmdlet.Object, error) {
	p := ConnectionFilterParams{IPAllowList: multiValue(inv, "IPAllowList"), IPBlockList: multiValue(inv, "IPBlockList")}
	if whatIf(inv, "Setting the connection filter policy %q.", directory.DefaultPolicyName) {
		return nil, nil
	}
	return nil, c.svc.SetConnectionFilterPolicy(ctx, inv.String("Identity"), p)
}

// senderAddress is -SenderAddress, or -Identity as the REST API names it.
func senderAddress(inv *cmdlet.Invocation) string {
	if inv.Has("SenderAddress") {
		return inv.String("SenderAddress")
	}
	return inv.String("Identity")
}

func (c *cmdlets) getBlockedSenderAddress(_ context.Context, inv *cmdlet.Invocation) ([]*cmdlet.Object, error) {
	rs, err := c.svc.BlockedSenders(senderAddress(inv))
	return objects(rs, err, blockedSenderObject)
}

func (c *cmdlets) removeBlockedSenderAddress(ctx context.Context, inv *cmdlet.Invocation) ([]*cmdlet.Object, error) {
	addr := senderAddress(inv)
	if addr == "" {
		return nil, fmt.Errorf("Cannot process command because of one or more missing mandatory parameters: SenderAddress.")
	}
	if whatIf(inv, "Releasing the blocked sender %q.", addr) {
		return nil, nil
	}
	return nil, c.svc.ReleaseBlockedSender(ctx, addr)
}
