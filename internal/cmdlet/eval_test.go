package cmdlet

import (
	"context"
	"errors"
	"reflect"
	"testing"
)

// identities returns the Identity each recorded call got.
func (f *fixture) identities() []string {
	var ids []string
	for _, c := range f.calls {
		ids = append(ids, c.String("Identity"))
	}
	return ids
}

func TestPipelineIdentity(t *testing.T) {
	tests := []struct {
		name   string
		src    string
		want   []string // the Identity of each call
		inputs []int    // len(Input) of each call
	}{
		{"by property, once per object", "Get-Mailbox | Set-CASMailbox -SmtpClientAuthenticationDisabled $true",
			[]string{"sean", "kim"}, []int{1, 1}},
		{"by value", "'sean','kim' | Set-CASMailbox -SmtpClientAuthenticationDisabled $false",
			[]string{"sean", "kim"}, []int{0, 0}},
		{"explicit identity gets all the input at once", "Get-Mailbox | Set-CASMailbox sean -SmtpClientAuthenticationDisabled $null",
			[]string{"sean"}, []int{2}},
		{"nothing in, nothing run", "Get-Mailbox nobody | Set-CASMailbox -SmtpClientAuthenticationDisabled $true",
			nil, nil},
		{"through a formatter-free chain", "Get-Mailbox s* | Set-Mailbox -DisplayName x",
			[]string{"sean"}, []int{1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture()
			if _, err := f.run(t, tt.src); err != nil {
				t.Fatal(err)
			}
			if got := f.identities(); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("identities %q, want %q", got, tt.want)
			}
			for i, c := range f.calls {
				if len(c.Input) != tt.inputs[i] {
					t.Errorf("call %d: %d input objects, want %d", i, len(c.Input), tt.inputs[i])
				}
			}
		})
	}

	f := newFixture()
	if _, err := f.run(t, "Get-Mailbox | Set-CASMailbox -SmtpClientAuthenticationDisabled $true"); err != nil {
		t.Fatal(err)
	}
	if b := f.calls[1].NullableBool("SmtpClientAuthenticationDisabled"); b == nil || !*b {
		t.Error("the named arguments did not reach every call")
	}
	if name, _ := f.calls[1].Input[0].Get("Name"); name != "kim" {
		t.Errorf("Input of the second call is %v, want kim's mailbox", name)
	}
}

func TestPipelineErrors(t *testing.T) {
	tests := []struct {
		src  string
		want string
	}{
		{"Get-Thing | Set-CASMailbox -SmtpClientAuthenticationDisabled $true",
			"Set-CASMailbox : The input object cannot be bound because it did not contain the information required to bind all mandatory parameters: Identity"},
		{"@{Identity='sean'} | Set-CASMailbox",
			"Set-CASMailbox : The input object cannot be bound to any parameters for the command either because the command does not take pipeline input or the input and its properties do not match any of the parameters that take pipeline input."},
		{"Get-Mailbox | Format-List | Set-CASMailbox sean",
			"Set-CASMailbox : The input object cannot be bound to any parameters for the command either because the command does not take pipeline input or the input and its properties do not match any of the parameters that take pipeline input."},
		{"$null | Set-CASMailbox",
			"Set-CASMailbox : Cannot bind argument to parameter 'Identity' because it is null."},
		{"Foo-Bar -Identity x",
			"Foo-Bar : The term 'Foo-Bar' is not recognized as the name of a cmdlet, function, script file, or operable program. Check the spelling of the name, or if a path was included, verify that the path is correct and try again."},
		{"@{a=1; A=2}", "Duplicate keys 'A' are not allowed in hash literals."},
		{"Get-Command Nope",
			"Get-Command : The term 'Nope' is not recognized as the name of a cmdlet, function, script file, or operable program. Check the spelling of the name, or if a path was included, verify that the path is correct and try again."},
		{"ConvertTo-SecureString -AsPlainText",
			"ConvertTo-SecureString : Cannot process command because of one or more missing mandatory parameters: String."},
	}
	for _, tt := range tests {
		f := newFixture()
		_, err := f.run(t, tt.src)
		if got := errText(err); got != tt.want {
			t.Errorf("%s\n got %s\nwant %s", tt.src, got, tt.want)
		}
		var e *Error
		if !errors.As(err, &e) {
			t.Errorf("%s: %T is not an *Error", tt.src, err)
		}
	}
}

func TestRunStopsAtFirstError(t *testing.T) {
	f := newFixture()
	out, err := f.run(t, "'before'\nSet-Mailbox sean -Bogus\nSet-Mailbox kim")
	if err == nil || out != "before\n" || len(f.calls) != 0 {
		t.Errorf("got output %q, error %v, %d calls; want to stop at the second statement", out, err, len(f.calls))
	}
	var e *Error
	if !errors.As(err, &e) || e.Command != "Set-Mailbox" {
		t.Errorf("error %#v does not name Set-Mailbox", err)
	}
}

func TestRunHonoursContext(t *testing.T) {
	f := newFixture()
	s, err := Parse("Set-Mailbox sean")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := (&Runner{Registry: f.reg}).Run(ctx, s); !errors.Is(err, context.Canceled) || len(f.calls) != 0 {
		t.Errorf("got %v and %d calls, want context.Canceled and none", err, len(f.calls))
	}
}

func TestGetCommand(t *testing.T) {
	f := newFixture()
	out, err := f.run(t, "Get-Command *CAS*, fl | Format-Table Name")
	if err != nil {
		t.Fatal(err)
	}
	if want := "\nName\n----\nFormat-List\nSet-CASMailbox\n\n"; out != want {
		t.Errorf("got %q, want %q", out, want)
	}
}
