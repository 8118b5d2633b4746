package admin

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"postern.dev/postern/internal/directory"
	"postern.dev/postern/internal/oauth"
)

// urls is the policy for URLs admins give: https only, unless the server
// was started with allow_insecure_http_loopback (tests).
func (s *Service) urls() oauth.URLPolicy {
	return oauth.URLPolicy{AllowLoopbackHTTP: s.AllowInsecureHTTPLoopback}
}

// AuthServerParams are New-/Set-AuthServer's parameters; nil: not given.
type AuthServerParams struct {
	Name            *string
	AuthMetadataUrl *string
	Audience        *string
	UserClaims      *MultiValue
	Enabled         *bool
	// RefreshAuthMetadata reads the discovery document again.
	RefreshAuthMetadata bool
}

// AuthServers lists the trusted issuers, or the named one.
func (s *Service) AuthServers(identity string) ([]*directory.AuthServer, error) {
	org := s.org()
	var out []*directory.AuthServer
	for _, a := range s.Dir.Load().Contents().AuthServers {
		if a.OrgID == org.ID && (identity == "" || strings.EqualFold(a.Name, identity)) {
			out = append(out, a)
		}
	}
	if identity != "" && len(out) == 0 {
		return nil, NotFound(identity)
	}
	return out, nil
}

// NewAuthServer trusts an issuer: it reads the issuer and JWKS location
// from the discovery document at AuthMetadataUrl, as Exchange's
// New-AuthServer does, so a wrong URL fails now and not at the first
// sign-in.
func (s *Service) NewAuthServer(ctx context.Context, p AuthServerParams) (*directory.AuthServer, error) {
	a := &directory.AuthServer{Enabled: true, UserClaims: directory.DefaultUserClaims}
	// Reading the metadata document (and, at sign-in, the JWKS it names)
	// connects where the caller says.
	if err := s.reachOut("New-AuthServer -AuthMetadataUrl"); err != nil {
		return nil, err
	}
	err := s.change(ctx, func(dir *directory.Snapshot, org *directory.Organization) error {
		a.OrgID = org.ID
		p.RefreshAuthMetadata = true
		if err := s.applyAuthServer(ctx, a, p); err != nil {
			return err
		}
		return storeError(s.Store.SaveAuthServer(ctx, a), "auth server", a.Name)
	})
	if err != nil {
		return nil, err
	}
	return a, nil
}

// SetAuthServer changes a trusted issuer.
func (s *Service) SetAuthServer(ctx context.Context, identity string, p AuthServerParams) error {
	return s.change(ctx, func(dir *directory.Snapshot, org *directory.Organization) error {
		as, err := s.AuthServers(identity)
		if err != nil {
			return err
		}
		a := *as[0]
		if p.AuthMetadataUrl != nil {
			p.RefreshAuthMetadata = true
		}
		if p.RefreshAuthMetadata && !a.BuiltIn {
			if err := s.reachOut("Set-AuthServer -AuthMetadataUrl/-RefreshAuthMetadata"); err != nil {
				return err
			}
		}
		if err := s.applyAuthServer(ctx, &a, p); err != nil {
			return err
		}
		return storeError(s.Store.SaveAuthServer(ctx, &a), "auth server", a.Name)
	})
}

// RemoveAuthServer stops trusting an issuer.
func (s *Service) RemoveAuthServer(ctx context.Context, identity string) error {
	return s.change(ctx, func(dir *directory.Snapshot, org *directory.Organization) error {
		as, err := s.AuthServers(identity)
		if err != nil {
			return err
		}
		if as[0].BuiltIn {
			return fmt.Errorf("The auth server '%s' is Postern's built-in issuer; disable it with Set-AuthServer -Enabled $false.", as[0].Name)
		}
		return storeError(s.Store.DeleteAuthServer(ctx, as[0].ID), "auth server", as[0].Name)
	})
}

func (s *Service) applyAuthServer(ctx context.Context, a *directory.AuthServer, p AuthServerParams) error {
	next := *a
	if p.Name != nil {
		next.Name = strings.TrimSpace(*p.Name)
	}
	if p.AuthMetadataUrl != nil {
		next.AuthMetadataUrl = strings.TrimSpace(*p.AuthMetadataUrl)
	}
	if p.Audience != nil {
		next.Audience = strings.TrimSpace(*p.Audience)
	}
	if p.Enabled != nil {
		next.Enabled = *p.Enabled
	}
	if p.UserClaims != nil {
		claims, err := p.UserClaims.apply(next.UserClaims, func(v string) (string, error) {
			if v = strings.TrimSpace(v); v == "" || strings.ContainsAny(v, " ,") {
				return "", invalidValue("UserClaims", v, "give claim names such as upn, preferred_username, email")
			}
			return v, nil
		})
		if err != nil {
			return err
		}
		next.UserClaims = claims
	}
	who := fmt.Sprintf("Auth server '%s'", next.Name)
	switch {
	case next.Name == "":
		return fmt.Errorf("Cannot process command because of one or more missing mandatory parameters: Name.")
	case next.Audience == "":
		return fmt.Errorf("%s: Audience must be given: the aud claim tokens for Postern carry (for Entra ID, https://outlook.office365.com).", who)
	}
	if p.RefreshAuthMetadata && !next.BuiltIn {
		if err := s.urls().Check(next.AuthMetadataUrl); err != nil {
			return invalidValue("AuthMetadataUrl", next.AuthMetadataUrl, err.Error())
		}
		md, err := oauth.FetchMetadata(ctx, s.urls().Client(10*time.Second), s.urls(), next.AuthMetadataUrl)
		if err != nil {
			return fmt.Errorf("%s: the metadata document could not be read: %v", who, err)
		}
		next.Issuer, next.JwksUri, next.TokenEndpoint = md.Issuer, md.JwksURI, md.TokenEndpoint
	}
	*a = next
	return nil
}

// ServicePrincipals lists the registered applications, or the one named
// by object ID, application ID or display name.
func (s *Service) ServicePrincipals(identity string) ([]*directory.ServicePrincipal, error) {
	org := s.org()
	var out []*directory.ServicePrincipal
	for _, p := range s.Dir.Load().Contents().Principals {
		if p.OrgID == org.ID && (identity == "" || strings.EqualFold(p.ObjectId, identity) ||
			strings.EqualFold(p.AppId, identity) || strings.EqualFold(p.DisplayName, identity)) {
			out = append(out, p)
		}
	}
	switch {
	case identity != "" && len(out) == 0:
		return nil, NotFound(identity)
	case identity != "" && len(out) > 1:
		return nil, ambiguous(identity)
	}
	return out, nil
}

// NewServicePrincipal registers an application, as Exchange's
// New-ServicePrincipal -AppId -ObjectId [-DisplayName].
func (s *Service) NewServicePrincipal(ctx context.Context, appID, objectID, displayName string) (*directory.ServicePrincipal, error) {
	p := &directory.ServicePrincipal{AppId: strings.TrimSpace(appID), ObjectId: strings.TrimSpace(objectID), DisplayName: strings.TrimSpace(displayName)}
	if p.DisplayName == "" {
		p.DisplayName = p.AppId
	}
	err := s.change(ctx, func(dir *directory.Snapshot, org *directory.Organization) error {
		if p.AppId == "" || p.ObjectId == "" {
			return fmt.Errorf("Cannot process command because of one or more missing mandatory parameters: AppId, ObjectId.")
		}
		p.OrgID = org.ID
		return storeError(s.Store.SaveServicePrincipal(ctx, p), "service principal", p.AppId)
	})
	if err != nil {
		return nil, err
	}
	return p, nil
}

// RemoveServicePrincipal deletes a registration and its mailbox grants.
func (s *Service) RemoveServicePrincipal(ctx context.Context, identity string) error {
	return s.change(ctx, func(dir *directory.Snapshot, org *directory.Organization) error {
		ps, err := s.ServicePrincipals(identity)
		if err != nil {
			return err
		}
		return storeError(s.Store.DeleteServicePrincipal(ctx, ps[0].ID), "service principal", identity)
	})
}

// MailboxPermissionEntry is one row of Get-MailboxPermission.
type MailboxPermissionEntry struct {
	ID       int64
	Identity string // the mailbox
	User     string // the trustee: a service principal's display name or a mailbox
}

// MailboxPermissions lists the FullAccess grants on a mailbox (all when
// identity is empty).
func (s *Service) MailboxPermissions(identity string) ([]MailboxPermissionEntry, error) {
	dir := s.Dir.Load()
	var target *directory.Mailbox
	if identity != "" {
		mb, err := findMailbox(s.Dir.Load(), s.org(), identity)
		if err != nil {
			return nil, err
		}
		target = mb
	}
	principals := map[int64]*directory.ServicePrincipal{}
	for _, p := range dir.Contents().Principals {
		principals[p.ID] = p
	}
	var out []MailboxPermissionEntry
	for _, p := range dir.Contents().MailboxPerms {
		mb := dir.Mailbox(p.Identity)
		if mb == nil || mb.OrgID != s.org().ID || (target != nil && mb.ID != target.ID) {
			continue
		}
		e := MailboxPermissionEntry{ID: p.ID, Identity: mb.PrimarySmtpAddress}
		if sp := principals[p.TrusteePrincipal]; sp != nil {
			e.User = sp.DisplayName
		} else if t := dir.Mailbox(p.TrusteeMailbox); t != nil {
			e.User = t.PrimarySmtpAddress
		}
		out = append(out, e)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// trustee resolves -User: a service principal (object ID, app ID or
// display name) or a mailbox.
func (s *Service) trustee(user string) (principal, mailbox int64, err error) {
	if ps, perr := s.ServicePrincipals(user); perr == nil {
		return ps[0].ID, 0, nil
	}
	mb, merr := findMailbox(s.Dir.Load(), s.org(), user)
	if merr != nil {
		return 0, 0, NotFound(user)
	}
	return 0, mb.ID, nil
}

// AddMailboxPermission grants FullAccess on a mailbox (Exchange's
// Add-MailboxPermission -Identity -User -AccessRights FullAccess).
func (s *Service) AddMailboxPermission(ctx context.Context, identity, user string) error {
	return s.onGrant(ctx, identity, user, func(grant directory.MailboxPermission, existing *directory.MailboxPermission) error {
		if existing != nil {
			return nil // already granted: Exchange reports no change
		}
		return storeError(s.Store.SaveMailboxPermission(ctx, &grant), "mailbox permission", identity)
	})
}

// RemoveMailboxPermission revokes a FullAccess grant.
func (s *Service) RemoveMailboxPermission(ctx context.Context, identity, user string) error {
	return s.onGrant(ctx, identity, user, func(_ directory.MailboxPermission, existing *directory.MailboxPermission) error {
		if existing == nil {
			return fmt.Errorf("The mailbox '%s' has no FullAccess permission for '%s'.", identity, user)
		}
		return storeError(s.Store.DeleteMailboxPermission(ctx, existing.ID), "mailbox permission", identity)
	})
}

// onGrant resolves a mailbox and a trustee, finds their grant if any, and
// runs fn under the change lock.
func (s *Service) onGrant(ctx context.Context, identity, user string, fn func(grant directory.MailboxPermission, existing *directory.MailboxPermission) error) error {
	return s.change(ctx, func(dir *directory.Snapshot, org *directory.Organization) error {
		mb, err := findMailbox(dir, org, identity)
		if err != nil {
			return err
		}
		sp, tm, err := s.trustee(user)
		if err != nil {
			return err
		}
		grant := directory.MailboxPermission{OrgID: org.ID, Identity: mb.ID, TrusteePrincipal: sp, TrusteeMailbox: tm}
		for _, p := range dir.Contents().MailboxPerms {
			if p.Identity == mb.ID && p.TrusteePrincipal == sp && p.TrusteeMailbox == tm {
				return fn(grant, p)
			}
		}
		return fn(grant, nil)
	})
}

// SmtpAuthClient is one sender in the SMTP AUTH clients report.
type SmtpAuthClient struct {
	SenderAddress          string
	Domain                 string
	MessagesSent           int64
	TLS                    map[string]float64 // percent of messages per TLS version
	AuthenticationProtocol string             // Basic, OAuth, or "Basic, OAuth"
	LastSent               time.Time
}

// SmtpAuthClients is the SMTP AUTH clients report of the new Exchange admin
// center (reference section 11) with its Authentication Protocol column:
// who sends with SMTP AUTH, over which TLS versions, with passwords or
// tokens, over the last days.
func (s *Service) SmtpAuthClients(ctx context.Context, days int) ([]SmtpAuthClient, error) {
	rows, err := s.Store.SmtpAuthClients(ctx, time.Now().AddDate(0, 0, -days))
	if err != nil {
		return nil, err
	}
	dir := s.Dir.Load()
	by := map[int64]*SmtpAuthClient{}
	protocols := map[int64]map[string]bool{}
	var order []int64
	for _, r := range rows {
		c := by[r.Mailbox]
		if c == nil {
			addr := fmt.Sprintf("(removed mailbox %d)", r.Mailbox)
			mb := dir.Mailbox(r.Mailbox)
			switch {
			case mb != nil && mb.OrgID != s.org().ID:
				continue
			case mb != nil:
				addr = mb.PrimarySmtpAddress
			case s.scoped:
				// Whose a removed mailbox was is no longer known: only
				// the server's administrator sees its rows.
				continue
			}
			_, domain, _ := strings.Cut(addr, "@")
			c = &SmtpAuthClient{SenderAddress: addr, Domain: domain, TLS: map[string]float64{}}
			by[r.Mailbox], protocols[r.Mailbox] = c, map[string]bool{}
			order = append(order, r.Mailbox)
		}
		c.MessagesSent += r.Messages
		c.TLS[r.TLSVersion] += float64(r.Messages)
		protocols[r.Mailbox][r.AuthProtocol] = true
		if r.Last.After(c.LastSent) {
			c.LastSent = r.Last
		}
	}
	out := make([]SmtpAuthClient, 0, len(order))
	for _, id := range order {
		c := by[id]
		for v, n := range c.TLS {
			c.TLS[v] = float64(int(n/float64(c.MessagesSent)*1000+0.5)) / 10
		}
		var ps []string
		for _, p := range []string{"Basic", "OAuth"} {
			if protocols[id][p] {
				ps = append(ps, p)
			}
		}
		c.AuthenticationProtocol = strings.Join(ps, ", ")
		out = append(out, *c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].SenderAddress < out[j].SenderAddress })
	return out, nil
}
