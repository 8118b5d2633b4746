package cmdlet

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestFormatOutput(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want string
	}{
		{"one property", "Get-TransportConfig | Format-List SmtpClientAuthenticationDisabled",
			"\nSmtpClientAuthenticationDisabled : True\n\n"},
		{"names padded, $null blank, lines trimmed", "Get-Mailbox sean | fl Name,SmtpClientAuthenticationDisabled,PrimarySmtpAddress",
			"\n" +
				"Name                             : sean\n" +
				"SmtpClientAuthenticationDisabled :\n" +
				"PrimarySmtpAddress               : sean@contoso.com\n" +
				"\n"},
		{"case-insensitive names print as the object spells them", "Get-Mailbox kim | Format-List primarysmtpaddress",
			"\nPrimarySmtpAddress : kim@contoso.com\n\n"},
		{"unknown properties are left out of a list", "Get-Mailbox kim | Format-List Name,Nope",
			"\nName : kim\n\n"},
		{"-Property by name", "Get-Mailbox kim | Format-List -Property Name",
			"\nName : kim\n\n"},
		{"all properties", "Get-Mailbox | Format-List *",
			"\n" +
				"Name                             : sean\n" +
				"Identity                         : sean\n" +
				"PrimarySmtpAddress               : sean@contoso.com\n" +
				"EmailAddresses                   : {SMTP:sean@contoso.com, smtp:sean.smith@contoso.com}\n" +
				"RecipientLimits                  : 500\n" +
				"SmtpClientAuthenticationDisabled :\n" +
				"WhenCreated                      : 1/2/2026 3:04:05 PM\n" +
				"\n" +
				"Name                             : kim\n" +
				"Identity                         : kim\n" +
				"PrimarySmtpAddress               : kim@contoso.com\n" +
				"EmailAddresses                   : {}\n" +
				"RecipientLimits                  : 10\n" +
				"SmtpClientAuthenticationDisabled :\n" +
				"WhenCreated                      : 1/2/2026 3:04:05 PM\n" +
				"\n"},
		{"wildcards, in the order asked, without repeats", "Get-Mailbox kim | fl *Address*,Name,N*",
			"\n" +
				"PrimarySmtpAddress : kim@contoso.com\n" +
				"EmailAddresses     : {}\n" +
				"Name               : kim\n" +
				"\n"},
		{"Format-List without properties shows all of a table type", "Get-Mailbox kim | Format-List",
			"\n" +
				"Name                             : kim\n" +
				"Identity                         : kim\n" +
				"PrimarySmtpAddress               : kim@contoso.com\n" +
				"EmailAddresses                   : {}\n" +
				"RecipientLimits                  : 10\n" +
				"SmtpClientAuthenticationDisabled :\n" +
				"WhenCreated                      : 1/2/2026 3:04:05 PM\n" +
				"\n"},
		{"table", "Get-Mailbox | Format-Table Name,PrimarySmtpAddress",
			"\n" +
				"Name PrimarySmtpAddress\n" +
				"---- ------------------\n" +
				"sean sean@contoso.com\n" +
				"kim  kim@contoso.com\n" +
				"\n"},
		{"numbers right-aligned, missing columns empty", "Get-Mailbox | ft Name,RecipientLimits,Nope -AutoSize",
			"\n" +
				"Name RecipientLimits Nope\n" +
				"---- --------------- ----\n" +
				"sean             500\n" +
				"kim               10\n" +
				"\n"},
		{"table of wildcards, values wider than headers", "Get-Mailbox sean | ft *Addresses,Name",
			"\n" +
				"EmailAddresses                                       Name\n" +
				"--------------                                       ----\n" +
				"{SMTP:sean@contoso.com, smtp:sean.smith@contoso.com} sean\n" +
				"\n"},
		{"Format-Table without properties uses the default columns", "Get-Mailbox | ft",
			"\n" +
				"Name PrimarySmtpAddress RecipientLimits\n" +
				"---- ------------------ ---------------\n" +
				"sean sean@contoso.com               500\n" +
				"kim  kim@contoso.com                 10\n" +
				"\n"},
		{"default table view", "Get-Mailbox",
			"\n" +
				"Name PrimarySmtpAddress RecipientLimits\n" +
				"---- ------------------ ---------------\n" +
				"sean sean@contoso.com               500\n" +
				"kim  kim@contoso.com                 10\n" +
				"\n"},
		{"default list view", "Get-TransportConfig",
			"\n" +
				"Identity                         : Transport Settings\n" +
				"SmtpClientAuthenticationDisabled : True\n" +
				"MaxRecipientEnvelopeLimit        : Unlimited\n" +
				"\n"},
		{"auto view: a table for few properties", "Get-Thing",
			"\nName\n----\nthing\n\n"},
		{"scalars, one per line", `"a","b"; 1.5; 35MB; $null; $true`,
			"a\nb\n1.5\n36700160\nTrue\n"},
		{"scalars through Format-List", `"a",2 | Format-List`, "a\n2\n"},
		{"hashtable", `@{Add="a","b"; Remove=1}`,
			"\n" +
				"Name   Value\n" +
				"----   -----\n" +
				"Add    {a, b}\n" +
				"Remove 1\n" +
				"\n"},
		{"hashtable as a list", `@{Add="a"} | fl`, "\nName  : Add\nValue : a\n\n"},
		{"secure string", "ConvertTo-SecureString -String 'P@ss' -AsPlainText -Force",
			"System.Security.SecureString\n"},
		{"expandable strings", `"x $(1,2) [$null] $true $unset." ; "$(Get-Mailbox kim)"`,
			"x 1 2 [] True .\nkim\n"},
		{"arrays", "@(); @(1); ,(1,2)", "1\n1\n2\n"},
		{"formatted text in a string", `"[$(Get-Mailbox kim | fl Name)]"`, "[\nName : kim\n\n]\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := newFixture().run(t, tt.src)
			if err != nil {
				t.Fatalf("%s: %v", tt.src, err)
			}
			if out != tt.want {
				t.Errorf("%s\n got %q\nwant %q\n got:\n%s", tt.src, out, tt.want, out)
			}
		})
	}
}

func TestFormatListLayout(t *testing.T) {
	objs := []*Object{
		{TypeName: "X", Props: []Prop{{Name: "A", Value: "line1\nline2"}, {Name: "Long", Value: 1}}},
		{TypeName: "Y", Props: []Prop{{Name: "Other", Value: []string{"a", "b"}}}},
	}
	var b strings.Builder
	FormatList(&b, objs, nil)
	want := "\n" +
		"A    : line1\n" +
		"       line2\n" +
		"Long : 1\n" +
		"\n" +
		"Other : {a, b}\n" +
		"\n"
	if b.String() != want {
		t.Errorf("got %q\nwant %q", b.String(), want)
	}

	b.Reset()
	FormatList(&b, nil, nil)
	FormatTable(&b, nil, nil)
	if b.Len() != 0 {
		t.Errorf("no objects printed %q", b.String())
	}
}

func TestDefaultViewChoice(t *testing.T) {
	wide := &Object{TypeName: "Wide", Props: []Prop{{"A", 1}, {"B", 2}, {"C", 3}, {"D", 4}, {"E", 5}}}
	var b strings.Builder
	writeOutput(&b, []Value{wide})
	if want := "\nA : 1\nB : 2\nC : 3\nD : 4\nE : 5\n\n"; b.String() != want {
		t.Errorf("five properties: got %q, want a list %q", b.String(), want)
	}

	b.Reset()
	narrow := &Object{TypeName: "Narrow", Props: wide.Props, DefaultDisplay: []string{"A", "E"}}
	writeOutput(&b, []Value{narrow, narrow})
	if want := "\nA E\n- -\n1 5\n1 5\n\n"; b.String() != want {
		t.Errorf("two shown properties: got %q, want a table %q", b.String(), want)
	}

	b.Reset()
	list := &Object{TypeName: "L", DefaultView: ListView, Props: wide.Props, DefaultDisplay: []string{"B"}}
	writeOutput(&b, []Value{list})
	FormatList(&b, []*Object{list}, nil)
	if want := "\nB : 2\n\n\nB : 2\n\n"; b.String() != want {
		t.Errorf("list view with DefaultDisplay: got %q, want %q", b.String(), want)
	}
}

func TestFormatValue(t *testing.T) {
	yes := true
	tests := []struct {
		in   Value
		want string
	}{
		{nil, ""},
		{true, "True"},
		{false, "False"},
		{&yes, "True"},
		{(*bool)(nil), ""},
		{42, "42"},
		{int64(-7), "-7"},
		{1.5, "1.5"},
		{1e21, "1E+21"},
		{"text", "text"},
		{[]Value{}, "{}"},
		{[]Value{"a", int64(1), nil}, "{a, 1, }"},
		{[]string{"x", "y"}, "{x, y}"},
		{time.Date(2026, 12, 31, 0, 5, 0, 0, time.UTC), "12/31/2026 12:05:00 AM"},
		{Unlimited, "Unlimited"},
		{secureString{"P@ss"}, "System.Security.SecureString"},
		{NewHashtable(), "System.Collections.Hashtable"},
		{mailbox("sean", 1), "sean"},
		{&Object{TypeName: "Thing"}, "Thing"},
	}
	for _, tt := range tests {
		if got := FormatValue(tt.in); got != tt.want {
			t.Errorf("FormatValue(%#v) = %q, want %q", tt.in, got, tt.want)
		}
	}
	for _, verb := range []string{"%v", "%+v", "%#v", "%s"} {
		if got := fmt.Sprintf(verb, secureString{"P@ss"}); strings.Contains(got, "P@ss") {
			t.Errorf("%s of a SecureString shows the password: %s", verb, got)
		}
	}
}

func TestMatchWildcard(t *testing.T) {
	tests := []struct {
		pattern, s string
		want       bool
	}{
		{"*", "", true},
		{"*", "anything", true},
		{"Smtp*", "SmtpClientAuthenticationDisabled", true},
		{"smtp*", "SMTPClient", true},
		{"*Address*", "PrimarySmtpAddress", true},
		{"*Address*", "EmailAddresses", true},
		{"*Address", "EmailAddresses", false},
		{"?im", "kim", true},
		{"?im", "im", false},
		{"[ks]im", "Sim", true},
		{"[a-c]*", "bob", true},
		{"[a-c]*", "dan", false},
		{"a`*", "a*", true},
		{"a`*", "ab", false},
		{"a[b", "a[b", true},
		{"*.contoso.com", "mail.contoso.com", true},
		{"*a*a*a*b", strings.Repeat("a", 50), false},
	}
	for _, tt := range tests {
		if got := MatchWildcard(tt.pattern, tt.s); got != tt.want {
			t.Errorf("MatchWildcard(%q, %q) = %v, want %v", tt.pattern, tt.s, got, tt.want)
		}
	}
	if ContainsWildcard("sean@contoso.com") || !ContainsWildcard("*sean*") {
		t.Error("ContainsWildcard")
	}
}
