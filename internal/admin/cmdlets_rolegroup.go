package admin

import (
	"context"

	"postern.dev/postern/internal/cmdlet"
	"postern.dev/postern/internal/directory"
)

// roleGroupSpecs are Exchange's role group membership cmdlets. The role
// groups themselves are fixed (Organization Management, Recipient
// Management, View-Only Organization Management); a member is a mailbox
// of the organization.
func (c *cmdlets) roleGroupSpecs() []cmdlet.Spec {
	group := cmdlet.ParamSpec{Name: "Identity", Type: cmdlet.String, Position: 0, Required: true,
		Help: `"Organization Management", "Recipient Management" or "View-Only Organization Management".`}
	member := cmdlet.ParamSpec{Name: "Member", Type: cmdlet.String, Position: -1, Required: true}
	// Exchange's scripts pass -BypassSecurityGroupManagerCheck; Postern's
	// role groups have no managers, so it changes nothing.
	bypass := cmdlet.ParamSpec{Name: "BypassSecurityGroupManagerCheck", Type: cmdlet.Switch, Position: -1}
	return []cmdlet.Spec{
		{Name: "Get-RoleGroupMember", Output: "RoleGroupMember", Access: cmdlet.ReadAccess, REST: cmdlet.Route{Op: cmdlet.RouteList, Path: "role-group-members", ItemList: true, Description: "Role group members: GET .../{role group} lists them, POST adds one (Identity and Member), DELETE .../{role group} takes Member as a query parameter."}, Synopsis: "Lists the members of a role group: the mailboxes that sign in to the web admin center with its role.",
			Params: []cmdlet.ParamSpec{group}, Run: c.getRoleGroupMember},
		{Name: "Add-RoleGroupMember", Output: cmdlet.NoOutput, Access: cmdlet.OrganizationAccess, REST: at(cmdlet.RouteCreate, "role-group-members"), Synopsis: "Adds a mailbox to a role group, which lets it sign in to the web admin center with that role.", SupportsWhatIf: true,
			Params: []cmdlet.ParamSpec{group, member, bypass}, Run: c.addRoleGroupMember},
		{Name: "Remove-RoleGroupMember", Output: cmdlet.NoOutput, Access: cmdlet.OrganizationAccess, REST: at(cmdlet.RouteDelete, "role-group-members"), Synopsis: "Removes a mailbox from a role group; its admin center sessions lose the role at their next request.", SupportsWhatIf: true,
			Params: []cmdlet.ParamSpec{group, member, bypass}, Run: c.removeRoleGroupMember},
	}
}

func roleGroupMemberObject(role Role, m *directory.Mailbox) *cmdlet.Object {
	return &cmdlet.Object{TypeName: "RoleGroupMember", DefaultView: cmdlet.TableView, DefaultDisplay: []string{"Name", "RecipientType"},
		Props: []cmdlet.Prop{
			{Name: "Name", Value: m.Name},
			{Name: "Identity", Value: m.PrimarySmtpAddress},
			{Name: "RecipientType", Value: string(m.Type)},
			{Name: "PrimarySmtpAddress", Value: m.PrimarySmtpAddress},
			{Name: "RoleGroup", Value: string(role)},
		}}
}

func (c *cmdlets) getRoleGroupMember(ctx context.Context, inv *cmdlet.Invocation) ([]*cmdlet.Object, error) {
	role, ms, err := c.svc.RoleGroupMembers(ctx, inv.String("Identity"))
	return objects(ms, err, func(m *directory.Mailbox) *cmdlet.Object { return roleGroupMemberObject(role, m) })
}

func (c *cmdlets) addRoleGroupMember(ctx context.Context, inv *cmdlet.Invocation) ([]*cmdlet.Object, error) {
	if whatIf(inv, "Adding %q to the role group %q.", inv.String("Member"), inv.String("Identity")) {
		return nil, nil
	}
	return nil, c.svc.AddRoleGroupMember(ctx, inv.String("Identity"), inv.String("Member"))
}

func (c *cmdlets) removeRoleGroupMember(ctx context.Context, inv *cmdlet.Invocation) ([]*cmdlet.Object, error) {
	if whatIf(inv, "Removing %q from the role group %q.", inv.String("Member"), inv.String("Identity")) {
		return nil, nil
	}
	return nil, c.svc.RemoveRoleGroupMember(ctx, inv.String("Identity"), inv.String("Member"))
}
