package cmdlet

import (
	"reflect"
	"testing"
)

func TestRunArgs(t *testing.T) {
	add := NewHashtable()
	add.Set("Add", []string{"c@x.com"})
	tests := []struct {
		name string
		args []string
		want map[string]Value
	}{
		{"$null", []string{"Set-CASMailbox", "-Identity", "sean@contoso.com", "-SmtpClientAuthenticationDisabled", "$null"},
			map[string]Value{"Identity": "sean@contoso.com", "SmtpClientAuthenticationDisabled": nil}},
		{"$true with a colon", []string{"Set-CASMailbox", "sean", "-SmtpClientAuthenticationDisabled:$true"},
			map[string]Value{"Identity": "sean", "SmtpClientAuthenticationDisabled": true}},
		{"number", []string{"Set-Mailbox", "sean", "-RecipientLimits", "100"},
			map[string]Value{"Identity": "sean", "RecipientLimits": int64(100)}},
		{"comma list", []string{"Set-Mailbox", "sean", "-EmailAddresses", "a@x.com,b@x.com"},
			map[string]Value{"Identity": "sean", "EmailAddresses": []string{"a@x.com", "b@x.com"}}},
		{"hashtable", []string{"Set-Mailbox", "sean", "-EmailAddresses", "@{Add='c@x.com'}"},
			map[string]Value{"Identity": "sean", "EmailAddresses": add}},
		{"spaces kept", []string{"Set-Mailbox", "sean", "-DisplayName", "Sean Smith"},
			map[string]Value{"Identity": "sean", "DisplayName": "Sean Smith"}},
		{"apostrophe kept", []string{"Set-Mailbox", "sean", "-DisplayName", "O'Brien"},
			map[string]Value{"Identity": "sean", "DisplayName": "O'Brien"}},
		{"padding kept", []string{"Set-Mailbox", "sean", "-DisplayName", " padded "},
			map[string]Value{"Identity": "sean", "DisplayName": " padded "}},
		{"# kept", []string{"Set-Mailbox", "sean", "-DisplayName", "#sales"},
			map[string]Value{"Identity": "sean", "DisplayName": "#sales"}},
		{"empty", []string{"Set-Mailbox", "sean", "-DisplayName", ""},
			map[string]Value{"Identity": "sean", "DisplayName": ""}},
		{"zeros kept", []string{"Set-Mailbox", "007"},
			map[string]Value{"Identity": "007"}},
		{"quoted", []string{"Set-Mailbox", "sean", "-DisplayName", `"Sean"`},
			map[string]Value{"Identity": "sean", "DisplayName": "Sean"}},
		{"size", []string{"Set-Mailbox", "sean", "-MaxSendSize", "35MB"},
			map[string]Value{"Identity": "sean", "MaxSendSize": int64(36700160)}},
		{"size with a space", []string{"Set-Mailbox", "sean", "-MaxSendSize", "35 MB"},
			map[string]Value{"Identity": "sean", "MaxSendSize": int64(36700160)}},
		{"switch", []string{"Set-Mailbox", "sean", "-Force"},
			map[string]Value{"Identity": "sean", "Force": true}},
		{"switch:$false", []string{"Set-Mailbox", "sean", "-Force:$false"},
			map[string]Value{"Identity": "sean", "Force": false}},
		{"sub-pipeline", []string{"Set-Mailbox", "sean", "-Password", "(ConvertTo-SecureString -String 'P@ss' -AsPlainText -Force)"},
			map[string]Value{"Identity": "sean", "Password": secureString{"P@ss"}}},
		{"negative number", []string{"Set-Mailbox", "sean", "-CustomAttribute1", "-5"},
			map[string]Value{"Identity": "sean", "CustomAttribute1": int64(-5)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture()
			if _, err := f.runArgs(tt.args...); err != nil {
				t.Fatal(err)
			}
			if len(f.calls) != 1 {
				t.Fatalf("%d calls, want 1", len(f.calls))
			}
			if got := f.calls[0].Args; !reflect.DeepEqual(got, tt.want) {
				t.Errorf("%q\n got %#v\nwant %#v", tt.args, got, tt.want)
			}
		})
	}
}

func TestRunArgsPipelineAndErrors(t *testing.T) {
	f := newFixture()
	if _, err := f.runArgs("Get-Mailbox", "|", "Set-CASMailbox", "-SmtpClientAuthenticationDisabled", "$true"); err != nil {
		t.Fatal(err)
	}
	if got := f.identities(); !reflect.DeepEqual(got, []string{"sean", "kim"}) {
		t.Errorf("piped identities %q", got)
	}

	out, err := f.runArgs("Get-TransportConfig", "|", "fl", "SmtpClientAuthenticationDisabled")
	if err != nil || out != "\nSmtpClientAuthenticationDisabled : True\n\n" {
		t.Errorf("got %q, %v", out, err)
	}

	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"|"}, "An empty pipe element is not allowed."},
		{[]string{"Get-Mailbox", "|"}, "An empty pipe element is not allowed."},
		{[]string{"Set-Mailbox", "sean", "-Foo", "1"}, "Set-Mailbox : A parameter cannot be found that matches parameter name 'Foo'."},
		{[]string{"Set-Mailbox", "sean", "-RecipientLimits", "lots"}, `Set-Mailbox : Cannot bind parameter 'RecipientLimits'. Cannot convert value "lots" to type "System.Int32".`},
	} {
		if _, err := f.runArgs(tt.args...); errText(err) != tt.want {
			t.Errorf("%q: got %v, want %s", tt.args, err, tt.want)
		}
	}

	if _, err := f.runArgs(); err != nil {
		t.Errorf("no arguments: %v", err)
	}
}
