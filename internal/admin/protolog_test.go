package admin

import (
	"bytes"
	"context"
	"errors"
	"net/netip"
	"path/filepath"
	"testing"

	"postern.dev/postern/internal/cmdlet"
	"postern.dev/postern/internal/protolog"
)

// TestConnectorProtocolLogAccess: an organization's Organization
// Management admin sets -ProtocolLoggingLevel on its own inbound
// connectors only and reads back only their log; another organization's
// connector is not found, a listener's log and the whole log are refused;
// the server's administrator reads everything.
func TestConnectorProtocolLogAccess(t *testing.T) {
	ctx := context.Background()
	svc := testService(t, openStore(t))
	pl, err := protolog.Open(filepath.Join(t.TempDir(), "protolog"), protolog.DefaultLimits)
	if err != nil {
		t.Fatal(err)
	}
	defer pl.Close()
	svc.ProtocolLog = pl
	contoso := svc.org()
	fab, err := svc.NewOrganization(ctx, "Fabrikam")
	if err != nil {
		t.Fatal(err)
	}
	fabSvc, err := svc.ForOrganization("Fabrikam")
	if err != nil {
		t.Fatal(err)
	}
	str := func(s string) *string { return &s }
	ips := func(s string) *MultiValue { return &MultiValue{Set: []string{s}, IsSet: true} }
	if _, err := svc.NewInboundConnector(ctx, InboundConnectorParams{Name: str("Printers"), SenderIPAddresses: ips("192.0.2.0/28")}); err != nil {
		t.Fatal(err)
	}
	if _, err := fabSvc.NewInboundConnector(ctx, InboundConnectorParams{Name: str("Fab relay"), SenderIPAddresses: ips("198.51.100.0/28")}); err != nil {
		t.Fatal(err)
	}

	run := func(s *Service, name string, params map[string]any) ([]*cmdlet.Object, error) {
		r := &cmdlet.Runner{Registry: Cmdlets(s), Out: &bytes.Buffer{}}
		return r.Invoke(ctx, name, params)
	}
	as := func(org int64, role Role) *Service { return svc.As(Principal{Name: "key", OrgID: org, Role: role}) }
	level := func(s *Service, identity string) string {
		cs, err := s.InboundConnectors(identity)
		if err != nil {
			t.Fatal(err)
		}
		return cs[0].ProtocolLoggingLevel()
	}

	get := func(o *cmdlet.Object, name string) any {
		v, _ := o.Get(name)
		return v
	}
	for _, tc := range []struct {
		name     string
		svc      *Service
		identity string
		level    string
		want     error // nil: done
	}{
		{"Organization Management, own connector", as(contoso.ID, OrganizationManagement), "Printers", "Verbose", nil},
		{"Organization Management, another organization's connector", as(contoso.ID, OrganizationManagement), "Fab relay", "Verbose", ErrNotFound},
		{"Recipient Management", as(contoso.ID, RecipientManagement), "Printers", "None", ErrAccessDenied},
		{"View-Only", as(contoso.ID, ViewOnly), "Printers", "None", ErrAccessDenied},
		{"Fabrikam's admin, Contoso's connector", as(fab.ID, OrganizationManagement), "Printers", "None", ErrNotFound},
		{"Fabrikam's admin, own connector", as(fab.ID, OrganizationManagement), "Fab relay", "Verbose", nil},
	} {
		_, err := run(tc.svc, "Set-InboundConnector", map[string]any{"Identity": tc.identity, "ProtocolLoggingLevel": tc.level})
		if tc.want == nil && err != nil || tc.want != nil && !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
	if got := level(svc, "Printers"); got != "Verbose" {
		t.Errorf("Printers: %s", got)
	}
	if got := level(fabSvc, "Fab relay"); got != "Verbose" {
		t.Errorf("Fab relay: %s", got)
	}
	if _, err := run(as(contoso.ID, OrganizationManagement), "Set-InboundConnector", map[string]any{"Identity": "Printers", "ProtocolLoggingLevel": "Loud"}); err == nil {
		t.Error("a level other than Verbose or None was accepted")
	}
	if objs, err := run(as(contoso.ID, ViewOnly), "Get-InboundConnector", map[string]any{"Identity": "Printers"}); err != nil || len(objs) != 1 || get(objs[0], "ProtocolLoggingLevel") != "Verbose" {
		t.Errorf("Get-InboundConnector: %v %v", objs, err)
	}
	// The directory snapshot the SMTP path reads has the change.
	if got := svc.Dir.Load().LoggedInboundConnectors(); len(got) != 2 {
		t.Errorf("logged connectors in the snapshot: %d", len(got))
	}

	// One session for each organization's connector.
	for i, m := range []protolog.Match{{OrgID: contoso.ID, Connector: "Printers"}, {OrgID: fab.ID, Connector: "Fab relay"}} {
		p := pl.Pending([]string{"CONTOSO1", "FABRIKAM1"}[i], netip.MustParseAddr([]string{"192.0.2.1", "198.51.100.1"}[i]))
		p.Received("EHLO "+m.Connector, false)
		p.Matched(m.OrgID, m.Connector)
		p.Close()
	}
	sessions := func(objs []*cmdlet.Object) map[string]bool {
		out := map[string]bool{}
		for _, o := range objs {
			out[get(o, "SessionId").(string)] = true
		}
		return out
	}
	for _, tc := range []struct {
		name     string
		svc      *Service
		params   map[string]any
		want     error
		sessions []string
	}{
		{"Contoso's own connector", as(contoso.ID, ViewOnly), map[string]any{"Identity": "Printers"}, nil, []string{"CONTOSO1"}},
		{"Contoso's own connector by client address", as(contoso.ID, OrganizationManagement), map[string]any{"Identity": "printers", "ClientIP": "192.0.2.1"}, nil, []string{"CONTOSO1"}},
		{"Fabrikam's connector by Contoso", as(contoso.ID, OrganizationManagement), map[string]any{"Identity": "Fab relay"}, ErrNotFound, nil},
		{"a listener by Contoso", as(contoso.ID, OrganizationManagement), map[string]any{"Identity": "Default Frontend"}, ErrAccessDenied, nil},
		{"everything by Contoso", as(contoso.ID, OrganizationManagement), map[string]any{"ClientIP": "198.51.100.1"}, ErrAccessDenied, nil},
		{"Fabrikam's own connector", as(fab.ID, OrganizationManagement), map[string]any{"Identity": "Fab relay"}, nil, []string{"FABRIKAM1"}},
		{"the server's administrator, everything", svc, map[string]any{}, nil, []string{"CONTOSO1", "FABRIKAM1"}},
		{"the server's administrator, Fabrikam's connector", fabSvc, map[string]any{"Identity": "Fab relay"}, nil, []string{"FABRIKAM1"}},
		{"the server's administrator, a listener", svc, map[string]any{"Identity": "Default Frontend"}, nil, nil},
	} {
		objs, err := run(tc.svc, "Get-ProtocolLog", tc.params)
		if tc.want != nil {
			if !errors.Is(err, tc.want) || len(objs) != 0 {
				t.Errorf("%s: %v (%d records), want %v", tc.name, err, len(objs), tc.want)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		got := sessions(objs)
		if len(got) != len(tc.sessions) {
			t.Errorf("%s: sessions %v, want %v", tc.name, got, tc.sessions)
		}
		for _, s := range tc.sessions {
			if !got[s] {
				t.Errorf("%s: sessions %v, want %v", tc.name, got, tc.sessions)
			}
		}
	}
}
