package admin

import (
	"context"
	"errors"
	"fmt"

	"postern.dev/postern/internal/directory"
	"postern.dev/postern/internal/store"
)

// Role group membership: Exchange grants admin roles by making a user a
// member of a role group (Add-RoleGroupMember -Identity "Organization
// Management" -Member sean@contoso.com). Postern stores the membership per
// organization; the web admin center signs a mailbox in with the role
// its memberships give it (MailboxRole).

// RoleGroupMembers lists the members of a role group of the organization.
func (s *Service) RoleGroupMembers(ctx context.Context, identity string) (Role, []*directory.Mailbox, error) {
	role, err := roleGroup(identity)
	if err != nil {
		return "", nil, err
	}
	ms, err := s.Store.RoleGroupMembers(ctx, s.org().ID)
	if err != nil {
		return "", nil, storeError(err, "role group", identity)
	}
	dir := s.Dir.Load()
	var out []*directory.Mailbox
	for _, m := range ms {
		if m.Role != string(role) {
			continue
		}
		// The snapshot may lag the store by a change; a member whose
		// mailbox is gone (the membership went with it) is skipped.
		if mb := dir.Mailbox(m.MailboxID); mb != nil && mb.OrgID == s.org().ID {
			out = append(out, mb)
		}
	}
	return role, out, nil
}

// AddRoleGroupMember makes a mailbox of the organization a member of a
// role group. Shared mailboxes have no password and cannot sign in, so
// they cannot hold an admin role.
func (s *Service) AddRoleGroupMember(ctx context.Context, identity, member string) error {
	role, err := roleGroup(identity)
	if err != nil {
		return err
	}
	return s.change(ctx, func(dir *directory.Snapshot, org *directory.Organization) error {
		mb, err := findMailbox(dir, org, member)
		if err != nil {
			return err
		}
		if mb.Type == directory.SharedMailbox {
			return invalidValue("Member", member, "a shared mailbox cannot sign in, so it cannot be a member of a role group")
		}
		err = s.Store.AddRoleGroupMember(ctx, store.RoleGroupMember{OrgID: org.ID, Role: string(role), MailboxID: mb.ID})
		if errors.Is(err, store.ErrConflict) {
			return &kindError{ErrExists, fmt.Sprintf("The recipient \"%s\" is already a member of the group \"%s\".", mb.Name, role)}
		}
		return storeError(err, "role group", identity)
	})
}

// RemoveRoleGroupMember takes a mailbox out of a role group.
func (s *Service) RemoveRoleGroupMember(ctx context.Context, identity, member string) error {
	role, err := roleGroup(identity)
	if err != nil {
		return err
	}
	return s.change(ctx, func(dir *directory.Snapshot, org *directory.Organization) error {
		mb, err := findMailbox(dir, org, member)
		if err != nil {
			return err
		}
		err = s.Store.RemoveRoleGroupMember(ctx, store.RoleGroupMember{OrgID: org.ID, Role: string(role), MailboxID: mb.ID})
		if errors.Is(err, store.ErrNotFound) {
			return &kindError{ErrNotFound, fmt.Sprintf("The recipient \"%s\" isn't a member of the group \"%s\".", mb.Name, role)}
		}
		return storeError(err, "role group", identity)
	})
}

// MailboxRole is the admin role a mailbox's role group memberships give
// it: the widest of them. ok is false for a mailbox in no role group.
func (s *Service) MailboxRole(ctx context.Context, mb *directory.Mailbox) (role Role, ok bool, err error) {
	names, err := s.Store.MailboxRoleGroups(ctx, mb.ID)
	if err != nil {
		return "", false, err
	}
	rank := map[Role]int{ViewOnly: 1, RecipientManagement: 2, OrganizationManagement: 3}
	for _, n := range names {
		r, err := ParseRole(n)
		if err != nil {
			continue
		}
		if rank[r] > rank[role] {
			role, ok = r, true
		}
	}
	return role, ok, nil
}

// roleGroup reads a role group's identity: its name, ignoring case.
func roleGroup(identity string) (Role, error) {
	r, err := ParseRole(identity)
	if err != nil {
		return "", NotFound(identity)
	}
	return r, nil
}
