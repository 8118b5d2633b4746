package admin

import (
	"context"
	"strings"
	"time"

	"postern.dev/postern/internal/cmdlet"
	"postern.dev/postern/internal/store"
)

// accessSpecs are the cmdlets for organizations and REST API sign-in.
func (c *cmdlets) accessSpecs(identity, optionalIdentity cmdlet.ParamSpec) []cmdlet.Spec {
	roles := make([]string, 0, len(Roles)+1)
	for _, r := range Roles {
		roles = append(roles, string(r))
	}
	roles = append(roles, "View-Only")
	return []cmdlet.Spec{
		{Name: "Get-Organization", Output: "Organization", Access: cmdlet.ReadAccess, REST: cmdlet.Route{Op: cmdlet.RouteList, Path: "organizations", Description: "The organization the API key belongs to."}, Synopsis: "Lists the organizations (tenants) this server hosts.", Params: []cmdlet.ParamSpec{optionalIdentity}, Run: c.getOrganization},
		{Name: "New-Organization", Output: "Organization", Access: cmdlet.ServerAccess, REST: at(cmdlet.RouteCreate, "organizations"), Synopsis: "Creates an organization (a tenant) with its own domains, mailboxes, connectors and admins; `postern --organization NAME` then acts on it.",
			SupportsWhatIf: true, Params: []cmdlet.ParamSpec{{Name: "Name", Type: cmdlet.String, Position: 0, Required: true}}, Run: c.newOrganization},
		{Name: "Get-ApiKey", Output: "ApiKey", Access: cmdlet.OrganizationAccess, REST: cmdlet.Route{Op: cmdlet.RouteList, Path: "api-keys", Description: "REST API keys; the key itself is only in POST's answer."}, Synopsis: "Lists the organization's REST API keys (never the keys themselves).", Params: []cmdlet.ParamSpec{optionalIdentity}, Run: c.getApiKey},
		{Name: "New-ApiKey", Output: "ApiKey", Access: cmdlet.OrganizationAccess, REST: at(cmdlet.RouteCreate, "api-keys"), Synopsis: "Creates a REST API key for the organization with a role group; the key is shown only once. -ExpiresAfter 90 (days), 90.00:00:00 or 36h makes it stop working then.", SupportsWhatIf: true,
			Params: []cmdlet.ParamSpec{{Name: "Name", Type: cmdlet.String, Position: 0, Required: true},
				{Name: "Role", Type: cmdlet.Enum, ValidValues: roles, Position: -1, Required: true},
				{Name: "ExpiresAfter", Type: cmdlet.String, Position: -1}},
			Run: c.newApiKey},
		{Name: "Remove-ApiKey", Output: cmdlet.NoOutput, Access: cmdlet.OrganizationAccess, REST: at(cmdlet.RouteDelete, "api-keys"), Synopsis: "Revokes a REST API key: requests signed with it fail from then on.", SupportsWhatIf: true, Params: []cmdlet.ParamSpec{identity}, Run: c.removeApiKey},
	}
}

func (c *cmdlets) getOrganization(_ context.Context, inv *cmdlet.Invocation) ([]*cmdlet.Object, error) {
	var out []*cmdlet.Object
	for _, o := range c.svc.Organizations() {
		if c.svc.scoped && o.ID != c.svc.orgID {
			continue
		}
		if id := inv.String("Identity"); id == "" || strings.EqualFold(id, o.Name) || strings.EqualFold(id, o.GUID) {
			out = append(out, organizationObject(o))
		}
	}
	if inv.Has("Identity") && len(out) == 0 {
		return nil, NotFound(inv.String("Identity"))
	}
	return out, nil
}

func (c *cmdlets) newOrganization(ctx context.Context, inv *cmdlet.Invocation) ([]*cmdlet.Object, error) {
	if whatIf(inv, "Creating organization %q.", inv.String("Name")) {
		return nil, nil
	}
	o, err := c.svc.NewOrganization(ctx, inv.String("Name"))
	if err != nil {
		return nil, err
	}
	return []*cmdlet.Object{organizationObject(o)}, nil
}

func (c *cmdlets) apiKeyObject(k store.APIKey, key string) *cmdlet.Object {
	org := ""
	if o := c.svc.Dir.Load().Organization(k.OrgID); o != nil {
		org = o.Name
	}
	return &cmdlet.Object{TypeName: "ApiKey", DefaultView: cmdlet.TableView, DefaultDisplay: []string{"Name", "Role", "KeyPrefix", "WhenCreated", "LastUsed", "Expires"},
		Props: []cmdlet.Prop{
			{Name: "Name", Value: k.Name},
			{Name: "Identity", Value: k.Name},
			{Name: "Organization", Value: org},
			{Name: "Role", Value: k.Role},
			// The prefix tells keys apart in a list; the key itself is
			// only in New-ApiKey's output.
			{Name: "KeyPrefix", Value: k.Prefix + "..."},
			{Name: "Key", Value: nullIfEmpty(key)},
			{Name: "WhenCreated", Value: k.Created},
			{Name: "LastUsed", Value: timeOrNull(k.LastUsed)},
			{Name: "Expires", Value: timeOrNull(k.Expires)},
		}}
}

func (c *cmdlets) getApiKey(ctx context.Context, inv *cmdlet.Invocation) ([]*cmdlet.Object, error) {
	keys, err := c.svc.APIKeys(ctx, inv.String("Identity"))
	return objects(keys, err, func(k store.APIKey) *cmdlet.Object { return c.apiKeyObject(k, "") })
}

func (c *cmdlets) newApiKey(ctx context.Context, inv *cmdlet.Invocation) ([]*cmdlet.Object, error) {
	role, err := ParseRole(inv.String("Role"))
	if err != nil {
		return nil, err
	}
	var expiresAfter time.Duration
	if inv.Has("ExpiresAfter") {
		if expiresAfter, err = ParseTimeSpan(inv.String("ExpiresAfter")); err != nil {
			return nil, err
		}
	}
	if whatIf(inv, "Creating API key %q with the role %q.", inv.String("Name"), role) {
		return nil, nil
	}
	k, key, err := c.svc.NewAPIKey(ctx, inv.String("Name"), role, expiresAfter)
	if err != nil {
		return nil, err
	}
	inv.Printf("Copy the key now: it is not stored and cannot be shown again.\n")
	obj := c.apiKeyObject(k, key)
	obj.DefaultView, obj.DefaultDisplay = cmdlet.ListView, []string{"Name", "Organization", "Role", "Expires", "Key"}
	return []*cmdlet.Object{obj}, nil
}

func (c *cmdlets) removeApiKey(ctx context.Context, inv *cmdlet.Invocation) ([]*cmdlet.Object, error) {
	if whatIf(inv, "Removing API key %q.", inv.String("Identity")) {
		return nil, nil
	}
	return nil, c.svc.RemoveAPIKey(ctx, inv.String("Identity"))
}

// timeOrNull is a time, or $null for one that never happened.
func timeOrNull(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t
}
