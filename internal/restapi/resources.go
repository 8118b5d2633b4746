package restapi

import (
	"net/http"
	"slices"
	"strings"

	"postern.dev/postern/internal/admin"
	"postern.dev/postern/internal/cmdlet"
)

// resource maps a URL to the cmdlets of one noun:
//
//	GET    /api/v1/{path}                  Get-{Noun} (query parameters are its parameters)
//	POST   /api/v1/{path}                  New-{Noun} or Add-{Noun} (the body's parameters)
//	PATCH  /api/v1/{path}                  Set-{Noun}, then Get-{Noun} (singletons)
//	GET    /api/v1/{path}/{identity}       Get-{Noun} -Identity
//	PATCH  /api/v1/{path}/{identity}       Set-{Noun} -Identity, then Get-{Noun} -Identity
//	DELETE /api/v1/{path}/{identity}       Remove-{Noun} -Identity
//	POST   /api/v1/{path}/{identity}/{verb} {Verb}-{Noun} -Identity (retry, rotate)
//
// A method whose cmdlet does not exist answers 405.
type resource struct {
	Path string
	Noun string
	// Get overrides the cmdlet that reads the collection.
	Get string
	// Singleton resources are the organization's settings: one object,
	// no identity.
	Singleton bool
	// ItemGet and ItemParam read an item where Get-{Noun} -Identity does
	// not (a message's trace details); ItemList marks items that are
	// lists (a mailbox's permissions), answered as {"value": [...]}.
	ItemGet, ItemParam string
	ItemList           bool
	Description        string
}

var resources = []resource{
	{Path: "organizations", Noun: "Organization", Description: "The organization the API key belongs to."},
	{Path: "organization-config", Noun: "OrganizationConfig", Singleton: true, Description: "Organization-wide settings (Get-/Set-OrganizationConfig)."},
	{Path: "transport-config", Noun: "TransportConfig", Singleton: true, Description: "Transport settings, including the organization's SMTP AUTH switch (Get-/Set-TransportConfig)."},
	{Path: "accepted-domains", Noun: "AcceptedDomain", Description: "Accepted domains."},
	{Path: "mailboxes", Noun: "Mailbox", Description: "Mailboxes."},
	{Path: "cas-mailboxes", Noun: "CASMailbox", Description: "Mailboxes' client access settings: SMTP AUTH, IMAP4 and POP3."},
	{Path: "cas-mailbox-plan", Noun: "CASMailboxPlan", Singleton: true, Description: "The CAS mailbox plan: whether new mailboxes start with IMAP4 and POP3 access (Get-/Set-CASMailboxPlan)."},
	{Path: "mailbox-statistics", Noun: "MailboxStatistics", Description: "A mailbox's item count and total size against its quotas (GET .../{identity})."},
	{Path: "users", Noun: "User", Description: "Users and their authentication policy."},
	{Path: "authentication-policies", Noun: "AuthenticationPolicy", Description: "Authentication policies (Basic authentication for SMTP, IMAP4 and POP3)."},
	{Path: "recipient-permissions", Noun: "RecipientPermission", ItemList: true, Description: "Send As permissions; the identity is the mailbox, DELETE takes Trustee and AccessRights as query parameters."},
	{Path: "mailbox-permissions", Noun: "MailboxPermission", ItemList: true, Description: "Full Access permissions (applications that send as a mailbox); DELETE takes User and AccessRights as query parameters."},
	{Path: "inbound-connectors", Noun: "InboundConnector", Description: "Inbound connectors: relay by IP range or TLS certificate."},
	{Path: "outbound-connectors", Noun: "OutboundConnector", Description: "Outbound connectors: smart hosts."},
	{Path: "dkim-signing-configs", Noun: "DkimSigningConfig", Description: "DKIM signing per domain; POST .../{domain}/rotate switches selectors."},
	{Path: "auth-servers", Noun: "AuthServer", Description: "Trusted OAuth issuers."},
	{Path: "service-principals", Noun: "ServicePrincipal", Description: "Service principals of applications that send with OAuth."},
	{Path: "oauth-apps", Noun: "OAuthApp", Description: "App registrations of the built-in OAuth issuer."},
	{Path: "queues", Noun: "Queue", Description: "Delivery queues; POST .../{identity}/retry retries one now."},
	{Path: "queue-messages", Noun: "QueueMessage", Description: "Queued messages, a recipient's copy each; DELETE removes one (WithNDR as a query parameter)."},
	{Path: "message-trace", Noun: "MessageTrace", Get: "Get-MessageTraceV2", ItemGet: "Get-MessageTraceDetail", ItemParam: "MessageTraceId", ItemList: true,
		Description: "Message trace; the item is a MessageTraceId and answers its detail events (RecipientAddress as a query parameter)."},
	{Path: "mailbox-sign-ins", Noun: "MailboxSignIn", Get: "Get-MailboxSignInReport", Description: "The sign-in report: successful SMTP, IMAP4 and POP3 sign-ins per mailbox, client address and method (Protocol, Identity, StartDate, EndDate as query parameters)."},
	{Path: "smtp-auth-clients", Noun: "SmtpAuthClient", Get: "Get-SmtpAuthClientReport", Description: "The SMTP AUTH clients report: who sends with passwords and who with tokens."},
	{Path: "admin-audit-log", Noun: "AdminAuditLog", Get: "Search-AdminAuditLog", Description: "The admin audit log (Search-AdminAuditLog)."},
	{Path: "role-group-members", Noun: "RoleGroupMember", ItemList: true,
		Description: "Role group members: GET .../{role group} lists them, POST adds one (Identity and Member), DELETE .../{role group} takes Member as a query parameter."},
	{Path: "api-keys", Noun: "ApiKey", Description: "REST API keys; the key itself is only in POST's answer."},
}

// cmdlet names the cmdlet of a verb if the registry has it.
func (res resource) cmdlet(reg *cmdlet.Registry, verbs ...string) string {
	for _, v := range verbs {
		name := v + "-" + res.Noun
		if v == "Get" && res.Get != "" {
			name = res.Get
		}
		if s, ok := reg.Lookup(name); ok && !s.Builtin() {
			return s.Name
		}
	}
	return ""
}

// methodsOf lists the methods a resource URL supports, for 405's Allow.
func methodsOf(reg *cmdlet.Registry, res resource, item bool) []string {
	var m []string
	if res.cmdlet(reg, "Get") != "" || (item && res.ItemGet != "") {
		m = append(m, http.MethodGet)
	}
	if !item && !res.Singleton && res.cmdlet(reg, "New", "Add") != "" {
		m = append(m, http.MethodPost)
	}
	if (item || res.Singleton) && res.cmdlet(reg, "Set") != "" {
		m = append(m, http.MethodPatch)
	}
	if item && res.cmdlet(reg, "Remove") != "" {
		m = append(m, http.MethodDelete)
	}
	return m
}

func (h *Handler) methodNotAllowed(q *request, res resource, item bool) {
	allow := methodsOf(q.runner.Registry, res, item)
	q.w.Header().Set("Allow", strings.Join(allow, ", "))
	writeError(q.w, http.StatusMethodNotAllowed, "MethodNotAllowed", q.r.Method+" is not supported on "+q.r.URL.Path+"; it supports "+strings.Join(allow, ", ")+".")
}

// queryParams turns the query string into cmdlet parameters; a parameter
// given more than once is an array.
func queryParams(q *request) map[string]any {
	params := map[string]any{}
	for k, vs := range q.r.URL.Query() {
		if len(vs) == 1 {
			params[k] = vs[0]
			continue
		}
		list := make([]any, len(vs))
		for i, v := range vs {
			list[i] = v
		}
		params[k] = list
	}
	return params
}

// collection serves /api/v1/{path}.
func (h *Handler) collection(res resource) func(*request) {
	return func(q *request) {
		reg := q.runner.Registry
		get, create, set := res.cmdlet(reg, "Get"), res.cmdlet(reg, "New", "Add"), res.cmdlet(reg, "Set")
		switch {
		case q.r.Method == http.MethodGet && get != "":
			if objs, ok := h.invoke(q, get, queryParams(q)); ok {
				q.writeObjects(http.StatusOK, objs, !res.Singleton)
			}
		case q.r.Method == http.MethodPost && !res.Singleton && create != "":
			params, ok := q.body()
			if !ok {
				return
			}
			if objs, ok := h.invoke(q, create, params); ok {
				q.writeObjects(http.StatusCreated, objs, false)
			}
		case q.r.Method == http.MethodPatch && res.Singleton && set != "":
			params, ok := q.body()
			if !ok {
				return
			}
			if _, ok := h.invoke(q, set, params); !ok {
				return
			}
			if objs, ok := h.invoke(q, get, map[string]any{}); ok {
				q.writeObjects(http.StatusOK, objs, false)
			}
		default:
			h.methodNotAllowed(q, res, false)
		}
	}
}

// item serves /api/v1/{path}/{identity} and its actions.
func (h *Handler) item(res resource) func(*request) {
	return func(q *request) {
		reg := q.runner.Registry
		id := q.r.PathValue("identity")
		if id == "" {
			writeError(q.w, http.StatusNotFound, "NotFound", "The identity is missing from "+q.r.URL.Path+".")
			return
		}
		// An action: POST /api/v1/queues/{identity}/retry. The identity
		// may itself contain "/", so the verb is the last segment of a
		// path that has one more than the resource's.
		if verb, target, ok := action(id); ok && q.r.Method == http.MethodPost {
			name := res.cmdlet(reg, verb)
			if name == "" {
				writeError(q.w, http.StatusNotFound, "NotFound", "There is no "+verb+"-"+res.Noun+" cmdlet.")
				return
			}
			params, ok := q.body()
			if !ok {
				return
			}
			params["Identity"] = target
			if objs, ok := h.invoke(q, name, params); ok {
				q.writeList(http.StatusOK, objs)
			}
			return
		}
		get, set, remove := res.cmdlet(reg, "Get"), res.cmdlet(reg, "Set"), res.cmdlet(reg, "Remove")
		switch {
		case q.r.Method == http.MethodGet:
			name, param := get, "Identity"
			if res.ItemGet != "" {
				name, param = res.ItemGet, res.ItemParam
			}
			params := queryParams(q)
			params[param] = id
			objs, ok := h.invoke(q, name, params)
			switch {
			case !ok:
			case !res.ItemList && len(objs) != 1:
				q.fail(admin.NotFound(id))
			default:
				q.writeObjects(http.StatusOK, objs, res.ItemList)
			}
		case q.r.Method == http.MethodPatch && set != "":
			params, ok := q.body()
			if !ok {
				return
			}
			params["Identity"] = id
			if _, ok := h.invoke(q, set, params); !ok {
				return
			}
			if objs, ok := h.invoke(q, get, map[string]any{"Identity": id}); ok {
				q.writeObjects(http.StatusOK, objs, res.ItemList)
			}
		case q.r.Method == http.MethodDelete && remove != "":
			params, ok := q.body()
			if !ok {
				return
			}
			for k, v := range queryParams(q) {
				params[k] = v
			}
			params["Identity"] = id
			if _, ok := h.invoke(q, remove, params); ok {
				q.w.WriteHeader(http.StatusNoContent)
			}
		default:
			h.methodNotAllowed(q, res, true)
		}
	}
}

// actions are the verbs POST /api/v1/{path}/{identity}/{verb} runs.
var actions = []string{"Retry", "Rotate"}

// action splits an item path that ends in a verb (in any case) into the
// verb and the identity before it.
func action(path string) (verb, identity string, ok bool) {
	i := strings.LastIndexByte(path, '/')
	if i < 0 {
		return "", "", false
	}
	j := slices.IndexFunc(actions, func(a string) bool { return strings.EqualFold(a, path[i+1:]) })
	if j < 0 {
		return "", "", false
	}
	return actions[j], path[:i], true
}
