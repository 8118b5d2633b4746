package admin

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
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
	// Listeners' protocol logs span organizations (a listener's sessions
	// are everyone's): see protolog.go. Get-ProtocolLog is not here: an
	// organization's admin reads its own inbound connectors' log with it,
	// and ReadProtocolLog refuses the rest.
	"Get-ReceiveConnector": true, "Set-ReceiveConnector": true,
	// It connects to this server's ports (cmdlets_compat.go).
	"Test-NetConnection": true,
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

// reachOut fails for an organization's admin (any role, View-Only
// included): what makes the server open a connection to a place the
// caller names (a live SMTP probe, an issuer's metadata URL, a smart host,
// an OAuth token endpoint) is for the server's administrator only. Such a
// connection runs from inside the server's network, so an organization
// could otherwise use it to probe hosts and ports only the server can
// reach and read the answers in the cmdlet's output, the queue or the
// trace (DESIGN, "Every organization is a wall"). The check is here, in
// the admin service, so that every front end goes through it.
func (s *Service) reachOut(what string) error {
	if !s.scoped {
		return nil
	}
	return &kindError{ErrAccessDenied, fmt.Sprintf("%s makes the server connect to a place the caller names; only the server's administrator can do that.", what)}
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
// returns the key, which is shown only now. A positive expiresAfter makes
// the key stop signing in that long from now (New-ApiKey -ExpiresAfter);
// zero: it lasts until Remove-ApiKey revokes it.
func (s *Service) NewAPIKey(ctx context.Context, name string, role Role, expiresAfter time.Duration) (store.APIKey, string, error) {
	if strings.TrimSpace(name) == "" {
		return store.APIKey{}, "", invalidValue("Name", name, "the name is empty")
	}
	if expiresAfter < 0 {
		return store.APIKey{}, "", invalidValue("ExpiresAfter", expiresAfter.String(), "give a positive time span")
	}
	var raw [32]byte
	rand.Read(raw[:])
	key := APIKeyPrefix + base64.RawURLEncoding.EncodeToString(raw[:])
	now := time.Now().UTC()
	k := store.APIKey{OrgID: s.org().ID, Name: name, Role: string(role), Hash: apiKeyHash(key), Prefix: key[:len(APIKeyPrefix)+6], Created: now}
	if expiresAfter > 0 {
		k.Expires = now.Add(expiresAfter)
	}
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

// ErrBadAPIKey is a key that is malformed, unknown, removed or expired.
var ErrBadAPIKey = errors.New("the API key is not valid")

// ErrAPIKeyExpired is a key past its expiry; it is also an ErrBadAPIKey.
var ErrAPIKeyExpired = fmt.Errorf("%w: it has expired", ErrBadAPIKey)

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
	if !k.Expires.IsZero() && !time.Now().Before(k.Expires) {
		return Principal{}, ErrAPIKeyExpired
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
		org = &directory.Organization{Name: name, GUID: newGUID(), SmtpClientAuthenticationDisabled: true, WhenCreated: time.Now().UTC(),
			CASMailboxPlanImapEnabled: true, CASMailboxPlanPopEnabled: true}
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

// maxExpiresAfter bounds -ExpiresAfter: a key meant to last longer than
// ten years is one meant never to expire, which is the default.
const maxExpiresAfter = 10 * 365 * 24 * time.Hour

// ParseTimeSpan reads New-ApiKey -ExpiresAfter: a whole number of days
// ("90"), PowerShell's TimeSpan text ("90.00:00:00", "12:00:00", as
// New-TimeSpan prints it), or a Go-style duration with a d unit for days
// ("90d", "36h", "1d12h", "30m"). The result is positive and at most ten
// years.
func ParseTimeSpan(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	bad := invalidValue("ExpiresAfter", s, `give days ("90"), a TimeSpan ("90.00:00:00") or a duration ("36h", "1d12h")`)
	if s == "" || len(s) > 32 {
		return 0, bad
	}
	var d time.Duration
	switch {
	case strings.Contains(s, ":"):
		// [d.]hh:mm[:ss]
		days := int64(0)
		rest := s
		if dd, hms, ok := strings.Cut(s, "."); ok && !strings.Contains(dd, ":") {
			n, err := strconv.ParseInt(dd, 10, 32)
			if err != nil || n < 0 {
				return 0, bad
			}
			days, rest = n, hms
		}
		parts := strings.Split(rest, ":")
		if len(parts) < 2 || len(parts) > 3 {
			return 0, bad
		}
		limits := []int64{23, 59, 59}
		units := []time.Duration{time.Hour, time.Minute, time.Second}
		d = time.Duration(days) * 24 * time.Hour
		for i, p := range parts {
			n, err := strconv.ParseInt(p, 10, 32)
			if err != nil || n < 0 || n > limits[i] || len(p) > 2 {
				return 0, bad
			}
			d += time.Duration(n) * units[i]
		}
	case strings.IndexFunc(s, func(r rune) bool { return r < '0' || r > '9' }) < 0:
		n, err := strconv.ParseInt(s, 10, 32)
		if err != nil {
			return 0, bad
		}
		d = time.Duration(n) * 24 * time.Hour
	default:
		rest := s
		if dd, after, ok := strings.Cut(s, "d"); ok {
			n, err := strconv.ParseInt(dd, 10, 32)
			if err != nil || n < 0 {
				return 0, bad
			}
			d, rest = time.Duration(n)*24*time.Hour, after
		}
		if rest != "" {
			x, err := time.ParseDuration(rest)
			if err != nil || x < 0 || strings.HasPrefix(rest, "-") || strings.HasPrefix(rest, "+") {
				return 0, bad
			}
			d += x
		}
	}
	if d <= 0 || d > maxExpiresAfter {
		return 0, invalidValue("ExpiresAfter", s, "the time span must be positive and at most ten years")
	}
	return d, nil
}
