package cmdlet

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestLanguage: the PowerShell that admin scripts pasted from Microsoft's
// documentation use: control statements, arithmetic with PowerShell's
// type rules, -f, string methods, -split/-join/-replace, hashtables,
// [PSCustomObject], functions, dates.
func TestLanguage(t *testing.T) {
	for _, tt := range []struct {
		name, src, want string
	}{
		{"if", `$n = 5; if ($n -gt 3) { "big" } else { "small" }`, "big"},
		{"elseif", "$n = 2\nif ($n -gt 3) { 'big' }\nelseif ($n -eq 2) { 'two' }\nelse { 'small' }", "two"},
		{"else on its own line", "if ($false) {\n 'a'\n}\nelse {\n 'b'\n}", "b"},
		{"foreach", `foreach ($x in 1,2,3) { $x * 2 }`, "2\n4\n6"},
		{"foreach over a pipeline", `foreach ($m in Get-Mailbox) { $m.Name.ToUpper() }`, "SEAN\nKIM"},
		{"foreach over null runs nothing", `foreach ($x in $null) { "ran" }; "done"`, "done"},
		{"break and continue", `foreach ($i in 1..10) { if ($i -eq 2) { continue }; if ($i -gt 4) { break }; $i }`, "1\n3\n4"},
		{"while", `$i = 0; while ($i -lt 3) { $i++ }; $i`, "3"},
		{"do until", `$i = 10; do { $i-- } until ($i -le 7); $i`, "7"},
		{"for", `for ($i = 0; $i -lt 3; $i++) { "i=$i" }`, "i=0\ni=1\ni=2"},
		{"integer arithmetic", `1 + 2 * 3 - 4 / 2`, "5"},
		{"division gives a double", `7 / 2`, "3.5"},
		{"modulo", `17 % 5`, "2"},
		{"unary minus", `-(2 + 3)`, "-5"},
		{"no spaces", `$a = 4; $a-1; $a*2`, "3\n8"},
		{"string plus number", `"n" + 1`, "n1"},
		{"number plus numeric string", `1 + "2"`, "3"},
		{"string times", `"ab" * 3`, "ababab"},
		{"array plus", `$a = 1,2; $a += 3; $a -join ","`, "1,2,3"},
		{"null plus", `$sum = $null; foreach ($n in 1..4) { $sum += $n }; $sum`, "10"},
		{"range", `(1..4) -join " "`, "1 2 3 4"},
		{"hashtable plus", `$h = @{a=1} + @{b=2}; $h.Count`, "2"},
		{"-f", `$a = "sean"; $b = 3; "{0} has {1}" -f $a, $b`, "sean has 3"},
		{"-f number formats", `"{0:N0} {1:N2} {2:D3} {3:P1} {4:X}" -f 1234567, 3.14159, 7, 0.125, 255`, "1,234,567 3.14 007 12.5% FF"},
		{"-f alignment", `"[{0,5}][{1,-4}]" -f 42, "ab"`, "[   42][ab  ]"},
		{"-f custom number", `"{0:0.00}" -f 2.5`, "2.50"},
		{"-f date", `"{0:yyyy-MM-dd}" -f [datetime]"2026-03-04 05:06:07"`, "2026-03-04"},
		{"-f braces", `"{{0}} {0}" -f "x"`, "{0} x"},
		{"string methods", `" Sean@Contoso.COM ".Trim().ToLower()`, "sean@contoso.com"},
		{"split method", `"a,b,c".Split(",")[1]`, "b"},
		{"replace method", `"a-b-c".Replace("-", "+")`, "a+b+c"},
		{"contains and starts", `"sean@contoso.com".Contains("@"); "sean".StartsWith("se"); "sean".EndsWith("X")`, "True\nTrue\nFalse"},
		{"length", `"sean".Length; (1,2,3).Length`, "4\n3"},
		{"substring and indexof", `$s = "sean@contoso.com"; $s.Substring(0, $s.IndexOf("@"))`, "sean"},
		{"-split", `("a b,c" -split "[ ,]").Count`, "3"},
		{"unary -split", `(-split "  a  b ").Count`, "2"},
		{"-join", `$list = "a","b","c"; $list -join ","`, "a,b,c"},
		{"-replace with a group", `"sean@contoso.com" -replace '^(\w+)@.*$', '$1@fabrikam.com'`, "sean@fabrikam.com"},
		{"-replace without case", `"ABC" -replace "b", "x"`, "AxC"},
		{"-creplace", `"ABC" -creplace "b", "x"`, "ABC"},
		{"-like -match -contains -in", `"a@x.com" -like "*@x.com"; "scan01" -match "^scan\d+$"; (1,2) -contains 2; 3 -in 1,2`, "True\nTrue\nTrue\nFalse"},
		{"$matches-free match filter", `"a1","b2","a3" -match "^a"`, "a1\na3"},
		{"hashtable", `$h = @{Name="sean"; Size=5}; $h.Name; $h["Size"]; $h.Keys.Count`, "sean\n5\n2"},
		{"hashtable assignment", `$h = @{}; $h["a"] = 1; $h.b = 2; $h.a + $h.b`, "3"},
		{"hashtable methods", `$h = @{}; $h.Add("k", "v"); $h.ContainsKey("K"); $h.Remove("k"); $h.Count`, "True\n0"},
		{"pscustomobject", `$o = [PSCustomObject]@{Name="sean"; Count=2}; $o.Name; $o.Count`, "sean\n2"},
		{"pscustomobject shows as a table", `[PSCustomObject]@{Name="sean"; Count=2}`, "Name Count\n---- -----\nsean     2"},
		{"property assignment", `$o = [PSCustomObject]@{Name="sean"}; $o.Name = "kim"; $o.Name`, "kim"},
		{"casts", `[int]"42" + 1; [string]5 + 5; [bool]0; [int]2.5`, "43\n55\nFalse\n2"},
		{"-is", `5 -is [int]; "x" -is [string]; $null -is [string]`, "True\nTrue\nFalse"},
		{"static members", `[math]::Round(2.567, 2); [string]::IsNullOrEmpty(""); [math]::Max(3, 7)`, "2.57\nTrue\n7"},
		{"index", `$a = "x","y","z"; $a[0]; $a[-1]; $a[5] -eq $null`, "x\nz\nTrue"},
		{"function", "function Add-Two($n) { $n + 2 }\nAdd-Two 5", "7"},
		{"function with param block", "function Get-Greeting {\n param([string]$Name, [int]$Times = 2)\n ($Name + '!') * $Times\n}\nGet-Greeting -Name hi\nGet-Greeting hey 1", "hi!hi!\nhey!"},
		{"function with switch", "function T { param([switch]$Loud, $Text) if ($Loud) { $Text.ToUpper() } else { $Text } }\nT -Loud -Text a; T b", "A\nb"},
		{"function return", "function F { return 1; 2 }\nF", "1"},
		{"function scope", "$x = 1\nfunction F { $x = 5; $x }\nF; $x", "5\n1"},
		{"script scope", "$count = 0\nfunction Bump { $script:count++ }\nBump; Bump; $count", "2"},
		{"function in a pipeline", "function Show { process { \"<$_>\" } }\n1,2 | Show", "<1>\n<2>"},
		{"mandatory parameter", "function F { param([Parameter(Mandatory=$true)]$Id) $Id }\nF -Id 3", "3"},
		{"recursion is bounded", "function R { R }\ntry { R } catch { 'deep' }", "deep"},
		{"try catch", `try { Get-Content /nonexistent/file } catch { "caught: $($_.Exception.Message)" }`, "caught: Cannot find path '/nonexistent/file' because it does not exist."},
		{"throw", `try { throw "bad" } catch { "$_" } finally { "cleanup" }`, "bad\ncleanup"},
		{"dates", `$d = [datetime]"2026-01-31"; $d.AddDays(1).ToString("yyyy-MM-dd"); $d.Year; $d.DayOfWeek`, "2026-02-01\n2026\nSaturday"},
		{"date arithmetic", `$a = [datetime]"2026-01-03"; $b = [datetime]"2026-01-01"; ($a - $b).Days`, "2"},
		{"Get-Date relative", `((Get-Date).AddDays(-2) -lt (Get-Date))`, "True"},
		{"Get-Date -Format", `(Get-Date -Date "2026-05-06" -Format "yyyyMMdd")`, "20260506"},
		{"Write-Output", `Write-Output "a" "b"; echo c`, "a\nb\nc"},
		{"Write-Host", `Write-Host "x" 1 $true; Write-Host a b -Separator ","`, "x 1 True\na,b"},
		{"Write-Host keeps order", `foreach ($i in 1,2) { Write-Host "host $i"; "out $i" }`, "host 1\nout 1\nhost 2\nout 2"},
		{"Select-Object -First -Last -Skip -Unique", `$a = 1,2,2,3,4; ($a | Select-Object -First 2) -join ","; ($a | Select-Object -Last 2) -join ","; ($a | Select-Object -Skip 3) -join ","; ($a | Select-Object -Unique) -join ","`, "1,2\n3,4\n3,4\n1,2,3,4"},
		{"Select-Object calculated", `Get-Mailbox | Select-Object Name, @{Name="Limit"; Expression={$_.RecipientLimits * 2}} | % { "$($_.Name)=$($_.Limit)" }`, "sean=1000\nkim=20"},
		{"Select-Object renamed", `Get-Mailbox | Select-Object @{n="Who";e="Name"} | % Who`, "sean\nkim"},
		{"Sort-Object by several", `"b2","a2","a1" | Sort-Object {$_[1]}, {$_[0]}`, "a1\na2\nb2"},
		{"Sort-Object numbers", `10, 9, 100 | Sort-Object`, "9\n10\n100"},
		{"Group-Object", `"a","b","a" | Group-Object | % { "$($_.Name):$($_.Count)" }`, "a:2\nb:1"},
		{"Group-Object by property", `Get-Mailbox | Group-Object {$_.RecipientLimits -gt 100} | % Name`, "False\nTrue"},
		{"Measure-Object", `(1,2,3 | Measure-Object -Sum).Sum; (Get-Mailbox | Measure-Object).Count`, "6\n2"},
		{"Measure-Object of nothing", `(@() | Measure-Object).Count`, "0"},
		{"Where-Object simple syntax", `Get-Mailbox | Where-Object Name -like "k*" | % Name`, "kim"},
		{"ForEach-Object member", `Get-Mailbox | ForEach-Object PrimarySmtpAddress`, "sean@contoso.com\nkim@contoso.com"},
		{"splatting", `$p = @{Identity="sean"; DisplayName="Sean"}; Set-Mailbox @p -WhatIf`, `What if: Setting "sean".`},
		{"ErrorActionPreference", `$ErrorActionPreference = "SilentlyContinue"; Get-Content /nonexistent/x; "after"`, "after"},
		{"2>$null", `Get-Content /nonexistent/x -ErrorAction SilentlyContinue 2>$null; "ok"`, "ok"},
		{"array methods", `(1,2,3).Contains(2); (1,2,3).Where({$_ -gt 1}) -join ","; (1,2).ForEach({$_ * 10}) -join ","`, "True\n2,3\n10,20"},
		{"subexpression in string", `$m = Get-Mailbox sean; "Name: $($m.Name) ($($m.RecipientLimits))"`, "Name: sean (500)"},
		{"member enumeration", `(Get-Mailbox).Name -join ";"`, "sean;kim"},
		{"New-Object PSObject", `$o = New-Object PSObject -Property @{A=1}; $o.A`, "1"},
		{"Add-Member", `$o = [PSCustomObject]@{A=1}; $o | Add-Member -NotePropertyName B -NotePropertyValue 2; $o.B`, "2"},
		{"Out-String", `(1,2 | Out-String).Trim()`, "1\n2"},
		{"script param block", "param($Domain = 'contoso.com')\n\"@$Domain\"", "@contoso.com"},
		{"increment statement prints nothing", `$i = 1; $i++; ++$i; $i`, "3"},
		{"compound assignment", `$n = 10; $n -= 3; $n *= 2; $n /= 7; $n %= 3; $n`, "2"},
		{"-not binds tighter than -eq", `-not $false -eq $true`, "True"},
		{"-and -or", `$true -and $false -or $true`, "True"},
		{"comparison chain with arithmetic", `1 + 1 -eq 2`, "True"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture()
			out, err := f.run(t, tt.src)
			if err != nil {
				t.Fatalf("%s: %v\noutput: %s", tt.src, err, out)
			}
			if got := strings.TrimSpace(out); got != tt.want {
				t.Errorf("%s:\n got %q\nwant %q", tt.src, got, tt.want)
			}
		})
	}
}

// TestLanguageErrors: scripts that fail say what is wrong in PowerShell's
// words.
func TestLanguageErrors(t *testing.T) {
	for _, tt := range []struct{ src, want string }{
		{`1 / 0`, "Attempted to divide by zero."},
		{`"abc" - 1`, `Cannot convert value "abc" to type "System.Int32". Error: "Input string was not in a correct format."`},
		{`"{1}" -f "a"`, "Error formatting a string: Index (zero based) must be greater than or equal to zero and less than the size of the argument list.."},
		{`$null.Trim()`, "You cannot call a method on a null-valued expression."},
		{`"x".Nope()`, "Method invocation failed because [System.String] does not contain a method named 'Nope'."},
		{`"x" * 100000000`, "The result is too large"},
		{`1..10000000`, "The result is too large"},
		{`[NoSuchType]"x"`, "Unable to find type [NoSuchType]."},
		{"function F { param([Parameter(Mandatory)]$Id) }\nF", "F : Cannot process command because of one or more missing mandatory parameters: Id."},
		{`throw "stop here"`, "stop here"},
		{`$o = [PSCustomObject]@{A=1}; $o.B = 2`, "The property 'B' cannot be found on this object."},
	} {
		f := newFixture()
		_, err := f.run(t, tt.src)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: error %v, want %q", tt.src, err, tt.want)
		}
	}
}

// TestParseLanguageErrors: the control statements' syntax errors.
func TestParseLanguageErrors(t *testing.T) {
	for _, tt := range []struct{ src, want string }{
		{"if ($true) ", "Missing statement block after if ( condition )."},
		{"if $true { }", "Missing '(' after 'if' in if statement."},
		{"foreach ($x 1,2) { }", "Missing 'in' after variable in foreach loop."},
		{"function { }", "Missing name after function keyword."},
		{"try { }", "The Try statement is missing its Catch or Finally block."},
		{"$a = ", "You must provide a value expression on the right-hand side of the '=' operator."},
		{"1 +", "You must provide a value expression following the '+' operator."},
		{"5 = 3", "The assignment expression is not valid."},
		{"$a[0", "Missing ']' after array index expression."},
		{"[int", "Missing ] at end of type token."},
		{"else { }", "Unexpected token 'else'"},
	} {
		_, err := Parse(tt.src)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Parse(%q): %v, want %q", tt.src, err, tt.want)
		}
	}
}

// TestFileCmdlets: Import-Csv, Export-Csv, Out-File, Set-/Add-Content and
// redirection read and write through Runner.Files, relative to Dir.
func TestFileCmdlets(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "users.csv"), []byte("\uFEFFUserPrincipalName,Enabled\r\nsean@contoso.com,False\r\n\"kim@contoso.com\",True\r\n"), 0o600)
	f := newFixture()
	src := `Import-Csv users.csv | ForEach-Object { Set-CASMailbox -Identity $_.UserPrincipalName -SmtpClientAuthenticationDisabled ([bool]::Parse($_.Enabled) -eq $false) -WhatIf }
Get-Mailbox | Select-Object Name, RecipientLimits | Export-Csv -Path out\mailboxes.csv -NoTypeInformation
Get-Mailbox | Out-File report.txt
"appended" | Out-File report.txt -Append
Set-Content log.txt "one"
Add-Content log.txt "two"
"three" >> log.txt
[PSCustomObject]@{A=1; B="x,y"} | Export-Csv objs.csv
(Import-Csv objs.csv).B`
	os.Mkdir(filepath.Join(dir, "out"), 0o700)
	s, err := Parse(src)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	r := &Runner{Registry: f.reg, Out: &out, Dir: dir}
	err = r.Run(context.Background(), s)
	if err == nil || !strings.Contains(err.Error(), "does not contain a method named 'Parse'") {
		// [bool]::Parse is not among the static methods: the script
		// stops at the first line, as PowerShell would at an unknown one.
		t.Fatalf("run: %v", err)
	}
	src = strings.Replace(src, "([bool]::Parse($_.Enabled) -eq $false)", "($_.Enabled -eq 'False')", 1)
	if s, err = Parse(src); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	f.calls = nil
	if err := r.Run(context.Background(), s); err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	if len(f.calls) != 2 || f.calls[0].String("Identity") != "sean@contoso.com" || *f.calls[0].NullableBool("SmtpClientAuthenticationDisabled") != true {
		t.Errorf("Set-CASMailbox calls: %d", len(f.calls))
	}
	read := func(name string) string {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	if got := read("out/mailboxes.csv"); got != "Name,RecipientLimits\nsean,500\nkim,10\n" {
		t.Errorf("Export-Csv:\n%q", got)
	}
	if got := read("report.txt"); !strings.Contains(got, "sean@contoso.com") || !strings.HasSuffix(got, "appended\n") {
		t.Errorf("Out-File:\n%s", got)
	}
	if got := read("log.txt"); got != "one\ntwo\nthree\n" {
		t.Errorf("content: %q", got)
	}
	if got := strings.TrimSpace(out.String()); !strings.HasSuffix(got, "\nx,y") {
		t.Errorf("round trip: %q", got)
	}

	// Without files, every file cmdlet refuses.
	for _, src := range []string{`Import-Csv users.csv`, `1 | Out-File x.txt`, `1 > x.txt`, `Get-Content users.csv`} {
		s, _ := Parse(src)
		err := (&Runner{Registry: f.reg, Dir: dir, NoFiles: true}).Run(context.Background(), s)
		if err == nil || !strings.Contains(err.Error(), "file access is disabled") {
			t.Errorf("%s with NoFiles: %v", src, err)
		}
	}
}

// recordingFiles is a FileSystem that records what it is asked.
type recordingFiles struct {
	reads, writes []string
	data          map[string]string
}

func (r *recordingFiles) ReadFile(p string) ([]byte, error) {
	r.reads = append(r.reads, p)
	if d, ok := r.data[p]; ok {
		return []byte(d), nil
	}
	return nil, os.ErrNotExist
}

func (r *recordingFiles) WriteFile(p string, data []byte, _ bool) error {
	r.writes = append(r.writes, p)
	r.data[p] += string(data)
	return nil
}

// TestFilesGoThroughFileSystem: with Runner.Files set, no file cmdlet
// touches this process's file system.
func TestFilesGoThroughFileSystem(t *testing.T) {
	fs := &recordingFiles{data: map[string]string{"/client/in.txt": "a\nb\n"}}
	s, err := Parse(`Get-Content in.txt | Out-File ..\out.txt; Get-Content /client/in.txt -Raw`)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := (&Runner{Registry: newFixture().reg, Out: &out, Dir: "/client/dir", Files: fs}).Run(context.Background(), s); err == nil {
		t.Fatalf("in.txt is relative to /client/dir, where it is not")
	}
	s, _ = Parse(`Get-Content ..\in.txt | Out-File ..\out.txt`)
	if err := (&Runner{Registry: newFixture().reg, Out: &out, Dir: "/client/dir", Files: fs}).Run(context.Background(), s); err != nil {
		t.Fatal(err)
	}
	if fs.data["/client/out.txt"] != "a\nb\n" {
		t.Errorf("written: %q (writes %v)", fs.data["/client/out.txt"], fs.writes)
	}
}

// TestEmptyShellArgument: bash turns an unquoted $false into an empty
// word; the error says so and shows the quoting.
func TestEmptyShellArgument(t *testing.T) {
	f := newFixture()
	for _, args := range [][]string{
		{"Set-CASMailbox", "sean", "-SmtpClientAuthenticationDisabled", ""},
		{"Set-CASMailbox", "sean", "-SmtpClientAuthenticationDisabled"},
		{"Set-Mailbox", "sean", "-DeliverToMailboxAndForward", "-Force"},
		{"Set-CASMailbox", "sean", "-SmtpClientAuthenticationDisabled:"},
		{"Set-Mailbox", "sean", "-DeliverToMailboxAndForward", ""},
	} {
		_, err := f.runArgs(args...)
		if err == nil || !strings.Contains(err.Error(), "an unquoted $true or $false on a bash or sh command line is expanded by that shell to nothing") ||
			!strings.Contains(err.Error(), "'$false'") {
			t.Errorf("%q: %v", args, err)
		}
	}
	// A quoted '$false' still works.
	if _, err := f.runArgs("Set-CASMailbox", "sean", "-SmtpClientAuthenticationDisabled", "$false"); err != nil {
		t.Errorf("quoted: %v", err)
	}
}

// TestDateArgument: a date passed to a string parameter (-StartDate
// (Get-Date).AddDays(-2)) arrives in a form the cmdlet can parse back.
func TestDateArgument(t *testing.T) {
	d := time.Date(2026, 2, 3, 16, 5, 6, 0, time.Local)
	if got := toString(d); got != "02/03/2026 16:05:06" {
		t.Errorf("toString(date) = %q", got)
	}
	if back, ok := parseDateString(toString(d)); !ok || !back.Equal(d) {
		t.Errorf("round trip: %v %v", back, ok)
	}
	precise := time.Date(2026, 2, 3, 16, 5, 6, 123456789, time.UTC)
	v, err := convertArg(&ParamSpec{Name: "StartDate", Type: String}, precise)
	if back, perr := time.Parse(time.RFC3339, toString(v)); err != nil || perr != nil || !back.Equal(precise) {
		t.Errorf("a date for a string parameter: %v %v %v", v, err, perr)
	}
}
