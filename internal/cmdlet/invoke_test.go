package cmdlet

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"
	"time"
)

func decode(t testing.TB, s string) map[string]any {
	dec := json.NewDecoder(strings.NewReader(s))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestInvoke(t *testing.T) {
	for _, tc := range []struct {
		cmdlet, params string
		want           string // the bound arguments, or the error
		paramErr       bool
	}{
		{"Set-Mailbox", `{"Identity": "sean", "RecipientLimits": 10, "MaxSendSize": "35MB", "Force": true}`,
			"Force=true Identity=sean MaxSendSize=36700160 RecipientLimits=10", false},
		{"Set-Mailbox", `{"identity": "sean", "EmailAddresses": {"Add": ["a@x.com"], "Remove": "b@x.com"}}`,
			"EmailAddresses=map[Add:[a@x.com] Remove:[b@x.com]] Identity=sean", false},
		{"Set-Mailbox", `{"Identity": "sean", "Languages": ["en", "fr"], "SmtpClientAuthenticationDisabled": null, "MessageLimit": "Unlimited"}`,
			"Identity=sean Languages=[en fr] MessageLimit=Unlimited SmtpClientAuthenticationDisabled=<nil>", false},
		{"Set-CASMailbox", `{"Identity": "sean", "SmtpClientAuthenticationDisabled": false, "WhatIf": true}`,
			"Identity=sean SmtpClientAuthenticationDisabled=false WhatIf", false},
		{"Set-CASMailbox", `{"Identity": "sean", "ErrorAction": "Continue"}`, "Identity=sean", false},
		{"Set-Mailbox", `{"Identity": "sean", "RecipientLimits": 1e12}`, "", true},
		{"Set-Mailbox", `{"Identity": "sean", "RecipientLimits": 99999999999999999999999}`, "", true},
		{"Set-Mailbox", `{"Identity": "sean", "Type": "Room"}`, "", true},
		{"Set-Mailbox", `{"Identity": "sean", "Nope": 1}`, "", true},
		{"Set-Mailbox", `{"Identity": "sean", "Force": {"a": 1}}`, "", true},
		{"New-AcceptedDomain", `{"Name": "contoso.com"}`, "", true}, // DomainName is mandatory
	} {
		f := newFixture()
		var out bytes.Buffer
		r := &Runner{Registry: f.reg, Out: &out}
		_, err := r.Invoke(context.Background(), tc.cmdlet, decode(t, tc.params))
		var perr *ParameterError
		if tc.paramErr {
			if !errors.As(err, &perr) {
				t.Errorf("%s %s: err = %v, want a ParameterError", tc.cmdlet, tc.params, err)
			}
			continue
		}
		if err != nil || len(f.calls) != 1 {
			t.Errorf("%s %s: %v, %d calls", tc.cmdlet, tc.params, err, len(f.calls))
			continue
		}
		if got := describeArgs(f.calls[0]); got != tc.want {
			t.Errorf("%s %s: bound %s, want %s", tc.cmdlet, tc.params, got, tc.want)
		}
	}
	r := &Runner{Registry: newFixture().reg, Out: io.Discard}
	for _, name := range []string{"Get-Nothing", "Format-List", "where"} {
		if _, err := r.Invoke(context.Background(), name, nil); !errors.Is(err, ErrUnknownCmdlet) {
			t.Errorf("Invoke(%s) = %v, want ErrUnknownCmdlet", name, err)
		}
	}
}

func TestObjectJSON(t *testing.T) {
	yes := true
	o := &Object{TypeName: "Mailbox", Props: []Prop{
		{Name: "Name", Value: "sean"},
		{Name: "RecipientLimits", Value: int64(500)},
		{Name: "MessageLimit", Value: Unlimited},
		{Name: "Disabled", Value: &yes},
		{Name: "Inherited", Value: (*bool)(nil)},
		{Name: "WhenCreated", Value: time.Date(2026, 12, 2, 9, 30, 0, 0, time.FixedZone("CET", 3600))},
		{Name: "Never", Value: time.Time{}},
		{Name: "EmailAddresses", Value: []Value{"SMTP:sean@contoso.com", "smtp:s@contoso.com"}},
		{Name: "Password", Value: secureString{"secret"}},
		{Name: "Ratio", Value: 1.5},
	}}
	data, err := json.Marshal(o)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"Name":"sean","RecipientLimits":500,"MessageLimit":"Unlimited","Disabled":true,"Inherited":null,` +
		`"WhenCreated":"2026-12-02T08:30:00Z","Never":null,"EmailAddresses":["SMTP:sean@contoso.com","smtp:s@contoso.com"],` +
		`"Password":"System.Security.SecureString","Ratio":1.5}`
	if string(data) != want {
		t.Errorf("got  %s\nwant %s", data, want)
	}
}

// FuzzInvoke checks that no JSON parameters make Invoke panic.
func FuzzInvoke(f *testing.F) {
	f.Add("Set-Mailbox", `{"Identity": "sean", "EmailAddresses": {"Add": ["a"], "Remove": [1, null, true]}, "MaxSendSize": "1.5GB"}`)
	f.Add("Set-CASMailbox", `{"Identity": ["a", "b"], "SmtpClientAuthenticationDisabled": "true", "WhatIf": 1}`)
	f.Add("New-AcceptedDomain", `{"Name": {"x": {"y": []}}, "DomainName": -0.0e-5}`)
	f.Fuzz(func(t *testing.T, name, params string) {
		dec := json.NewDecoder(strings.NewReader(params))
		dec.UseNumber()
		var m map[string]any
		if dec.Decode(&m) != nil {
			return
		}
		r := &Runner{Registry: newFixture().reg, Out: io.Discard}
		if objs, err := r.Invoke(context.Background(), name, m); err == nil {
			if _, err := json.Marshal(objs); err != nil {
				t.Fatalf("output does not encode: %v", err)
			}
		}
	})
}

// describeArgs writes an invocation's arguments as Name=value, sorted.
func describeArgs(inv *Invocation) string {
	var parts []string
	for n, v := range inv.Args {
		parts = append(parts, n+"="+fmt.Sprint(JSONValue(v)))
	}
	if inv.WhatIf {
		parts = append(parts, "WhatIf")
	}
	slices.Sort(parts)
	return strings.Join(parts, " ")
}

// FuzzAppendJSONString checks the hand-written string encoder against
// encoding/json: valid JSON that decodes to what encoding/json's own
// encoding decodes to.
func FuzzAppendJSONString(f *testing.F) {
	for _, s := range []string{"", "sean@contoso.com", "a\"b\\c\n\r\t\x00\x1f", "\u2028\u2029", "\xff\xfe", "日本語 <&>", "\xe2\x80"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var got, want string
		if err := json.Unmarshal(appendJSONString(nil, s), &got); err != nil {
			t.Fatalf("%q: not JSON: %v", s, err)
		}
		ref, _ := json.Marshal(s)
		json.Unmarshal(ref, &want)
		if got != want {
			t.Fatalf("%q: decodes to %q, encoding/json's to %q", s, got, want)
		}
	})
}
