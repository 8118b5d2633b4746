package cmdlet

import (
	"context"
	"reflect"
	"testing"
)

func TestBinding(t *testing.T) {
	edit := func(add, remove []string) *Hashtable {
		h := NewHashtable()
		if add != nil {
			h.Set("Add", add)
		}
		if remove != nil {
			h.Set("Remove", remove)
		}
		return h
	}
	tests := []struct {
		name string
		src  string
		want map[string]Value
	}{
		{"positional identity", "Set-Mailbox sean", map[string]Value{"Identity": "sean"}},
		{"named, any case", "set-mailbox -identity sean -DISPLAYNAME 'Sean Smith'", map[string]Value{"Identity": "sean", "DisplayName": "Sean Smith"}},
		{"abbreviated", "Set-Mailbox -Id sean -Disp x -Deliver $true", map[string]Value{"Identity": "sean", "DisplayName": "x", "DeliverToMailboxAndForward": true}},
		{"colon form", "Set-Mailbox -Identity:sean -DisplayName: x", map[string]Value{"Identity": "sean", "DisplayName": "x"}},
		{"positional after named", "Set-Mailbox -DisplayName x sean", map[string]Value{"Identity": "sean", "DisplayName": "x"}},
		{"identity from an object", "Set-Mailbox (Get-Mailbox kim)", map[string]Value{"Identity": "kim"}},
		{"typed numbers keep their text for strings", "Set-Mailbox 007 -DisplayName 1e3", map[string]Value{"Identity": "007", "DisplayName": "1e3"}},
		{"array to string joins", "Set-Mailbox sean -DisplayName a,b", map[string]Value{"Identity": "sean", "DisplayName": "a b"}},
		{"expanded string", `Set-Mailbox sean -DisplayName "Sean $null(x) $true"`, map[string]Value{"Identity": "sean", "DisplayName": "Sean (x) True"}},

		{"switch", "Set-Mailbox sean -Force", map[string]Value{"Identity": "sean", "Force": true}},
		{"switch:$false", "Set-Mailbox sean -Force:$false", map[string]Value{"Identity": "sean", "Force": false}},
		{"switch:$true", "Set-Mailbox sean -Force:$true", map[string]Value{"Identity": "sean", "Force": true}},
		{"bool $true", "Set-Mailbox sean -DeliverToMailboxAndForward $true", map[string]Value{"Identity": "sean", "DeliverToMailboxAndForward": true}},
		{"bool word", "Set-Mailbox sean -DeliverToMailboxAndForward False", map[string]Value{"Identity": "sean", "DeliverToMailboxAndForward": false}},
		{"bool number", "Set-Mailbox sean -DeliverToMailboxAndForward 1", map[string]Value{"Identity": "sean", "DeliverToMailboxAndForward": true}},
		{"nullable $null", "Set-Mailbox sean -SmtpClientAuthenticationDisabled $null", map[string]Value{"Identity": "sean", "SmtpClientAuthenticationDisabled": nil}},
		{"nullable $false", "Set-Mailbox sean -SmtpClientAuthenticationDisabled $false", map[string]Value{"Identity": "sean", "SmtpClientAuthenticationDisabled": false}},
		{"string $null", "Set-Mailbox sean -DisplayName $null", map[string]Value{"Identity": "sean", "DisplayName": nil}},

		{"int", "Set-Mailbox sean -RecipientLimits 100", map[string]Value{"Identity": "sean", "RecipientLimits": int64(100)}},
		{"int from text", "Set-Mailbox sean -RecipientLimits '250'", map[string]Value{"Identity": "sean", "RecipientLimits": int64(250)}},
		{"int from an array of one", "Set-Mailbox sean -RecipientLimits @(5)", map[string]Value{"Identity": "sean", "RecipientLimits": int64(5)}},
		{"int rounds to even", "Set-Mailbox sean -RecipientLimits 2.5", map[string]Value{"Identity": "sean", "RecipientLimits": int64(2)}},
		{"int or unlimited", "Set-Mailbox sean -MessageLimit 30", map[string]Value{"Identity": "sean", "MessageLimit": int64(30)}},
		{"unlimited", "Set-Mailbox sean -MessageLimit unlimited", map[string]Value{"Identity": "sean", "MessageLimit": Unlimited}},

		{"size 35MB", "Set-Mailbox sean -MaxSendSize 35MB", map[string]Value{"Identity": "sean", "MaxSendSize": int64(36700160)}},
		{"size with a space", "Set-Mailbox sean -MaxSendSize '35 MB'", map[string]Value{"Identity": "sean", "MaxSendSize": int64(36700160)}},
		{"size in bytes", "Set-Mailbox sean -MaxSendSize 36700160", map[string]Value{"Identity": "sean", "MaxSendSize": int64(36700160)}},
		{"size 1GB", "Set-Mailbox sean -MaxSendSize 1GB", map[string]Value{"Identity": "sean", "MaxSendSize": int64(1073741824)}},
		{"size 150MB", "Set-Mailbox sean -MaxSendSize 150mb", map[string]Value{"Identity": "sean", "MaxSendSize": int64(157286400)}},
		{"size 1.5GB", "Set-Mailbox sean -MaxSendSize 1.5GB", map[string]Value{"Identity": "sean", "MaxSendSize": int64(1610612736)}},
		{"size as Exchange shows it", "Set-Mailbox sean -MaxSendSize '35 MB (36,700,160 bytes)'", map[string]Value{"Identity": "sean", "MaxSendSize": int64(36700160)}},
		{"size as text", "Set-Mailbox sean -MaxSendSize '10KB'", map[string]Value{"Identity": "sean", "MaxSendSize": int64(10240)}},
		{"size unlimited", "Set-Mailbox sean -MaxSendSize Unlimited", map[string]Value{"Identity": "sean", "MaxSendSize": Unlimited}},

		{"enum normalised", "Set-Mailbox sean -Type shared", map[string]Value{"Identity": "sean", "Type": "Shared"}},
		{"list", `Set-Mailbox sean -Languages en-US,"de-DE"`, map[string]Value{"Identity": "sean", "Languages": []string{"en-US", "de-DE"}}},
		{"list of one", "Set-Mailbox sean -Languages en-US", map[string]Value{"Identity": "sean", "Languages": []string{"en-US"}}},
		{"list @()", "Set-Mailbox sean -Languages @('a', 'b')", map[string]Value{"Identity": "sean", "Languages": []string{"a", "b"}}},
		{"empty list", "Set-Mailbox sean -Languages @()", map[string]Value{"Identity": "sean", "Languages": []string{}}},
		{"list $null", "Set-Mailbox sean -Languages $null", map[string]Value{"Identity": "sean", "Languages": nil}},
		{"add and remove", `Set-Mailbox sean -EmailAddresses @{Add="a@x.com","b@x.com"; Remove="c@x.com"}`,
			map[string]Value{"Identity": "sean", "EmailAddresses": edit([]string{"a@x.com", "b@x.com"}, []string{"c@x.com"})}},
		{"add only, any case", `Set-Mailbox sean -EmailAddresses @{add='a@x.com'}`,
			map[string]Value{"Identity": "sean", "EmailAddresses": edit([]string{"a@x.com"}, nil)}},
		{"secure string from text", "Set-Mailbox sean -Password 'P@ss'", map[string]Value{"Identity": "sean", "Password": secureString{"P@ss"}}},
		{"secure string from ConvertTo-SecureString", "Set-Mailbox sean -Password (ConvertTo-SecureString -String 'P@ss' -AsPlainText -Force)",
			map[string]Value{"Identity": "sean", "Password": secureString{"P@ss"}}},
		{"secure string from the pipeline", "Set-Mailbox sean -Password ('P@ss' | ConvertTo-SecureString -AsPlainText)",
			map[string]Value{"Identity": "sean", "Password": secureString{"P@ss"}}},
		{"any", "Set-Mailbox sean -CustomAttribute1 5,x", map[string]Value{"Identity": "sean", "CustomAttribute1": []Value{int64(5), "x"}}},
		{"-Confirm:$false is accepted", "Set-Mailbox sean -Confirm:$false", map[string]Value{"Identity": "sean"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture()
			if _, err := f.run(t, tt.src); err != nil {
				t.Fatalf("%s: %v", tt.src, err)
			}
			if len(f.calls) != 1 {
				t.Fatalf("%s: %d calls, want 1", tt.src, len(f.calls))
			}
			if got := f.calls[0].Args; !reflect.DeepEqual(got, tt.want) {
				t.Errorf("%s\n got %#v\nwant %#v", tt.src, got, tt.want)
			}
		})
	}
}

func TestBindingErrors(t *testing.T) {
	tests := []struct {
		src  string
		want string
	}{
		{"Set-Mailbox sean -Foo 1",
			"Set-Mailbox : A parameter cannot be found that matches parameter name 'Foo'."},
		{"Set-Mailbox sean -D x",
			"Set-Mailbox : Parameter cannot be processed because the parameter name 'D' is ambiguous. Possible matches include: -DisplayName -DeliverToMailboxAndForward."},
		{"Set-Mailbox -DisplayName x",
			"Set-Mailbox : Cannot process command because of one or more missing mandatory parameters: Identity."},
		{"New-AcceptedDomain",
			"New-AcceptedDomain : Cannot process command because of one or more missing mandatory parameters: Name DomainName."},
		{"Set-Mailbox sean -DisplayName",
			"Set-Mailbox : Missing an argument for parameter 'DisplayName'. Specify a parameter of type 'System.String' and try again."},
		{"Set-Mailbox sean -DisplayName -Force",
			"Set-Mailbox : Missing an argument for parameter 'DisplayName'. Specify a parameter of type 'System.String' and try again."},
		{"Set-Mailbox sean -DisplayName:",
			"Set-Mailbox : Missing an argument for parameter 'DisplayName'. Specify a parameter of type 'System.String' and try again."},
		{"Set-Mailbox sean -DisplayName a -DisplayName b",
			`Set-Mailbox : Cannot bind parameter because parameter 'DisplayName' is specified more than once. To provide multiple values to parameters that can accept multiple values, use the array syntax. For example, "-parameter value1,value2,value3".`},
		{"Set-Mailbox sean kim",
			"Set-Mailbox : A positional parameter cannot be found that accepts argument 'kim'."},
		{"Set-Mailbox sean -Force $false",
			"Set-Mailbox : A positional parameter cannot be found that accepts argument 'False'."},
		{"Set-Mailbox $null",
			"Set-Mailbox : Cannot bind argument to parameter 'Identity' because it is null."},
		{"Set-Mailbox ''",
			"Set-Mailbox : Cannot bind argument to parameter 'Identity' because it is an empty string."},
		{"Set-Mailbox a,b",
			`Set-Mailbox : Cannot bind parameter 'Identity'. Cannot convert the "System.Object[]" value of type "System.Object[]" to type "System.String".`},
		{"Set-Mailbox (Get-Thing)",
			`Set-Mailbox : Cannot bind parameter 'Identity'. Cannot convert the "Thing" value of type "Thing" to type "System.String".`},
		{"Set-Mailbox sean -RecipientLimits abc",
			`Set-Mailbox : Cannot bind parameter 'RecipientLimits'. Cannot convert value "abc" to type "System.Int32".`},
		{"Set-Mailbox sean -RecipientLimits 3000000000",
			`Set-Mailbox : Cannot bind parameter 'RecipientLimits'. Cannot convert value "3000000000" to type "System.Int32".`},
		{"Set-Mailbox sean -RecipientLimits 1,2",
			`Set-Mailbox : Cannot bind parameter 'RecipientLimits'. Cannot convert the "System.Object[]" value of type "System.Object[]" to type "System.Int32".`},
		{"Set-Mailbox sean -MessageLimit lots",
			"Set-Mailbox : Cannot bind parameter 'MessageLimit'. Cannot convert value \"lots\" to type \"Microsoft.Exchange.Data.Unlimited`1[System.Int32]\"."},
		{"Set-Mailbox sean -MaxSendSize 35QB",
			"Set-Mailbox : Cannot bind parameter 'MaxSendSize'. Cannot convert value \"35QB\" to type \"Microsoft.Exchange.Data.Unlimited`1[Microsoft.Exchange.Data.ByteQuantifiedSize]\"."},
		{"Set-Mailbox sean -MaxSendSize -1",
			"Set-Mailbox : Cannot bind parameter 'MaxSendSize'. Cannot convert value \"-1\" to type \"Microsoft.Exchange.Data.Unlimited`1[Microsoft.Exchange.Data.ByteQuantifiedSize]\"."},
		{"Set-Mailbox sean -DeliverToMailboxAndForward yes",
			`Set-Mailbox : Cannot process argument transformation on parameter 'DeliverToMailboxAndForward'. Cannot convert value "yes" to type "System.Boolean". Boolean parameters accept only Boolean values and numbers, such as $True, $False, 1 or 0.`},
		{"Set-Mailbox sean -DeliverToMailboxAndForward $null",
			`Set-Mailbox : Cannot process argument transformation on parameter 'DeliverToMailboxAndForward'. Cannot convert value "" to type "System.Boolean". Boolean parameters accept only Boolean values and numbers, such as $True, $False, 1 or 0.`},
		{"New-AcceptedDomain contoso contoso.com -DomainType Foo",
			`New-AcceptedDomain : Cannot validate argument on parameter 'DomainType'. The argument "Foo" does not belong to the set "Authoritative,InternalRelay" specified by the ValidateSet attribute. Supply an argument that is in the set and then try the command again.`},
		{"Set-Mailbox sean -Languages @{Add='x'}",
			`Set-Mailbox : Cannot bind parameter 'Languages'. Cannot convert the "System.Collections.Hashtable" value of type "System.Collections.Hashtable" to type "System.String[]".`},
		{"Set-Mailbox sean -EmailAddresses @{Replace='x'}",
			`Set-Mailbox : Cannot bind parameter 'EmailAddresses'. The hashtable key 'Replace' is not valid: use Add or Remove, as in @{Add="value"; Remove="value"}.`},
		{"Set-Mailbox sean -Password 1,2",
			`Set-Mailbox : Cannot bind parameter 'Password'. Cannot convert the "System.Object[]" value of type "System.Object[]" to type "System.Security.SecureString".`},
		{"Set-Mailbox sean -EmailAddresses @{Add=1; add=2}",
			"Set-Mailbox : Duplicate keys 'add' are not allowed in hash literals."},
		{"Set-Mailbox sean -Password (ConvertTo-SecureString 'x')",
			"ConvertTo-SecureString : Input string was not in a correct format. Give the password with -AsPlainText."},
		{"Set-Mailbox (Get-Mailbox -Bogus)",
			"Get-Mailbox : A parameter cannot be found that matches parameter name 'Bogus'."},
		{"Get-Mailbox -WhatIf",
			"Get-Mailbox : A parameter cannot be found that matches parameter name 'WhatIf'."},
	}
	for _, tt := range tests {
		f := newFixture()
		_, err := f.run(t, tt.src)
		if got := errText(err); got != tt.want {
			t.Errorf("%s\n got %s\nwant %s", tt.src, got, tt.want)
		}
		if len(f.calls) != 0 {
			t.Errorf("%s: the cmdlet ran", tt.src)
		}
	}
}

func TestWhatIf(t *testing.T) {
	f := newFixture()
	out, err := f.run(t, "Set-Mailbox sean -WhatIf -DisplayName x; Set-Mailbox kim -WhatIf:$false")
	if err != nil {
		t.Fatal(err)
	}
	if want := "What if: Setting \"sean\".\n"; out != want {
		t.Errorf("output %q, want %q", out, want)
	}
	if len(f.calls) != 2 || !f.calls[0].WhatIf || f.calls[1].WhatIf {
		t.Fatalf("WhatIf not as given: %+v", f.calls)
	}
	if f.calls[0].Has("WhatIf") {
		t.Error("-WhatIf is in Args; it belongs in Invocation.WhatIf")
	}
}

func TestInvocationHelpers(t *testing.T) {
	inv := &Invocation{Args: map[string]Value{
		"Name": "x", "Flag": true, "Clear": nil, "Limit": int64(100), "Size": Unlimited, "Password": secureString{"P@ss"},
	}}
	if !inv.Has("Clear") || inv.Has("Other") {
		t.Error("Has does not tell $null from absent")
	}
	if inv.String("Name") != "x" || inv.String("Password") != "P@ss" || inv.String("Clear") != "" || inv.String("Other") != "" {
		t.Error("String")
	}
	if !inv.Bool("Flag") || inv.Bool("Other") {
		t.Error("Bool")
	}
	if b := inv.NullableBool("Flag"); b == nil || !*b {
		t.Error("NullableBool of true")
	}
	if inv.NullableBool("Clear") != nil {
		t.Error("NullableBool of $null")
	}
	if n, unlimited := inv.Int("Limit"); n != 100 || unlimited {
		t.Error("Int of 100")
	}
	if n, unlimited := inv.Int("Size"); n != 0 || !unlimited {
		t.Error("Int of Unlimited")
	}
	inv.Printf("no host: %d", 1) // must not panic
}

func TestStrings(t *testing.T) {
	tests := []struct {
		in   Value
		want []string
	}{
		{nil, nil},
		{"a", []string{"a"}},
		{[]string{"a", "b"}, []string{"a", "b"}},
		{[]Value{"a", int64(2), nil, true}, []string{"a", "2", "", "True"}},
	}
	for _, tt := range tests {
		if got := Strings(tt.in); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("Strings(%#v) = %#v, want %#v", tt.in, got, tt.want)
		}
	}
}

func TestRegisterRejectsMalformedSpecs(t *testing.T) {
	run := func(context.Context, *Invocation) ([]*Object, error) { return nil, nil }
	tests := []Spec{
		{Run: run},
		{Name: "Get-X"},
		{Name: "Get-X", Run: run, Params: []ParamSpec{{Name: "A"}, {Name: "a", Position: Named}}},
		{Name: "Get-X", Run: run, Params: []ParamSpec{{Name: "A"}, {Name: "B"}}},
		{Name: "Get-X", Run: run, Params: []ParamSpec{{Name: "T", Type: Enum, Position: Named}}},
		{Name: "Set-X", Run: run, SupportsWhatIf: true, Params: []ParamSpec{{Name: "WhatIf", Type: Switch, Position: Named}}},
		{Name: "Format-List", Run: run},
		{Name: "Get-Y", Aliases: []string{"FT"}, Run: run},
	}
	for _, s := range tests {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("Register(%+v) did not panic", s)
				}
			}()
			r := NewRegistry()
			RegisterBuiltins(r)
			r.Register(s)
		}()
	}
}
