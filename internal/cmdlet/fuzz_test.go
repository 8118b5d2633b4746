package cmdlet

import (
	"context"
	"io"
	"strings"
	"testing"
)

var fuzzSeeds = []string{
	"Set-CASMailbox -Identity sean@contoso.com -SmtpClientAuthenticationDisabled $false",
	"Get-TransportConfig | Format-List SmtpClientAuthenticationDisabled",
	"Get-Mailbox | ft Name,Smtp* -AutoSize; Get-Mailbox | fl *",
	"Set-Mailbox sean -EmailAddresses @{Add=\"a@x.com\",'b@x.com'; Remove=\"c\"} -MaxSendSize 35MB",
	"Set-Mailbox -Password (ConvertTo-SecureString -String 'P@ss' -AsPlainText -Force) sean",
	"\"x $(1,2) ${a b} `u{2013} `\" \"\" $env:x\" # comment\n<# block #> ,@(1) `\n",
	"–Identity “sean” ‘it’’s’ 0x1F 1.5GB -5 1e3 007",
	"@{a=@{b=(Get-Mailbox | fl)}}",
	"\"$(\"$(\"$(1)\")\")\"",
	"if ($a -gt 1) { 'x' } elseif ($b) { 2 } else { $c += 1..3 }",
	"foreach ($m in Get-Mailbox) { \"{0,-10} {1:N0}\" -f $m.Name, $m.RecipientLimits }",
	"function F { param([Parameter(Mandatory)][string]$Id, [switch]$X = $false) process { $_ } }; 1,2 | F -Id a",
	"$h = @{a=1}; $h['b'] = [PSCustomObject]@{c=$h.a * 2 % 3}; $h.b.c++; -split ' a b ' -join ','",
	"try { throw 'x' } catch { $_.Exception.Message } finally { while ($i -lt 2) { $i++ } }",
	"(Get-Date).AddDays(-2).ToString('yyyy-MM-dd'); [math]::Round(2.5); [DateTime]::UtcNow; 'a,b'.Split(',')[0]",
	"Get-Mailbox | Select-Object Name, @{n='L';e={$_.RecipientLimits}} | Sort-Object L -Descending | Group-Object Name > $null",
	"$x = 'a' -replace '(a)', '$1b' -split 'b'; for ($i=0; $i -lt 3; $i++) { continue }; do { break } while ($true)",
}

// FuzzParse checks that no source makes the parser panic or hang, and that
// running what parses cannot panic either. MaxSteps keeps random loops
// short: a statement may build up to a million elements, so a long loop of
// them is slow without being wrong.
func FuzzParse(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, src string) {
		s, err := Parse(src)
		if err != nil {
			if _, ok := err.(*ParseError); !ok {
				t.Fatalf("Parse(%q) returned %T, want *ParseError", src, err)
			}
			return
		}
		(&Runner{Registry: newFixture().reg, Out: io.Discard, NoFiles: true, MaxSteps: 500}).Run(context.Background(), s)
	})
}

// FuzzRunArgs checks that no command line makes RunArgs panic. The input is
// split into arguments at NUL bytes.
func FuzzRunArgs(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add(strings.ReplaceAll(s, " ", "\x00"))
	}
	f.Add("Set-Mailbox\x00sean\x00-DisplayName\x00Sean Smith\x00|\x00fl")
	f.Fuzz(func(t *testing.T, line string) {
		(&Runner{Registry: newFixture().reg, Out: io.Discard, NoFiles: true, MaxSteps: 500}).RunArgs(context.Background(), strings.Split(line, "\x00"))
	})
}
