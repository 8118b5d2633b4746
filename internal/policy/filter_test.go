package policy

import (
	"net/netip"
	"testing"
	"time"

	"postern.dev/postern/internal/address"
	"postern.dev/postern/internal/directory"
	"postern.dev/postern/internal/reply"
)

func TestJudgeOutboundSpam(t *testing.T) {
	now := time.Date(2026, 3, 4, 15, 30, 0, 0, time.UTC)
	midnight := time.Date(2026, 3, 5, 0, 0, 0, 0, time.UTC)
	pol := func(ext, in, day int, action string) *directory.OutboundSpamFilterPolicy {
		return &directory.OutboundSpamFilterPolicy{RecipientLimitExternalPerHour: ext, RecipientLimitInternalPerHour: in,
			RecipientLimitPerDay: day, ActionWhenThresholdReached: action}
	}
	for _, tc := range []struct {
		name     string
		p        *directory.OutboundSpamFilterPolicy
		used     RecipientUsage
		msg      RecipientCounts
		released bool
		limit    string
		block    bool
		until    time.Time
		alert    bool
	}{
		{name: "service defaults never act", p: pol(0, 0, 0, directory.ActionBlockUser),
			used: RecipientUsage{9000, 9000, 9999}, msg: RecipientCounts{500, 500}},
		{name: "within every limit", p: pol(3, 3, 5, directory.ActionBlockUser),
			used: RecipientUsage{1, 1, 2}, msg: RecipientCounts{1, 2}},
		{name: "exactly at the external limit is allowed", p: pol(3, 0, 0, directory.ActionBlockUser),
			used: RecipientUsage{0, 2, 2}, msg: RecipientCounts{0, 1}},
		{name: "past the external limit blocks until released", p: pol(3, 0, 0, directory.ActionBlockUser),
			used: RecipientUsage{0, 3, 3}, msg: RecipientCounts{0, 1}, limit: "RecipientLimitExternalPerHour", block: true},
		{name: "BlockUserForToday ends at the next UTC midnight", p: pol(0, 2, 0, directory.ActionBlockUserForToday),
			used: RecipientUsage{2, 0, 2}, msg: RecipientCounts{1, 0}, limit: "RecipientLimitInternalPerHour", block: true, until: midnight},
		{name: "internal recipients do not count against the external limit", p: pol(1, 0, 0, directory.ActionBlockUser),
			used: RecipientUsage{50, 1, 51}, msg: RecipientCounts{5, 0}},
		{name: "the daily limit counts both", p: pol(0, 0, 4, directory.ActionBlockUser),
			used: RecipientUsage{0, 0, 3}, msg: RecipientCounts{1, 1}, limit: "RecipientLimitPerDay", block: true},
		{name: "external is checked first", p: pol(1, 1, 1, directory.ActionBlockUser),
			used: RecipientUsage{1, 1, 2}, msg: RecipientCounts{1, 1}, limit: "RecipientLimitExternalPerHour", block: true},
		{name: "Alert on crossing", p: pol(3, 0, 0, directory.ActionAlert),
			used: RecipientUsage{0, 2, 2}, msg: RecipientCounts{0, 2}, limit: "RecipientLimitExternalPerHour", alert: true},
		{name: "Alert once: already past", p: pol(3, 0, 0, directory.ActionAlert),
			used: RecipientUsage{0, 5, 5}, msg: RecipientCounts{0, 1}},
		{name: "released today: alert, not blocked", p: pol(3, 0, 0, directory.ActionBlockUser),
			used: RecipientUsage{0, 3, 3}, msg: RecipientCounts{0, 1}, released: true, limit: "RecipientLimitExternalPerHour", alert: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := JudgeOutboundSpam(tc.p, tc.used, tc.msg, tc.released, now)
			if v.Limit != tc.limit || v.Block != tc.block || !v.Until.Equal(tc.until) || v.Alert != tc.alert {
				t.Fatalf("verdict %+v; want limit %q block %v until %v alert %v", v, tc.limit, tc.block, tc.until, tc.alert)
			}
		})
	}
}

func TestCheckRestricted(t *testing.T) {
	now := time.Date(2026, 3, 4, 15, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name string
		r    *directory.RestrictedSender
		want *reply.Reply
	}{
		{"none", nil, nil},
		{"BlockUser", &directory.RestrictedSender{Action: directory.ActionBlockUser}, reply.BadOutboundSender},
		{"BlockUserForToday, today", &directory.RestrictedSender{ExpiresAt: now.Add(time.Hour)}, reply.BadOutboundSender},
		{"BlockUserForToday, expired", &directory.RestrictedSender{ExpiresAt: now}, nil},
		{"released", &directory.RestrictedSender{ReleasedAt: now.Add(-time.Minute)}, nil},
	} {
		if got := CheckRestricted(tc.r, now); got != tc.want {
			t.Errorf("%s: got %v, want %v", tc.name, got, tc.want)
		}
	}
	if reply.String(reply.BadOutboundSender) != "550 5.1.8 Access denied, bad outbound sender" {
		t.Fatalf("reply text %q", reply.String(reply.BadOutboundSender))
	}
}

func mustRanges(t *testing.T, entries ...string) []directory.IPRange {
	var out []directory.IPRange
	for _, e := range entries {
		r, err := directory.ParseIPRange(e)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, r)
	}
	return out
}

func TestConnectionFilter(t *testing.T) {
	dir := directory.NewSnapshot(directory.Contents{
		Organizations: []*directory.Organization{{ID: 1, Name: "Contoso"}, {ID: 2, Name: "Fabrikam"}},
		ConnectionFilters: []*directory.ConnectionFilterPolicy{{OrgID: 1,
			IPAllowList: mustRanges(t, "192.0.2.10", "2001:db8::/64"),
			IPBlockList: mustRanges(t, "192.0.2.0/24", "198.51.100.1-198.51.100.20", "2001:db8:1::/48")}},
	})
	contoso, fabrikam := dir.Organization(1), dir.Organization(2)
	for _, tc := range []struct {
		name    string
		org     *directory.Organization
		ip      string
		allowed bool
		reply   string
	}{
		{"unlisted", contoso, "203.0.113.1", false, ""},
		{"blocked by CIDR", contoso, "192.0.2.45", false, "550 5.7.606 Access denied, banned sending IP [192.0.2.45]"},
		{"blocked by range", contoso, "198.51.100.20", false, "550 5.7.606 Access denied, banned sending IP [198.51.100.20]"},
		{"past the range", contoso, "198.51.100.21", false, ""},
		{"allow list wins over block list", contoso, "192.0.2.10", true, ""},
		{"IPv4-mapped address counts as IPv4", contoso, "::ffff:192.0.2.45", false, "550 5.7.606 Access denied, banned sending IP [192.0.2.45]"},
		{"IPv6 blocked", contoso, "2001:db8:1:2::5", false, "550 5.7.606 Access denied, banned sending IP [2001:db8:1:2::5]"},
		{"IPv6 allowed", contoso, "2001:db8::9", true, ""},
		{"another organization's list does not apply", fabrikam, "192.0.2.45", false, ""},
		{"no organization", nil, "192.0.2.45", false, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			allowed, rep := ConnectionFilter(dir, tc.org, netip.MustParseAddr(tc.ip))
			got := ""
			if rep != nil {
				got = reply.String(rep)
			}
			if allowed != tc.allowed || got != tc.reply {
				t.Fatalf("got allowed=%v %q; want %v %q", allowed, got, tc.allowed, tc.reply)
			}
		})
	}
}

func TestSourceThrottling(t *testing.T) {
	dir := directory.NewSnapshot(directory.Contents{
		Organizations: []*directory.Organization{{ID: 1, Name: "Contoso"}},
		Domains:       []*directory.AcceptedDomain{{ID: 1, OrgID: 1, DomainName: "contoso.com", DomainType: directory.Authoritative}},
	})
	org := dir.Organization(1)
	ic := &directory.InboundConnector{OrgID: 1, Name: "Printers"}
	own, _ := address.Parse("scanner@contoso.com")
	other, _ := address.Parse("news@example.org")
	for _, tc := range []struct {
		name string
		v    Verdict
		from address.Address
		want SourceClass
	}{
		{"Direct Send", Verdict{Org: org}, own, DirectSend},
		{"ordinary inbound mail", Verdict{Org: org}, other, Unthrottled},
		{"null sender", Verdict{Org: org}, address.Address{}, Unthrottled},
		{"connector", Verdict{Org: org, Attribution: Attribution{Connector: ic}}, other, ConnectorRelay},
	} {
		if got := SourceClassOf(dir, tc.v, tc.from); got != tc.want {
			t.Errorf("%s: class %v, want %v", tc.name, got, tc.want)
		}
	}
	l := SourceLimits{DirectSendPerHour: 2, RelayPerHour: 0}
	for _, tc := range []struct {
		class SourceClass
		sent  int
		want  *reply.Reply
	}{
		{DirectSend, 1, nil},
		{DirectSend, 2, reply.SourceThrottled},
		{ConnectorRelay, 1000000, nil}, // 0: unlimited
		{Unthrottled, 1000000, nil},
	} {
		if got := CheckSourceRate(tc.class, tc.sent, l); got != tc.want {
			t.Errorf("%v after %d: got %v, want %v", tc.class, tc.sent, got, tc.want)
		}
	}
	if reply.String(reply.SourceThrottled) != "451 4.7.500 Access denied, please try again later" {
		t.Fatalf("reply text %q", reply.String(reply.SourceThrottled))
	}
}

func TestCountRecipients(t *testing.T) {
	dir := directory.NewSnapshot(directory.Contents{
		Organizations: []*directory.Organization{{ID: 1}, {ID: 2}},
		Domains: []*directory.AcceptedDomain{{ID: 1, OrgID: 1, DomainName: "contoso.com", DomainType: directory.InternalRelay},
			{ID: 2, OrgID: 2, DomainName: "fabrikam.com", DomainType: directory.Authoritative}},
	})
	var rcpts []address.Address
	for _, s := range []string{"a@contoso.com", "b@contoso.com", "c@fabrikam.com", "d@example.org"} {
		a, _ := address.Parse(s)
		rcpts = append(rcpts, a)
	}
	if got := CountRecipients(dir, 1, rcpts); got != (RecipientCounts{Internal: 2, External: 2}) {
		t.Fatalf("counts %+v", got)
	}
}
