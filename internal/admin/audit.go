package admin

import (
	"context"
	"errors"
	"os/user"
	"sort"
	"strings"
	"time"

	"postern.dev/postern/internal/cmdlet"
	"postern.dev/postern/internal/store"
)

// run is the admin service's one door for cmdlets: every front end's
// cmdlet runs through it (register wraps each Spec's Run with it). It
// refuses a cmdlet outside the caller's role, runs the work, and writes a
// changing cmdlet's run (one that supports -WhatIf: every New-, Set-,
// Remove-, Add-, Rotate- and Retry-) to the admin audit log, successful
// or not and refusals included — as Exchange's admin audit logging
// records every cmdlet that changes something, and an admin reviewing the
// log wants to see attempts beyond a key's role. -WhatIf runs change
// nothing and are not recorded.
func (s *Service) run(ctx context.Context, spec *cmdlet.Spec, inv *cmdlet.Invocation,
	work func(context.Context, *cmdlet.Invocation) ([]*cmdlet.Object, error)) ([]*cmdlet.Object, error) {
	var out []*cmdlet.Object
	err := s.authorize(spec)
	if err == nil {
		out, err = work(ctx, inv)
	}
	if spec.SupportsWhatIf && !inv.WhatIf {
		s.audit(ctx, spec, inv, err)
	}
	return out, err
}

// audit writes one run of a changing cmdlet to the admin audit log; if
// that fails, the caller is told (auditWarning).
func (s *Service) audit(ctx context.Context, spec *cmdlet.Spec, inv *cmdlet.Invocation, err error) {
	secret := map[string]bool{}
	for _, p := range spec.Params {
		if p.Type == cmdlet.SecureString {
			secret[p.Name] = true
		}
	}
	e := store.AuditEntry{OrgID: s.org().ID, At: time.Now().UTC(), Caller: s.caller(), Cmdlet: spec.Name,
		Parameters: renderParams(inv, secret), Object: auditObject(inv), Succeeded: err == nil}
	switch {
	case errors.Is(err, ErrInternal):
		// The organization's admins read this log: the storage's own
		// words (file names, SQL) stay in the server's log.
		e.Error = "The server failed to make the change (an internal error)."
	case err != nil:
		e.Error = err.Error()
	}
	if aerr := s.Store.AppendAudit(context.WithoutCancel(ctx), e); aerr != nil {
		inv.Printf("%s\n", s.auditWarning(err, aerr))
	}
}

// auditWarning is what the caller is told when the audit entry could not
// be written after a change (err nil) or after a failed attempt (err set;
// nothing was changed then, since each change is one transaction). Only
// the server's administrator sees the storage's own words: they may name
// files.
func (s *Service) auditWarning(err, aerr error) string {
	detail := ""
	if !s.scoped {
		detail = ": " + aerr.Error()
	}
	if err != nil {
		return "WARNING: the admin audit log could not record this failed attempt" + detail
	}
	return "WARNING: the change was made, but the admin audit log could not record it" + detail
}

// renderParams writes the parameters as they were given, in a stable
// order; secrets show as ********.
func renderParams(inv *cmdlet.Invocation, secret map[string]bool) string {
	names := make([]string, 0, len(inv.Args))
	for n := range inv.Args {
		names = append(names, n)
	}
	sort.Strings(names)
	var b strings.Builder
	for i, n := range names {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString("-" + n + " ")
		switch v := inv.Args[n]; {
		case secret[n]:
			b.WriteString("********")
		case v == nil:
			b.WriteString("$null")
		case v == true:
			b.WriteString("$true")
		case v == false:
			b.WriteString("$false")
		default:
			text := cmdlet.FormatValue(v)
			if strings.ContainsAny(text, " ,;") {
				text = "'" + strings.ReplaceAll(text, "'", "''") + "'"
			}
			b.WriteString(text)
		}
	}
	return b.String()
}

// auditObject is the object a change was about: its Identity, or the Name
// (or DomainName) it created.
func auditObject(inv *cmdlet.Invocation) string {
	for _, n := range []string{"Identity", "Name", "DomainName", "AppId"} {
		if inv.Has(n) {
			return inv.String(n)
		}
	}
	return ""
}

// caller names who ran a cmdlet. Cmdlets reach the server through its
// admin socket, which only the data directory's owner may open, so the
// caller is that account; the REST API will name its API key.
func (s *Service) caller() string {
	if s.Caller != "" {
		return s.Caller
	}
	if u, err := user.Current(); err == nil {
		return u.Username + " (local administrator)"
	}
	return "local administrator"
}

// AuditLog is Search-AdminAuditLog.
func (s *Service) AuditLog(ctx context.Context, cmdlets []string, object string, start, end time.Time, limit int) ([]store.AuditEntry, error) {
	return s.Store.SearchAudit(ctx, store.AuditQuery{OrgID: s.org().ID, Cmdlets: cmdlets, Object: object, Start: start, End: end, Limit: limit})
}

func (c *cmdlets) searchAdminAuditLog(ctx context.Context, inv *cmdlet.Invocation) ([]*cmdlet.Object, error) {
	start, end, err := dates(inv)
	if err != nil {
		return nil, err
	}
	var names []string
	if inv.Has("Cmdlets") {
		if list, ok := inv.Args["Cmdlets"].([]string); ok {
			names = list
		} else {
			names = strings.Split(inv.String("Cmdlets"), ",")
		}
	}
	es, err := c.svc.AuditLog(ctx, names, inv.String("ObjectIds"), start, end, traceResultSize(inv, 1000))
	return objects(es, err, func(e store.AuditEntry) *cmdlet.Object {
		return &cmdlet.Object{TypeName: "AdminAuditLogEvent", DefaultView: cmdlet.ListView,
			DefaultDisplay: []string{"RunDate", "Caller", "CmdletName", "CmdletParameters", "ObjectModified", "Succeeded", "Error"},
			Props: []cmdlet.Prop{
				{Name: "RunDate", Value: e.At},
				{Name: "Caller", Value: e.Caller},
				{Name: "CmdletName", Value: e.Cmdlet},
				{Name: "CmdletParameters", Value: e.Parameters},
				{Name: "ObjectModified", Value: nullIfEmpty(e.Object)},
				{Name: "Succeeded", Value: e.Succeeded},
				{Name: "Error", Value: nullIfEmpty(e.Error)},
			}}
	})
}
