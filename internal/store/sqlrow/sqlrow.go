// Package sqlrow is the SQL the two SQL stores (store/sqlite and
// store/postgres) share word for word: the SELECT lists and Scan functions
// of the directory tables that LoadDirectory and LoadDirectoryObjects read
// (no placeholders: the callers append their own WHERE), the reads of the
// directory change log (Changes) and store.Ephemeral (with ? placeholders,
// numbered for PostgreSQL), and the stores' time encoding: Unix
// nanoseconds, 0 for none. Each store keeps its own transactions and
// error mapping, which it hands to the types it embeds.
package sqlrow

import (
	"database/sql"
	"encoding/json"
	"fmt"
	"time"

	"postern.dev/postern/internal/directory"
)

// Nanos is a time as the stores keep it: Unix nanoseconds, 0 for none.
func Nanos(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

// FromNanos reads a time Nanos wrote.
func FromNanos(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

// SelectOrganization and ScanOrganization read organizations rows; LoadDirectory
// and LoadDirectoryObjects share them.
const SelectOrganization = `SELECT id, name, guid, smtp_client_authentication_disabled, security_defaults_enabled,
		default_authentication_policy, reject_direct_send, smtp_basic_auth_disabled, max_recipient_envelope_limit,
		cas_plan_imap_enabled, cas_plan_pop_enabled, allow_legacy_tls_clients, when_created FROM organizations`

func ScanOrganization(rows *sql.Rows) (*directory.Organization, error) {
	o := &directory.Organization{}
	var created int64
	if err := rows.Scan(&o.ID, &o.Name, &o.GUID, &o.SmtpClientAuthenticationDisabled, &o.SecurityDefaultsEnabled,
		&o.DefaultAuthenticationPolicy, &o.RejectDirectSend, &o.SmtpBasicAuthDisabled, &o.MaxRecipientEnvelopeLimit,
		&o.CASMailboxPlanImapEnabled, &o.CASMailboxPlanPopEnabled, &o.AllowLegacyTLSClients, &created); err != nil {
		return nil, err
	}
	o.WhenCreated = FromNanos(created)
	return o, nil
}

// SelectMailbox and ScanMailbox read mailboxes rows; LoadDirectory
// and LoadDirectoryObjects share them.
const SelectMailbox = `SELECT id, org_id, guid, name, display_name, alias, primary_smtp_address, user_principal_name,
		email_addresses, type, password_hash, smtp_client_authentication_disabled, authentication_policy,
		recipient_limits, max_send_size, max_receive_size, grant_send_on_behalf_to, imap_enabled, pop_enabled,
		issue_warning_quota, prohibit_send_quota, prohibit_send_receive_quota, when_created, sts_refresh_tokens_valid_from
		FROM mailboxes`

func ScanMailbox(rows *sql.Rows) (*directory.Mailbox, error) {
	m := &directory.Mailbox{}
	var addrs, onBehalf string
	var disabled sql.NullBool
	var created, tokensValidFrom int64
	if err := rows.Scan(&m.ID, &m.OrgID, &m.GUID, &m.Name, &m.DisplayName, &m.Alias, &m.PrimarySmtpAddress,
		&m.UserPrincipalName, &addrs, &m.Type, &m.PasswordHash, &disabled, &m.AuthenticationPolicy,
		&m.RecipientLimits, &m.MaxSendSize, &m.MaxReceiveSize, &onBehalf, &m.ImapEnabled, &m.PopEnabled,
		&m.IssueWarningQuota, &m.ProhibitSendQuota, &m.ProhibitSendReceiveQuota, &created, &tokensValidFrom); err != nil {
		return nil, err
	}
	m.TokensValidFrom = FromNanos(tokensValidFrom)
	if disabled.Valid {
		m.SmtpClientAuthenticationDisabled = &disabled.Bool
	}
	if err := json.Unmarshal([]byte(addrs), &m.EmailAddresses); err != nil {
		return nil, fmt.Errorf("mailbox %d email_addresses: %w", m.ID, err)
	}
	if err := json.Unmarshal([]byte(onBehalf), &m.GrantSendOnBehalfTo); err != nil {
		return nil, fmt.Errorf("mailbox %d grant_send_on_behalf_to: %w", m.ID, err)
	}
	m.WhenCreated = FromNanos(created)
	return m, nil
}

// SelectRecipientPermission and ScanRecipientPermission read recipient_permissions rows; LoadDirectory
// and LoadDirectoryObjects share them.
const SelectRecipientPermission = `SELECT id, org_id, identity, trustee FROM recipient_permissions`

func ScanRecipientPermission(rows *sql.Rows) (*directory.RecipientPermission, error) {
	p := &directory.RecipientPermission{}
	if err := rows.Scan(&p.ID, &p.OrgID, &p.Identity, &p.Trustee); err != nil {
		return nil, err
	}
	return p, nil
}

// SelectRestrictedSender and ScanRestrictedSender read restricted_senders rows; LoadDirectory
// and LoadDirectoryObjects share them.
const SelectRestrictedSender = `SELECT id, org_id, mailbox_id, sender_address, reason, action, created_at, expires_at, released_at
		FROM restricted_senders`

func ScanRestrictedSender(rows *sql.Rows) (*directory.RestrictedSender, error) {
	r := &directory.RestrictedSender{}
	var createdAt, expires, released int64
	if err := rows.Scan(&r.ID, &r.OrgID, &r.MailboxID, &r.SenderAddress, &r.Reason, &r.Action, &createdAt, &expires, &released); err != nil {
		return nil, err
	}
	r.CreatedAt, r.ExpiresAt, r.ReleasedAt = FromNanos(createdAt), FromNanos(expires), FromNanos(released)
	return r, nil
}

// SelectMailboxPermission and ScanMailboxPermission read mailbox_permissions rows; LoadDirectory
// and LoadDirectoryObjects share them.
const SelectMailboxPermission = `SELECT id, org_id, identity, COALESCE(trustee_principal, 0), COALESCE(trustee_mailbox, 0)
		FROM mailbox_permissions`

func ScanMailboxPermission(rows *sql.Rows) (*directory.MailboxPermission, error) {
	p := &directory.MailboxPermission{}
	if err := rows.Scan(&p.ID, &p.OrgID, &p.Identity, &p.TrusteePrincipal, &p.TrusteeMailbox); err != nil {
		return nil, err
	}
	return p, nil
}
