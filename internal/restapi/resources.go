package restapi

import (
	"fmt"
	"net/http"
	"slices"
	"strings"

	"postern.dev/postern/internal/admin"
	"postern.dev/postern/internal/cmdlet"
)

// resource maps a URL to the cmdlets of one noun:
//
//	GET    /api/v1/{path}                  the list cmdlet (query parameters are its parameters)
//	POST   /api/v1/{path}                  the create cmdlet, New- or Add- (the body's parameters)
//	PATCH  /api/v1/{path}                  Set-, then the list cmdlet (singletons)
//	GET    /api/v1/{path}/{identity}       the list cmdlet -Identity, or the item cmdlet
//	PATCH  /api/v1/{path}/{identity}       Set- -Identity, then the list cmdlet -Identity
//	DELETE /api/v1/{path}/{identity}       Remove- -Identity
//	POST   /api/v1/{path}/{identity}/{verb} {Verb}- -Identity (retry, rotate)
//
// A method with no cmdlet answers 405. Resources are not listed here:
// resourcesOf derives them from the cmdlets' declarations (cmdlet.Route).
type resource struct {
	Path string
	// Noun names the resource in operation ids and tags.
	Noun string
	// Singleton resources are the organization's settings: one object,
	// no identity.
	Singleton bool
	// ItemList marks items that are lists (a mailbox's permissions),
	// answered as {"value": [...]}.
	ItemList    bool
	Description string

	// The cmdlets, by name; "" where the resource has none.
	Get, Create, Update, Delete string
	// ItemGet and ItemParam read an item where Get -Identity does not (a
	// message's trace details).
	ItemGet, ItemParam string
	// Actions are the cmdlets POST .../{identity}/{verb} runs, by verb
	// as the cmdlet spells it (Retry).
	Actions map[string]string
}

// resourcesOf derives the REST resources from the cmdlets' declared
// routes, in the order the cmdlets were registered. A route that names no
// resource's list cmdlet, or two cmdlets for one method, is an error: a
// programming error the restapi tests find.
func resourcesOf(reg *cmdlet.Registry) ([]resource, error) {
	byPath := map[string]*resource{}
	var order []string
	specs := reg.Specs()
	// Lists first: they describe their resources.
	for _, s := range specs {
		if s.Builtin() || s.REST.Op != cmdlet.RouteList {
			continue
		}
		rt := s.REST
		if byPath[rt.Path] != nil {
			return nil, fmt.Errorf("%s and %s both list /%s", byPath[rt.Path].Get, s.Name, rt.Path)
		}
		noun := rt.Noun
		if noun == "" {
			_, noun, _ = strings.Cut(s.Name, "-")
		}
		byPath[rt.Path] = &resource{Path: rt.Path, Noun: noun, Singleton: rt.Singleton, ItemList: rt.ItemList,
			Description: rt.Description, Get: s.Name, Actions: map[string]string{}}
		order = append(order, rt.Path)
	}
	for _, s := range specs {
		rt := s.REST
		if s.Builtin() || rt.Op == cmdlet.RouteList || rt.Op == cmdlet.RouteCmdletOnly || rt.Op == cmdlet.RouteUndeclared {
			continue
		}
		res := byPath[rt.Path]
		if res == nil {
			return nil, fmt.Errorf("%s: no cmdlet declares the list route of /%s", s.Name, rt.Path)
		}
		var slot *string
		switch rt.Op {
		case cmdlet.RouteItem:
			slot, res.ItemParam = &res.ItemGet, rt.ItemParam
		case cmdlet.RouteCreate:
			slot = &res.Create
		case cmdlet.RouteUpdate:
			slot = &res.Update
		case cmdlet.RouteDelete:
			slot = &res.Delete
		case cmdlet.RouteAction:
			verb, _, _ := strings.Cut(s.Name, "-")
			if res.Actions[verb] != "" {
				return nil, fmt.Errorf("%s and %s both act as /%s/{identity}/%s", res.Actions[verb], s.Name, rt.Path, strings.ToLower(verb))
			}
			res.Actions[verb] = s.Name
			continue
		default:
			return nil, fmt.Errorf("%s: unknown route %d", s.Name, rt.Op)
		}
		if *slot != "" {
			return nil, fmt.Errorf("%s and %s have the same route on /%s", *slot, s.Name, rt.Path)
		}
		*slot = s.Name
	}
	out := make([]resource, len(order))
	for i, p := range order {
		out[i] = *byPath[p]
	}
	return out, nil
}

// methodsOf lists the methods a resource URL supports, for 405's Allow.
func methodsOf(res resource, item bool) []string {
	var m []string
	if res.Get != "" || (item && res.ItemGet != "") {
		m = append(m, http.MethodGet)
	}
	if !item && !res.Singleton && res.Create != "" {
		m = append(m, http.MethodPost)
	}
	if (item || res.Singleton) && res.Update != "" {
		m = append(m, http.MethodPatch)
	}
	if item && res.Delete != "" {
		m = append(m, http.MethodDelete)
	}
	return m
}

func (h *Handler) methodNotAllowed(q *request, res resource, item bool) {
	allow := methodsOf(res, item)
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
		get, create, set := res.Get, res.Create, res.Update
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
		id := q.r.PathValue("identity")
		if id == "" {
			writeError(q.w, http.StatusNotFound, "NotFound", "The identity is missing from "+q.r.URL.Path+".")
			return
		}
		// An action: POST /api/v1/queues/{identity}/retry. The identity
		// may itself contain "/", so the verb is the last segment of a
		// path that has one more than the resource's.
		if verb, target, ok := action(id); ok && q.r.Method == http.MethodPost {
			name := res.Actions[verb]
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
		get, set, remove := res.Get, res.Update, res.Delete
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

// actions are the verbs POST /api/v1/{path}/{identity}/{verb} may name:
// those of the cmdlets the admin service declares as RouteAction. A
// resource without the verb answers 404 for it.
var actions = actionVerbs(admin.Cmdlets(&admin.Service{}))

func actionVerbs(reg *cmdlet.Registry) []string {
	var verbs []string
	for _, s := range reg.Specs() {
		if verb, _, _ := strings.Cut(s.Name, "-"); s.REST.Op == cmdlet.RouteAction && !slices.Contains(verbs, verb) {
			verbs = append(verbs, verb)
		}
	}
	return verbs
}

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
