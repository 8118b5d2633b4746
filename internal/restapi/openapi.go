package restapi

import (
	"encoding/json"
	"net/http"
	"sort"
	"strings"

	"postern.dev/postern/internal/admin"
	"postern.dev/postern/internal/cmdlet"
)

// objectTypes describes the objects cmdlets return, by TypeName: each
// property and its JSON type. s string, b boolean, i integer, t date-time
// (RFC 3339, UTC), [s] array of strings; a trailing ? allows null; a
// leading ~ marks a property only some answers have. Sizes are strings as
// Exchange shows them ("35 MB (36,700,160 bytes)").
//
// This is the API's contract. The end-to-end test validates real answers
// against the schemas made from it, which allow no other properties, so a
// property added to a cmdlet's output without being added here fails it.
var objectTypes = map[string]string{
	"AcceptedDomain":                 "Name:s DomainName:s DomainType:s Default:b Identity:s WhenCreated:t",
	"AdminAuditLogEvent":             "RunDate:t Caller:s CmdletName:s CmdletParameters:s ObjectModified:s? Succeeded:b Error:s?",
	"ApiKey":                         "Name:s Identity:s Organization:s Role:s KeyPrefix:s Key:s? WhenCreated:t LastUsed:t? Expires:t?",
	"AuthServer":                     "Name:s Identity:s IssuerIdentifier:s AuthMetadataUrl:s? TokenIssuingEndpoint:s? JwksUri:s Audience:s UserClaims:[s] Enabled:b IsBuiltIn:b WhenCreated:t",
	"AuthenticationPolicy":           "Name:s Identity:s AllowBasicAuthSmtp:b AllowBasicAuthImap:b AllowBasicAuthPop:b WhenCreated:t",
	"BlockedSenderAddress":           "SenderAddress:s Identity:s Reason:s Action:s CreatedDatetime:t ExpiresDatetime:t?",
	"CASMailbox":                     "Name:s Identity:s DisplayName:s PrimarySmtpAddress:s SmtpClientAuthenticationDisabled:b? ImapEnabled:b PopEnabled:b",
	"CASMailboxPlan":                 "Name:s Identity:s DisplayName:s ImapEnabled:b PopEnabled:b IsDefault:b",
	"ConnectionLogEntry":             "Date:t ClientIP:s Role:s Event:s SignIn:s? Sender:s? Recipient:s? Reply:s",
	"DkimSigningConfig":              "Domain:s Enabled:b Status:s Selector1CNAME:s Selector1PublicKey:s Selector1KeySize:i Selector2CNAME:s Selector2PublicKey:s Selector2KeySize:i SelectorBeforeRotateOnDate:s SelectorAfterRotateOnDate:s RotateOnDate:t? KeyCreationTime:t Algorithm:s HeaderCanonicalization:s BodyCanonicalization:s NumberOfBytesToSign:s IncludeKeyExpiration:b IncludeSignatureCreationTime:b Identity:s Name:s WhenCreated:t",
	"HostedConnectionFilterPolicy":   "Name:s Identity:s IsDefault:b IPAllowList:[s] IPBlockList:[s] EnableSafeList:b WhenChanged:t?",
	"HostedOutboundSpamFilterPolicy": "Name:s Identity:s IsDefault:b RecipientLimitExternalPerHour:i RecipientLimitInternalPerHour:i RecipientLimitPerDay:i ActionWhenThresholdReached:s WhenChanged:t?",
	"InboundConnector":               "Name:s Identity:s ConnectorType:s SenderDomains:[s] SenderIPAddresses:[s] TlsSenderCertificateName:s? TlsSenderCertificateFingerprints:[s] RequireTls:b RestrictDomainsToIPAddresses:b RestrictDomainsToCertificate:b Enabled:b Comment:s? ProtocolLoggingLevel:s WhenCreated:t",
	"Mailbox":                        "Name:s Alias:s DisplayName:s Identity:s PrimarySmtpAddress:s UserPrincipalName:s EmailAddresses:[s] RecipientTypeDetails:s RecipientLimits:i MaxSendSize:s MaxReceiveSize:s IssueWarningQuota:s ProhibitSendQuota:s ProhibitSendReceiveQuota:s GrantSendOnBehalfTo:[s] ExchangeGuid:s Guid:s WhenCreated:t",
	"MailboxFolderStatistics":        "Name:s FolderPath:s FolderType:s ItemsInFolder:i FolderSize:s Identity:s",
	"MailboxPermission":              "Identity:s User:s AccessRights:[s] IsInherited:b Deny:b",
	"MailboxSignIn":                  "Protocol:s Mailbox:s SignedInAs:s ClientIP:s AuthenticationMethod:s Count:i LastSeen:t",
	"MailboxStatistics":              "DisplayName:s Identity:s MailboxGuid:s ItemCount:i TotalItemSize:s StorageLimitStatus:s IssueWarningQuota:s ProhibitSendQuota:s ProhibitSendReceiveQuota:s",
	"MessageTrace":                   "Received:t SenderAddress:s RecipientAddress:s Subject:s Status:s ToIP:s? FromIP:s? Size:i MessageId:s MessageTraceId:s",
	"MessageTraceDetail":             "Date:t Event:s Action:s? Detail:s SessionId:s? MessageTraceId:s",
	"OAuthApp":                       "Name:s AppId:s Identity:s Secrets:i Certificates:i TokenEndpoint:s? Scope:s WhenCreated:t ~ClientSecret:s",
	"Organization":                   "Name:s Identity:s Guid:s WhenCreated:t",
	"OrganizationConfig":             "Name:s Identity:s Guid:s SecurityDefaultsEnabled:b DefaultAuthenticationPolicy:s? RejectDirectSend:b WhenCreated:t",
	"OutboundConnector":              "Name:s Identity:s ConnectorType:s RecipientDomains:[s] SmartHosts:[s] UseMXRecord:b TlsSettings:s? TlsDomain:s? Enabled:b Comment:s? AuthMechanism:s SmtpUser:s? SmtpPasswordSet:b OAuthTokenEndpoint:s? OAuthClientId:s? OAuthClientSecretSet:b OAuthScope:s? WhenCreated:t",
	"ProtocolLogEntry":               "DateTime:t Connector:s SessionId:s SequenceNumber:i ClientIP:s Event:s Data:s",
	"Queue":                          "Identity:s DeliveryType:s Status:s MessageCount:i NextHopDomain:s LastError:s? NextRetryTime:t?",
	"QueueMessage":                   "Identity:s FromAddress:s Recipient:s Status:s Size:s Subject:s Queue:s InternetMessageId:s DateReceived:t NextRetryTime:t? RetryCount:i LastError:s?",
	"ReceiveConnector":               "Identity:s Role:s Port:i ProtocolLoggingLevel:s",
	"RecipientPermission":            "Identity:s Trustee:s AccessControlType:s AccessRights:[s] IsInherited:b InheritanceType:s",
	"RoleGroupMember":                "Name:s Identity:s RecipientType:s PrimarySmtpAddress:s RoleGroup:s",
	"ServicePrincipal":               "DisplayName:s AppId:s ObjectId:s Identity:s WhenCreated:t",
	"SmtpAuthClient":                 "SenderAddress:s Domain:s MessagesSent:i TLS10:s TLS11:s TLS12:s TLS13:s AuthenticationProtocol:s LastSent:t",
	"SmtpSubmissionCheck":            "Check:s Stage:s? Result:s Detail:s",
	"TestNetConnectionResult":        "ComputerName:s RemoteAddress:s RemotePort:i InterfaceAlias:s SourceAddress:s? TcpTestSucceeded:b Banner:s?",
	"TransportConfig":                "Identity:s SmtpClientAuthenticationDisabled:b SmtpBasicAuthDisabled:b MaxRecipientEnvelopeLimit:s AllowLegacyTLSClients:b",
	"User":                           "Name:s Identity:s UserPrincipalName:s DisplayName:s RecipientTypeDetails:s AuthenticationPolicy:s? StsRefreshTokensValidFrom:t? Guid:s",
}

type jsonObject = map[string]any

// objectSchema makes the JSON Schema of an object type.
func objectSchema(desc string) jsonObject {
	props := jsonObject{}
	required := []string{}
	for _, field := range strings.Fields(desc) {
		name, typ, _ := strings.Cut(field, ":")
		optional := strings.HasPrefix(name, "~")
		name = strings.TrimPrefix(name, "~")
		nullable := strings.HasSuffix(typ, "?")
		typ = strings.TrimSuffix(typ, "?")
		var s jsonObject
		switch typ {
		case "s":
			s = jsonObject{"type": "string"}
		case "b":
			s = jsonObject{"type": "boolean"}
		case "i":
			s = jsonObject{"type": "integer"}
		case "t":
			s = jsonObject{"type": "string", "format": "date-time"}
		case "[s]":
			s = jsonObject{"type": "array", "items": jsonObject{"type": "string"}}
		default:
			panic("restapi: unknown property type " + field)
		}
		if nullable {
			s["type"] = []string{s["type"].(string), "null"}
		}
		props[name] = s
		if !optional {
			required = append(required, name)
		}
	}
	return jsonObject{"type": "object", "properties": props, "required": required, "additionalProperties": false}
}

// paramSchema is the JSON Schema of a cmdlet parameter's value.
func paramSchema(p cmdlet.ParamSpec) jsonObject {
	var s jsonObject
	switch p.Type {
	case cmdlet.Bool, cmdlet.Switch:
		s = jsonObject{"type": "boolean"}
	case cmdlet.NullableBool:
		s = jsonObject{"type": []string{"boolean", "null"}}
	case cmdlet.Int:
		s = jsonObject{"type": "integer", "minimum": -2147483648, "maximum": 2147483647}
	case cmdlet.IntOrUnlimited:
		s = jsonObject{"oneOf": []jsonObject{{"type": "integer"}, {"const": "Unlimited"}}}
	case cmdlet.ByteSize:
		s = jsonObject{"oneOf": []jsonObject{{"type": "integer", "minimum": 0}, {"type": "string", "description": `"35MB", "35 MB (36,700,160 bytes)" or "Unlimited"`}}}
	case cmdlet.Enum:
		s = jsonObject{"type": "string", "enum": p.ValidValues}
	case cmdlet.SecureString:
		s = jsonObject{"type": "string", "format": "password", "writeOnly": true}
	case cmdlet.StringList:
		list := jsonObject{"type": "array", "items": jsonObject{"type": "string"}}
		alts := []jsonObject{list, {"type": "string"}}
		if p.MultiValued {
			alts = append(alts, jsonObject{"type": "object", "description": "Adds and removes values, as @{Add=...; Remove=...} does.",
				"properties": jsonObject{"Add": list, "Remove": list}, "additionalProperties": false})
		}
		s = jsonObject{"oneOf": alts}
	case cmdlet.Any:
		s = jsonObject{}
	default:
		s = jsonObject{"type": "string"}
	}
	if p.Help != "" {
		s["description"] = p.Help
	}
	return s
}

func ref(typeName string) jsonObject {
	return jsonObject{"$ref": "#/components/schemas/" + typeName}
}

// listSchema is {"value": [...], "messages": [...]}.
func listSchema(typeName string) jsonObject {
	items := jsonObject{"type": "array", "maxItems": 0}
	if typeName != "" {
		items = jsonObject{"type": "array", "items": ref(typeName)}
	}
	return jsonObject{"type": "object", "required": []string{"value", "messages"}, "additionalProperties": false,
		"properties": jsonObject{"value": items, "messages": jsonObject{"type": "array", "items": jsonObject{"type": "string"}}}}
}

func jsonContent(schema jsonObject) jsonObject {
	return jsonObject{"application/json": jsonObject{"schema": schema}}
}

func response(desc string, schema jsonObject) jsonObject {
	r := jsonObject{"description": desc}
	if schema != nil {
		r["content"] = jsonContent(schema)
	}
	return r
}

// errorResponses are the answers every signed-in operation may give.
func errorResponses(r jsonObject) jsonObject {
	e := ref("Error")
	r["400"] = response("The request is not valid, or the cmdlet refused it; the message says why in Exchange's words.", e)
	r["401"] = response("No API key, or one that is not valid.", e)
	r["403"] = response("The API key's role does not include the cmdlet.", e)
	r["404"] = response("No such object in the organization, or no such cmdlet.", e)
	r["409"] = response("The object exists already.", e)
	return r
}

// document builds the OpenAPI 3.1 description of the API.
func document(reg *cmdlet.Registry) (jsonObject, error) {
	resources, err := resourcesOf(reg)
	if err != nil {
		return nil, err
	}
	schemas := jsonObject{
		"Error": jsonObject{"type": "object", "required": []string{"error"}, "additionalProperties": false,
			"properties": jsonObject{"error": jsonObject{"type": "object", "required": []string{"code", "message"}, "additionalProperties": false,
				"properties": jsonObject{"code": jsonObject{"type": "string"}, "message": jsonObject{"type": "string"}}}}},
	}
	for name, desc := range objectTypes {
		schemas[name] = objectSchema(desc)
		schemas[name+"List"] = listSchema(name)
	}
	schemas["EmptyList"] = listSchema("")
	listRef := func(typeName string) jsonObject {
		if typeName == "" {
			return ref("EmptyList")
		}
		return ref(typeName + "List")
	}

	paths, requestBodies := jsonObject{}, jsonObject{}
	specs := reg.Specs()
	sort.Slice(specs, func(i, j int) bool { return specs[i].Name < specs[j].Name })
	for _, s := range specs {
		if s.Builtin() {
			continue
		}
		requestBodies[s.Name] = jsonObject{"required": false, "content": jsonContent(paramsSchema(s, ""))}
		if hasParam(s, "Identity") {
			// On /{resource}/{identity} the path gives -Identity.
			requestBodies[s.Name+".ForItem"] = jsonObject{"required": false, "content": jsonContent(paramsSchema(s, "Identity"))}
		}
		paths["/cmdlets/"+s.Name] = jsonObject{"post": jsonObject{
			"operationId": strings.ReplaceAll(s.Name, "-", ""), "summary": s.Synopsis, "tags": []string{"Cmdlets"},
			"requestBody": jsonObject{"$ref": "#/components/requestBodies/" + s.Name},
			"responses":   errorResponses(jsonObject{"200": response("The cmdlet's output objects, and what it told the host (What if: ..., warnings).", listRef(s.OutputType()))}),
		}}
	}

	identity := jsonObject{"name": "identity", "in": "path", "required": true, "schema": jsonObject{"type": "string"},
		"description": "The object's identity, as -Identity takes it (a name, an address, a GUID)."}
	outputOf := func(name string) string {
		if s, ok := reg.Lookup(name); ok {
			return s.OutputType()
		}
		return ""
	}
	bodyOf := func(name string, item bool) jsonObject {
		if item {
			name += ".ForItem"
		}
		return jsonObject{"$ref": "#/components/requestBodies/" + name}
	}
	for _, res := range resources {
		tags := []string{res.Noun}
		coll, item := jsonObject{}, jsonObject{}
		if get := res.Get; get != "" {
			ok := response("The objects.", listRef(outputOf(get)))
			if res.Singleton {
				ok = response("The settings.", ref(outputOf(get)))
			}
			coll["get"] = jsonObject{"operationId": "list" + res.Noun, "summary": "Runs " + get + "; query parameters are its parameters.",
				"tags": tags, "responses": errorResponses(jsonObject{"200": ok})}
			if !res.Singleton && res.ItemGet == "" {
				one := response("The object.", ref(outputOf(get)))
				if res.ItemList {
					one = response("The objects.", listRef(outputOf(get)))
				}
				item["get"] = jsonObject{"operationId": "get" + res.Noun, "summary": "Runs " + get + " -Identity.", "tags": tags,
					"responses": errorResponses(jsonObject{"200": one})}
			}
		}
		if res.ItemGet != "" {
			item["get"] = jsonObject{"operationId": "get" + res.Noun, "summary": "Runs " + res.ItemGet + " -" + res.ItemParam + ".", "tags": tags,
				"responses": errorResponses(jsonObject{"200": response("The objects.", listRef(outputOf(res.ItemGet)))})}
		}
		if name := res.Create; name != "" && !res.Singleton {
			created := response("Done.", listRef(""))
			if out := outputOf(name); out != "" {
				created = response("The object created (or the objects, as {\"value\": [...]}, for a cmdlet that returns several).",
					jsonObject{"oneOf": []jsonObject{ref(out), listRef(out)}})
			}
			coll["post"] = jsonObject{"operationId": "create" + res.Noun, "summary": "Runs " + name + " with the body's parameters.", "tags": tags,
				"requestBody": bodyOf(name, false), "responses": errorResponses(jsonObject{"201": created})}
		}
		if name := res.Update; name != "" {
			op := jsonObject{"operationId": "update" + res.Noun, "summary": "Runs " + name + " with the body's parameters, then answers the object as it is now.",
				"tags": tags, "requestBody": bodyOf(name, !res.Singleton)}
			get := outputOf(res.Get)
			if res.Singleton {
				op["responses"] = errorResponses(jsonObject{"200": response("The settings.", ref(get))})
				coll["patch"] = op
			} else {
				op["responses"] = errorResponses(jsonObject{"200": response("The object.", jsonObject{"oneOf": []jsonObject{ref(get), listRef(get)}})})
				item["patch"] = op
			}
		}
		if name := res.Delete; name != "" && !res.Singleton {
			item["delete"] = jsonObject{"operationId": "delete" + res.Noun, "summary": "Runs " + name + " -Identity; other parameters come from the query string or the body.",
				"tags": tags, "responses": errorResponses(jsonObject{"204": response("Removed.", nil)})}
		}
		if len(item) > 0 {
			item["parameters"] = []jsonObject{identity}
			paths["/"+res.Path+"/{identity}"] = item
		}
		for _, verb := range actions {
			if name := res.Actions[verb]; name != "" {
				paths["/"+res.Path+"/{identity}/"+strings.ToLower(verb)] = jsonObject{"parameters": []jsonObject{identity},
					"post": jsonObject{"operationId": strings.ToLower(verb) + res.Noun, "summary": "Runs " + name + " -Identity.", "tags": tags,
						"requestBody": bodyOf(name, true),
						"responses":   errorResponses(jsonObject{"200": response("Done.", listRef(outputOf(name)))})}}
			}
		}
		if len(coll) > 0 {
			coll["description"] = res.Description
			paths["/"+res.Path] = coll
		}
	}
	roles := make([]string, len(admin.Roles))
	for i, r := range admin.Roles {
		roles[i] = string(r)
	}
	return jsonObject{
		"openapi": "3.1.0",
		"info": jsonObject{"title": "Postern REST API", "version": "1",
			"description": "Every Postern cmdlet over HTTPS. Sign in with an API key from New-ApiKey; the key's organization and role group (" +
				strings.Join(roles, ", ") + ") limit what each request sees and may change. Changes are written to the admin audit log."},
		"servers":  []jsonObject{{"url": strings.TrimSuffix(Prefix, "/")}},
		"security": []jsonObject{{"bearer": []string{}}, {"apiKey": []string{}}},
		"paths":    paths,
		"components": jsonObject{"schemas": schemas, "requestBodies": requestBodies, "securitySchemes": jsonObject{
			"bearer": jsonObject{"type": "http", "scheme": "bearer", "description": "Authorization: Bearer pstn_..."},
			"apiKey": jsonObject{"type": "apiKey", "in": "header", "name": "X-API-Key"},
		}},
	}, nil
}

// paramsSchema is the JSON Schema of a cmdlet's parameters as a request
// body, without the one the URL gives.
func paramsSchema(s *cmdlet.Spec, omit string) jsonObject {
	props, required := jsonObject{}, []string{}
	for _, p := range s.Bindable() {
		if p.Name == "ErrorAction" || p.Name == omit {
			continue
		}
		props[p.Name] = paramSchema(p)
		if p.Required {
			required = append(required, p.Name)
		}
	}
	body := jsonObject{"type": "object", "properties": props, "additionalProperties": false}
	if len(required) > 0 {
		body["required"] = required
	}
	return body
}

func hasParam(s *cmdlet.Spec, name string) bool {
	for _, p := range s.Params {
		if p.Name == name {
			return true
		}
	}
	return false
}

// openAPI serves the description. It needs no sign-in: it tells nothing
// about any organization.
func (h *Handler) openAPI(w http.ResponseWriter, _ *http.Request) {
	h.docOnce.Do(func() {
		d, err := document(admin.Cmdlets(h.Admin))
		if err != nil {
			panic("restapi: the OpenAPI document: " + err.Error())
		}
		doc, err := json.Marshal(d)
		if err != nil {
			panic("restapi: the OpenAPI document does not encode: " + err.Error())
		}
		h.doc = append(doc, '\n')
	})
	w.Header().Set("Content-Type", "application/json")
	w.Write(h.doc)
}
