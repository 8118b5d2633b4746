// Package restapi is Postern's REST API: every admin cmdlet over HTTPS as
// JSON, on the admin listener under /api/v1/, for automation.
//
// Two ways in, one admin service underneath:
//
//   - POST /api/v1/cmdlets/{Cmdlet} runs any cmdlet with its parameters as
//     a JSON object ({"Identity": "sean@contoso.com",
//     "SmtpClientAuthenticationDisabled": false}), exactly as the shell
//     would, and answers {"value": [objects], "messages": [...]}.
//   - Resources (GET /api/v1/mailboxes, PATCH /api/v1/cas-mailboxes/{id},
//     ...) map the HTTP methods to the Get-, New-/Add-, Set- and
//     Remove-/... cmdlet of a noun, for clients that prefer REST's shape.
//
// Callers sign in with an API key (New-ApiKey), sent as
// "Authorization: Bearer pstn_..." or "X-API-Key: pstn_...". A key belongs
// to one organization and has one role group; every request acts as that
// organization's admin in that role (admin.Service.As), so one
// organization's keys never see or change another's objects. Changes are
// written to the admin audit log under the key's name. A key may expire
// (New-ApiKey -ExpiresAfter) and is revoked by Remove-ApiKey; nothing a key
// asks makes the server connect where it names (admin.Service.reachOut) or
// read a file on the server (cmdlet.Runner.NoFiles).
//
// Statuses: 400 a request the cmdlet refuses, 401 no valid key, 403 outside
// the key's role, 404 not found, 409 exists already, 500 a failure of the
// server itself (admin.ErrInternal), answered with a generic text while
// the detail goes to the log.
//
// GET /api/v1/openapi.json describes all of it (OpenAPI 3.1), generated
// from the cmdlet registry, so that it cannot drift from the cmdlets.
package restapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"

	"postern.dev/postern/internal/admin"
	"postern.dev/postern/internal/cmdlet"
)

// Prefix is where the API is mounted.
const Prefix = "/api/v1/"

// maxBody bounds a request's JSON: parameters are small, and certificates
// (Add-OAuthAppCertificate) are a few kilobytes.
const maxBody = 1 << 20

// Handler serves the API.
type Handler struct {
	// Admin is the server administrator's service; each request runs on
	// the service of the API key's organization and role.
	Admin *admin.Service
	Log   *slog.Logger

	// registries keeps each signed-in principal's cmdlets: building them
	// is a third of a small request's cost, and they never change for a
	// key (a removed key no longer signs in).
	mu         sync.Mutex
	registries map[admin.Principal]*cmdlet.Registry

	// doc is the OpenAPI document, made once: the cmdlets do not change
	// while the server runs.
	doc     []byte
	docOnce sync.Once
}

// maxRegistries bounds the cache; past it, it starts afresh.
const maxRegistries = 256

func (h *Handler) registry(p admin.Principal) *cmdlet.Registry {
	h.mu.Lock()
	defer h.mu.Unlock()
	if r, ok := h.registries[p]; ok {
		return r
	}
	if len(h.registries) >= maxRegistries || h.registries == nil {
		h.registries = map[admin.Principal]*cmdlet.Registry{}
	}
	r := admin.Cmdlets(h.Admin.As(p))
	h.registries[p] = r
	return r
}

// Register mounts the API on mux.
func (h *Handler) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET "+Prefix+"openapi.json", h.openAPI)
	mux.HandleFunc("POST "+Prefix+"cmdlets/{cmdlet}", h.signedIn(h.runCmdlet))
	// The cmdlets are the same for every principal; only what they let
	// each one do differs.
	resources, err := resourcesOf(admin.Cmdlets(h.Admin))
	if err != nil {
		panic("restapi: the cmdlets' REST routes: " + err.Error())
	}
	for _, res := range resources {
		mux.HandleFunc(Prefix+res.Path, h.signedIn(h.collection(res)))
		if !res.Singleton {
			mux.HandleFunc(Prefix+res.Path+"/{identity...}", h.signedIn(h.item(res)))
		}
	}
	mux.HandleFunc(Prefix+"{rest...}", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "NotFound", fmt.Sprintf("There is no resource at %s; GET %sopenapi.json lists them.", r.URL.Path, Prefix))
	})
}

// request is one signed-in API call.
type request struct {
	w      http.ResponseWriter
	r      *http.Request
	runner *cmdlet.Runner
	out    *bytes.Buffer
	log    *slog.Logger
}

// signedIn authenticates the caller and gives the handler a cmdlet runner
// acting as the key's organization and role.
func (h *Handler) signedIn(next func(*request)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		key := r.Header.Get("X-API-Key")
		if auth := r.Header.Get("Authorization"); key == "" && auth != "" {
			scheme, token, _ := strings.Cut(auth, " ")
			if strings.EqualFold(scheme, "Bearer") {
				key = strings.TrimSpace(token)
			}
		}
		if key == "" {
			w.Header().Set("WWW-Authenticate", `Bearer realm="postern"`)
			writeError(w, http.StatusUnauthorized, "Unauthorized", "Sign in with an API key (New-ApiKey): Authorization: Bearer <key>.")
			return
		}
		p, err := h.Admin.SignIn(r.Context(), key)
		if err != nil {
			if !errors.Is(err, admin.ErrBadAPIKey) {
				h.log().Error("api key sign-in", "err", err)
				writeError(w, http.StatusInternalServerError, "InternalServerError", "The API key could not be checked.")
				return
			}
			h.log().Info("api sign-in refused", "remote", r.RemoteAddr, "key", keyHint(key))
			w.Header().Set("WWW-Authenticate", `Bearer realm="postern", error="invalid_token"`)
			msg := "The API key is not valid."
			if errors.Is(err, admin.ErrAPIKeyExpired) {
				msg = "The API key has expired: create a new one with New-ApiKey."
			}
			writeError(w, http.StatusUnauthorized, "Unauthorized", msg)
			return
		}
		out := &bytes.Buffer{}
		next(&request{w: w, r: r, out: out, log: h.log(), runner: &cmdlet.Runner{Registry: h.registry(p), Out: out, NoFiles: true}})
	}
}

// keyHint is what the log shows of a refused key: its start, enough to
// tell keys apart and too little to use.
func keyHint(key string) string {
	if len(key) > len(admin.APIKeyPrefix)+6 {
		return key[:len(admin.APIKeyPrefix)+6] + "..."
	}
	return "(malformed)"
}

func (h *Handler) log() *slog.Logger {
	if h.Log == nil {
		return slog.Default()
	}
	return h.Log
}

// runCmdlet is POST /api/v1/cmdlets/{Cmdlet}.
func (h *Handler) runCmdlet(q *request) {
	params, ok := q.body()
	if !ok {
		return
	}
	objs, ok := h.invoke(q, q.r.PathValue("cmdlet"), params)
	if ok {
		q.writeList(http.StatusOK, objs)
	}
}

// body reads the request's JSON object of parameters; an empty body is
// no parameters.
func (q *request) body() (map[string]any, bool) {
	data, err := io.ReadAll(http.MaxBytesReader(q.w, q.r.Body, maxBody))
	if err != nil {
		writeError(q.w, http.StatusRequestEntityTooLarge, "RequestTooLarge", fmt.Sprintf("The request body is larger than %d bytes.", maxBody))
		return nil, false
	}
	params := map[string]any{}
	if len(bytes.TrimSpace(data)) == 0 {
		return params, true
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := dec.Decode(&params); err != nil {
		writeError(q.w, http.StatusBadRequest, "BadRequest", "The body must be a JSON object of parameters: "+err.Error())
		return nil, false
	}
	if dec.More() {
		writeError(q.w, http.StatusBadRequest, "BadRequest", "The body must be one JSON object of parameters.")
		return nil, false
	}
	return params, true
}

// invoke runs a cmdlet and answers the errors; ok reports success.
func (h *Handler) invoke(q *request, name string, params map[string]any) ([]*cmdlet.Object, bool) {
	objs, err := q.runner.Invoke(q.r.Context(), name, params)
	if err != nil {
		q.fail(err)
		return nil, false
	}
	return objs, true
}

// internalMessage is all a caller learns of a server-side failure: the
// detail (file names, SQL) is for the server's log, not for API clients.
const internalMessage = "The server could not complete the request; the details are in its log."

// fail answers an error from a cmdlet with its status and message; a
// failure of the server itself (admin.ErrInternal) is logged and answered
// 500 with a generic text.
func (q *request) fail(err error) {
	status, code := classify(err)
	if status == http.StatusInternalServerError {
		q.log.Error("api request failed", "method", q.r.Method, "path", q.r.URL.Path, "err", err)
		writeError(q.w, status, code, internalMessage)
		return
	}
	writeError(q.w, status, code, err.Error())
}

// classify maps a cmdlet's error to an HTTP status and an error code.
func classify(err error) (int, string) {
	switch {
	case errors.Is(err, cmdlet.ErrUnknownCmdlet):
		return http.StatusNotFound, "UnknownCmdlet"
	case errors.Is(err, admin.ErrAccessDenied):
		return http.StatusForbidden, "AccessDenied"
	case errors.Is(err, admin.ErrNotFound):
		return http.StatusNotFound, "NotFound"
	case errors.Is(err, admin.ErrExists):
		return http.StatusConflict, "Conflict"
	case errors.Is(err, admin.ErrInternal):
		return http.StatusInternalServerError, "InternalServerError"
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return http.StatusServiceUnavailable, "Unavailable"
	}
	// Everything else is a parameter that does not bind
	// (cmdlet.ParameterError) or a cmdlet refusing the request in its own
	// words ("the domain is used by mailbox ..."): the caller must fix it.
	return http.StatusBadRequest, "BadRequest"
}

// writeObjects answers one object as itself, unless asList, and anything
// else as a list.
func (q *request) writeObjects(status int, objs []*cmdlet.Object, asList bool) {
	if len(objs) == 1 && !asList {
		writeJSON(q.w, status, objs[0])
		return
	}
	q.writeList(status, objs)
}

// writeList answers {"value": [...], "messages": [...]}, assembled here
// so that each object is encoded once (see cmdlet.Object.AppendJSON).
func (q *request) writeList(status int, objs []*cmdlet.Object) {
	b := append(make([]byte, 0, 512*len(objs)+64), `{"value":[`...)
	for i, o := range objs {
		if i > 0 {
			b = append(b, ',')
		}
		var err error
		if b, err = o.AppendJSON(b); err != nil {
			writeError(q.w, http.StatusInternalServerError, "InternalServerError", "The answer could not be encoded: "+err.Error())
			return
		}
	}
	msgs, _ := json.Marshal(q.messages())
	b = append(append(append(b, `],"messages":`...), msgs...), "}\n"...)
	q.w.Header().Set("Content-Type", "application/json")
	q.w.Header().Set("Cache-Control", "no-store")
	q.w.WriteHeader(status)
	q.w.Write(b)
}

// messages are the lines the cmdlet wrote for the host: What if: ...,
// warnings, "Copy the key now".
func (q *request) messages() []string {
	lines := []string{}
	for _, l := range strings.Split(q.out.String(), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			lines = append(lines, l)
		}
	}
	return lines
}

type errorBody struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	var b errorBody
	b.Error.Code, b.Error.Message = code, msg
	writeJSON(w, status, b)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	var data []byte
	var err error
	if o, ok := v.(*cmdlet.Object); ok {
		data, err = o.AppendJSON(nil)
	} else {
		data, err = json.Marshal(v)
	}
	if err != nil {
		status = http.StatusInternalServerError
		data = []byte(`{"error":{"code":"InternalServerError","message":"The response could not be encoded."}}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	w.Write(append(data, '\n'))
}
