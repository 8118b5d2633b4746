package admin

import (
	"context"
	"time"

	"postern.dev/postern/internal/cmdlet"
	"postern.dev/postern/internal/store"
)

// traceSpecs are message trace (Exchange Online's Get-MessageTrace,
// Get-MessageTraceV2 and Get-MessageTraceDetail) and the connection log.
func (c *cmdlets) traceSpecs() []cmdlet.Spec {
	str := func(name string) cmdlet.ParamSpec {
		return cmdlet.ParamSpec{Name: name, Type: cmdlet.String, Position: -1}
	}
	traceParams := []cmdlet.ParamSpec{str("SenderAddress"), str("RecipientAddress"), str("StartDate"), str("EndDate"),
		{Name: "Status", Type: cmdlet.Enum, Position: -1, ValidValues: []string{"Delivered", "Failed", "Pending", "FilteredAsSpam", "Expanded", "Quarantined", "GettingStatus"}},
		str("MessageId"), str("MessageTraceId"), str("FromIP"), str("ToIP"), str("Subject"),
		{Name: "ResultSize", Type: cmdlet.IntOrUnlimited, Position: -1}, {Name: "PageSize", Type: cmdlet.Int, Position: -1}}
	return []cmdlet.Spec{
		{Name: "Get-MessageTrace", Output: "MessageTrace", Access: cmdlet.ReadAccess, REST: cmdletOnly, Synopsis: "Finds messages (one row per recipient) and their status; the last 48 hours unless -StartDate/-EndDate are given.", Params: traceParams, Run: c.getMessageTrace},
		{Name: "Get-MessageTraceV2", Output: "MessageTrace", Access: cmdlet.ReadAccess, REST: cmdlet.Route{Op: cmdlet.RouteList, Path: "message-trace", ItemList: true, Noun: "MessageTrace", Description: "Message trace; the item is a MessageTraceId and answers its detail events (RecipientAddress as a query parameter)."}, Synopsis: "Get-MessageTrace under its newer name.", Params: traceParams, Run: c.getMessageTrace},
		{Name: "Get-MessageTraceDetail", Output: "MessageTraceDetail", Access: cmdlet.ReadAccess, REST: cmdlet.Route{Op: cmdlet.RouteItem, Path: "message-trace", ItemParam: "MessageTraceId"}, Synopsis: "What happened to one message for one recipient, step by step (RECEIVE, SUBMIT, DELIVER, SEND, DEFER, FAIL, DSN).",
			// Both bind from Get-MessageTrace's rows: Get-MessageTrace | Get-MessageTraceDetail.
			Params: []cmdlet.ParamSpec{{Name: "MessageTraceId", Type: cmdlet.String, Position: -1, Required: true, ByPropertyName: true},
				{Name: "RecipientAddress", Type: cmdlet.String, Position: -1, ByPropertyName: true}},
			Run: c.getMessageTraceDetail},
		{Name: "Test-SmtpSubmission", Output: "SmtpSubmissionCheck", Access: cmdlet.ReadAccess, REST: cmdletOnly, Synopsis: "Why can't a device send? Walks the server's checks for -Identity (the mailbox it signs in as, or its sender) with -Port, -UseTls, -ClientIP, -From, -Recipient; -Server host:port probes a live server.",
			Params: []cmdlet.ParamSpec{{Name: "Identity", Type: cmdlet.String, Position: 0}, str("ClientIP"), {Name: "Port", Type: cmdlet.Int, Position: -1},
				{Name: "UseTls", Type: cmdlet.Bool, Position: -1}, {Name: "Authenticated", Type: cmdlet.Bool, Position: -1}, {Name: "OAuth", Type: cmdlet.Switch, Position: -1},
				str("From"), str("Recipient"), str("Server")},
			Run: c.testSmtpSubmission},
		{Name: "Search-AdminAuditLog", Output: "AdminAuditLogEvent", Access: cmdlet.ReadAccess, REST: cmdlet.Route{Op: cmdlet.RouteList, Path: "admin-audit-log", Description: "The admin audit log (Search-AdminAuditLog)."}, Synopsis: "Lists the changes admins made (every New-, Set-, Remove-, Add- cmdlet run), newest first.",
			Params: []cmdlet.ParamSpec{{Name: "Cmdlets", Type: cmdlet.StringList, Position: -1}, str("ObjectIds"), str("StartDate"), str("EndDate"),
				{Name: "ResultSize", Type: cmdlet.IntOrUnlimited, Position: -1}},
			Run: c.searchAdminAuditLog},
		{Name: "Get-ConnectionLog", Output: "ConnectionLogEntry", Access: cmdlet.ServerAccess, REST: cmdletOnly, Synopsis: "Refusals before a message was accepted: failed AUTH, relay and Direct Send refusals, unknown recipients, Send As.",
			Params: []cmdlet.ParamSpec{str("StartDate"), str("EndDate"), str("ClientIP"), {Name: "ResultSize", Type: cmdlet.IntOrUnlimited, Position: -1}},
			Run:    c.getConnectionLog},
	}
}

// dates reads -StartDate and -EndDate.
func dates(inv *cmdlet.Invocation) (start, end time.Time, err error) {
	if inv.Has("StartDate") {
		if start, err = ParseDate("StartDate", inv.String("StartDate")); err != nil {
			return
		}
	}
	if inv.Has("EndDate") {
		end, err = ParseDate("EndDate", inv.String("EndDate"))
	}
	return
}

func traceResultSize(inv *cmdlet.Invocation, def int) int {
	for _, name := range []string{"ResultSize", "PageSize"} {
		if inv.Has(name) {
			n, unlimited := inv.Int(name)
			if unlimited {
				return 1 << 30
			}
			return int(n)
		}
	}
	return def
}

func (c *cmdlets) getMessageTrace(ctx context.Context, inv *cmdlet.Invocation) ([]*cmdlet.Object, error) {
	start, end, err := dates(inv)
	if err != nil {
		return nil, err
	}
	rows, err := c.svc.MessageTrace(ctx, TraceParams{SenderAddress: inv.String("SenderAddress"), RecipientAddress: inv.String("RecipientAddress"),
		StartDate: start, EndDate: end, Status: inv.String("Status"), MessageID: inv.String("MessageId"), MessageTraceID: inv.String("MessageTraceId"),
		FromIP: inv.String("FromIP"), ToIP: inv.String("ToIP"), Subject: inv.String("Subject"), ResultSize: traceResultSize(inv, 1000)})
	return objects(rows, err, func(r TraceRow) *cmdlet.Object {
		return &cmdlet.Object{TypeName: "MessageTrace", DefaultView: cmdlet.TableView,
			DefaultDisplay: []string{"Received", "SenderAddress", "RecipientAddress", "Subject", "Status"},
			Props: []cmdlet.Prop{
				{Name: "Received", Value: r.Received},
				{Name: "SenderAddress", Value: r.SenderAddress},
				{Name: "RecipientAddress", Value: r.RecipientAddress},
				{Name: "Subject", Value: r.Subject},
				{Name: "Status", Value: r.Status},
				{Name: "ToIP", Value: nullIfEmpty(r.ToIP)},
				{Name: "FromIP", Value: nullIfEmpty(r.FromIP)},
				{Name: "Size", Value: r.Size},
				{Name: "MessageId", Value: r.MessageID},
				{Name: "MessageTraceId", Value: r.MessageTraceID},
			}}
	})
}

func (c *cmdlets) getMessageTraceDetail(ctx context.Context, inv *cmdlet.Invocation) ([]*cmdlet.Object, error) {
	ds, err := c.svc.MessageTraceDetail(ctx, inv.String("MessageTraceId"), inv.String("RecipientAddress"))
	return objects(ds, err, func(d TraceDetail) *cmdlet.Object {
		return &cmdlet.Object{TypeName: "MessageTraceDetail", DefaultView: cmdlet.TableView,
			DefaultDisplay: []string{"Date", "Event", "Detail"},
			Props: []cmdlet.Prop{
				{Name: "Date", Value: d.Date},
				{Name: "Event", Value: d.Event},
				{Name: "Action", Value: nullIfEmpty(d.Action)},
				{Name: "Detail", Value: d.Detail},
				{Name: "SessionId", Value: nullIfEmpty(d.SessionId)},
				{Name: "MessageTraceId", Value: inv.String("MessageTraceId")},
			}}
	})
}

func (c *cmdlets) getConnectionLog(ctx context.Context, inv *cmdlet.Invocation) ([]*cmdlet.Object, error) {
	start, end, err := dates(inv)
	if err != nil {
		return nil, err
	}
	es, err := c.svc.ConnectionLog(ctx, start, end, inv.String("ClientIP"), traceResultSize(inv, 1000))
	return objects(es, err, func(e store.ConnectionEvent) *cmdlet.Object {
		return &cmdlet.Object{TypeName: "ConnectionLogEntry", DefaultView: cmdlet.TableView,
			DefaultDisplay: []string{"Date", "ClientIP", "Event", "SignIn", "Reply"},
			Props: []cmdlet.Prop{
				{Name: "Date", Value: e.At},
				{Name: "ClientIP", Value: e.ClientIP},
				{Name: "Role", Value: e.Role},
				{Name: "Event", Value: e.Event},
				{Name: "SignIn", Value: nullIfEmpty(e.SignIn)},
				{Name: "Sender", Value: nullIfEmpty(e.Sender)},
				{Name: "Recipient", Value: nullIfEmpty(e.Recipient)},
				{Name: "Reply", Value: e.Reply},
			}}
	})
}

func (c *cmdlets) testSmtpSubmission(ctx context.Context, inv *cmdlet.Invocation) ([]*cmdlet.Object, error) {
	port, _ := inv.Int("Port")
	var checks []Check
	verdict := ""
	if inv.Has("Server") {
		var err error
		if checks, err = c.svc.ProbeServer(ctx, inv.String("Server"), port == 465); err != nil {
			return nil, err
		}
	} else {
		useTLS := true
		if inv.Has("UseTls") {
			useTLS = inv.Bool("UseTls")
		}
		var err error
		checks, verdict, err = c.svc.TestSubmission(SubmissionTest{Identity: inv.String("Identity"), ClientIP: inv.String("ClientIP"),
			Port: int(port), UseTls: useTLS, Authenticated: inv.Bool("Authenticated"), OAuth: inv.Bool("OAuth"),
			From: inv.String("From"), Recipient: inv.String("Recipient")})
		if err != nil {
			return nil, err
		}
	}
	if verdict != "" {
		result := "Pass"
		if verdict != acceptedVerdict {
			result = "Fail"
		}
		checks = append(checks, Check{Check: "Verdict", Result: result, Detail: verdict})
	}
	return objects(checks, nil, func(ch Check) *cmdlet.Object {
		return &cmdlet.Object{TypeName: "SmtpSubmissionCheck", DefaultView: cmdlet.ListView,
			DefaultDisplay: []string{"Check", "Stage", "Result", "Detail"},
			Props: []cmdlet.Prop{{Name: "Check", Value: ch.Check}, {Name: "Stage", Value: nullIfEmpty(ch.Stage)},
				{Name: "Result", Value: ch.Result}, {Name: "Detail", Value: ch.Detail}}}
	})
}
