package storetest

import (
	"context"
	"errors"
	"net/netip"
	"reflect"
	"testing"
	"time"

	"postern.dev/postern/internal/directory"
	"postern.dev/postern/internal/store"
)

// testDirectoryRoundTrip: mailboxes, settings, policies and permissions
// survive closing and opening the store, $null settings included.
func testDirectoryRoundTrip(t *testing.T, h *harness) {
	s := h.s
	ctx := context.Background()
	org, sean, chris := seed(t, s)
	disabled := false
	sean.SmtpClientAuthenticationDisabled = &disabled
	sean.ImapEnabled, sean.PopEnabled = true, false
	sean.IssueWarningQuota, sean.ProhibitSendQuota, sean.ProhibitSendReceiveQuota = 1<<20, 2<<20, directory.Unlimited
	must(t, s.SaveMailbox(ctx, sean))
	org.CASMailboxPlanImapEnabled, org.CASMailboxPlanPopEnabled = false, true
	must(t, s.SaveOrganization(ctx, org))
	must(t, s.SavePolicy(ctx, &directory.AuthenticationPolicy{OrgID: org.ID, Name: "BlockBasic"}))
	must(t, s.SavePolicy(ctx, &directory.AuthenticationPolicy{OrgID: org.ID, Name: "ImapOnly", AllowBasicAuthImap: true}))
	must(t, s.SavePermission(ctx, &directory.RecipientPermission{OrgID: org.ID, Identity: chris.ID, Trustee: sean.ID}))

	s = h.reopen()
	c, err := s.LoadDirectory(ctx)
	must(t, err)
	snap := directory.NewSnapshot(c)
	got := snap.MailboxByAddress("sk@contoso.com")
	if got == nil || got.ID != sean.ID || got.SmtpClientAuthenticationDisabled == nil || *got.SmtpClientAuthenticationDisabled {
		t.Fatalf("sean after reopen: %+v", got)
	}
	if snap.MailboxByAddress("chris@contoso.com").SmtpClientAuthenticationDisabled != nil {
		t.Error("chris's $null setting must stay $null")
	}
	if !snap.HasSendAs(sean.ID, chris.ID) || !snap.HasSendOnBehalf(sean.ID, chris.ID) {
		t.Error("permissions lost")
	}
	if p := snap.AuthenticationPolicy(org.ID, "blockbasic"); p == nil || p.AllowBasicAuthSmtp {
		t.Errorf("policy: %+v", p)
	}
	if !snap.Organization(org.ID).SmtpClientAuthenticationDisabled {
		t.Error("org setting lost")
	}
	if !got.ImapEnabled || got.PopEnabled || got.IssueWarningQuota != 1<<20 || got.ProhibitSendQuota != 2<<20 || got.ProhibitSendReceiveQuota != directory.Unlimited {
		t.Errorf("access and quotas: %+v", got)
	}
	if o := snap.Organization(org.ID); o.CASMailboxPlanImapEnabled || !o.CASMailboxPlanPopEnabled {
		t.Errorf("CAS mailbox plan: %+v", o)
	}
	if p := snap.AuthenticationPolicy(org.ID, "ImapOnly"); p == nil || !p.AllowBasicAuthImap || p.AllowBasicAuthPop || p.AllowBasicAuthSmtp {
		t.Errorf("policy: %+v", p)
	}
}

// testDirectoryObjects: every kind of directory object is inserted (ID
// set), read back field for field, updated, refused when its name is
// taken (without case where Exchange compares without case), and deleted
// (ErrNotFound the second time).
func testDirectoryObjects(t *testing.T, h *harness) {
	s := h.s
	ctx := context.Background()
	org, sean, chris := seed(t, s)
	created := time.Date(2026, 3, 4, 5, 6, 7, 891, time.UTC)
	sp := &directory.ServicePrincipal{OrgID: org.ID, AppId: "App-1", ObjectId: "Obj-1", DisplayName: "Scanner app", WhenCreated: created}
	must(t, s.SaveServicePrincipal(ctx, sp))

	type object struct {
		name string
		// save saves the object (given or changed); dup is another object
		// whose name collides (nil when names may repeat); load finds it in
		// the directory; del deletes it.
		obj  any
		save func(any) error
		dup  any
		load func(c directory.Contents) any
		del  func(id int64) error
		id   func() int64
		edit func()
	}
	inbound := &directory.InboundConnector{OrgID: org.ID, Name: "Printers", ConnectorType: directory.OnPremises,
		SenderDomains: []string{"*"}, SenderIPAddresses: []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24"), netip.MustParsePrefix("2001:db8::/32")},
		TlsSenderCertificateName: "*.contoso.com", TlsSenderCertificateFingerprints: []string{"ab12"}, RequireTls: true,
		RestrictDomainsToIPAddresses: true, Enabled: true, Comment: "floor 3", WhenCreated: created, ProtocolLogging: true}
	outbound := &directory.OutboundConnector{OrgID: org.ID, Name: "To Partner", ConnectorType: directory.Partner,
		RecipientDomains: []string{"fabrikam.example"}, SmartHosts: []string{"mx.fabrikam.example:2525"}, TlsSettings: directory.TlsDomainValidation,
		TlsDomain: "mx.fabrikam.example", Enabled: true, Comment: "c", AuthMechanism: directory.AuthBasic, SmtpUser: "u",
		SmtpPasswordSealed: "sealed", OAuthTokenEndpoint: "https://idp.example/token", OAuthClientId: "cid",
		OAuthClientSecretSealed: "sealed2", OAuthScope: "scope", WhenCreated: created}
	dkim := &directory.DkimSigningConfig{OrgID: org.ID, Domain: "contoso.com", Enabled: true, Algorithm: "RSA", KeySize: 2048,
		ActiveSelector: 2, Selector1KeySealed: "k1", Selector2KeySealed: "k2", Selector1PublicKey: "p1", Selector2PublicKey: "p2",
		KeyCreationTime: created, RotateOnDate: created.Add(time.Hour), WhenCreated: created}
	authServer := &directory.AuthServer{OrgID: org.ID, Name: "Entra", AuthMetadataUrl: "https://idp.example/.well-known/openid-configuration",
		Issuer: "https://idp.example/", JwksUri: "https://idp.example/keys", TokenEndpoint: "https://idp.example/token",
		Audience: "api://postern", UserClaims: []string{"upn", "email"}, Enabled: true, WhenCreated: created}
	app := &directory.OAuthApp{OrgID: org.ID, Name: "Billing", AppId: "app-billing", SecretHashes: []string{"$argon2id$x"},
		Certificates: []string{"-----BEGIN CERTIFICATE-----"}, WhenCreated: created}
	perm := &directory.MailboxPermission{OrgID: org.ID, Identity: chris.ID, TrusteePrincipal: sp.ID}
	delegate := &directory.MailboxPermission{OrgID: org.ID, Identity: chris.ID, TrusteeMailbox: sean.ID}
	sendAs := &directory.RecipientPermission{OrgID: org.ID, Identity: chris.ID, Trustee: sean.ID}
	policy := &directory.AuthenticationPolicy{OrgID: org.ID, Name: "Allow SMTP", AllowBasicAuthSmtp: true, AllowBasicAuthPop: true, WhenCreated: created}
	domain := &directory.AcceptedDomain{OrgID: org.ID, Name: "fabrikam.example", DomainName: "fabrikam.example", DomainType: directory.InternalRelay, WhenCreated: created}

	find := func(list any, id int64) any {
		v := reflect.ValueOf(list)
		for i := range v.Len() {
			if v.Index(i).Elem().FieldByName("ID").Int() == id {
				return v.Index(i).Interface()
			}
		}
		return nil
	}
	objects := []object{
		{name: "inbound connector", obj: inbound, save: func(o any) error { return s.SaveConnector(ctx, o.(*directory.InboundConnector)) },
			dup:  &directory.InboundConnector{OrgID: org.ID, Name: "PRINTERS", ConnectorType: directory.OnPremises},
			load: func(c directory.Contents) any { return find(c.Connectors, inbound.ID) }, del: func(id int64) error { return s.DeleteConnector(ctx, id) },
			id: func() int64 { return inbound.ID }, edit: func() { inbound.Enabled, inbound.ProtocolLogging = false, false }},
		{name: "outbound connector", obj: outbound, save: func(o any) error { return s.SaveOutboundConnector(ctx, o.(*directory.OutboundConnector)) },
			dup:  &directory.OutboundConnector{OrgID: org.ID, Name: "to partner", ConnectorType: directory.Partner},
			load: func(c directory.Contents) any { return find(c.Outbound, outbound.ID) }, del: func(id int64) error { return s.DeleteOutboundConnector(ctx, id) },
			id: func() int64 { return outbound.ID }, edit: func() { outbound.SmartHosts = []string{"a.example", "b.example"} }},
		{name: "DKIM signing config", obj: dkim, save: func(o any) error { return s.SaveDkimSigningConfig(ctx, o.(*directory.DkimSigningConfig)) },
			dup:  &directory.DkimSigningConfig{OrgID: org.ID, Domain: "contoso.com", Algorithm: "RSA"},
			load: func(c directory.Contents) any { return find(c.Dkim, dkim.ID) }, del: nil,
			id: func() int64 { return dkim.ID }, edit: func() { dkim.ActiveSelector, dkim.RotateOnDate = 1, time.Time{} }},
		{name: "auth server", obj: authServer, save: func(o any) error { return s.SaveAuthServer(ctx, o.(*directory.AuthServer)) },
			dup:  &directory.AuthServer{OrgID: org.ID, Name: "ENTRA"},
			load: func(c directory.Contents) any { return find(c.AuthServers, authServer.ID) }, del: func(id int64) error { return s.DeleteAuthServer(ctx, id) },
			id: func() int64 { return authServer.ID }, edit: func() { authServer.Enabled = false }},
		{name: "OAuth app", obj: app, save: func(o any) error { return s.SaveOAuthApp(ctx, o.(*directory.OAuthApp)) },
			dup:  &directory.OAuthApp{OrgID: org.ID, Name: "billing", AppId: "other"},
			load: func(c directory.Contents) any { return find(c.OAuthApps, app.ID) }, del: func(id int64) error { return s.DeleteOAuthApp(ctx, id) },
			id: func() int64 { return app.ID }, edit: func() { app.SecretHashes = []string{"$argon2id$x", "$argon2id$y"} }},
		{name: "mailbox permission (application)", obj: perm, save: func(o any) error { return s.SaveMailboxPermission(ctx, o.(*directory.MailboxPermission)) },
			load: func(c directory.Contents) any { return find(c.MailboxPerms, perm.ID) }, del: func(id int64) error { return s.DeleteMailboxPermission(ctx, id) },
			id: func() int64 { return perm.ID }},
		{name: "mailbox permission (delegate)", obj: delegate, save: func(o any) error { return s.SaveMailboxPermission(ctx, o.(*directory.MailboxPermission)) },
			load: func(c directory.Contents) any { return find(c.MailboxPerms, delegate.ID) }, del: func(id int64) error { return s.DeleteMailboxPermission(ctx, id) },
			id: func() int64 { return delegate.ID }},
		{name: "Send As permission", obj: sendAs, save: func(o any) error { return s.SavePermission(ctx, o.(*directory.RecipientPermission)) },
			dup:  &directory.RecipientPermission{OrgID: org.ID, Identity: chris.ID, Trustee: sean.ID},
			load: func(c directory.Contents) any { return find(c.Permissions, sendAs.ID) }, del: func(id int64) error { return s.DeletePermission(ctx, id) },
			id: func() int64 { return sendAs.ID }},
		{name: "authentication policy", obj: policy, save: func(o any) error { return s.SavePolicy(ctx, o.(*directory.AuthenticationPolicy)) },
			dup:  &directory.AuthenticationPolicy{OrgID: org.ID, Name: "allow smtp"},
			load: func(c directory.Contents) any { return find(c.Policies, policy.ID) }, del: func(id int64) error { return s.DeletePolicy(ctx, id) },
			id: func() int64 { return policy.ID }, edit: func() { policy.AllowBasicAuthImap = true }},
		{name: "accepted domain", obj: domain, save: func(o any) error { return s.SaveDomain(ctx, o.(*directory.AcceptedDomain)) },
			dup:  &directory.AcceptedDomain{OrgID: org.ID, Name: "other", DomainName: "fabrikam.example", DomainType: directory.Authoritative},
			load: func(c directory.Contents) any { return find(c.Domains, domain.ID) }, del: func(id int64) error { return s.DeleteDomain(ctx, id) },
			id: func() int64 { return domain.ID }, edit: func() { domain.DomainType = directory.Authoritative }},
	}
	for _, o := range objects {
		must(t, o.save(o.obj))
		if o.id() == 0 {
			t.Fatalf("%s: no ID after insert", o.name)
		}
		check := func(when string) {
			c, err := s.LoadDirectory(ctx)
			must(t, err)
			if got := o.load(c); !reflect.DeepEqual(got, o.obj) {
				t.Errorf("%s %s:\n got %+v\nwant %+v", o.name, when, got, o.obj)
			}
		}
		check("after insert")
		if o.edit != nil {
			o.edit()
			must(t, o.save(o.obj))
			check("after update")
		}
		if o.dup != nil {
			if err := o.save(o.dup); !errors.Is(err, store.ErrConflict) {
				t.Errorf("%s: a second one with the same name: %v, want ErrConflict", o.name, err)
			}
		}
	}
	// The service principal, and a rename to a taken name.
	c, err := s.LoadDirectory(ctx)
	must(t, err)
	if got := find(c.Principals, sp.ID); !reflect.DeepEqual(got, sp) {
		t.Errorf("service principal: got %+v, want %+v", got, sp)
	}
	if err := s.SaveServicePrincipal(ctx, &directory.ServicePrincipal{OrgID: org.ID, AppId: "app-1", ObjectId: "o2"}); !errors.Is(err, store.ErrConflict) {
		t.Errorf("service principal with an AppId differing in case: %v", err)
	}
	other := &directory.AuthenticationPolicy{OrgID: org.ID, Name: "Other"}
	must(t, s.SavePolicy(ctx, other))
	other.Name = "ALLOW smtp"
	if err := s.SavePolicy(ctx, other); !errors.Is(err, store.ErrConflict) {
		t.Errorf("rename onto a taken name: %v", err)
	}
	if err := s.SavePolicy(ctx, &directory.AuthenticationPolicy{ID: 99999, OrgID: org.ID, Name: "Gone"}); !isNotFound(err) {
		t.Errorf("update of a missing object: %v", err)
	}
	// Deleting; a service principal takes its grants with it.
	for _, o := range objects {
		if o.del == nil {
			continue
		}
		must(t, o.del(o.id()))
		if err := o.del(o.id()); !isNotFound(err) {
			t.Errorf("%s deleted twice: %v", o.name, err)
		}
	}
	must(t, s.SaveMailboxPermission(ctx, &directory.MailboxPermission{OrgID: org.ID, Identity: chris.ID, TrusteePrincipal: sp.ID}))
	must(t, s.DeleteServicePrincipal(ctx, sp.ID))
	if err := s.DeleteServicePrincipal(ctx, sp.ID); !isNotFound(err) {
		t.Errorf("service principal deleted twice: %v", err)
	}
	c, err = s.LoadDirectory(ctx)
	must(t, err)
	if len(c.Principals)+len(c.MailboxPerms)+len(c.Connectors)+len(c.Outbound)+len(c.AuthServers)+len(c.OAuthApps)+len(c.Permissions) != 0 ||
		len(c.Policies) != 1 || len(c.Domains) != 1 || len(c.Dkim) != 1 {
		t.Errorf("left after deleting: %+v", c)
	}
}

// testAddressConflict: a mailbox claiming another's address is refused
// whole (no ID, no row); deleting a missing mailbox is ErrNotFound.
func testAddressConflict(t *testing.T, h *harness) {
	s := h.s
	ctx := context.Background()
	org, _, _ := seed(t, s)
	dup := &directory.Mailbox{OrgID: org.ID, Name: "dup", PrimarySmtpAddress: "dup@contoso.com", UserPrincipalName: "dup@contoso.com",
		EmailAddresses: []string{"sk@contoso.com"}, Type: directory.UserMailbox}
	if err := s.SaveMailbox(ctx, dup); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("want ErrConflict, got %v", err)
	}
	if dup.ID != 0 {
		t.Error("a failed insert must not leave an ID behind")
	}
	c, err := s.LoadDirectory(ctx)
	must(t, err)
	if len(c.Mailboxes) != 2 {
		t.Fatalf("want 2 mailboxes, got %d", len(c.Mailboxes))
	}
	if err := s.DeleteMailbox(ctx, 999); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("delete missing: %v", err)
	}
	// Mailbox names compare without case within an organization.
	same := &directory.Mailbox{OrgID: org.ID, Name: "SEAN", PrimarySmtpAddress: "sean2@contoso.com", UserPrincipalName: "sean2@contoso.com",
		Type: directory.UserMailbox}
	if err := s.SaveMailbox(ctx, same); !errors.Is(err, store.ErrConflict) {
		t.Errorf("mailbox name differing in case: %v", err)
	}
}
