package cmdlet

import (
	"context"
	"slices"
	"testing"
)

func TestComplete(t *testing.T) {
	r := NewRegistry()
	RegisterBuiltins(r)
	noop := func(context.Context, *Invocation) ([]*Object, error) { return nil, nil }
	r.Register(Spec{Name: "Get-CASMailbox", Run: noop, Params: []ParamSpec{{Name: "Identity", Type: Identity}, {Name: "ResultSize", Type: IntOrUnlimited, Position: -1}}})
	r.Register(Spec{Name: "Set-CASMailbox", Run: noop, SupportsWhatIf: true, Params: []ParamSpec{{Name: "Identity", Type: Identity},
		{Name: "SmtpClientAuthenticationDisabled", Type: NullableBool, Position: -1}}})
	r.Register(Spec{Name: "Get-Mailbox", Run: noop})

	for _, tc := range []struct {
		line  string
		start int
		want  []string
	}{
		{"Get-CAS", 0, []string{"Get-CASMailbox"}},
		{"get-m", 0, []string{"Get-Mailbox"}},
		{"Get-", 0, []string{"Get-CASMailbox", "Get-Command", "Get-Content", "Get-Date", "Get-Help", "Get-Mailbox"}},
		{"Set-CASMailbox -Identity a -Smtp", 27, []string{"-SmtpClientAuthenticationDisabled"}},
		{"Set-CASMailbox -W", 15, []string{"-WhatIf"}},
		{"Get-CASMailbox -", 15, []string{"-ErrorAction", "-Identity", "-ResultSize"}},
		{"$u = Get-CASM", 5, []string{"Get-CASMailbox"}},
		{"Get-Content f | foreach {Set-CASMailbox -Id", 40, []string{"-Identity"}},
		{"Get-CASMailbox | Format-List Smtp", 29, nil}, // an argument
		{"Get-CASMailbox -Identity 'a -Res", 0, nil},   // inside a string
		{"Nope-Thing -I", 11, nil},
		{"", 0, nil},
	} {
		start, got := r.Complete(tc.line, len(tc.line))
		if tc.want != nil && start != tc.start || !slices.Equal(got, tc.want) {
			t.Errorf("Complete(%q) = %d %q, want %d %q", tc.line, start, got, tc.start, tc.want)
		}
	}
}
