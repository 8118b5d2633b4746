package webadmin

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"postern.dev/postern/internal/admin"
	"postern.dev/postern/internal/directory"
)

// Security pages: authentication policies and security defaults, DKIM,
// OAuth apps, service principals and auth servers, API keys. Each change
// is its cmdlet; what a page shows once (a client secret, an API key) is
// in the answer to the POST itself and nowhere else, as the cmdlet shows
// it once.

type policiesData struct {
	base
	Policies         []*directory.AuthenticationPolicy
	SecurityDefaults bool
	DefaultPolicy    string
	CanChange        bool
	// The add form's answers, kept when the service refuses them.
	Name            string
	Smtp, Imap, Pop bool
}

func (h *Handler) authPolicies(q *request) {
	h.renderAuthPolicies(q, http.StatusOK, policiesData{}, nil)
}

func (h *Handler) renderAuthPolicies(q *request, status int, d policiesData, errs map[string]string) {
	ps, err := q.svc.AuthenticationPolicies("")
	if err != nil {
		q.fail(err)
		return
	}
	o := q.svc.Organization()
	d.base = q.page("Authentication policies", eac, navAuthPolicies)
	d.Errors, d.Policies, d.SecurityDefaults, d.DefaultPolicy = errs, ps, o.SecurityDefaultsEnabled, o.DefaultAuthenticationPolicy
	d.CanChange = q.can("Set-AuthenticationPolicy")
	h.render(q.w, q.r, status, "authpolicies", d)
}

// policySwitches are a policy form's three checkboxes: checked allows
// Basic authentication for the protocol.
func policySwitches(f url.Values) map[string]any {
	return map[string]any{"AllowBasicAuthSmtp": f.Get("smtp") == "on", "AllowBasicAuthImap": f.Get("imap") == "on", "AllowBasicAuthPop": f.Get("pop") == "on"}
}

// authPolicyAdd is New-AuthenticationPolicy.
func (h *Handler) authPolicyAdd(q *request) {
	f := q.r.PostForm
	params := policySwitches(f)
	name := strings.TrimSpace(f.Get("name"))
	params["Name"] = name
	if _, err := q.invoke("New-AuthenticationPolicy", params); err != nil {
		status, errs := q.fieldErrors(err)
		h.renderAuthPolicies(q, status, policiesData{Name: name, Smtp: f.Get("smtp") == "on", Imap: f.Get("imap") == "on", Pop: f.Get("pop") == "on"}, errs)
		return
	}
	q.flash("The authentication policy " + name + " was created. Assign it to users with Set-User -AuthenticationPolicy, or make it the organization's default below.")
	q.redirect("/exchange/authpolicies")
}

// authPolicyPost edits one policy (Set-AuthenticationPolicy) or removes
// it (Remove-AuthenticationPolicy).
func (h *Handler) authPolicyPost(q *request) {
	ps, err := q.svc.AuthenticationPolicies(q.r.PathValue("name"))
	if err != nil || len(ps) != 1 {
		if err == nil {
			err = errNotFound(q.r.PathValue("name"))
		}
		q.fail(err)
		return
	}
	p := ps[0]
	f := q.r.PostForm
	var msg string
	if f.Get("action") == "remove" {
		_, err = q.invoke("Remove-AuthenticationPolicy", map[string]any{"Identity": p.Name})
		msg = "The authentication policy " + p.Name + " was removed."
	} else {
		params := policySwitches(f)
		params["Identity"] = p.Name
		_, err = q.invoke("Set-AuthenticationPolicy", params)
		msg = "Changes to " + p.Name + " saved."
	}
	if err != nil {
		status, errs := q.fieldErrors(err)
		h.renderAuthPolicies(q, status, policiesData{}, map[string]string{"": p.Name + ": " + firstOf(errs)})
		return
	}
	q.flash(msg)
	q.redirect("/exchange/authpolicies")
}

// securityDefaultsPost is Set-OrganizationConfig -SecurityDefaultsEnabled
// and -DefaultAuthenticationPolicy, each only when it changed.
func (h *Handler) securityDefaultsPost(q *request) {
	o := q.svc.Organization()
	f := q.r.PostForm
	params := map[string]any{}
	if v := f.Get("securityDefaults") == "on"; v != o.SecurityDefaultsEnabled {
		params["SecurityDefaultsEnabled"] = v
	}
	if v := f.Get("defaultPolicy"); v != o.DefaultAuthenticationPolicy {
		params["DefaultAuthenticationPolicy"] = v
	}
	if len(params) == 0 {
		q.flash("No changes to save.")
		q.redirect("/exchange/authpolicies")
		return
	}
	if _, err := q.invoke("Set-OrganizationConfig", params); err != nil {
		status, errs := q.fieldErrors(err)
		h.renderAuthPolicies(q, status, policiesData{}, errs)
		return
	}
	q.flash("Changes saved.")
	q.redirect("/exchange/authpolicies")
}

// --- DKIM ---

type dkimRow struct {
	Domain               string
	Config               *directory.DkimSigningConfig
	Selector1, Selector2 string
	Active               string
}

type dkimData struct {
	base
	Rows      []dkimRow
	CanChange bool
}

func (h *Handler) dkimPage(q *request) {
	h.renderDkim(q, http.StatusOK, nil)
}

func (h *Handler) renderDkim(q *request, status int, errs map[string]string) {
	ds, err := q.svc.AcceptedDomains("")
	if err != nil {
		q.fail(err)
		return
	}
	d := dkimData{base: q.page("DKIM", eac, navDkim), CanChange: q.can("Set-DkimSigningConfig")}
	d.Errors = errs
	for _, dom := range ds {
		r := dkimRow{Domain: dom.DomainName, Selector1: directory.SelectorName(1) + "._domainkey." + dom.DomainName, Selector2: directory.SelectorName(2) + "._domainkey." + dom.DomainName}
		if cs, err := q.svc.DkimSigningConfigs(dom.DomainName); err == nil && len(cs) == 1 {
			r.Config = cs[0]
			r.Active = directory.SelectorName(cs[0].ActiveSelector)
		}
		d.Rows = append(d.Rows, r)
	}
	h.render(q.w, q.r, status, "dkim", d)
}

// dkimPost acts on one domain's DKIM: create keys
// (New-DkimSigningConfig), turn signing on or off
// (Set-DkimSigningConfig -Enabled) or rotate (Rotate-DkimSigningConfig).
func (h *Handler) dkimPost(q *request) {
	ds, err := q.svc.AcceptedDomains(q.r.PathValue("domain"))
	if err != nil || len(ds) != 1 {
		if err == nil {
			err = errNotFound(q.r.PathValue("domain"))
		}
		q.fail(err)
		return
	}
	dom := ds[0].DomainName
	var msg string
	switch q.r.PostForm.Get("action") {
	case "create":
		enable := q.r.PostForm.Get("enable") == "on"
		_, err = q.invoke("New-DkimSigningConfig", map[string]any{"DomainName": dom, "Enabled": enable})
		msg = "DKIM keys for " + dom + " were created. Publish the two records below at your DNS host."
		if enable {
			msg += " Signing is on."
		}
	case "enable":
		_, err = q.invoke("Set-DkimSigningConfig", map[string]any{"Identity": dom, "Enabled": true})
		msg = "DKIM signing for " + dom + " is on."
	case "disable":
		_, err = q.invoke("Set-DkimSigningConfig", map[string]any{"Identity": dom, "Enabled": false})
		msg = "DKIM signing for " + dom + " is off."
	case "rotate":
		_, err = q.invoke("Rotate-DkimSigningConfig", map[string]any{"Identity": dom})
		msg = "The DKIM keys of " + dom + " were rotated: mail is signed with the other selector from now on, and the retired one has a new key to publish."
	default:
		h.errorPage(q.w, q.r, http.StatusBadRequest, "Choose what to do: create keys, enable, disable or rotate.")
		return
	}
	if err != nil {
		status, errs := q.fieldErrors(err)
		h.renderDkim(q, status, map[string]string{"": dom + ": " + firstOf(errs)})
		return
	}
	q.flash(msg)
	q.redirect("/exchange/dkim#dkim-" + dom)
}

// --- OAuth apps, service principals, auth servers ---

type oauthData struct {
	base
	Apps       []*directory.OAuthApp
	Principals []*directory.ServicePrincipal
	Servers    []*directory.AuthServer
	CanChange  bool
	// NewApp is the application just registered, with its client secret:
	// shown in this answer only.
	NewApp *newSecret
	// Form answers kept when the service refuses them.
	Form url.Values
}

type newSecret struct {
	Name, AppId, Secret, TokenEndpoint, Scope string
}

func (h *Handler) oauthPage(q *request) {
	h.renderOAuth(q, http.StatusOK, oauthData{}, nil)
}

func (h *Handler) renderOAuth(q *request, status int, d oauthData, errs map[string]string) {
	var err error
	if d.Apps, err = q.svc.OAuthApps(""); err == nil {
		if d.Principals, err = q.svc.ServicePrincipals(""); err == nil {
			d.Servers, err = q.svc.AuthServers("")
		}
	}
	if err != nil {
		q.fail(err)
		return
	}
	d.base = q.page("OAuth apps, service principals and auth servers", eac, navOAuth)
	d.Errors, d.CanChange = errs, q.can("New-OAuthApp")
	if d.Form == nil {
		d.Form = url.Values{}
	}
	h.render(q.w, q.r, status, "oauth", d)
}

// prefixed files the errors of one of the page's forms under its prefix,
// so that each shows next to its own field.
func prefixed(prefix string, errs map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range errs {
		out[prefix+k] = v
	}
	return out
}

// oauthPost adds or removes one of the page's objects: what= app,
// principal or server; action= add or remove.
func (h *Handler) oauthPost(q *request) {
	f := q.r.PostForm
	what, action := f.Get("what"), f.Get("action")
	var cmd string
	params := map[string]any{}
	switch what + "/" + action {
	case "app/add":
		cmd, params["Name"] = "New-OAuthApp", strings.TrimSpace(f.Get("name"))
	case "app/remove":
		cmd, params["Identity"] = "Remove-OAuthApp", f.Get("identity")
	case "principal/add":
		cmd = "New-ServicePrincipal"
		params["AppId"], params["ObjectId"] = strings.TrimSpace(f.Get("appId")), strings.TrimSpace(f.Get("objectId"))
		if v := strings.TrimSpace(f.Get("displayName")); v != "" {
			params["DisplayName"] = v
		}
	case "principal/remove":
		cmd, params["Identity"] = "Remove-ServicePrincipal", f.Get("identity")
	case "server/add":
		cmd = "New-AuthServer"
		params["Name"], params["AuthMetadataUrl"] = strings.TrimSpace(f.Get("name")), strings.TrimSpace(f.Get("metadataUrl"))
		if v := strings.TrimSpace(f.Get("audience")); v != "" {
			params["Audience"] = v
		}
	case "server/remove":
		cmd, params["Identity"] = "Remove-AuthServer", f.Get("identity")
	default:
		h.errorPage(q.w, q.r, http.StatusBadRequest, "Choose what to add or remove.")
		return
	}
	objs, err := q.invoke(cmd, params)
	if err != nil {
		status, errs := q.fieldErrors(err)
		if action == "remove" {
			errs = map[string]string{"": firstOf(errs)}
		} else {
			errs = prefixed(what+".", errs)
		}
		h.renderOAuth(q, status, oauthData{Form: f}, errs)
		return
	}
	if cmd == "New-OAuthApp" && len(objs) == 1 {
		// The secret is in this answer only: render, do not redirect.
		o := objs[0]
		d := oauthData{NewApp: &newSecret{Name: prop(o, "Name"), AppId: prop(o, "AppId"), Secret: prop(o, "ClientSecret"), TokenEndpoint: prop(o, "TokenEndpoint"), Scope: prop(o, "Scope")}}
		h.renderOAuth(q, http.StatusOK, d, nil)
		return
	}
	q.flash(map[string]string{"New": "Added.", "Remove": "Removed."}[cmd[:strings.IndexByte(cmd, '-')]])
	q.redirect("/exchange/oauth")
}

// --- API keys ---

type apiKeyRow struct {
	Name, Role, Prefix, Created, LastUsed, Expires string
}

type apiKeysData struct {
	base
	Keys      []apiKeyRow
	Roles     []string
	CanChange bool
	// Denied: the admin's role may not see API keys (Get-ApiKey needs
	// Organization Management).
	Denied string
	// NewKey is the key just created: shown in this answer only.
	NewKey *apiKeyRow
	Key    string
	Form   url.Values
}

func (h *Handler) apiKeys(q *request) {
	h.renderApiKeys(q, http.StatusOK, apiKeysData{}, nil)
}

func (h *Handler) renderApiKeys(q *request, status int, d apiKeysData, errs map[string]string) {
	d.base = q.page("API keys", eac, navApiKeys)
	d.Errors, d.CanChange = errs, q.can("New-ApiKey")
	d.Roles = []string{string(admin.OrganizationManagement), string(admin.RecipientManagement), "View-Only"}
	if d.Form == nil {
		d.Form = url.Values{}
	}
	objs, err := q.invoke("Get-ApiKey", nil)
	if err != nil {
		if !errors.Is(err, admin.ErrAccessDenied) {
			q.fail(err)
			return
		}
		d.Denied, d.CanChange = err.Error(), false
		status = http.StatusForbidden
	}
	for _, o := range objs {
		d.Keys = append(d.Keys, apiKeyRow{Name: prop(o, "Name"), Role: prop(o, "Role"), Prefix: prop(o, "KeyPrefix"), Created: when(timeProp(o, "WhenCreated")),
			LastUsed: when(timeProp(o, "LastUsed")), Expires: when(timeProp(o, "Expires"))})
	}
	h.render(q.w, q.r, status, "apikeys", d)
}

// apiKeyAdd is New-ApiKey; the key is in this answer only.
func (h *Handler) apiKeyAdd(q *request) {
	f := q.r.PostForm
	params := map[string]any{"Name": strings.TrimSpace(f.Get("name")), "Role": f.Get("role")}
	if v := strings.TrimSpace(f.Get("expiresAfter")); v != "" {
		params["ExpiresAfter"] = v
	}
	objs, err := q.invoke("New-ApiKey", params)
	if err == nil && len(objs) != 1 {
		err = fmt.Errorf("%w: New-ApiKey returned %d objects", admin.ErrInternal, len(objs))
	}
	if err != nil {
		status, errs := q.fieldErrors(err)
		h.renderApiKeys(q, status, apiKeysData{Form: f}, errs)
		return
	}
	o := objs[0]
	d := apiKeysData{NewKey: &apiKeyRow{Name: prop(o, "Name"), Role: prop(o, "Role"), Expires: when(timeProp(o, "Expires"))}, Key: prop(o, "Key")}
	h.renderApiKeys(q, http.StatusOK, d, nil)
}

// apiKeyRemove is Remove-ApiKey.
func (h *Handler) apiKeyRemove(q *request) {
	name := q.r.PathValue("name")
	if _, err := q.invoke("Remove-ApiKey", map[string]any{"Identity": name}); err != nil {
		if errors.Is(err, admin.ErrNotFound) || errors.Is(err, admin.ErrAccessDenied) {
			q.fail(err)
			return
		}
		status, errs := q.fieldErrors(err)
		h.renderApiKeys(q, status, apiKeysData{}, map[string]string{"": firstOf(errs)})
		return
	}
	q.flash("The API key " + name + " was removed: requests signed with it fail from now on.")
	q.redirect("/exchange/apikeys")
}
