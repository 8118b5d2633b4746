package admin

import (
	"context"
	"fmt"
	"strings"

	"postern.dev/postern/internal/address"
	"postern.dev/postern/internal/directory"
	"postern.dev/postern/internal/store"
)

// Organization returns the organization the service acts on.
func (s *Service) Organization() *directory.Organization { return s.org() }

// OrganizationParams are the organization-wide switches of
// Set-TransportConfig and Set-OrganizationConfig; nil means not given.
type OrganizationParams struct {
	SmtpClientAuthenticationDisabled *bool
	SecurityDefaultsEnabled          *bool
	// DefaultAuthenticationPolicy: a policy name, or "" for $null.
	DefaultAuthenticationPolicy *string
	RejectDirectSend            *bool
	SmtpBasicAuthDisabled       *bool
	// MaxRecipientEnvelopeLimit: 1 to 1000, or 0 for Unlimited.
	MaxRecipientEnvelopeLimit *int
	AllowLegacyTLSClients     *bool
	// The CAS mailbox plan (Set-CASMailboxPlan).
	CASMailboxPlanImapEnabled *bool
	CASMailboxPlanPopEnabled  *bool
}

// SetOrganization changes organization-wide settings.
func (s *Service) SetOrganization(ctx context.Context, p OrganizationParams) error {
	return s.change(ctx, func(dir *directory.Snapshot, cur *directory.Organization) error {
		o := *cur
		if p.SmtpClientAuthenticationDisabled != nil {
			o.SmtpClientAuthenticationDisabled = *p.SmtpClientAuthenticationDisabled
		}
		if p.SecurityDefaultsEnabled != nil {
			o.SecurityDefaultsEnabled = *p.SecurityDefaultsEnabled
		}
		if p.RejectDirectSend != nil {
			o.RejectDirectSend = *p.RejectDirectSend
		}
		if p.SmtpBasicAuthDisabled != nil {
			o.SmtpBasicAuthDisabled = *p.SmtpBasicAuthDisabled
		}
		if p.MaxRecipientEnvelopeLimit != nil {
			o.MaxRecipientEnvelopeLimit = *p.MaxRecipientEnvelopeLimit
		}
		if p.AllowLegacyTLSClients != nil {
			o.AllowLegacyTLSClients = *p.AllowLegacyTLSClients
		}
		if p.CASMailboxPlanImapEnabled != nil {
			o.CASMailboxPlanImapEnabled = *p.CASMailboxPlanImapEnabled
		}
		if p.CASMailboxPlanPopEnabled != nil {
			o.CASMailboxPlanPopEnabled = *p.CASMailboxPlanPopEnabled
		}
		if p.DefaultAuthenticationPolicy != nil {
			o.DefaultAuthenticationPolicy = ""
			if name := *p.DefaultAuthenticationPolicy; name != "" {
				pol := dir.AuthenticationPolicy(o.ID, name)
				if pol == nil {
					return NotFound(name)
				}
				o.DefaultAuthenticationPolicy = pol.Name
			}
		}
		return storeError(s.Store.SaveOrganization(ctx, &o), "organization", o.Name)
	})
}

// AcceptedDomains lists the organization's accepted domains, or the one
// named by identity (its Name or DomainName).
func (s *Service) AcceptedDomains(identity string) ([]*directory.AcceptedDomain, error) {
	org := s.org()
	var out []*directory.AcceptedDomain
	for _, d := range s.Dir.Load().Contents().Domains {
		if d.OrgID != org.ID {
			continue
		}
		if identity == "" || strings.EqualFold(d.Name, identity) || strings.EqualFold(d.DomainName, identity) {
			out = append(out, d)
		}
	}
	if identity != "" && len(out) == 0 {
		return nil, NotFound(identity)
	}
	return out, nil
}

func parseDomainType(v string) (directory.DomainType, error) {
	for _, t := range []directory.DomainType{directory.Authoritative, directory.InternalRelay} {
		if strings.EqualFold(v, string(t)) {
			return t, nil
		}
	}
	return "", fmt.Errorf("Cannot validate argument on parameter 'DomainType'. The argument \"%s\" does not belong to the set \"Authoritative,InternalRelay\".", v)
}

// NewAcceptedDomain adds a domain (New-AcceptedDomain). The organization's
// first domain becomes its default.
func (s *Service) NewAcceptedDomain(ctx context.Context, name, domainName, domainType string) (*directory.AcceptedDomain, error) {
	dn, err := address.NormalizeDomain(strings.TrimSpace(domainName))
	if err != nil {
		return nil, invalidValue("DomainName", domainName, err.Error())
	}
	typ := directory.Authoritative
	if domainType != "" {
		if typ, err = parseDomainType(domainType); err != nil {
			return nil, err
		}
	}
	if name == "" {
		name = dn
	}
	var d *directory.AcceptedDomain
	err = s.change(ctx, func(dir *directory.Snapshot, org *directory.Organization) error {
		if existing := dir.AcceptedDomain(dn); existing != nil {
			// The same answer whichever organization holds it.
			return alreadyExists("accepted domain", dn)
		}
		if err := checkDomainClaim(dir, org.ID, dn); err != nil {
			return err
		}
		d = &directory.AcceptedDomain{OrgID: org.ID, Name: name, DomainName: dn, DomainType: typ, Default: defaultDomain(dir, org) == nil}
		return storeError(s.Store.SaveDomain(ctx, d), "accepted domain", name)
	})
	return d, err
}

// checkDomainClaim refuses a domain that is a subdomain or a parent of
// another organization's accepted domain: mail for a.contoso.com and
// contoso.com must not be split between tenants, and one organization must
// not be able to claim the senders of another's subdomains. The error does
// not say which organization holds the other domain.
func checkDomainClaim(dir *directory.Snapshot, org int64, dn string) error {
	for _, d := range dir.Contents().Domains {
		if d.OrgID == org {
			continue
		}
		if strings.HasSuffix(dn, "."+d.DomainName) || strings.HasSuffix(d.DomainName, "."+dn) {
			return &kindError{ErrExists, fmt.Sprintf("The accepted domain '%s' can't be added: it is a subdomain or a parent domain of a domain another organization has added.", dn)}
		}
	}
	return nil
}

// SetAcceptedDomain changes a domain's type or makes it the default.
func (s *Service) SetAcceptedDomain(ctx context.Context, identity, domainType string, makeDefault bool) error {
	return s.change(ctx, func(dir *directory.Snapshot, org *directory.Organization) error {
		ds, err := s.AcceptedDomains(identity)
		if err != nil {
			return err
		}
		d := *ds[0]
		if domainType != "" {
			if d.DomainType, err = parseDomainType(domainType); err != nil {
				return err
			}
		}
		if makeDefault && !d.Default {
			if old := defaultDomain(dir, org); old != nil && old.Default {
				o := *old
				o.Default = false
				if err := s.Store.SaveDomain(ctx, &o); err != nil {
					return storeError(err, "accepted domain", o.Name)
				}
			}
			d.Default = true
		}
		return storeError(s.Store.SaveDomain(ctx, &d), "accepted domain", d.Name)
	})
}

// RemoveAcceptedDomain removes a domain that no mailbox uses any more.
func (s *Service) RemoveAcceptedDomain(ctx context.Context, identity string) error {
	return s.change(ctx, func(dir *directory.Snapshot, org *directory.Organization) error {
		ds, err := s.AcceptedDomains(identity)
		if err != nil {
			return err
		}
		d := ds[0]
		for _, m := range dir.Contents().Mailboxes {
			for _, a := range m.Addresses() {
				if strings.HasSuffix(a, "@"+d.DomainName) {
					return fmt.Errorf("Accepted domain '%s' can't be removed: mailbox '%s' still uses the address %s.", d.Name, m.Name, a)
				}
			}
		}
		return storeError(s.Store.DeleteDomain(ctx, d.ID), "accepted domain", d.Name)
	})
}

// AuthenticationPolicies lists the organization's policies, or the named one.
func (s *Service) AuthenticationPolicies(identity string) ([]*directory.AuthenticationPolicy, error) {
	org := s.org()
	var out []*directory.AuthenticationPolicy
	for _, p := range s.Dir.Load().Contents().Policies {
		if p.OrgID == org.ID && (identity == "" || strings.EqualFold(p.Name, identity)) {
			out = append(out, p)
		}
	}
	if identity != "" && len(out) == 0 {
		return nil, NotFound(identity)
	}
	return out, nil
}

// NewAuthenticationPolicy creates a policy. As in Exchange Online, a new
// policy blocks Basic authentication for every protocol whose switch
// (-AllowBasicAuthSmtp, -AllowBasicAuthImap, -AllowBasicAuthPop) is not given.
func (s *Service) NewAuthenticationPolicy(ctx context.Context, name string, allow PolicySwitches) (*directory.AuthenticationPolicy, error) {
	name = strings.TrimSpace(name)
	if name == "" || len(name) > 64 {
		return nil, invalidValue("Name", name, "a policy name has 1 to 64 characters")
	}
	p := &directory.AuthenticationPolicy{Name: name}
	allow.apply(p)
	err := s.change(ctx, func(dir *directory.Snapshot, org *directory.Organization) error {
		p.OrgID = org.ID
		return storeError(s.Store.SavePolicy(ctx, p), "authentication policy", name)
	})
	return p, err
}

// SetAuthenticationPolicy changes a policy's switches.
func (s *Service) SetAuthenticationPolicy(ctx context.Context, identity string, allow PolicySwitches) error {
	return s.change(ctx, func(dir *directory.Snapshot, org *directory.Organization) error {
		cur := dir.AuthenticationPolicy(org.ID, identity)
		if cur == nil {
			return NotFound(identity)
		}
		p := *cur
		allow.apply(&p)
		return storeError(s.Store.SavePolicy(ctx, &p), "authentication policy", p.Name)
	})
}

// RemoveAuthenticationPolicy deletes a policy that nothing is assigned to.
func (s *Service) RemoveAuthenticationPolicy(ctx context.Context, identity string) error {
	return s.change(ctx, func(dir *directory.Snapshot, org *directory.Organization) error {
		p := dir.AuthenticationPolicy(org.ID, identity)
		if p == nil {
			return NotFound(identity)
		}
		if strings.EqualFold(org.DefaultAuthenticationPolicy, p.Name) {
			return fmt.Errorf("Authentication policy '%s' is the organization default; clear it first with Set-OrganizationConfig -DefaultAuthenticationPolicy $null.", p.Name)
		}
		for _, m := range dir.Contents().Mailboxes {
			if strings.EqualFold(m.AuthenticationPolicy, p.Name) && m.OrgID == org.ID {
				return fmt.Errorf("Authentication policy '%s' is assigned to user '%s'; remove it first with Set-User -Identity %s -AuthenticationPolicy $null.", p.Name, m.Name, m.PrimarySmtpAddress)
			}
		}
		return storeError(s.Store.DeletePolicy(ctx, p.ID), "authentication policy", p.Name)
	})
}

// Permission is a Send As grant with both mailboxes resolved.
type Permission struct {
	ID       int64
	Identity *directory.Mailbox
	Trustee  *directory.Mailbox
}

// RecipientPermissions lists Send As grants, optionally only those on
// identity and/or to trustee.
func (s *Service) RecipientPermissions(identity, trustee string) ([]Permission, error) {
	dir, org := s.Dir.Load(), s.org()
	var idm, tm *directory.Mailbox
	var err error
	if identity != "" {
		if idm, err = findMailbox(dir, org, identity); err != nil {
			return nil, err
		}
	}
	if trustee != "" {
		if tm, err = findMailbox(dir, org, trustee); err != nil {
			return nil, err
		}
	}
	var out []Permission
	for _, p := range dir.Contents().Permissions {
		if p.OrgID != org.ID || (idm != nil && p.Identity != idm.ID) || (tm != nil && p.Trustee != tm.ID) {
			continue
		}
		out = append(out, Permission{ID: p.ID, Identity: dir.Mailbox(p.Identity), Trustee: dir.Mailbox(p.Trustee)})
	}
	return out, nil
}

func checkAccessRights(v string) error {
	if !strings.EqualFold(v, "SendAs") {
		return fmt.Errorf("Cannot validate argument on parameter 'AccessRights'. The argument \"%s\" does not belong to the set \"SendAs\".", v)
	}
	return nil
}

// AddRecipientPermission grants trustee Send As on identity.
func (s *Service) AddRecipientPermission(ctx context.Context, identity, trustee, accessRights string) (Permission, error) {
	var out Permission
	if err := checkAccessRights(accessRights); err != nil {
		return out, err
	}
	err := s.change(ctx, func(dir *directory.Snapshot, org *directory.Organization) error {
		idm, err := findMailbox(dir, org, identity)
		if err != nil {
			return err
		}
		tm, err := findMailbox(dir, org, trustee)
		if err != nil {
			return err
		}
		if dir.HasSendAs(tm.ID, idm.ID) {
			return &kindError{ErrExists, fmt.Sprintf("'%s' already has SendAs permission on '%s'.", tm.PrimarySmtpAddress, idm.PrimarySmtpAddress)}
		}
		p := &directory.RecipientPermission{OrgID: org.ID, Identity: idm.ID, Trustee: tm.ID}
		out = Permission{Identity: idm, Trustee: tm}
		err = s.Store.SavePermission(ctx, p)
		out.ID = p.ID
		return storeError(err, "recipient permission", idm.Name)
	})
	return out, err
}

// RemoveRecipientPermission revokes trustee's Send As on identity.
func (s *Service) RemoveRecipientPermission(ctx context.Context, identity, trustee, accessRights string) error {
	if err := checkAccessRights(accessRights); err != nil {
		return err
	}
	return s.change(ctx, func(dir *directory.Snapshot, org *directory.Organization) error {
		perms, err := s.RecipientPermissions(identity, trustee)
		if err != nil {
			return err
		}
		if len(perms) == 0 {
			return fmt.Errorf("'%s' has no SendAs permission on '%s'.", trustee, identity)
		}
		return storeError(s.Store.DeletePermission(ctx, perms[0].ID), "recipient permission", identity)
	})
}

// FolderStatistics is Get-MailboxFolderStatistics.
func (s *Service) FolderStatistics(ctx context.Context, identity string) (*directory.Mailbox, []store.FolderStatistics, error) {
	m, err := findMailbox(s.Dir.Load(), s.org(), identity)
	if err != nil {
		return nil, nil, err
	}
	stats, err := s.Store.FolderStatistics(ctx, m.ID)
	return m, stats, err
}

// QueueItems lists queued deliveries (Get-QueueMessage).
func (s *Service) QueueItems(ctx context.Context) ([]store.QueueItem, error) {
	return s.Store.QueueItems(ctx)
}
