package postgres

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"time"

	"postern.dev/postern/internal/directory"
	"postern.dev/postern/internal/store"
	"postern.dev/postern/internal/store/sqlrow"
)

// loadOAuth reads auth servers, service principals, mailbox permissions and
// app registrations into c, within LoadDirectory's read transaction.
func loadOAuth(ctx context.Context, tx *sql.Tx, c *directory.Contents) error {
	err := each(ctx, tx, `SELECT id, org_id, name, auth_metadata_url, issuer, jwks_uri, token_endpoint, audience,
		user_claims, enabled, built_in, when_created FROM auth_servers ORDER BY id`, func(rows *sql.Rows) error {
		a := &directory.AuthServer{}
		var claims string
		var created int64
		if err := rows.Scan(&a.ID, &a.OrgID, &a.Name, &a.AuthMetadataUrl, &a.Issuer, &a.JwksUri, &a.TokenEndpoint,
			&a.Audience, &claims, &a.Enabled, &a.BuiltIn, &created); err != nil {
			return err
		}
		if err := json.Unmarshal([]byte(claims), &a.UserClaims); err != nil {
			return fmt.Errorf("auth server %d: %w", a.ID, err)
		}
		a.WhenCreated = fromNanos(created)
		c.AuthServers = append(c.AuthServers, a)
		return nil
	})
	if err != nil {
		return err
	}
	err = each(ctx, tx, `SELECT id, org_id, app_id, object_id, display_name, when_created FROM service_principals ORDER BY id`,
		func(rows *sql.Rows) error {
			p := &directory.ServicePrincipal{}
			var created int64
			if err := rows.Scan(&p.ID, &p.OrgID, &p.AppId, &p.ObjectId, &p.DisplayName, &created); err != nil {
				return err
			}
			p.WhenCreated = fromNanos(created)
			c.Principals = append(c.Principals, p)
			return nil
		})
	if err != nil {
		return err
	}
	err = each(ctx, tx, sqlrow.SelectMailboxPermission+" ORDER BY id", func(rows *sql.Rows) error {
		p, err := sqlrow.ScanMailboxPermission(rows)
		if err != nil {
			return err
		}
		c.MailboxPerms = append(c.MailboxPerms, p)
		return nil
	})
	if err != nil {
		return err
	}
	return each(ctx, tx, `SELECT id, org_id, name, app_id, secret_hashes, certificates, when_created FROM oauth_apps ORDER BY id`,
		func(rows *sql.Rows) error {
			a := &directory.OAuthApp{}
			var secrets, certs string
			var created int64
			if err := rows.Scan(&a.ID, &a.OrgID, &a.Name, &a.AppId, &secrets, &certs, &created); err != nil {
				return err
			}
			if err := json.Unmarshal([]byte(secrets), &a.SecretHashes); err != nil {
				return fmt.Errorf("app %d: %w", a.ID, err)
			}
			if err := json.Unmarshal([]byte(certs), &a.Certificates); err != nil {
				return fmt.Errorf("app %d: %w", a.ID, err)
			}
			a.WhenCreated = fromNanos(created)
			c.OAuthApps = append(c.OAuthApps, a)
			return nil
		})
}

func jsonList(v []string) string {
	b, _ := json.Marshal(nonNil(v))
	return string(b)
}

// SaveAuthServer inserts or updates a trusted issuer.
func (s *Store) SaveAuthServer(ctx context.Context, a *directory.AuthServer) error {
	return s.inTx(ctx, func(tx *sql.Tx) error {
		return upsert(ctx, tx, "auth_servers", &a.ID,
			[]string{"org_id", "name", "auth_metadata_url", "issuer", "jwks_uri", "token_endpoint", "audience", "user_claims",
				"enabled", "built_in", "when_created"},
			[]any{a.OrgID, a.Name, a.AuthMetadataUrl, a.Issuer, a.JwksUri, a.TokenEndpoint, a.Audience, jsonList(a.UserClaims),
				a.Enabled, a.BuiltIn, created(&a.WhenCreated)})
	})
}

// SaveServicePrincipal inserts or updates a service principal.
func (s *Store) SaveServicePrincipal(ctx context.Context, p *directory.ServicePrincipal) error {
	return s.inTx(ctx, func(tx *sql.Tx) error {
		return upsert(ctx, tx, "service_principals", &p.ID,
			[]string{"org_id", "app_id", "object_id", "display_name", "when_created"},
			[]any{p.OrgID, p.AppId, p.ObjectId, p.DisplayName, created(&p.WhenCreated)})
	})
}

// SaveMailboxPermission inserts a FullAccess grant.
func (s *Store) SaveMailboxPermission(ctx context.Context, p *directory.MailboxPermission) error {
	nullable := func(id int64) any {
		if id == 0 {
			return nil
		}
		return id
	}
	return s.inTx(ctx, func(tx *sql.Tx) error {
		return upsert(ctx, tx, "mailbox_permissions", &p.ID,
			[]string{"org_id", "identity", "trustee_principal", "trustee_mailbox"},
			[]any{p.OrgID, p.Identity, nullable(p.TrusteePrincipal), nullable(p.TrusteeMailbox)})
	})
}

// SaveOAuthApp inserts or updates an app registration.
func (s *Store) SaveOAuthApp(ctx context.Context, a *directory.OAuthApp) error {
	return s.inTx(ctx, func(tx *sql.Tx) error {
		return upsert(ctx, tx, "oauth_apps", &a.ID,
			[]string{"org_id", "name", "app_id", "secret_hashes", "certificates", "when_created"},
			[]any{a.OrgID, a.Name, a.AppId, jsonList(a.SecretHashes), jsonList(a.Certificates), created(&a.WhenCreated)})
	})
}

// DeleteAuthServer removes a trusted issuer.
func (s *Store) DeleteAuthServer(ctx context.Context, id int64) error {
	return s.deleteByID(ctx, "auth_servers", id)
}

// DeleteServicePrincipal removes a service principal and its grants.
func (s *Store) DeleteServicePrincipal(ctx context.Context, id int64) error {
	return s.deleteByID(ctx, "service_principals", id)
}

// DeleteMailboxPermission removes a FullAccess grant.
func (s *Store) DeleteMailboxPermission(ctx context.Context, id int64) error {
	return s.deleteByID(ctx, "mailbox_permissions", id)
}

// DeleteOAuthApp removes an app registration.
func (s *Store) DeleteOAuthApp(ctx context.Context, id int64) error {
	return s.deleteByID(ctx, "oauth_apps", id)
}

// IssuerKeys lists the built-in issuer's keys, newest first.
func (s *Store) IssuerKeys(ctx context.Context) ([]store.IssuerKey, error) {
	var out []store.IssuerKey
	err := each(ctx, s.r, `SELECT kid, private_key, created FROM issuer_keys ORDER BY id DESC`, func(rows *sql.Rows) error {
		var k store.IssuerKey
		var at int64
		if err := rows.Scan(&k.Kid, &k.PrivateSealed, &at); err != nil {
			return err
		}
		k.Created = fromNanos(at)
		out = append(out, k)
		return nil
	})
	return out, err
}

// SaveIssuerKey adds a key and drops all but the newest keep.
func (s *Store) SaveIssuerKey(ctx context.Context, k store.IssuerKey, keep int) error {
	return s.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO issuer_keys (kid, private_key, created) VALUES ($1, $2, $3)`,
			k.Kid, k.PrivateSealed, nanos(k.Created)); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `DELETE FROM issuer_keys WHERE id NOT IN (SELECT id FROM issuer_keys ORDER BY id DESC LIMIT $1)`, keep)
		return err
	})
}

// SmtpAuthClients groups authenticated submissions since a time.
func (s *Store) SmtpAuthClients(ctx context.Context, since time.Time) ([]store.SmtpAuthClientRow, error) {
	var out []store.SmtpAuthClientRow
	err := each(ctx, s.r, `SELECT auth_mailbox, tls_version, auth_protocol, COUNT(*), MAX(received_at) FROM messages
		WHERE auth_mailbox IS NOT NULL AND received_at >= $1 GROUP BY auth_mailbox, tls_version, auth_protocol
		ORDER BY auth_mailbox`, func(rows *sql.Rows) error {
		var r store.SmtpAuthClientRow
		var last int64
		if err := rows.Scan(&r.Mailbox, &r.TLSVersion, &r.AuthProtocol, &r.Messages, &last); err != nil {
			return err
		}
		r.Last = fromNanos(last)
		out = append(out, r)
		return nil
	}, nanos(since))
	return out, err
}
