package postgres

import (
	"context"
	"database/sql"
	"strings"
	"time"

	"postern.dev/postern/internal/directory"
	"postern.dev/postern/internal/store"
	"postern.dev/postern/internal/store/sqlrow"
)

// loadFilters reads the outbound spam and connection filter policies and
// the restricted senders into c (part of LoadDirectory).
func loadFilters(ctx context.Context, tx querier, c *directory.Contents) error {
	err := each(ctx, tx, `SELECT org_id, external_per_hour, internal_per_hour, per_day, action, when_changed
		FROM outbound_spam_policies ORDER BY org_id`, func(rows *sql.Rows) error {
		p := &directory.OutboundSpamFilterPolicy{}
		var changed int64
		if err := rows.Scan(&p.OrgID, &p.RecipientLimitExternalPerHour, &p.RecipientLimitInternalPerHour, &p.RecipientLimitPerDay,
			&p.ActionWhenThresholdReached, &changed); err != nil {
			return err
		}
		p.WhenChanged = fromNanos(changed)
		c.OutboundSpamPolicies = append(c.OutboundSpamPolicies, p)
		return nil
	})
	if err != nil {
		return err
	}
	err = each(ctx, tx, `SELECT org_id, ip_allow_list, ip_block_list, when_changed
		FROM connection_filter_policies ORDER BY org_id`, func(rows *sql.Rows) error {
		p := &directory.ConnectionFilterPolicy{}
		var allow, block string
		var changed int64
		if err := rows.Scan(&p.OrgID, &allow, &block, &changed); err != nil {
			return err
		}
		p.IPAllowList, p.IPBlockList, p.WhenChanged = ipRanges(allow), ipRanges(block), fromNanos(changed)
		c.ConnectionFilters = append(c.ConnectionFilters, p)
		return nil
	})
	if err != nil {
		return err
	}
	return each(ctx, tx, sqlrow.SelectRestrictedSender+" ORDER BY id", func(rows *sql.Rows) error {
		r, err := sqlrow.ScanRestrictedSender(rows)
		if err != nil {
			return err
		}
		c.RestrictedSenders = append(c.RestrictedSenders, r)
		return nil
	})
}

// ipRanges reads a stored list. Entries were validated when saved; one
// that no longer parses (a limit tightened since) is left out rather than
// making the whole directory unreadable.
func ipRanges(s string) []directory.IPRange {
	var out []directory.IPRange
	for line := range strings.SplitSeq(s, "\n") {
		if r, err := directory.ParseIPRange(line); err == nil {
			out = append(out, r)
		}
	}
	return out
}

func joinRanges(list []directory.IPRange) string {
	parts := make([]string, len(list))
	for i, r := range list {
		parts[i] = r.String()
	}
	return strings.Join(parts, "\n")
}

// SaveOutboundSpamPolicy stores an organization's outbound spam policy.
func (s *Store) SaveOutboundSpamPolicy(ctx context.Context, p *directory.OutboundSpamFilterPolicy) error {
	if p.WhenChanged.IsZero() {
		p.WhenChanged = time.Now().UTC()
	}
	return s.inTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO outbound_spam_policies (org_id, external_per_hour, internal_per_hour, per_day, action, when_changed)
			VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (org_id) DO UPDATE SET external_per_hour = excluded.external_per_hour,
			internal_per_hour = excluded.internal_per_hour, per_day = excluded.per_day, action = excluded.action, when_changed = excluded.when_changed`,
			p.OrgID, p.RecipientLimitExternalPerHour, p.RecipientLimitInternalPerHour, p.RecipientLimitPerDay, p.ActionWhenThresholdReached, nanos(p.WhenChanged))
		return err
	})
}

// SaveConnectionFilterPolicy stores an organization's connection filter policy.
func (s *Store) SaveConnectionFilterPolicy(ctx context.Context, p *directory.ConnectionFilterPolicy) error {
	if p.WhenChanged.IsZero() {
		p.WhenChanged = time.Now().UTC()
	}
	return s.inTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO connection_filter_policies (org_id, ip_allow_list, ip_block_list, when_changed)
			VALUES ($1, $2, $3, $4) ON CONFLICT (org_id) DO UPDATE SET ip_allow_list = excluded.ip_allow_list,
			ip_block_list = excluded.ip_block_list, when_changed = excluded.when_changed`,
			p.OrgID, joinRanges(p.IPAllowList), joinRanges(p.IPBlockList), nanos(p.WhenChanged))
		return err
	})
}

// SaveRestrictedSender records a mailbox's restriction, replacing the one
// it had (one row per mailbox), and sets r.ID.
func (s *Store) SaveRestrictedSender(ctx context.Context, r *directory.RestrictedSender) error {
	return s.inTx(ctx, func(tx *sql.Tx) error {
		err := tx.QueryRowContext(ctx, `INSERT INTO restricted_senders (org_id, mailbox_id, sender_address, reason, action, created_at, expires_at, released_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (mailbox_id) DO UPDATE SET org_id = excluded.org_id,
			sender_address = excluded.sender_address, reason = excluded.reason, action = excluded.action,
			created_at = excluded.created_at, expires_at = excluded.expires_at, released_at = excluded.released_at
			RETURNING id`,
			r.OrgID, r.MailboxID, r.SenderAddress, r.Reason, r.Action, nanos(r.CreatedAt), nanos(r.ExpiresAt), nanos(r.ReleasedAt)).Scan(&r.ID)
		if pgCode(err) == foreignKeyViolation {
			return store.ErrNotFound // the mailbox is gone
		}
		return err
	})
}
