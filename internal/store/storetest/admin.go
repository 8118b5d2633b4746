package storetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"postern.dev/postern/internal/store"
)

func testConnectionLog(t *testing.T, h *harness) {
	s := h.s
	ctx := context.Background()
	base := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	var events []store.ConnectionEvent
	for i := range 5 {
		events = append(events, store.ConnectionEvent{At: base.Add(time.Duration(i) * time.Minute), ClientIP: fmt.Sprintf("192.0.2.%d", i%2),
			Role: "Submission", Event: "AuthFailed", SignIn: "sean@contoso.com", Sender: "s@x", Recipient: "r@x", Reply: "535 5.7.139", Detail: fmt.Sprint(i)})
	}
	must(t, s.LogConnections(ctx, events))
	must(t, s.LogConnections(ctx, nil))
	all, err := s.ConnectionLog(ctx, store.ConnectionQuery{})
	must(t, err)
	if len(all) != 5 || all[0] != events[4] || all[4] != events[0] {
		t.Fatalf("newest first: %+v", all)
	}
	for _, tc := range []struct {
		q    store.ConnectionQuery
		want []string
	}{
		{store.ConnectionQuery{ClientIP: "192.0.2.1"}, []string{"3", "1"}},
		{store.ConnectionQuery{Start: base.Add(3 * time.Minute)}, []string{"4", "3"}},
		{store.ConnectionQuery{End: base.Add(time.Minute)}, []string{"1", "0"}},
		{store.ConnectionQuery{Limit: 2}, []string{"4", "3"}},
	} {
		got, err := s.ConnectionLog(ctx, tc.q)
		must(t, err)
		var details []string
		for _, e := range got {
			details = append(details, e.Detail)
		}
		if !slices.Equal(details, tc.want) {
			t.Errorf("%+v: %v, want %v", tc.q, details, tc.want)
		}
	}
}

func testAudit(t *testing.T, h *harness) {
	s := h.s
	ctx := context.Background()
	base := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	entries := []store.AuditEntry{
		{OrgID: 1, At: base, Caller: "admin", Cmdlet: "Set-CASMailbox", Parameters: "-Identity sean", Object: "sean@contoso.com", Succeeded: true},
		{OrgID: 1, At: base.Add(time.Minute), Caller: "admin", Cmdlet: "New-Mailbox", Parameters: "-Password ********", Object: "Chris", Error: "already exists"},
		{OrgID: 2, At: base.Add(2 * time.Minute), Caller: "other", Cmdlet: "New-Mailbox", Object: "x", Succeeded: true},
	}
	for _, e := range entries {
		must(t, s.AppendAudit(ctx, e))
	}
	for _, tc := range []struct {
		name string
		q    store.AuditQuery
		want []store.AuditEntry
	}{
		{"organization, newest first", store.AuditQuery{OrgID: 1}, []store.AuditEntry{entries[1], entries[0]}},
		{"cmdlets without case", store.AuditQuery{OrgID: 1, Cmdlets: []string{"set-casmailbox", "Get-Nothing"}}, []store.AuditEntry{entries[0]}},
		{"object without case", store.AuditQuery{OrgID: 1, Object: "chris"}, []store.AuditEntry{entries[1]}},
		{"start", store.AuditQuery{OrgID: 1, Start: base.Add(time.Second)}, []store.AuditEntry{entries[1]}},
		{"end", store.AuditQuery{OrgID: 1, End: base}, []store.AuditEntry{entries[0]}},
		{"limit", store.AuditQuery{OrgID: 1, Limit: 1}, []store.AuditEntry{entries[1]}},
		{"other organization", store.AuditQuery{OrgID: 2}, []store.AuditEntry{entries[2]}},
	} {
		got, err := s.SearchAudit(ctx, tc.q)
		must(t, err)
		if !slices.Equal(got, tc.want) {
			t.Errorf("%s: %+v, want %+v", tc.name, got, tc.want)
		}
	}
}

func testAPIKeys(t *testing.T, h *harness) {
	s := h.s
	ctx := context.Background()
	org, _, _ := seed(t, s)
	created := time.Date(2026, 5, 1, 0, 0, 0, 1, time.UTC)
	k := &store.APIKey{OrgID: org.ID, Name: "ci", Role: "Organization Management", Hash: []byte{1, 2, 3}, Prefix: "pk_abc", Created: created,
		Expires: created.Add(24 * time.Hour)}
	must(t, s.SaveAPIKey(ctx, k))
	if k.ID == 0 {
		t.Fatal("no ID")
	}
	if err := s.SaveAPIKey(ctx, &store.APIKey{OrgID: org.ID, Name: "CI", Role: "r", Hash: []byte{9}, Created: created}); !errors.Is(err, store.ErrConflict) {
		t.Errorf("a second key named CI: %v", err)
	}
	b := &store.APIKey{OrgID: org.ID, Name: "Backup", Role: "View-Only", Hash: []byte{4}, Prefix: "pk_b", Created: created}
	must(t, s.SaveAPIKey(ctx, b))
	got, err := s.APIKeyByHash(ctx, []byte{1, 2, 3})
	must(t, err)
	if got.ID != k.ID || got.Name != "ci" || got.Role != k.Role || got.Prefix != "pk_abc" || !got.Created.Equal(created) ||
		!got.Expires.Equal(k.Expires) || !got.LastUsed.IsZero() {
		t.Errorf("by hash: %+v", got)
	}
	if _, err := s.APIKeyByHash(ctx, []byte{7}); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("unknown hash: %v", err)
	}
	used := created.Add(time.Hour)
	must(t, s.TouchAPIKey(ctx, k.ID, used))
	keys, err := s.APIKeys(ctx, org.ID)
	must(t, err)
	if len(keys) != 2 || keys[0].Name != "Backup" || keys[1].Name != "ci" || !keys[1].LastUsed.Equal(used) || !keys[0].Expires.IsZero() {
		t.Errorf("keys by name: %+v", keys)
	}
	if err := s.DeleteAPIKey(ctx, org.ID+1, k.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("another organization's key deleted: %v", err)
	}
	must(t, s.DeleteAPIKey(ctx, org.ID, k.ID))
	if err := s.DeleteAPIKey(ctx, org.ID, k.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("deleted twice: %v", err)
	}
}

func testIssuerKeys(t *testing.T, h *harness) {
	s := h.s
	ctx := context.Background()
	base := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	for i := range 4 {
		must(t, s.SaveIssuerKey(ctx, store.IssuerKey{Kid: fmt.Sprint("k", i), PrivateSealed: fmt.Sprint("sealed", i), Created: base.Add(time.Duration(i) * time.Hour)}, 2))
	}
	keys, err := s.IssuerKeys(ctx)
	must(t, err)
	want := []store.IssuerKey{{Kid: "k3", PrivateSealed: "sealed3", Created: base.Add(3 * time.Hour)}, {Kid: "k2", PrivateSealed: "sealed2", Created: base.Add(2 * time.Hour)}}
	if !slices.Equal(keys, want) {
		t.Errorf("keys %+v, want the newest two", keys)
	}
	if err := s.SaveIssuerKey(ctx, store.IssuerKey{Kid: "k3", Created: base}, 2); err == nil {
		t.Error("a second key with the same kid")
	}
}

func testSmtpAuthClients(t *testing.T, h *harness) {
	s := h.s
	ctx := context.Background()
	org, sean, chris := seed(t, s)
	base := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	for i, m := range []struct {
		mailbox  int64
		tls, via string
	}{{sean.ID, "TLS1.3", "Basic"}, {sean.ID, "TLS1.3", "Basic"}, {sean.ID, "TLS1.2", "OAuth"}, {chris.ID, "TLS1.3", "Basic"}, {0, "", ""}} {
		must(t, s.Commit(ctx, &store.Submission{OrgID: org.ID, ReceivedAt: base.Add(time.Duration(i) * time.Minute), AuthMailbox: m.mailbox,
			TLSVersion: m.tls, AuthProtocol: m.via, Body: []byte("x"), Recipients: 1}))
	}
	rows, err := s.SmtpAuthClients(ctx, base.Add(time.Second))
	must(t, err)
	want := map[string]store.SmtpAuthClientRow{
		fmt.Sprint(sean.ID, "TLS1.3Basic"):  {Mailbox: sean.ID, TLSVersion: "TLS1.3", AuthProtocol: "Basic", Messages: 1, Last: base.Add(time.Minute)},
		fmt.Sprint(sean.ID, "TLS1.2OAuth"):  {Mailbox: sean.ID, TLSVersion: "TLS1.2", AuthProtocol: "OAuth", Messages: 1, Last: base.Add(2 * time.Minute)},
		fmt.Sprint(chris.ID, "TLS1.3Basic"): {Mailbox: chris.ID, TLSVersion: "TLS1.3", AuthProtocol: "Basic", Messages: 1, Last: base.Add(3 * time.Minute)},
	}
	if len(rows) != len(want) {
		t.Fatalf("rows %+v", rows)
	}
	for i, r := range rows {
		if w := want[fmt.Sprint(r.Mailbox, r.TLSVersion+r.AuthProtocol)]; w != r {
			t.Errorf("row %+v, want %+v", r, w)
		}
		if i > 0 && rows[i-1].Mailbox > r.Mailbox {
			t.Errorf("not by mailbox: %+v", rows)
		}
	}
}

func testReceiveConnectorLevels(t *testing.T, h *harness) {
	s := h.s
	ctx := context.Background()
	got, err := s.ReceiveConnectorLevels(ctx)
	must(t, err)
	if len(got) != 0 {
		t.Fatalf("levels of a new store: %v", got)
	}
	must(t, s.SetReceiveConnectorLevel(ctx, "Default Frontend", "Verbose"))
	must(t, s.SetReceiveConnectorLevel(ctx, "Client Proxy", "Verbose"))
	must(t, s.SetReceiveConnectorLevel(ctx, "Default Frontend", "None"))
	got, err = s.ReceiveConnectorLevels(ctx)
	must(t, err)
	if len(got) != 2 || got["Default Frontend"] != "None" || got["Client Proxy"] != "Verbose" {
		t.Errorf("levels %v", got)
	}
}

// testQueueStats: the backlog per next hop is the top n domains by depth,
// the rest folded into "other", with each hop's oldest message; local
// (paced) deliveries are not outbound backlog.
func testQueueStats(t *testing.T, h *harness) {
	s, ok := h.s.(store.Server)
	if !ok {
		t.Fatalf("%T is no store.Server", h.s)
	}
	ctx := context.Background()
	org, sean, chris := seed(t, s)
	base := time.Now().Add(-time.Hour)
	plan := []struct {
		domain string
		n      int
	}{{"a.example", 5}, {"B.example", 3}, {"c.example", 2}, {"d.example", 1}, {"a.example", 1}}
	for i, p := range plan {
		var remote []store.RemoteDelivery
		for j := range p.n {
			remote = append(remote, store.RemoteDelivery{Recipient: fmt.Sprintf("u%d@%s", j, p.domain)})
		}
		must(t, s.Commit(ctx, &store.Submission{OrgID: org.ID, MessageID: fmt.Sprintf("q%d@test", i), ReceivedAt: base.Add(time.Duration(i) * time.Minute),
			EnvelopeFrom: "sean@contoso.com", AuthMailbox: sean.ID, Body: []byte("Subject: x\r\n\r\nx\r\n"), Recipients: p.n, Remote: remote,
			Local: []store.LocalDelivery{{Mailbox: chris.ID, Folder: store.Inbox, Recipient: "chris@contoso.com", NotBefore: time.Now().Add(time.Hour)}}}))
	}
	hop := func(name string, depth int, oldest time.Time) store.HopStats {
		return store.HopStats{NextHop: name, Depth: depth, Oldest: oldest}
	}
	for _, tc := range []struct {
		n    int
		want []store.HopStats
	}{
		{1, []store.HopStats{hop("a.example", 6, base), hop("other", 6, base.Add(time.Minute))}},
		{2, []store.HopStats{hop("a.example", 6, base), hop("b.example", 3, base.Add(time.Minute)), hop("other", 3, base.Add(2*time.Minute))}},
		{10, []store.HopStats{hop("a.example", 6, base), hop("b.example", 3, base.Add(time.Minute)), hop("c.example", 2, base.Add(2*time.Minute)), hop("d.example", 1, base.Add(3*time.Minute))}},
	} {
		got, err := s.QueueStats(ctx, tc.n)
		must(t, err)
		if len(got) != len(tc.want) {
			t.Fatalf("n=%d: %+v", tc.n, got)
		}
		for i, w := range tc.want {
			g := got[i]
			if g.NextHop != w.NextHop || g.Depth != w.Depth || !g.Oldest.Equal(w.Oldest) {
				t.Errorf("n=%d [%d]: got %s %d %v, want %s %d %v", tc.n, i, g.NextHop, g.Depth, g.Oldest, w.NextHop, w.Depth, w.Oldest)
			}
		}
	}
}

// testProbe: the readiness probe writes and reads back, repeatedly, and
// fails once the store is closed; a sweep of a store with nothing
// orphaned removes nothing.
func testProbe(t *testing.T, h *harness) {
	s, ok := h.s.(store.Server)
	if !ok {
		t.Fatalf("%T is no store.Server", h.s)
	}
	ctx := context.Background()
	for range 3 {
		must(t, s.Probe(ctx))
	}
	if n, err := s.SweepBodies(ctx); err != nil || n != 0 {
		t.Errorf("SweepBodies of a new store: %d, %v", n, err)
	}
	must(t, s.Close())
	h.s = nil
	if err := s.Probe(ctx); err == nil {
		t.Fatal("probe of a closed store succeeded")
	}
}
