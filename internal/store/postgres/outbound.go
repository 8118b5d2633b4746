package postgres

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"postern.dev/postern/internal/directory"
	"postern.dev/postern/internal/store"
)

// loadOutbound reads outbound connectors and DKIM configurations into c,
// within LoadDirectory's read transaction.
func loadOutbound(ctx context.Context, tx *sql.Tx, c *directory.Contents) error {
	err := each(ctx, tx, `SELECT id, org_id, name, connector_type, recipient_domains, smart_hosts, use_mx_record,
		tls_settings, tls_domain, enabled, comment, auth_mechanism, smtp_user, smtp_password, oauth_token_endpoint,
		oauth_client_id, oauth_client_secret, oauth_scope, when_created FROM outbound_connectors ORDER BY id`, func(rows *sql.Rows) error {
		oc := &directory.OutboundConnector{}
		var domains, hosts string
		var created int64
		if err := rows.Scan(&oc.ID, &oc.OrgID, &oc.Name, &oc.ConnectorType, &domains, &hosts, &oc.UseMXRecord,
			&oc.TlsSettings, &oc.TlsDomain, &oc.Enabled, &oc.Comment, &oc.AuthMechanism, &oc.SmtpUser, &oc.SmtpPasswordSealed,
			&oc.OAuthTokenEndpoint, &oc.OAuthClientId, &oc.OAuthClientSecretSealed, &oc.OAuthScope, &created); err != nil {
			return err
		}
		if err := json.Unmarshal([]byte(domains), &oc.RecipientDomains); err != nil {
			return fmt.Errorf("outbound connector %d: %w", oc.ID, err)
		}
		if err := json.Unmarshal([]byte(hosts), &oc.SmartHosts); err != nil {
			return fmt.Errorf("outbound connector %d: %w", oc.ID, err)
		}
		oc.WhenCreated = fromNanos(created)
		c.Outbound = append(c.Outbound, oc)
		return nil
	})
	if err != nil {
		return err
	}
	err = each(ctx, tx, `SELECT id, org_id, domain, enabled, algorithm, key_size, active_selector, selector1_key,
		selector2_key, selector1_public, selector2_public, key_creation_time, rotate_on_date, when_created
		FROM dkim_signing_configs ORDER BY id`, func(rows *sql.Rows) error {
		d := &directory.DkimSigningConfig{}
		var keyCreated, rotated, created int64
		if err := rows.Scan(&d.ID, &d.OrgID, &d.Domain, &d.Enabled, &d.Algorithm, &d.KeySize, &d.ActiveSelector,
			&d.Selector1KeySealed, &d.Selector2KeySealed, &d.Selector1PublicKey, &d.Selector2PublicKey,
			&keyCreated, &rotated, &created); err != nil {
			return err
		}
		d.KeyCreationTime, d.WhenCreated = fromNanos(keyCreated), fromNanos(created)
		if rotated != 0 {
			d.RotateOnDate = fromNanos(rotated)
		}
		c.Dkim = append(c.Dkim, d)
		return nil
	})
	if err != nil {
		return err
	}
	return loadOAuth(ctx, tx, c)
}

// SaveOutboundConnector inserts or updates an outbound connector.
func (s *Store) SaveOutboundConnector(ctx context.Context, oc *directory.OutboundConnector) error {
	domains, _ := json.Marshal(nonNil(oc.RecipientDomains))
	hosts, _ := json.Marshal(nonNil(oc.SmartHosts))
	return s.inTx(ctx, func(tx *sql.Tx) error {
		return upsert(ctx, tx, "outbound_connectors", &oc.ID,
			[]string{"org_id", "name", "connector_type", "recipient_domains", "smart_hosts", "use_mx_record", "tls_settings",
				"tls_domain", "enabled", "comment", "auth_mechanism", "smtp_user", "smtp_password", "oauth_token_endpoint",
				"oauth_client_id", "oauth_client_secret", "oauth_scope", "when_created"},
			[]any{oc.OrgID, oc.Name, string(oc.ConnectorType), string(domains), string(hosts), oc.UseMXRecord, string(oc.TlsSettings),
				oc.TlsDomain, oc.Enabled, oc.Comment, string(oc.AuthMechanism), oc.SmtpUser, oc.SmtpPasswordSealed,
				oc.OAuthTokenEndpoint, oc.OAuthClientId, oc.OAuthClientSecretSealed, oc.OAuthScope, created(&oc.WhenCreated)})
	})
}

// DeleteOutboundConnector removes an outbound connector.
func (s *Store) DeleteOutboundConnector(ctx context.Context, id int64) error {
	return s.deleteByID(ctx, "outbound_connectors", id)
}

// SaveDkimSigningConfig inserts or updates a domain's DKIM configuration.
func (s *Store) SaveDkimSigningConfig(ctx context.Context, d *directory.DkimSigningConfig) error {
	var rotated int64
	if !d.RotateOnDate.IsZero() {
		rotated = nanos(d.RotateOnDate)
	}
	return s.inTx(ctx, func(tx *sql.Tx) error {
		return upsert(ctx, tx, "dkim_signing_configs", &d.ID,
			[]string{"org_id", "domain", "enabled", "algorithm", "key_size", "active_selector", "selector1_key", "selector2_key",
				"selector1_public", "selector2_public", "key_creation_time", "rotate_on_date", "when_created"},
			[]any{d.OrgID, d.Domain, d.Enabled, d.Algorithm, d.KeySize, d.ActiveSelector, d.Selector1KeySealed, d.Selector2KeySealed,
				d.Selector1PublicKey, d.Selector2PublicKey, nanos(d.KeyCreationTime), rotated, created(&d.WhenCreated)})
	})
}

// ClaimOutbound leases due outbound items, oldest first. Workers on every
// node claim at once: FOR UPDATE SKIP LOCKED passes over the rows another
// claim is taking, and the lease condition is checked again on the row as
// locked, so no item is leased twice; a lease left by a node that died
// expires and the item is claimed again.
func (s *Store) ClaimOutbound(ctx context.Context, now time.Time, lease time.Duration, node string, limit int) ([]store.OutboundItem, error) {
	var out []store.OutboundItem
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		out = out[:0]
		return each(ctx, tx, `WITH claimed AS (
				UPDATE queue SET leased_until = $1, leased_by = $2
				WHERE id IN (SELECT id FROM queue WHERE mailbox_id IS NULL AND not_before <= $3 AND leased_until <= $3
					ORDER BY not_before, id LIMIT $4 FOR UPDATE SKIP LOCKED)
				RETURNING id, message, recipient, attempts, delay_notified, not_before)
			SELECT c.id, c.message, m.org_id, m.message_id, m.subject, m.envelope_from, c.recipient,
				c.attempts, m.received_at, c.delay_notified, m.size
			FROM claimed c JOIN messages m ON m.id = c.message
			ORDER BY c.not_before, c.id`, func(rows *sql.Rows) error {
			var it store.OutboundItem
			var rec int64
			if err := rows.Scan(&it.QueueID, &it.Message, &it.OrgID, &it.MessageID, &it.Subject, &it.EnvelopeFrom,
				&it.Recipient, &it.Attempts, &rec, &it.DelayNotified, &it.Size); err != nil {
				return err
			}
			it.ReceivedAt = fromNanos(rec)
			out = append(out, it)
			return nil
		}, nanos(now.Add(lease)), node, nanos(now), limit)
	})
	return out, err
}

// ReleaseLeases frees node's leases.
func (s *Store) ReleaseLeases(ctx context.Context, node string) error {
	return s.inTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, "UPDATE queue SET leased_until = 0, leased_by = '' WHERE leased_by = $1", node)
		return err
	})
}

// RecordOutcomes applies outcomes and stores notices in one transaction;
// the bodies of messages that thereby lose their last queue item (and have
// no folder item) are released in it.
func (s *Store) RecordOutcomes(ctx context.Context, outcomes []store.Outcome, notices []*store.Submission) error {
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var done []int64
		for _, o := range outcomes {
			if o.QueueID != 0 {
				var err error
				if o.Event == store.EventDefer {
					_, err = tx.ExecContext(ctx, `UPDATE queue SET attempts = attempts + 1, last_error = $1, not_before = $2,
						leased_until = 0, leased_by = '', delay_notified = delay_notified OR $3 WHERE id = $4`,
						o.Detail, nanos(o.NextAttempt), o.DelayNotified, o.QueueID)
				} else {
					_, err = tx.ExecContext(ctx, "DELETE FROM queue WHERE id = $1", o.QueueID)
					done = append(done, o.Message)
				}
				if err != nil {
					return err
				}
			}
			if err := insertEvent(ctx, tx, o.Message, o.At, o.Event, o.Recipient, o.Detail, o.RemoteHost); err != nil {
				return err
			}
		}
		for _, n := range notices {
			if n.BodyFile != "" {
				return errors.New("notices are committed from memory")
			}
			if err := insertSubmission(ctx, tx, n, 0, int64(len(n.Body))); err != nil {
				return err
			}
		}
		return releaseBodies(ctx, tx, done)
	})
	if err != nil {
		for _, n := range notices {
			n.ID = 0
		}
		return err
	}
	var touched []int64
	for _, n := range notices {
		touched = append(touched, filedMailboxes(n)...)
	}
	s.changed(touched...)
	return nil
}

func insertEvent(ctx context.Context, tx *sql.Tx, message int64, at time.Time, event, recipient, detail, remote string) error {
	st := eventStatement(message, at, event, recipient, detail, remote)
	_, err := tx.ExecContext(ctx, st.sql, st.args...)
	return err
}

// RetryNow makes outbound items due now, ending any wait (Retry-Queue).
func (s *Store) RetryNow(ctx context.Context, ids []int64, now time.Time) (int, error) {
	if len(ids) == 0 {
		return 0, nil
	}
	var n int64
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE queue SET not_before = $1 WHERE mailbox_id IS NULL AND id = ANY($2)`, nanos(now), ids)
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	return int(n), err
}

// TraceEvents lists a message's events in the order they happened: its
// Receive, made from its row (store.EventReceive says why), then those
// recorded.
func (s *Store) TraceEvents(ctx context.Context, message int64) ([]store.TraceEvent, error) {
	var at, auth int64
	var clientIP, connector string
	err := s.r.QueryRowContext(ctx, `SELECT received_at, client_ip, COALESCE(auth_mailbox, 0), inbound_connector
		FROM messages WHERE id = $1`, message).Scan(&at, &clientIP, &auth, &connector)
	found := err == nil
	if err != nil && err != sql.ErrNoRows {
		return nil, err
	}
	var out []store.TraceEvent
	err = each(ctx, s.r, `SELECT at, event, recipient, detail, remote_host FROM trace_events
		WHERE message = $1 ORDER BY id`, func(rows *sql.Rows) error {
		var e store.TraceEvent
		var at int64
		if err := rows.Scan(&at, &e.Event, &e.Recipient, &e.Detail, &e.RemoteHost); err != nil {
			return err
		}
		e.At = fromNanos(at)
		out = append(out, e)
		return nil
	}, message)
	if err != nil || !found {
		return out, err
	}
	return store.WithReceive(store.ReceiveEvent(fromNanos(at), clientIP, auth, connector), out), nil
}
