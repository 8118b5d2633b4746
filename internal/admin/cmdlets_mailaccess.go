package admin

import (
	"context"
	"fmt"

	"postern.dev/postern/internal/cmdlet"
	"postern.dev/postern/internal/directory"
)

// policySwitches are the switches New- and Set-AuthenticationPolicy share.
var policySwitches = []cmdlet.ParamSpec{
	{Name: "AllowBasicAuthSmtp", Type: cmdlet.Switch, Position: -1},
	{Name: "AllowBasicAuthImap", Type: cmdlet.Switch, Position: -1},
	{Name: "AllowBasicAuthPop", Type: cmdlet.Switch, Position: -1},
}

func policySwitchesOf(inv *cmdlet.Invocation) PolicySwitches {
	return PolicySwitches{AllowBasicAuthSmtp: boolPtr(inv, "AllowBasicAuthSmtp"), AllowBasicAuthImap: boolPtr(inv, "AllowBasicAuthImap"),
		AllowBasicAuthPop: boolPtr(inv, "AllowBasicAuthPop")}
}

// quotaParams reads Set-Mailbox's quotas: a size ("50 MB", "2 GB
// (2,147,483,648 bytes)", a byte count) or Unlimited.
func quotaParams(inv *cmdlet.Invocation) (QuotaParams, error) {
	var p QuotaParams
	for name, dst := range map[string]**int64{"IssueWarningQuota": &p.IssueWarningQuota, "ProhibitSendQuota": &p.ProhibitSendQuota,
		"ProhibitSendReceiveQuota": &p.ProhibitSendReceiveQuota} {
		if !inv.Has(name) {
			continue
		}
		n, unlimited := inv.Int(name)
		switch {
		case unlimited:
			n = directory.Unlimited
		case n < 1:
			return p, invalidValue(name, inv.String(name), "a quota is a size of at least 1 byte, or Unlimited")
		}
		*dst = &n
	}
	return p, nil
}

func (c *cmdlets) mailAccessSpecs(identity cmdlet.ParamSpec) []cmdlet.Spec {
	optionalIdentity := identity
	optionalIdentity.Required = false
	return []cmdlet.Spec{
		{Name: "Get-CASMailboxPlan", Output: "CASMailboxPlan", Access: cmdlet.ReadAccess, REST: cmdlet.Route{Op: cmdlet.RouteList, Path: "cas-mailbox-plan", Singleton: true, Description: "The CAS mailbox plan: whether new mailboxes start with IMAP4 and POP3 access (Get-/Set-CASMailboxPlan)."}, Synopsis: "Shows the organization's CAS mailbox plan: whether new mailboxes start with IMAP4 and POP3 access.",
			Params: []cmdlet.ParamSpec{optionalIdentity}, Run: c.getCASMailboxPlan},
		{Name: "Set-CASMailboxPlan", Output: cmdlet.NoOutput, Access: cmdlet.OrganizationAccess, REST: at(cmdlet.RouteUpdate, "cas-mailbox-plan"), Synopsis: "Changes the CAS mailbox plan: -ImapEnabled and -PopEnabled $true|$false for mailboxes created from now on (Set-CASMailbox changes existing ones).",
			SupportsWhatIf: true, Params: []cmdlet.ParamSpec{optionalIdentity, {Name: "ImapEnabled", Type: cmdlet.Bool, Position: -1},
				{Name: "PopEnabled", Type: cmdlet.Bool, Position: -1}}, Run: c.setCASMailboxPlan},
		{Name: "Get-MailboxStatistics", Output: "MailboxStatistics", Access: cmdlet.ReadAccess, REST: cmdlet.Route{Op: cmdlet.RouteList, Path: "mailbox-statistics", Description: "A mailbox's item count and total size against its quotas (GET .../{identity})."}, Synopsis: "Shows a mailbox's item count and total size against its quotas.",
			Params: []cmdlet.ParamSpec{identity}, Run: c.getMailboxStatistics},
		// Exchange Online has no cmdlet for IMAP4/POP3 sign-ins: admins
		// find them in Entra ID's sign-in logs (client app "IMAP4",
		// "POP3", "Authenticated SMTP") and SMTP's in the EAC's SMTP AUTH
		// clients report. The name follows Exchange's report cmdlets
		// (Get-MailTrafficReport, Get-MailboxActivityReport), with the
		// parameters of Get-MessageTraceV2 (-StartDate, -EndDate).
		{Name: "Get-MailboxSignInReport", Output: "MailboxSignIn", Access: cmdlet.ReadAccess, REST: cmdlet.Route{Op: cmdlet.RouteList, Path: "mailbox-sign-ins", Noun: "MailboxSignIn", Description: "The sign-in report: successful SMTP, IMAP4 and POP3 sign-ins per mailbox, client address and method (Protocol, Identity, StartDate, EndDate as query parameters)."}, Synopsis: "Lists successful sign-ins per protocol (SMTP, IMAP4, POP3), mailbox, client address and method (Basic or OAuth), with counts and the last time seen; the last 7 days unless -StartDate/-EndDate are given (at most 90 days back).",
			Params: []cmdlet.ParamSpec{optionalIdentity, {Name: "Protocol", Type: cmdlet.Enum, ValidValues: signInProtocols, Position: -1},
				{Name: "StartDate", Type: cmdlet.String, Position: -1}, {Name: "EndDate", Type: cmdlet.String, Position: -1}},
			Run: c.getMailboxSignInReport},
	}
}

func (c *cmdlets) casMailboxPlanObject() *cmdlet.Object {
	o := c.svc.Organization()
	return &cmdlet.Object{TypeName: "CASMailboxPlan", DefaultView: cmdlet.TableView,
		DefaultDisplay: []string{"Name", "ImapEnabled", "PopEnabled"},
		Props: []cmdlet.Prop{
			{Name: "Name", Value: directory.DefaultCASMailboxPlan},
			{Name: "Identity", Value: directory.DefaultCASMailboxPlan},
			{Name: "DisplayName", Value: directory.DefaultCASMailboxPlan},
			{Name: "ImapEnabled", Value: o.CASMailboxPlanImapEnabled},
			{Name: "PopEnabled", Value: o.CASMailboxPlanPopEnabled},
			{Name: "IsDefault", Value: true},
		}}
}

// checkPlan accepts the plan's name, with or without the GUID suffix
// Exchange Online's plan identities carry (ExchangeOnlineEnterprise-<guid>).
func checkPlan(inv *cmdlet.Invocation) error {
	id := inv.String("Identity")
	if id == "" || id == directory.DefaultCASMailboxPlan || len(id) > len(directory.DefaultCASMailboxPlan) &&
		id[:len(directory.DefaultCASMailboxPlan)+1] == directory.DefaultCASMailboxPlan+"-" {
		return nil
	}
	return fmt.Errorf("The operation couldn't be performed because object '%s' couldn't be found. Postern has one CAS mailbox plan per organization, %s.", id, directory.DefaultCASMailboxPlan)
}

func (c *cmdlets) getCASMailboxPlan(_ context.Context, inv *cmdlet.Invocation) ([]*cmdlet.Object, error) {
	if err := checkPlan(inv); err != nil {
		return nil, err
	}
	return []*cmdlet.Object{c.casMailboxPlanObject()}, nil
}

func (c *cmdlets) setCASMailboxPlan(ctx context.Context, inv *cmdlet.Invocation) ([]*cmdlet.Object, error) {
	if err := checkPlan(inv); err != nil {
		return nil, err
	}
	p := OrganizationParams{CASMailboxPlanImapEnabled: boolPtr(inv, "ImapEnabled"), CASMailboxPlanPopEnabled: boolPtr(inv, "PopEnabled")}
	if whatIf(inv, "Setting CAS mailbox plan %q.", directory.DefaultCASMailboxPlan) {
		return nil, nil
	}
	return nil, c.svc.SetOrganization(ctx, p)
}

func (c *cmdlets) getMailboxStatistics(ctx context.Context, inv *cmdlet.Invocation) ([]*cmdlet.Object, error) {
	st, err := c.svc.MailboxStatistics(ctx, inv.String("Identity"))
	if err != nil {
		return nil, err
	}
	m := st.Mailbox
	return []*cmdlet.Object{{TypeName: "MailboxStatistics", DefaultView: cmdlet.TableView,
		DefaultDisplay: []string{"DisplayName", "ItemCount", "TotalItemSize", "StorageLimitStatus"},
		Props: []cmdlet.Prop{
			{Name: "DisplayName", Value: m.DisplayName},
			{Name: "Identity", Value: m.Name},
			{Name: "MailboxGuid", Value: m.GUID},
			{Name: "ItemCount", Value: st.ItemCount},
			{Name: "TotalItemSize", Value: Size(st.TotalItemSize)},
			{Name: "StorageLimitStatus", Value: st.StorageLimitStatus()},
			{Name: "IssueWarningQuota", Value: quotaText(m.IssueWarningQuota)},
			{Name: "ProhibitSendQuota", Value: quotaText(m.ProhibitSendQuota)},
			{Name: "ProhibitSendReceiveQuota", Value: quotaText(m.ProhibitSendReceiveQuota)},
		}}}, nil
}

func (c *cmdlets) getMailboxSignInReport(ctx context.Context, inv *cmdlet.Invocation) ([]*cmdlet.Object, error) {
	start, end, err := dates(inv)
	if err != nil {
		return nil, err
	}
	rows, err := c.svc.SignInReport(ctx, inv.String("Protocol"), inv.String("Identity"), start, end)
	return objects(rows, err, func(r SignInReportRow) *cmdlet.Object {
		return &cmdlet.Object{TypeName: "MailboxSignIn", DefaultView: cmdlet.TableView,
			DefaultDisplay: []string{"Protocol", "Mailbox", "SignedInAs", "ClientIP", "AuthenticationMethod", "Count", "LastSeen"},
			Props: []cmdlet.Prop{
				{Name: "Protocol", Value: r.Protocol},
				{Name: "Mailbox", Value: r.Mailbox.PrimarySmtpAddress},
				{Name: "SignedInAs", Value: r.Actor},
				{Name: "ClientIP", Value: r.ClientIP},
				{Name: "AuthenticationMethod", Value: r.Method},
				{Name: "Count", Value: r.Count},
				{Name: "LastSeen", Value: r.LastSeen},
			}}
	})
}
