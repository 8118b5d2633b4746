// Package directorytest compares directory snapshots on every lookup
// method, for the property tests that hold an incrementally updated
// Snapshot (Snapshot.Apply) to one rebuilt from scratch (NewSnapshot): the
// directory package's own, over random contents, and the store suite's,
// over random changes written to each store.
package directorytest

import (
	"fmt"
	"reflect"
	"strings"

	"postern.dev/postern/internal/directory"
)

// Diff asks got and want every lookup question the names and IDs in either
// snapshot's contents (and a few that exist in neither) make possible, and
// returns the questions they answer differently; nil when they agree.
// Answers are compared by value: an incremental update reads new objects.
func Diff(got, want *directory.Snapshot) []string {
	var diffs []string
	check := func(what string, g, w any) {
		if !reflect.DeepEqual(g, w) {
			diffs = append(diffs, fmt.Sprintf("%s: got %s, want %s", what, show(g), show(w)))
		}
	}
	gc, wc := got.Contents(), want.Contents()
	gv, wv := reflect.ValueOf(gc), reflect.ValueOf(wc)
	for i := range gv.NumField() {
		name := gv.Type().Field(i).Name
		if name == "Position" {
			continue // a notified change does not advance it
		}
		g, w := gv.Field(i), wv.Field(i)
		if g.Len() != w.Len() {
			check("len(Contents()."+name+")", g.Len(), w.Len())
			continue
		}
		for j := range g.Len() {
			check(fmt.Sprintf("Contents().%s[%d]", name, j), g.Index(j).Interface(), w.Index(j).Interface())
		}
	}
	checkList := func(what string, g, w any) {
		gv, wv := reflect.ValueOf(g), reflect.ValueOf(w)
		if gv.Len() != 0 || wv.Len() != 0 {
			check(what, g, w)
		}
	}
	checkList("Organizations", got.Organizations(), want.Organizations())
	checkList("Domains", got.Domains(), want.Domains())
	checkList("AllAuthServers", got.AllAuthServers(), want.AllAuthServers())
	checkList("InboundConnectors", got.InboundConnectors(), want.InboundConnectors())
	checkList("LoggedInboundConnectors", got.LoggedInboundConnectors(), want.LoggedInboundConnectors())

	orgs := map[int64]bool{0: true, 1 << 40: true}
	mailboxes := map[int64]bool{0: true, 1 << 40: true}
	principals := map[int64]bool{0: true}
	names := map[string]bool{"": true, "nobody@nowhere.example": true}
	policies := map[string]bool{"": true, "nopolicy": true}
	domains := map[string]bool{"nowhere.example": true}
	apps := map[string]bool{"no-app": true}
	for _, c := range []directory.Contents{gc, wc} {
		for _, o := range c.Organizations {
			orgs[o.ID] = true
			policies[o.DefaultAuthenticationPolicy] = true
		}
		for _, m := range c.Mailboxes {
			mailboxes[m.ID] = true
			orgs[m.OrgID] = true
			for _, a := range m.Addresses() {
				names[a] = true
			}
			names[m.UserPrincipalName] = true
			names[m.Alias] = true
			names[strings.ToUpper(m.Alias)] = true
			policies[m.AuthenticationPolicy] = true
			for _, t := range m.GrantSendOnBehalfTo {
				mailboxes[t] = true
			}
		}
		for _, p := range c.Permissions {
			mailboxes[p.Identity], mailboxes[p.Trustee] = true, true
		}
		for _, p := range c.MailboxPerms {
			mailboxes[p.Identity], mailboxes[p.TrusteeMailbox], principals[p.TrusteePrincipal] = true, true, true
		}
		for _, r := range c.RestrictedSenders {
			mailboxes[r.MailboxID] = true
		}
		for _, p := range c.Policies {
			policies[p.Name] = true
			policies[strings.ToUpper(p.Name)] = true
		}
		for _, d := range c.Domains {
			domains[d.DomainName] = true
		}
		for _, p := range c.Principals {
			apps[p.AppId] = true
		}
		for _, a := range c.OAuthApps {
			apps[a.AppId] = true
		}
	}
	for id := range orgs {
		check(fmt.Sprintf("Organization(%d)", id), got.Organization(id), want.Organization(id))
		checkList(fmt.Sprintf("AuthServers(%d)", id), got.AuthServers(id), want.AuthServers(id))
		check(fmt.Sprintf("OutboundSpamFilterPolicy(%d)", id), got.OutboundSpamFilterPolicy(id), want.OutboundSpamFilterPolicy(id))
		check(fmt.Sprintf("ConnectionFilterPolicy(%d)", id), got.ConnectionFilterPolicy(id), want.ConnectionFilterPolicy(id))
		for p := range policies {
			check(fmt.Sprintf("AuthenticationPolicy(%d, %q)", id, p), got.AuthenticationPolicy(id, p), want.AuthenticationPolicy(id, p))
		}
		for n := range names {
			check(fmt.Sprintf("MailboxByAlias(%d, %q)", id, n), got.MailboxByAlias(id, n), want.MailboxByAlias(id, n))
		}
		for d := range domains {
			check(fmt.Sprintf("OutboundConnectorFor(%d, %q)", id, d), got.OutboundConnectorFor(id, d), want.OutboundConnectorFor(id, d))
		}
		for a := range apps {
			check(fmt.Sprintf("ServicePrincipal(%d, %q)", id, a), got.ServicePrincipal(id, a), want.ServicePrincipal(id, a))
		}
	}
	for n := range names {
		check(fmt.Sprintf("MailboxByAddress(%q)", n), got.MailboxByAddress(n), want.MailboxByAddress(n))
		check(fmt.Sprintf("MailboxBySignIn(%q)", n), got.MailboxBySignIn(n), want.MailboxBySignIn(n))
		check(fmt.Sprintf("MailboxBySignIn(%q)", strings.ToUpper(n)), got.MailboxBySignIn(strings.ToUpper(n)), want.MailboxBySignIn(strings.ToUpper(n)))
	}
	for d := range domains {
		check(fmt.Sprintf("AcceptedDomain(%q)", d), got.AcceptedDomain(d), want.AcceptedDomain(d))
		check(fmt.Sprintf("DkimSigningConfig(%q)", d), got.DkimSigningConfig(d), want.DkimSigningConfig(d))
	}
	for a := range apps {
		check(fmt.Sprintf("OAuthApp(%q)", a), got.OAuthApp(a), want.OAuthApp(a))
	}
	for id := range mailboxes {
		m := got.Mailbox(id)
		check(fmt.Sprintf("Mailbox(%d)", id), m, want.Mailbox(id))
		if m != nil {
			check(fmt.Sprintf("EffectiveAuthenticationPolicy(%d)", id), got.EffectiveAuthenticationPolicy(m), want.EffectiveAuthenticationPolicy(m))
		}
		check(fmt.Sprintf("RestrictedSender(%d)", id), got.RestrictedSender(id), want.RestrictedSender(id))
		for p := range principals {
			check(fmt.Sprintf("PrincipalHasFullAccess(%d, %d)", p, id), got.PrincipalHasFullAccess(p, id), want.PrincipalHasFullAccess(p, id))
		}
		for t := range mailboxes {
			check(fmt.Sprintf("HasSendAs(%d, %d)", t, id), got.HasSendAs(t, id), want.HasSendAs(t, id))
			check(fmt.Sprintf("HasSendOnBehalf(%d, %d)", t, id), got.HasSendOnBehalf(t, id), want.HasSendOnBehalf(t, id))
			check(fmt.Sprintf("MailboxHasFullAccess(%d, %d)", t, id), got.MailboxHasFullAccess(t, id), want.MailboxHasFullAccess(t, id))
		}
	}
	return diffs
}

func show(v any) string {
	rv := reflect.ValueOf(v)
	if rv.Kind() == reflect.Pointer {
		if rv.IsNil() {
			return "nil"
		}
		return fmt.Sprintf("%+v", rv.Elem().Interface())
	}
	return fmt.Sprintf("%+v", v)
}
