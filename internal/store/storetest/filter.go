package storetest

import (
	"context"
	"errors"
	"testing"
	"time"

	"postern.dev/postern/internal/directory"
	"postern.dev/postern/internal/store"
)

// testFilterPolicies: the outbound spam and connection filter policies,
// a mailbox's STSRefreshTokensValidFrom,
// restricted senders, the legacy TLS switch and the external recipient
// count survive a reopen exactly; a restriction for a removed mailbox is
// refused as not found; policies are one per organization.
func testFilterPolicies(t *testing.T, h *harness) {
	ctx := context.Background()
	s := h.s
	org, sean, chris := seed(t, s)
	org.AllowLegacyTLSClients = true
	must(t, s.SaveOrganization(ctx, org))
	revoked := time.Date(2026, 12, 1, 8, 30, 0, 0, time.UTC)
	sean.TokensValidFrom = revoked // Set-User -STSRefreshTokensValidFrom
	must(t, s.SaveMailbox(ctx, sean))

	changed := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
	spam := &directory.OutboundSpamFilterPolicy{OrgID: org.ID, RecipientLimitExternalPerHour: 400,
		RecipientLimitInternalPerHour: 800, RecipientLimitPerDay: 1200, ActionWhenThresholdReached: "BlockUser", WhenChanged: changed}
	must(t, s.SaveOutboundSpamPolicy(ctx, spam))
	spam.RecipientLimitPerDay = 1500 // the second save replaces the first
	must(t, s.SaveOutboundSpamPolicy(ctx, spam))

	mustRange := func(v string) directory.IPRange {
		r, err := directory.ParseIPRange(v)
		must(t, err)
		return r
	}
	filter := &directory.ConnectionFilterPolicy{OrgID: org.ID, WhenChanged: changed,
		IPAllowList: []directory.IPRange{mustRange("192.0.2.0/24"), mustRange("2001:db8::/48")},
		IPBlockList: []directory.IPRange{mustRange("198.51.100.7")}}
	must(t, s.SaveConnectionFilterPolicy(ctx, filter))

	block := &directory.RestrictedSender{OrgID: org.ID, MailboxID: sean.ID, SenderAddress: "sean@contoso.com",
		Reason: "RecipientLimitPerDay 1500 exceeded", Action: "BlockUserForToday", CreatedAt: changed, ExpiresAt: changed.Add(14 * time.Hour)}
	must(t, s.SaveRestrictedSender(ctx, block))
	first := block.ID
	block.ReleasedAt = changed.Add(time.Hour) // released: the same row, updated
	must(t, s.SaveRestrictedSender(ctx, block))
	if block.ID != first {
		t.Errorf("a mailbox's second restriction got a new row %d, want %d", block.ID, first)
	}
	must(t, s.DeleteMailbox(ctx, chris.ID))
	if err := s.SaveRestrictedSender(ctx, &directory.RestrictedSender{OrgID: org.ID, MailboxID: chris.ID, SenderAddress: "chris@contoso.com",
		Reason: "r", Action: "BlockUser", CreatedAt: changed}); !isNotFound(err) {
		t.Errorf("restricting a removed mailbox: %v, want not found", err)
	}

	sub := &store.Submission{OrgID: org.ID, MessageID: "m", Subject: "s", ReceivedAt: time.Now(), EnvelopeFrom: "sean@contoso.com",
		AuthMailbox: sean.ID, Body: []byte("x"), Recipients: 5, ExternalRecipients: 3,
		Events: []store.TraceEvent{{Event: store.EventAgentInfo, Detail: "outbound spam policy alert"}}}
	must(t, s.Commit(ctx, sub))

	s = h.reopen()
	c, err := s.LoadDirectory(ctx)
	must(t, err)
	if len(c.Organizations) != 1 || !c.Organizations[0].AllowLegacyTLSClients {
		t.Errorf("AllowLegacyTLSClients not kept: %+v", c.Organizations)
	}
	for _, m := range c.Mailboxes {
		if m.ID == sean.ID && !m.TokensValidFrom.Equal(revoked) {
			t.Errorf("STSRefreshTokensValidFrom read back as %v, want %v", m.TokensValidFrom, revoked)
		}
	}
	if len(c.OutboundSpamPolicies) != 1 {
		t.Fatalf("outbound spam policies: %d, want 1", len(c.OutboundSpamPolicies))
	}
	if got := c.OutboundSpamPolicies[0]; got.RecipientLimitPerDay != 1500 || got.RecipientLimitExternalPerHour != 400 ||
		got.RecipientLimitInternalPerHour != 800 || got.ActionWhenThresholdReached != "BlockUser" || !got.WhenChanged.Equal(changed) {
		t.Errorf("outbound spam policy read back as %+v", got)
	}
	if len(c.ConnectionFilters) != 1 {
		t.Fatalf("connection filter policies: %d, want 1", len(c.ConnectionFilters))
	}
	got := c.ConnectionFilters[0]
	if len(got.IPAllowList) != 2 || got.IPAllowList[1].String() != "2001:db8::/48" || len(got.IPBlockList) != 1 ||
		got.IPBlockList[0].String() != "198.51.100.7" {
		t.Errorf("connection filter read back as allow %v block %v", got.IPAllowList, got.IPBlockList)
	}
	if len(c.RestrictedSenders) != 1 {
		t.Fatalf("restricted senders: %d, want 1", len(c.RestrictedSenders))
	}
	if r := c.RestrictedSenders[0]; r.MailboxID != sean.ID || !r.ExpiresAt.Equal(block.ExpiresAt) || !r.ReleasedAt.Equal(block.ReleasedAt) {
		t.Errorf("restricted sender read back as %+v", r)
	}
	hist, err := s.RecipientHistory(ctx, time.Now().Add(-time.Hour))
	must(t, err)
	if len(hist) != 1 || hist[0].Recipients != 5 || hist[0].External != 3 {
		t.Errorf("recipient history %+v, want 5 recipients of which 3 external", hist)
	}
	events, err := s.TraceEvents(ctx, sub.ID)
	must(t, err)
	var alert bool
	for _, e := range events {
		alert = alert || e.Event == store.EventAgentInfo
	}
	if !alert {
		t.Errorf("the submission's AgentInfo event was not recorded: %+v", events)
	}
}

// testRoleGroups: memberships are added once, listed per organization and
// per mailbox, removed once, and go with their mailbox.
func testRoleGroups(t *testing.T, h *harness) {
	ctx := context.Background()
	s := h.s
	org, sean, chris := seed(t, s)
	om := store.RoleGroupMember{OrgID: org.ID, Role: "Organization Management", MailboxID: sean.ID}
	must(t, s.AddRoleGroupMember(ctx, om))
	if err := s.AddRoleGroupMember(ctx, om); !errors.Is(err, store.ErrConflict) {
		t.Errorf("adding a membership twice: %v, want conflict", err)
	}
	must(t, s.AddRoleGroupMember(ctx, store.RoleGroupMember{OrgID: org.ID, Role: "View-Only Organization Management", MailboxID: sean.ID}))
	must(t, s.AddRoleGroupMember(ctx, store.RoleGroupMember{OrgID: org.ID, Role: "Recipient Management", MailboxID: chris.ID}))

	s = h.reopen()
	members, err := s.RoleGroupMembers(ctx, org.ID)
	must(t, err)
	if len(members) != 3 || members[0].Role != "Organization Management" || members[1].Role != "Recipient Management" {
		t.Errorf("members %+v, want three ordered by role group", members)
	}
	roles, err := s.MailboxRoleGroups(ctx, sean.ID)
	must(t, err)
	if len(roles) != 2 {
		t.Errorf("sean's role groups %v, want 2", roles)
	}
	must(t, s.RemoveRoleGroupMember(ctx, om))
	if err := s.RemoveRoleGroupMember(ctx, om); !isNotFound(err) {
		t.Errorf("removing a membership twice: %v, want not found", err)
	}
	must(t, s.DeleteMailbox(ctx, chris.ID))
	members, err = s.RoleGroupMembers(ctx, org.ID)
	must(t, err)
	if len(members) != 1 || members[0].MailboxID != sean.ID {
		t.Errorf("after removing chris's mailbox and sean's Organization Management: %+v", members)
	}
}
