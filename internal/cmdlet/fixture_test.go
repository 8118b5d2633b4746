package cmdlet

import (
	"bytes"
	"context"
	"testing"
	"time"
)

// fixture is a registry with the built-ins and a few fake Exchange
// cmdlets. The Set- and New- ones record their invocations in calls.
type fixture struct {
	reg   *Registry
	calls []*Invocation
}

var created = time.Date(2026, 1, 2, 15, 4, 5, 0, time.UTC)

func mailbox(name string, limits int64, addrs ...Value) *Object {
	return &Object{
		TypeName:       "Mailbox",
		DefaultView:    TableView,
		DefaultDisplay: []string{"Name", "PrimarySmtpAddress", "RecipientLimits"},
		Props: []Prop{
			{Name: "Name", Value: name},
			{Name: "Identity", Value: name},
			{Name: "PrimarySmtpAddress", Value: name + "@contoso.com"},
			{Name: "EmailAddresses", Value: append([]Value{}, addrs...)},
			{Name: "RecipientLimits", Value: limits},
			{Name: "SmtpClientAuthenticationDisabled", Value: nil},
			{Name: "WhenCreated", Value: created},
		},
	}
}

func newFixture() *fixture {
	f := &fixture{reg: NewRegistry()}
	RegisterBuiltins(f.reg)
	record := func(_ context.Context, inv *Invocation) ([]*Object, error) {
		f.calls = append(f.calls, inv)
		if inv.WhatIf {
			inv.Printf("What if: Setting %q.\n", inv.String("Identity"))
		}
		return nil, nil
	}
	identity := ParamSpec{Name: "Identity", Type: Identity, Required: true, Position: 0}

	f.reg.Register(Spec{
		Name: "Get-TransportConfig",
		Run: func(context.Context, *Invocation) ([]*Object, error) {
			return []*Object{{TypeName: "TransportConfig", DefaultView: ListView, Props: []Prop{
				{Name: "Identity", Value: "Transport Settings"},
				{Name: "SmtpClientAuthenticationDisabled", Value: true},
				{Name: "MaxRecipientEnvelopeLimit", Value: Unlimited},
			}}}, nil
		},
	})
	f.reg.Register(Spec{
		Name:   "Get-Mailbox",
		Params: []ParamSpec{{Name: "Identity", Type: Identity, Position: 0}},
		Run: func(_ context.Context, inv *Invocation) ([]*Object, error) {
			var out []*Object
			for _, m := range []*Object{
				mailbox("sean", 500, "SMTP:sean@contoso.com", "smtp:sean.smith@contoso.com"),
				mailbox("kim", 10),
			} {
				if id := inv.String("Identity"); id == "" || MatchWildcard(id, m.String()) {
					out = append(out, m)
				}
			}
			return out, nil
		},
	})
	// Get-Thing returns an object without an Identity.
	f.reg.Register(Spec{
		Name: "Get-Thing",
		Run: func(context.Context, *Invocation) ([]*Object, error) {
			return []*Object{{TypeName: "Thing", Props: []Prop{{Name: "Name", Value: "thing"}}}}, nil
		},
	})
	f.reg.Register(Spec{
		Name:           "Set-CASMailbox",
		SupportsWhatIf: true,
		Params:         []ParamSpec{identity, {Name: "SmtpClientAuthenticationDisabled", Type: NullableBool, Position: Named}},
		Run:            record,
	})
	f.reg.Register(Spec{
		Name:           "Set-Mailbox",
		SupportsWhatIf: true,
		Params: []ParamSpec{
			identity,
			{Name: "DisplayName", Type: String, Position: Named},
			{Name: "DeliverToMailboxAndForward", Type: Bool, Position: Named},
			{Name: "SmtpClientAuthenticationDisabled", Type: NullableBool, Position: Named},
			{Name: "RecipientLimits", Type: Int, Position: Named},
			{Name: "MessageLimit", Type: IntOrUnlimited, Position: Named},
			{Name: "MaxSendSize", Type: ByteSize, Position: Named},
			{Name: "EmailAddresses", Type: StringList, MultiValued: true, Position: Named},
			{Name: "Languages", Type: StringList, Position: Named},
			{Name: "Password", Type: SecureString, Position: Named},
			{Name: "Type", Type: Enum, ValidValues: []string{"Regular", "Shared"}, Position: Named},
			{Name: "Force", Type: Switch, Position: Named},
			{Name: "CustomAttribute1", Type: Any, Position: Named},
		},
		Run: record,
	})
	f.reg.Register(Spec{
		Name: "New-AcceptedDomain",
		Params: []ParamSpec{
			{Name: "Name", Type: String, Required: true, Position: 0},
			{Name: "DomainName", Type: String, Required: true, Position: 1},
			{Name: "DomainType", Type: Enum, ValidValues: []string{"Authoritative", "InternalRelay"}, Position: Named},
		},
		Run: record,
	})
	return f
}

// run parses and runs src, returning what it printed.
func (f *fixture) run(t *testing.T, src string) (string, error) {
	t.Helper()
	s, err := Parse(src)
	if err != nil {
		t.Fatalf("Parse(%q): %v", src, err)
	}
	var out bytes.Buffer
	err = (&Runner{Registry: f.reg, Out: &out}).Run(context.Background(), s)
	return out.String(), err
}

// runArgs runs a command line with RunArgs, returning what it printed.
func (f *fixture) runArgs(args ...string) (string, error) {
	var out bytes.Buffer
	err := (&Runner{Registry: f.reg, Out: &out}).RunArgs(context.Background(), args)
	return out.String(), err
}

// errText is err's message, or "" for nil.
func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
