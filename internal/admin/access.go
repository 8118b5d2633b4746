package admin

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"time"

	"postern.dev/postern/internal/cmdlet"
	"postern.dev/postern/internal/directory"
	"postern.dev/postern/internal/store"
)

// Role is an admin role group, as in Exchange's role-based access control.
type Role string

// The role groups. Their names are Exchange's; "View-Only" is accepted for
// the last.
const (
	// OrganizationManagement may run every cmdlet of its organization.
	OrganizationManagement Role = "Organization Management"
	// RecipientManagement may read everything and change recipients:
	// mailboxes, their client access settings, users, and Send As and
	// mailbox permissions.
	RecipientManagement Role = "Recipient Management"
	// ViewOnly may run Get-, Search- and Test- cmdlets, and change nothing.
	ViewOnly Role = "View-Only Organization Management"
)

// Roles lists the role groups.
var Roles = []Role{OrganizationManagement, RecipientManagement, ViewOnly}

// ParseRole reads a role group's name, ignoring case.
func ParseRole(s string) (Role, error) {
	if strings.EqualFold(s, "View-Only") {
		return ViewOnly, nil
	}
	for _, r := range Roles {
		if strings.EqualFold(s, string(r)) {
			return r, nil
		}
	}
	return "", invalidValue("Role", s, `the role must be "Organization Management", "Recipient Management" or "View-Only Organization Management"`)
}

// recipientNouns are what Recipient Management may change.
var recipientNouns = map[string]bool{"Mailbox": true, "CASMailbox": true, "User": true, "RecipientPermission": true, "MailboxPermission": true}

// serverCmdlets act on the whole server, not one organization: only the
// server's own administrator (the local account, through the admin socket)
// runs them. The connection log is here because a refusal before
// acceptance often cannot be attributed to an organization. (An
// organization's admin may run Get-Organization, which shows it only its
// own.)
var serverCmdlets = map[string]bool{
	"New-Organization": true, "Rotate-OAuthSigningKey": true, "Get-ConnectionLog": true,
}

// ErrAccessDenied is a cmdlet the caller's role does not include.
var ErrAccessDenied = errors.New("access denied")

// Allows reports whether the role may run the cmdlet. Server cmdlets are
// outside every role group.
func (r Role) Allows(cmdletName string) bool {
	if serverCmdlets[cmdletName] {
		return false
	}
	verb, noun, _ := strings.Cut(cmdletName, "-")
	readOnly := verb == "Get" || verb == "Search" || verb == "Test"
	switch r {
	case OrganizationManagement:
		return true
	case RecipientManagement:
		return (readOnly && noun != "ApiKey") || recipientNouns[noun]
	case ViewOnly:
		return readOnly && noun != "ApiKey"
	}
	return false
}

// Principal is who runs cmdlets through a front end.
type Principal struct {
	// Name is how the admin audit log names the caller.
	Name string
	// OrgID is the organization the caller administers.
	OrgID int64
	Role  Role
}

// As returns the service acting for an organization's admin: every
// lookup and change is confined to that organization, queue cmdlets see
// only its messages, and cmdlets outside the role fail with
// ErrAccessDenied. The service it is called on is the server
// administrator's, which acts on any organization (the first by default,
// see ForOrganization).
func (s *Service) As(p Principal) *Service {
	c := s.clone()
	c.orgID, c.role, c.scoped, c.Caller = p.OrgID, p.Role, true, p.Name
	return c
}

// ForOrganization returns the server administrator's service acting on the
// named organization (postern --organization NAME).
func (s *Service) ForOrganization(name string) (*Service, error) {
	for _, o := range s.Dir.Load().Contents().Organizations {
		if strings.EqualFold(o.Name, name) || strings.EqualFold(o.GUID, name) {
			c := s.clone()
			c.orgID = o.ID
			return c, nil
		}
	}
	return nil, NotFound(name)
}

// clone copies the service; the copy shares the change lock (mu is a
// pointer for that).
func (s *Service) clone() *Service {
	c := *s
	return &c
}

// authorize fails for a cmdlet the caller may not run.
func (s *Service) authorize(cmdletName string) error {
	if !s.scoped || s.role.Allows(cmdletName) {
		return nil
	}
	if serverCmdlets[cmdletName] {
		return &kindError{ErrAccessDenied, fmt.Sprintf("%s acts on the whole server; only the server's administrator can run it.", cmdletName)}
	}
	return &kindError{ErrAccessDenied, fmt.Sprintf("The role '%s' does not include %s.", s.role, cmdletName)}
}

// APIKeyPrefix starts every API key, so that a leaked key is recognisable
// (secret scanners look for such prefixes).
const APIKeyPrefix = "pstn_"

// apiKeyHash is the stored form of a key. A key is 256 random bits, so a
// fast hash is enough: there is nothing to guess that a slow one would
// protect.
func apiKeyHash(key string) []byte {
	h := sha256.Sum256([]byte(key))
	return h[:]
}

// NewAPIKey creates an API key for the organization with a role and
// returns the key, which is shown only now.
func (s *Service) NewAPIKey(ctx context.Context, name string, role Role) (store.APIKey, string, error) {
	if strings.TrimSpace(name) == "" {
		return store.APIKey{}, "", invalidValue("Name", name, "the name is empty")
	}
	var raw [32]byte
	rand.Read(raw[:])
	key := APIKeyPrefix + base64.RawURLEncoding.EncodeToString(raw[:])
	k := store.APIKey{OrgID: s.org().ID, Name: name, Role: string(role), Hash: apiKeyHash(key), Prefix: key[:len(APIKeyPrefix)+6], Created: time.Now().UTC()}
	if err := s.Store.SaveAPIKey(ctx, &k); err != nil {
		return k, "", storeError(err, "API key", name)
	}
	return k, key, nil
}

// APIKeys lists the organization's API keys, or the one named.
func (s *Service) APIKeys(ctx context.Context, identity string) ([]store.APIKey, error) {
	keys, err := s.Store.APIKeys(ctx, s.org().ID)
	if err != nil || identity == "" {
		return keys, err
	}
	for _, k := range keys {
		if strings.EqualFold(k.Name, identity) {
			return []store.APIKey{k}, nil
		}
	}
	return nil, NotFound(identity)
}

// RemoveAPIKey deletes one of the organization's API keys; requests
// signed with it fail from then on.
func (s *Service) RemoveAPIKey(ctx context.Context, identity string) error {
	keys, err := s.APIKeys(ctx, identity)
	if err != nil {
		return err
	}
	return storeError(s.Store.DeleteAPIKey(ctx, keys[0].OrgID, keys[0].ID), "API key", identity)
}

// ErrBadAPIKey is a key that is malformed, unknown or removed.
var ErrBadAPIKey = errors.New("the API key is not valid")

// SignIn finds the principal an API key stands for.
func (s *Service) SignIn(ctx context.Context, key string) (Principal, error) {
	if !strings.HasPrefix(key, APIKeyPrefix) || len(key) > 128 {
		return Principal{}, ErrBadAPIKey
	}
	k, err := s.Store.APIKeyByHash(ctx, apiKeyHash(key))
	if errors.Is(err, store.ErrNotFound) {
		return Principal{}, ErrBadAPIKey
	}
	if err != nil {
		return Principal{}, err
	}
	role, err := ParseRole(k.Role)
	if err != nil {
		return Principal{}, ErrBadAPIKey
	}
	// Recording every use would be a write per request; a minute's
	// precision is what an admin looking for unused keys needs.
	if now := time.Now(); now.Sub(k.LastUsed) > time.Minute {
		s.Store.TouchAPIKey(context.WithoutCancel(ctx), k.ID, now.UTC())
	}
	org := s.Dir.Load().Organization(k.OrgID)
	orgName := ""
	if org != nil {
		orgName = org.Name
	}
	return Principal{Name: fmt.Sprintf("API key '%s' (%s)", k.Name, orgName), OrgID: k.OrgID, Role: role}, nil
}

// NewOrganization creates an organization (a tenant), with SMTP AUTH
// disabled as new Exchange Online tenants have it.
func (s *Service) NewOrganization(ctx context.Context, name string) (*directory.Organization, error) {
	if strings.TrimSpace(name) == "" {
		return nil, invalidValue("Name", name, "the name is empty")
	}
	var org *directory.Organization
	err := s.change(ctx, func(dir *directory.Snapshot, _ *directory.Organization) error {
		for _, o := range dir.Contents().Organizations {
			if strings.EqualFold(o.Name, name) {
				return alreadyExists("organization", name)
			}
		}
		org = &directory.Organization{Name: name, GUID: newGUID(), SmtpClientAuthenticationDisabled: true, WhenCreated: time.Now().UTC()}
		return storeError(s.Store.SaveOrganization(ctx, org), "organization", name)
	})
	return org, err
}

// Organizations lists every organization.
func (s *Service) Organizations() []*directory.Organization {
	return s.Dir.Load().Contents().Organizations
}

// organizationObject is Get-Organization's record.
func organizationObject(o *directory.Organization) *cmdlet.Object {
	return &cmdlet.Object{TypeName: "Organization", DefaultView: cmdlet.TableView, DefaultDisplay: []string{"Name", "Guid", "WhenCreated"},
		Props: []cmdlet.Prop{{Name: "Name", Value: o.Name}, {Name: "Identity", Value: o.Name}, {Name: "Guid", Value: o.GUID}, {Name: "WhenCreated", Value: o.WhenCreated}}}
}
