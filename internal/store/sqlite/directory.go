package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"postern.dev/postern/internal/directory"
	"postern.dev/postern/internal/store"
	"postern.dev/postern/internal/store/sqlrow"
)

// LoadDirectory reads every directory object in one read transaction, so the
// snapshot built from it is consistent.
func (s *Store) LoadDirectory(ctx context.Context) (directory.Contents, error) {
	var c directory.Contents
	tx, err := s.r.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return c, err
	}
	defer tx.Rollback()
	if err := tx.QueryRowContext(ctx, positionQuery).Scan(&c.Position); err != nil {
		return c, internal(err)
	}

	err = each(ctx, tx, sqlrow.SelectOrganization+" ORDER BY id", func(rows *sql.Rows) error {
		o, err := sqlrow.ScanOrganization(rows)
		if err != nil {
			return err
		}
		c.Organizations = append(c.Organizations, o)
		return nil
	})
	if err != nil {
		return c, err
	}
	err = each(ctx, tx, `SELECT id, org_id, name, domain_name, domain_type, is_default, when_created
		FROM accepted_domains ORDER BY id`, func(rows *sql.Rows) error {
		d := &directory.AcceptedDomain{}
		var created int64
		if err := rows.Scan(&d.ID, &d.OrgID, &d.Name, &d.DomainName, &d.DomainType, &d.Default, &created); err != nil {
			return err
		}
		d.WhenCreated = fromNanos(created)
		c.Domains = append(c.Domains, d)
		return nil
	})
	if err != nil {
		return c, err
	}
	err = each(ctx, tx, `SELECT id, org_id, name, allow_basic_auth_smtp, allow_basic_auth_imap, allow_basic_auth_pop, when_created
		FROM authentication_policies ORDER BY id`, func(rows *sql.Rows) error {
		p := &directory.AuthenticationPolicy{}
		var created int64
		if err := rows.Scan(&p.ID, &p.OrgID, &p.Name, &p.AllowBasicAuthSmtp, &p.AllowBasicAuthImap, &p.AllowBasicAuthPop, &created); err != nil {
			return err
		}
		p.WhenCreated = fromNanos(created)
		c.Policies = append(c.Policies, p)
		return nil
	})
	if err != nil {
		return c, err
	}
	err = each(ctx, tx, sqlrow.SelectMailbox+" ORDER BY id", func(rows *sql.Rows) error {
		m, err := sqlrow.ScanMailbox(rows)
		if err != nil {
			return err
		}
		c.Mailboxes = append(c.Mailboxes, m)
		return nil
	})
	if err != nil {
		return c, err
	}
	err = each(ctx, tx, sqlrow.SelectRecipientPermission+" ORDER BY id", func(rows *sql.Rows) error {
		p, err := sqlrow.ScanRecipientPermission(rows)
		if err != nil {
			return err
		}
		c.Permissions = append(c.Permissions, p)
		return nil
	})
	if err != nil {
		return c, err
	}
	err = each(ctx, tx, `SELECT id, org_id, name, connector_type, sender_domains, sender_ip_addresses,
		tls_sender_certificate_name, tls_sender_certificate_fingerprints, require_tls, restrict_domains_to_ip_addresses,
		restrict_domains_to_certificate, enabled, comment, when_created, protocol_logging_level FROM inbound_connectors ORDER BY id`, func(rows *sql.Rows) error {
		ic := &directory.InboundConnector{}
		var domains, ips, pins, logging string
		var created int64
		if err := rows.Scan(&ic.ID, &ic.OrgID, &ic.Name, &ic.ConnectorType, &domains, &ips, &ic.TlsSenderCertificateName, &pins,
			&ic.RequireTls, &ic.RestrictDomainsToIPAddresses, &ic.RestrictDomainsToCertificate, &ic.Enabled, &ic.Comment, &created, &logging); err != nil {
			return err
		}
		ic.ProtocolLogging = logging == directory.LoggingVerbose
		for col, dst := range map[string]any{domains: &ic.SenderDomains, ips: &ic.SenderIPAddresses, pins: &ic.TlsSenderCertificateFingerprints} {
			if err := json.Unmarshal([]byte(col), dst); err != nil {
				return fmt.Errorf("inbound connector %d: %w", ic.ID, err)
			}
		}
		ic.WhenCreated = fromNanos(created)
		c.Connectors = append(c.Connectors, ic)
		return nil
	})
	if err != nil {
		return c, err
	}
	if err := loadOutbound(ctx, tx, &c); err != nil {
		return c, err
	}
	return c, loadFilters(ctx, tx, &c)
}

type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// each runs a query and calls fn for every row.
func each(ctx context.Context, q querier, query string, fn func(*sql.Rows) error, args ...any) error {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return internal(err)
	}
	defer rows.Close()
	for rows.Next() {
		if err := fn(rows); err != nil {
			return internal(err)
		}
	}
	return internal(rows.Err())
}

// columnSet runs a query of one column and returns its values as a set.
func columnSet[T comparable](ctx context.Context, q querier, query string, args ...any) (map[T]bool, error) {
	set := map[T]bool{}
	err := each(ctx, q, query, func(rows *sql.Rows) error {
		var v T
		if err := rows.Scan(&v); err != nil {
			return err
		}
		set[v] = true
		return nil
	}, args...)
	return set, err
}

// upsert inserts when *id is 0 (setting it) and updates otherwise; the
// columns and values are given once, for both.
func upsert(ctx context.Context, tx *sql.Tx, table string, id *int64, cols []string, vals []any) error {
	if *id == 0 {
		q := "INSERT INTO " + table + " (" + strings.Join(cols, ", ") + ") VALUES (" + strings.TrimSuffix(strings.Repeat("?, ", len(cols)), ", ") + ")"
		res, err := tx.ExecContext(ctx, q, vals...)
		if isConstraint(err) {
			return store.ErrConflict
		}
		if err != nil {
			return err
		}
		*id, err = res.LastInsertId()
		return err
	}
	set := make([]string, len(cols))
	for i, c := range cols {
		set[i] = c + " = ?"
	}
	res, err := tx.ExecContext(ctx, "UPDATE "+table+" SET "+strings.Join(set, ", ")+" WHERE id = ?", append(vals, *id)...)
	if isConstraint(err) {
		return store.ErrConflict
	}
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return store.ErrNotFound
	}
	return nil
}

func created(t *time.Time) int64 {
	if t.IsZero() {
		*t = time.Now().UTC()
	}
	return nanos(*t)
}

// SaveOrganization inserts or updates an organization.
func (s *Store) SaveOrganization(ctx context.Context, o *directory.Organization) error {
	return s.inTx(ctx, func(tx *sql.Tx) error {
		return upsert(ctx, tx, "organizations", &o.ID,
			[]string{"name", "guid", "smtp_client_authentication_disabled", "security_defaults_enabled", "default_authentication_policy",
				"reject_direct_send", "smtp_basic_auth_disabled", "max_recipient_envelope_limit", "cas_plan_imap_enabled", "cas_plan_pop_enabled",
				"allow_legacy_tls_clients", "when_created"},
			[]any{o.Name, o.GUID, o.SmtpClientAuthenticationDisabled, o.SecurityDefaultsEnabled, o.DefaultAuthenticationPolicy,
				o.RejectDirectSend, o.SmtpBasicAuthDisabled, o.MaxRecipientEnvelopeLimit, o.CASMailboxPlanImapEnabled, o.CASMailboxPlanPopEnabled,
				o.AllowLegacyTLSClients, created(&o.WhenCreated)})
	})
}

// SaveDomain inserts or updates an accepted domain.
func (s *Store) SaveDomain(ctx context.Context, d *directory.AcceptedDomain) error {
	return s.inTx(ctx, func(tx *sql.Tx) error {
		return upsert(ctx, tx, "accepted_domains", &d.ID,
			[]string{"org_id", "name", "domain_name", "domain_type", "is_default", "when_created"},
			[]any{d.OrgID, d.Name, d.DomainName, string(d.DomainType), d.Default, created(&d.WhenCreated)})
	})
}

// SavePolicy inserts or updates an authentication policy.
func (s *Store) SavePolicy(ctx context.Context, p *directory.AuthenticationPolicy) error {
	return s.inTx(ctx, func(tx *sql.Tx) error {
		return upsert(ctx, tx, "authentication_policies", &p.ID,
			[]string{"org_id", "name", "allow_basic_auth_smtp", "allow_basic_auth_imap", "allow_basic_auth_pop", "when_created"},
			[]any{p.OrgID, p.Name, p.AllowBasicAuthSmtp, p.AllowBasicAuthImap, p.AllowBasicAuthPop, created(&p.WhenCreated)})
	})
}

// SavePermission inserts a Send As grant (grants are never updated).
func (s *Store) SavePermission(ctx context.Context, p *directory.RecipientPermission) error {
	return s.inTx(ctx, func(tx *sql.Tx) error {
		return upsert(ctx, tx, "recipient_permissions", &p.ID,
			[]string{"org_id", "identity", "trustee"}, []any{p.OrgID, p.Identity, p.Trustee})
	})
}

// SaveConnector inserts or updates an inbound connector.
func (s *Store) SaveConnector(ctx context.Context, ic *directory.InboundConnector) error {
	var lists [3]string
	for i, v := range []any{nonNil(ic.SenderDomains), ic.SenderIPAddresses, nonNil(ic.TlsSenderCertificateFingerprints)} {
		b, err := json.Marshal(v)
		if err != nil {
			return err
		}
		lists[i] = string(b)
	}
	if ic.SenderIPAddresses == nil {
		lists[1] = "[]"
	}
	return s.inTx(ctx, func(tx *sql.Tx) error {
		return upsert(ctx, tx, "inbound_connectors", &ic.ID,
			[]string{"org_id", "name", "connector_type", "sender_domains", "sender_ip_addresses", "tls_sender_certificate_name",
				"tls_sender_certificate_fingerprints", "require_tls", "restrict_domains_to_ip_addresses", "restrict_domains_to_certificate",
				"enabled", "comment", "when_created", "protocol_logging_level"},
			[]any{ic.OrgID, ic.Name, string(ic.ConnectorType), lists[0], lists[1], ic.TlsSenderCertificateName, lists[2], ic.RequireTls,
				ic.RestrictDomainsToIPAddresses, ic.RestrictDomainsToCertificate, ic.Enabled, ic.Comment, created(&ic.WhenCreated), ic.ProtocolLoggingLevel()})
	})
}

// DeleteConnector removes an inbound connector.
func (s *Store) DeleteConnector(ctx context.Context, id int64) error {
	return s.deleteByID(ctx, "inbound_connectors", id)
}

// SaveMailbox inserts or updates a mailbox, its address claims and, for a
// new mailbox, its default folders, all in one transaction.
func (s *Store) SaveMailbox(ctx context.Context, m *directory.Mailbox) error {
	addrs, err := json.Marshal(nonNil(m.EmailAddresses))
	if err != nil {
		return err
	}
	onBehalf, err := json.Marshal(nonNilIDs(m.GrantSendOnBehalfTo))
	if err != nil {
		return err
	}
	var disabled any
	if m.SmtpClientAuthenticationDisabled != nil {
		disabled = *m.SmtpClientAuthenticationDisabled
	}
	isNew := m.ID == 0
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		if err := upsert(ctx, tx, "mailboxes", &m.ID,
			[]string{"org_id", "guid", "name", "display_name", "alias", "primary_smtp_address", "user_principal_name",
				"email_addresses", "type", "password_hash", "smtp_client_authentication_disabled", "authentication_policy",
				"recipient_limits", "max_send_size", "max_receive_size", "grant_send_on_behalf_to", "imap_enabled", "pop_enabled",
				"issue_warning_quota", "prohibit_send_quota", "prohibit_send_receive_quota", "when_created", "sts_refresh_tokens_valid_from"},
			[]any{m.OrgID, m.GUID, m.Name, m.DisplayName, m.Alias, m.PrimarySmtpAddress, m.UserPrincipalName,
				string(addrs), string(m.Type), m.PasswordHash, disabled, m.AuthenticationPolicy,
				m.RecipientLimits, m.MaxSendSize, m.MaxReceiveSize, string(onBehalf), m.ImapEnabled, m.PopEnabled,
				m.IssueWarningQuota, m.ProhibitSendQuota, m.ProhibitSendReceiveQuota, created(&m.WhenCreated), nanos(m.TokensValidFrom)}); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, "DELETE FROM addresses WHERE mailbox_id = ?", m.ID); err != nil {
			return err
		}
		for _, a := range m.Addresses() {
			if _, err := tx.ExecContext(ctx, "INSERT INTO addresses (address, mailbox_id) VALUES (?, ?)", a, m.ID); err != nil {
				if isConstraint(err) {
					return fmt.Errorf("%w: the address %s", store.ErrConflict, a)
				}
				return err
			}
		}
		if !isNew {
			return nil
		}
		for _, f := range store.DefaultFolders {
			if _, err := tx.ExecContext(ctx, "INSERT INTO folders (mailbox_id, name, type, uid_validity) VALUES (?, ?, ?, ?)",
				m.ID, f.Name, f.Type, firstUIDValidity()); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil && isNew {
		m.ID = 0
	}
	return err
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func nonNilIDs(s []int64) []int64 {
	if s == nil {
		return []int64{}
	}
	return s
}

func (s *Store) deleteByID(ctx context.Context, table string, id int64) error {
	return s.inTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, "DELETE FROM "+table+" WHERE id = ?", id)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return store.ErrNotFound
		}
		return nil
	})
}

// DeleteDomain removes an accepted domain.
func (s *Store) DeleteDomain(ctx context.Context, id int64) error {
	return s.deleteByID(ctx, "accepted_domains", id)
}

// DeletePolicy removes an authentication policy.
func (s *Store) DeletePolicy(ctx context.Context, id int64) error {
	return s.deleteByID(ctx, "authentication_policies", id)
}

// DeletePermission removes a Send As grant.
func (s *Store) DeletePermission(ctx context.Context, id int64) error {
	return s.deleteByID(ctx, "recipient_permissions", id)
}
