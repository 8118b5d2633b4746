package admin

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"postern.dev/postern/internal/address"
	"postern.dev/postern/internal/directory"
)

// findMailbox resolves an identity in every form Exchange accepts for a
// mailbox, within the organization: an email address (primary or proxy,
// with or without Exchange's SMTP:/smtp: prefix), the UPN, the
// ExchangeGuid (braces allowed), DOMAIN\name (the domain being the
// organization's name, one of its accepted domains or that domain's first
// label, the name the mailbox's Name, Alias or UPN's local part), the
// Name, the Alias or the DisplayName. When several mailboxes match, the
// error names them, so that the admin can pick one by address.
func findMailbox(dir *directory.Snapshot, org *directory.Organization, identity string) (*directory.Mailbox, error) {
	id := strings.TrimSpace(identity)
	if p, rest, ok := strings.Cut(id, ":"); ok && strings.EqualFold(p, "smtp") && strings.Contains(rest, "@") {
		id = strings.TrimSpace(rest)
	}
	if strings.Contains(id, "@") {
		if key, err := address.Canonical(id); err == nil {
			if m := dir.MailboxByAddress(key); m != nil && m.OrgID == org.ID {
				return m, nil
			}
			if m := dir.MailboxBySignIn(key); m != nil && m.OrgID == org.ID {
				return m, nil
			}
		}
	}
	guid := strings.TrimSuffix(strings.TrimPrefix(id, "{"), "}")
	domain, name, qualified := "", id, false
	if i := strings.LastIndexByte(id, '\\'); i > 0 && i < len(id)-1 {
		domain, name, qualified = id[:i], id[i+1:], true
	}
	var found []*directory.Mailbox
	for _, m := range dir.Contents().Mailboxes {
		if m.OrgID != org.ID {
			continue
		}
		var match bool
		if qualified {
			local, _, _ := strings.Cut(m.UserPrincipalName, "@")
			match = orgDomainName(dir, org, domain) &&
				(strings.EqualFold(m.Name, name) || strings.EqualFold(m.Alias, name) || strings.EqualFold(local, name))
		} else {
			match = strings.EqualFold(m.Name, id) || strings.EqualFold(m.Alias, id) || strings.EqualFold(m.GUID, guid) ||
				strings.EqualFold(m.DisplayName, id)
		}
		if match {
			found = append(found, m)
		}
	}
	switch len(found) {
	case 0:
		return nil, NotFound(identity)
	case 1:
		return found[0], nil
	}
	names := make([]string, len(found))
	for i, m := range found {
		names[i] = fmt.Sprintf("'%s' (%s)", m.Name, m.PrimarySmtpAddress)
	}
	return nil, fmt.Errorf("The operation couldn't be performed because '%s' matches multiple entries: %s. Name one by its primary SMTP address or ExchangeGuid.", identity, strings.Join(names, ", "))
}

// orgDomainName reports whether the domain part of DOMAIN\name names the
// organization: its name, one of its accepted domains, or the first label
// of one (contoso for contoso.com, as a NetBIOS domain name).
func orgDomainName(dir *directory.Snapshot, org *directory.Organization, domain string) bool {
	if strings.EqualFold(domain, org.Name) {
		return true
	}
	for _, d := range dir.Contents().Domains {
		if d.OrgID != org.ID {
			continue
		}
		first, _, _ := strings.Cut(d.DomainName, ".")
		if strings.EqualFold(d.DomainName, domain) || strings.EqualFold(first, domain) {
			return true
		}
	}
	return false
}

// Mailboxes returns the organization's mailboxes, all of them for an empty
// identity, at most resultSize of them (0 = unlimited).
func (s *Service) Mailboxes(identity string, resultSize int) ([]*directory.Mailbox, error) {
	dir, org := s.Dir.Load(), s.org()
	if identity != "" {
		m, err := findMailbox(dir, org, identity)
		if err != nil {
			return nil, err
		}
		return []*directory.Mailbox{m}, nil
	}
	var out []*directory.Mailbox
	for _, m := range dir.Contents().Mailboxes {
		if m.OrgID == org.ID {
			out = append(out, m)
		}
		if resultSize > 0 && len(out) == resultSize {
			break
		}
	}
	return out, nil
}

// NewMailboxParams are New-Mailbox's parameters.
type NewMailboxParams struct {
	Name               string
	DisplayName        string
	Alias              string
	PrimarySmtpAddress string
	Password           string
	Shared             bool
}

// NewMailbox creates a mailbox (New-Mailbox). A user mailbox needs a
// password; a shared one (-Shared) has none and never signs in. The primary
// address must be in one of the organization's accepted domains.
func (s *Service) NewMailbox(ctx context.Context, p NewMailboxParams) (*directory.Mailbox, error) {
	if strings.TrimSpace(p.Name) == "" {
		return nil, fmt.Errorf("Cannot process command because of one or more missing mandatory parameters: Name.")
	}
	var m *directory.Mailbox
	err := s.change(ctx, func(dir *directory.Snapshot, org *directory.Organization) error {
		alias := p.Alias
		if alias == "" {
			alias = strings.ReplaceAll(p.Name, " ", "")
		}
		primary := p.PrimarySmtpAddress
		if primary == "" {
			d := defaultDomain(dir, org)
			if d == nil {
				return fmt.Errorf("Mailbox '%s': the organization has no accepted domain; add one with New-AcceptedDomain or give -PrimarySmtpAddress.", p.Name)
			}
			primary = alias + "@" + d.DomainName
		}
		key, err := acceptedAddress(dir, org, "PrimarySmtpAddress", primary)
		if err != nil {
			return err
		}
		m = &directory.Mailbox{
			OrgID: org.ID, GUID: newGUID(), Name: p.Name, DisplayName: p.DisplayName, Alias: alias,
			PrimarySmtpAddress: key, UserPrincipalName: key, Type: directory.UserMailbox,
			RecipientLimits: directory.DefaultRecipientLimits, MaxSendSize: directory.DefaultMaxSendSize,
			MaxReceiveSize: directory.DefaultMaxReceiveSize,
			// The organization's CAS mailbox plan decides IMAP and POP
			// access at creation (Set-CASMailboxPlan); Set-CASMailbox
			// changes it afterwards.
			ImapEnabled: org.CASMailboxPlanImapEnabled, PopEnabled: org.CASMailboxPlanPopEnabled,
			IssueWarningQuota: directory.DefaultIssueWarningQuota, ProhibitSendQuota: directory.DefaultProhibitSendQuota,
			ProhibitSendReceiveQuota: directory.DefaultProhibitSendReceiveQuota,
		}
		if m.DisplayName == "" {
			m.DisplayName = p.Name
		}
		switch {
		case p.Shared:
			m.Type = directory.SharedMailbox
			if p.Password != "" {
				return fmt.Errorf("Mailbox '%s': a shared mailbox has no password; leave out -Password or -Shared.", p.Name)
			}
		case p.Password == "":
			return fmt.Errorf("Cannot process command because of one or more missing mandatory parameters: Password.")
		default:
			if err := checkPassword(p.Name, p.Password); err != nil {
				return err
			}
			if m.PasswordHash, err = s.HashPassword(p.Password); err != nil {
				return err
			}
		}
		if err := checkAddressesFree(dir, m); err != nil {
			return err
		}
		return storeError(s.Store.SaveMailbox(ctx, m), "mailbox", p.Name)
	})
	if err != nil {
		return nil, err
	}
	return s.Dir.Load().Mailbox(m.ID), nil
}

func defaultDomain(dir *directory.Snapshot, org *directory.Organization) *directory.AcceptedDomain {
	var first *directory.AcceptedDomain
	for _, d := range dir.Contents().Domains {
		if d.OrgID != org.ID {
			continue
		}
		if d.Default {
			return d
		}
		if first == nil {
			first = d
		}
	}
	return first
}

// acceptedAddress validates an address an admin gave for a mailbox: it must
// parse and its domain must be one of the organization's accepted domains.
func acceptedAddress(dir *directory.Snapshot, org *directory.Organization, param, value string) (string, error) {
	v := strings.TrimSpace(value)
	// Exchange writes proxy addresses with a prefix: SMTP: for the primary,
	// smtp: for the others.
	if p, rest, ok := strings.Cut(v, ":"); ok && strings.EqualFold(p, "smtp") {
		v = rest
	}
	a, err := address.Parse(v)
	if err != nil {
		return "", invalidValue(param, value, err.Error())
	}
	if d := dir.AcceptedDomain(a.Domain); d == nil || d.OrgID != org.ID {
		return "", fmt.Errorf("The email address \"%s\" isn't correct: %s isn't an accepted domain for your organization. Add it with New-AcceptedDomain first.", value, a.Domain)
	}
	return a.Key(), nil
}

// MultiValue is a multi-valued parameter: either a whole new list (Set) or
// Exchange's @{Add=...; Remove=...} edit.
type MultiValue struct {
	Set    []string
	IsSet  bool
	Add    []string
	Remove []string
}

func (v MultiValue) apply(current []string, norm func(string) (string, error)) ([]string, error) {
	out := slices.Clone(current)
	if v.IsSet {
		out = nil
		for _, x := range v.Set {
			n, err := norm(x)
			if err != nil {
				return nil, err
			}
			if !slices.Contains(out, n) {
				out = append(out, n)
			}
		}
		return out, nil
	}
	for _, x := range v.Add {
		n, err := norm(x)
		if err != nil {
			return nil, err
		}
		if !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	for _, x := range v.Remove {
		n, err := norm(x)
		if err != nil {
			return nil, err
		}
		out = slices.DeleteFunc(out, func(y string) bool { return y == n })
	}
	return out, nil
}

// SetMailboxParams are Set-Mailbox's parameters; nil means not given.
type SetMailboxParams struct {
	DisplayName         *string
	PrimarySmtpAddress  *string
	EmailAddresses      *MultiValue
	RecipientLimits     *int
	MaxSendSize         *int64
	MaxReceiveSize      *int64
	GrantSendOnBehalfTo *MultiValue
	Password            *string
	Quotas              QuotaParams
}

// SetMailbox changes a mailbox (Set-Mailbox).
func (s *Service) SetMailbox(ctx context.Context, identity string, p SetMailboxParams) error {
	return s.change(ctx, func(dir *directory.Snapshot, org *directory.Organization) error {
		cur, err := findMailbox(dir, org, identity)
		if err != nil {
			return err
		}
		m := *cur
		if p.DisplayName != nil {
			m.DisplayName = *p.DisplayName
		}
		if p.RecipientLimits != nil {
			if n := *p.RecipientLimits; n < 1 || n > directory.MaxRecipientLimits {
				return fmt.Errorf("Mailbox '%s': RecipientLimits must be an integer from 1 to 1000; %d is out of range.", m.Name, n)
			}
			m.RecipientLimits = *p.RecipientLimits
		}
		for _, sz := range []struct {
			name string
			v    *int64
			dst  *int64
		}{{"MaxSendSize", p.MaxSendSize, &m.MaxSendSize}, {"MaxReceiveSize", p.MaxReceiveSize, &m.MaxReceiveSize}} {
			if sz.v == nil {
				continue
			}
			if *sz.v < 1 || *sz.v > directory.MaxMessageSize {
				return fmt.Errorf("Mailbox '%s': %s must be between 1 byte and 150 MB (157,286,400 bytes).", m.Name, sz.name)
			}
			*sz.dst = *sz.v
		}
		if err := applyQuotas(&m, p.Quotas); err != nil {
			return err
		}
		if p.PrimarySmtpAddress != nil {
			key, err := acceptedAddress(dir, org, "PrimarySmtpAddress", *p.PrimarySmtpAddress)
			if err != nil {
				return err
			}
			// The old primary stays as a proxy address, as in Exchange.
			if key != m.PrimarySmtpAddress {
				m.EmailAddresses = append(slices.DeleteFunc(slices.Clone(m.EmailAddresses), func(a string) bool { return a == key }), m.PrimarySmtpAddress)
				m.PrimarySmtpAddress = key
			}
		}
		if p.EmailAddresses != nil {
			all, err := p.EmailAddresses.apply(m.Addresses(), func(v string) (string, error) {
				return acceptedAddress(dir, org, "EmailAddresses", v)
			})
			if err != nil {
				return err
			}
			if !slices.Contains(all, m.PrimarySmtpAddress) {
				return fmt.Errorf("Mailbox '%s': EmailAddresses must keep the primary address %s; change it with -PrimarySmtpAddress.", m.Name, m.PrimarySmtpAddress)
			}
			m.EmailAddresses = slices.DeleteFunc(all, func(a string) bool { return a == m.PrimarySmtpAddress })
		}
		if p.GrantSendOnBehalfTo != nil {
			names := make([]string, 0, len(m.GrantSendOnBehalfTo))
			for _, id := range m.GrantSendOnBehalfTo {
				if t := dir.Mailbox(id); t != nil {
					names = append(names, t.PrimarySmtpAddress)
				}
			}
			all, err := p.GrantSendOnBehalfTo.apply(names, func(v string) (string, error) {
				t, err := findMailbox(dir, org, v)
				if err != nil {
					return "", err
				}
				return t.PrimarySmtpAddress, nil
			})
			if err != nil {
				return err
			}
			m.GrantSendOnBehalfTo = nil
			for _, a := range all {
				m.GrantSendOnBehalfTo = append(m.GrantSendOnBehalfTo, dir.MailboxByAddress(a).ID)
			}
		}
		if p.Password != nil {
			if m.Type == directory.SharedMailbox {
				return fmt.Errorf("Mailbox '%s' is a shared mailbox; shared mailboxes have no password.", m.Name)
			}
			if err := checkPassword(m.Name, *p.Password); err != nil {
				return err
			}
			if m.PasswordHash, err = s.HashPassword(*p.Password); err != nil {
				return err
			}
		}
		if err := checkAddressesFree(dir, &m); err != nil {
			return err
		}
		return storeError(s.Store.SaveMailbox(ctx, &m), "mailbox", m.Name)
	})
}

// checkAddressesFree refuses an address another recipient already owns,
// in Exchange's words. (The store enforces it too; this names the owner.)
func checkAddressesFree(dir *directory.Snapshot, m *directory.Mailbox) error {
	for _, a := range m.Addresses() {
		owner := dir.MailboxByAddress(a)
		if owner == nil {
			owner = dir.MailboxBySignIn(a)
		}
		if owner != nil && owner.ID != m.ID {
			return &kindError{ErrExists, fmt.Sprintf("The proxy address \"SMTP:%s\" is already being used by the proxy addresses or LegacyExchangeDN of \"%s\". Please choose another proxy address.", a, owner.Name)}
		}
	}
	return nil
}

// RemoveMailbox deletes a mailbox with its folders and permissions.
func (s *Service) RemoveMailbox(ctx context.Context, identity string) error {
	return s.change(ctx, func(dir *directory.Snapshot, org *directory.Organization) error {
		m, err := findMailbox(dir, org, identity)
		if err != nil {
			return err
		}
		return storeError(s.Store.DeleteMailbox(ctx, m.ID), "mailbox", identity)
	})
}

// SetCASMailbox changes a mailbox's SMTP AUTH switch
// (Set-CASMailbox -SmtpClientAuthenticationDisabled $true|$false|$null).
func (s *Service) SetCASMailbox(ctx context.Context, identity string, smtpClientAuthDisabled *bool) error {
	return s.UpdateCASMailbox(ctx, identity, CASMailboxParams{SetSmtpClientAuth: true, SmtpClientAuthenticationDisabled: smtpClientAuthDisabled})
}

// SetUser assigns a user's authentication policy (Set-User
// -AuthenticationPolicy <name>|$null); empty removes it.
func (s *Service) SetUser(ctx context.Context, identity, authenticationPolicy string) error {
	return s.change(ctx, func(dir *directory.Snapshot, org *directory.Organization) error {
		cur, err := findMailbox(dir, org, identity)
		if err != nil {
			return err
		}
		m := *cur
		m.AuthenticationPolicy = ""
		if authenticationPolicy != "" {
			p := dir.AuthenticationPolicy(org.ID, authenticationPolicy)
			if p == nil {
				return NotFound(authenticationPolicy)
			}
			m.AuthenticationPolicy = p.Name
		}
		return storeError(s.Store.SaveMailbox(ctx, &m), "user", m.Name)
	})
}
