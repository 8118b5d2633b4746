package cmdlet

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestScriptLanguage: variables, script blocks, $_, operators and the
// pipeline cmdlets, as Exchange admin guides use them.
func TestScriptLanguage(t *testing.T) {
	for _, tt := range []struct {
		name, src, want string
	}{
		{"assignment and expansion", `$n = "sean"; "name: $n"`, "name: sean"},
		{"an unset variable is null", `$nothing -eq $null`, "True"},
		{"comparison, no case", `"ABC" -eq "abc"`, "True"},
		{"case-sensitive", `"ABC" -ceq "abc"`, "False"},
		{"numbers", `5 -gt 3 -and 2 -le 2`, "True"},
		{"like", `"sean@contoso.com" -like "*@contoso.com"`, "True"},
		{"notlike", `"sean@contoso.com" -notlike "s*"`, "False"},
		{"match", `"scanner01" -match "^scan\w+\d\d$"`, "True"},
		{"not", `-not $false`, "True"},
		{"bang", `!$true`, "False"},
		{"or short-circuits", `$true -or $x.Nope`, "True"},
		{"array filter", `(1,2,3,4) -gt 2`, "3\n4"},
		{"contains", `"a","b" -contains "B"`, "True"},
		{"in", `"c" -in "a","b"`, "False"},
		{"bool against string", `$true -eq "true"`, "True"},
		{"where", `Get-Mailbox | where {$_.RecipientLimits -gt 100} | ForEach-Object {$_.Name}`, "sean"},
		{"? and %", `Get-Mailbox | ? {$_.Name -like "k*"} | % {$_.PrimarySmtpAddress}`, "kim@contoso.com"},
		{"where on null", `Get-Mailbox | where {$_.SmtpClientAuthenticationDisabled -eq $null} | measure | % {$_.Count}`, "2"},
		{"member of each element", `$m = Get-Mailbox; $m.Name`, "sean\nkim"},
		{"count", `$m = Get-Mailbox; $m.Count`, "2"},
		{"select", `Get-Mailbox | Select-Object -First 1 -ExpandProperty Name`, "sean"},
		{"sort", `Get-Mailbox | Sort-Object Name | % {$_.Name}`, "kim\nsean"},
		{"Get-Command -Verb -Noun", `Get-Command -Verb Get -Noun Mail* | % {$_.Name}`, "Get-Mailbox"},
		{"Get-Help", `(Get-Help Where-Object) -like "*-FilterScript <System.Object>*Required? false*"`, "True"},
		{"ErrorAction SilentlyContinue", `Get-Content /nonexistent/x -ErrorAction SilentlyContinue; "after"`, "after"},
		{"ErrorAction Continue", `Get-Content /nonexistent/x -ErrorAction Continue; "after"`, "Get-Content : Cannot find path '/nonexistent/x' because it does not exist.\nafter"},
		{"sort descending", `3,1,2 | Sort-Object -Descending`, "3\n2\n1"},
		{"nested blocks", `1,2 | % { $o = $_; 10,20 | % { $o; $_ } } | measure | % {$_.Count}`, "8"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture()
			out, err := f.run(t, tt.src)
			if err != nil {
				t.Fatalf("%s: %v", tt.src, err)
			}
			if got := strings.TrimSpace(out); got != tt.want {
				t.Errorf("%s:\n got %q\nwant %q", tt.src, got, tt.want)
			}
		})
	}
}

func TestGetContentForEach(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "allow.txt"), []byte("sean\r\nchris\r\n"), 0o600)
	f := newFixture()
	s, err := Parse(`$Allow = Get-Content "allow.txt"
$Allow | foreach {Set-CASMailbox -Identity $_ -SmtpClientAuthenticationDisabled $false}`)
	if err != nil {
		t.Fatal(err)
	}
	r := &Runner{Registry: f.reg, Dir: dir}
	if err := r.Run(context.Background(), s); err != nil {
		t.Fatal(err)
	}
	if len(f.calls) != 2 || f.calls[0].String("Identity") != "sean" || f.calls[1].String("Identity") != "chris" {
		t.Fatalf("calls: %d", len(f.calls))
	}
}

func TestFilter(t *testing.T) {
	for _, tt := range []struct {
		filter string
		want   bool
	}{
		{"SmtpClientAuthenticationDisabled -eq $null", true},
		{"SmtpClientAuthenticationDisabled -eq $true", false},
		{"Name -like 's*' -and RecipientLimits -ge 500", true},
		{"PrimarySmtpAddress -eq 'sean@contoso.com'", true},
		{"-not (Name -eq 'sean')", false},
	} {
		f, err := CompileFilter(tt.filter)
		if err != nil {
			t.Fatalf("%s: %v", tt.filter, err)
		}
		got, err := f.Match(context.Background(), mailbox("sean", 500))
		if err != nil || got != tt.want {
			t.Errorf("%s: %v %v", tt.filter, got, err)
		}
	}
	for _, bad := range []string{"", "Name -eq", "Name -eq 'x' )"} {
		if _, err := CompileFilter(bad); err == nil {
			t.Errorf("%q compiled", bad)
		}
	}
}

func FuzzFilter(f *testing.F) {
	f.Add("SmtpClientAuthenticationDisabled -eq $true")
	f.Add("Name -like 's*' -and -not (X -match '[')")
	f.Fuzz(func(t *testing.T, src string) {
		flt, err := CompileFilter(src)
		if err != nil {
			return
		}
		flt.Match(context.Background(), mailbox("sean", 500))
	})
}
