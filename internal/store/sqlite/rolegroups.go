package sqlite

import (
	"context"
	"database/sql"

	"postern.dev/postern/internal/store"
)

// RoleGroupMembers lists an organization's role group memberships, by
// role group and then mailbox.
func (s *Store) RoleGroupMembers(ctx context.Context, orgID int64) ([]store.RoleGroupMember, error) {
	var out []store.RoleGroupMember
	err := each(ctx, s.r, `SELECT org_id, role, mailbox_id FROM role_group_members WHERE org_id = ? ORDER BY role, mailbox_id`, func(rows *sql.Rows) error {
		var m store.RoleGroupMember
		err := rows.Scan(&m.OrgID, &m.Role, &m.MailboxID)
		out = append(out, m)
		return err
	}, orgID)
	return out, err
}

// MailboxRoleGroups lists the role groups a mailbox is a member of.
func (s *Store) MailboxRoleGroups(ctx context.Context, mailboxID int64) ([]string, error) {
	var out []string
	err := each(ctx, s.r, `SELECT role FROM role_group_members WHERE mailbox_id = ? ORDER BY role`, func(rows *sql.Rows) error {
		var r string
		err := rows.Scan(&r)
		out = append(out, r)
		return err
	}, mailboxID)
	return out, err
}

// AddRoleGroupMember adds a membership; ErrConflict when it exists.
func (s *Store) AddRoleGroupMember(ctx context.Context, m store.RoleGroupMember) error {
	return s.inTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO role_group_members (org_id, role, mailbox_id) VALUES (?, ?, ?)`, m.OrgID, m.Role, m.MailboxID)
		if isConstraint(err) {
			return store.ErrConflict
		}
		return err
	})
}

// RemoveRoleGroupMember removes a membership; ErrNotFound when there is
// none.
func (s *Store) RemoveRoleGroupMember(ctx context.Context, m store.RoleGroupMember) error {
	return s.inTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM role_group_members WHERE org_id = ? AND role = ? AND mailbox_id = ?`, m.OrgID, m.Role, m.MailboxID)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return store.ErrNotFound
		}
		return nil
	})
}
