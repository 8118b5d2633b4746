package cmdlet

// A cmdlet's declaration is everything a front end needs to know about it
// besides its parameters: the type of its output, who may run it, and
// where the REST API serves it. It sits on the Spec, next to the
// parameters, so that adding a cmdlet means writing one Spec and nothing
// else; the front ends derive their tables (role access, REST resources,
// response schemas) from the registry.

// NoOutput is the Output of a cmdlet that returns no objects (Set-,
// Remove-, most Add-): as Get-Help says "Outputs: None". It is spelled out
// so that a cmdlet that forgot to declare its output ("") can be told from
// one that has none.
const NoOutput = "None"

// OutputType is the TypeName of the objects the cmdlet returns, "" when it
// returns none (or did not say).
func (s *Spec) OutputType() string {
	if s.Output == NoOutput {
		return ""
	}
	return s.Output
}

// Access is what a cmdlet may do, which decides who may run it. The admin
// service maps it to role groups (admin.Role.Allows); the shell only
// carries it.
type Access int

const (
	// AccessUndeclared is a cmdlet registered without a declaration. The
	// admin service lets only the server's administrator run it, so that
	// a forgotten declaration fails closed.
	AccessUndeclared Access = iota
	// ReadAccess reads the organization's objects, reports and logs:
	// every role group (Get-, Search-, Test-).
	ReadAccess
	// RecipientAccess changes recipients: mailboxes, their client access
	// settings, users, and Send As and mailbox permissions. Recipient
	// Management and Organization Management.
	RecipientAccess
	// OrganizationAccess changes the organization's settings (domains,
	// connectors, policies, the queue), or reads who may sign in to
	// administer it (Get-ApiKey). Organization Management only.
	OrganizationAccess
	// ServerAccess acts on the whole server, across organizations: only
	// the server's administrator (the local account, through the admin
	// socket), never an organization's role group.
	ServerAccess
)

// String names the access class as the declaration test prints it.
func (a Access) String() string {
	switch a {
	case ReadAccess:
		return "read"
	case RecipientAccess:
		return "recipient change"
	case OrganizationAccess:
		return "organization change"
	case ServerAccess:
		return "server only"
	}
	return "undeclared"
}

// RouteOp is what a cmdlet does at its REST resource.
type RouteOp int

const (
	// RouteUndeclared is a cmdlet registered without a REST declaration.
	RouteUndeclared RouteOp = iota
	// RouteCmdletOnly: the cmdlet is served only at
	// POST /api/v1/cmdlets/{name}, as every cmdlet is.
	RouteCmdletOnly
	// RouteList: GET /api/v1/{path} runs it with the query's parameters,
	// GET /api/v1/{path}/{identity} with -Identity. The list route owns
	// its resource: Description, Singleton, ItemList and Noun are
	// declared on it.
	RouteList
	// RouteItem: GET /api/v1/{path}/{identity} runs it with the identity
	// as ItemParam, where the list cmdlet's -Identity does not read an
	// item (Get-MessageTraceDetail -MessageTraceId).
	RouteItem
	// RouteCreate: POST /api/v1/{path} with the body's parameters (New-,
	// Add-).
	RouteCreate
	// RouteUpdate: PATCH /api/v1/{path}/{identity} (/api/v1/{path} for a
	// singleton), then the list cmdlet answers the object as it is now.
	RouteUpdate
	// RouteDelete: DELETE /api/v1/{path}/{identity}.
	RouteDelete
	// RouteAction: POST /api/v1/{path}/{identity}/{verb}, the verb being
	// the cmdlet's own in lower case (retry, rotate).
	RouteAction
)

// Route is where the REST API serves a cmdlet besides
// /api/v1/cmdlets/{name}.
type Route struct {
	Op RouteOp
	// Path is the resource's URL path under /api/v1/ ("mailboxes").
	Path string

	// The resource's attributes, on its RouteList cmdlet only.

	// Description says what the resource is, in the API's description.
	Description string
	// Singleton resources are the organization's settings: one object,
	// no identity (transport-config).
	Singleton bool
	// ItemList marks items that are lists (a mailbox's permissions),
	// answered as {"value": [...]}.
	ItemList bool
	// Noun names the resource in operation ids and tags; by default the
	// list cmdlet's noun (Get-MessageTraceV2 declares MessageTrace).
	Noun string

	// ItemParam is the parameter a RouteItem cmdlet takes the identity
	// in the path as.
	ItemParam string
}

// Declared reports what a cmdlet's declaration lacks: "" when it has an
// output type, an access class and a REST route. The built-ins need none.
func (s *Spec) Declared() string {
	switch {
	case s.Builtin():
		return ""
	case s.Output == "":
		return "no Output (cmdlet.NoOutput for a cmdlet that returns none)"
	case s.Access == AccessUndeclared:
		return "no Access class"
	case s.REST.Op == RouteUndeclared:
		return "no REST route (cmdlet.Route{Op: cmdlet.RouteCmdletOnly} for none beyond /api/v1/cmdlets/{name})"
	case s.REST.Op != RouteCmdletOnly && s.REST.Path == "":
		return "a REST route without a Path"
	case s.REST.Op == RouteItem && s.REST.ItemParam == "":
		return "a RouteItem without ItemParam"
	}
	return ""
}
