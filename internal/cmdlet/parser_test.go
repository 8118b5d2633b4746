package cmdlet

import (
	"strings"
	"testing"
)

func TestParseValid(t *testing.T) {
	tests := []struct {
		src        string
		statements int
	}{
		{"", 0},
		{"\n\n;;\n", 0},
		{"Get-Mailbox", 1},
		{"Get-Mailbox; Get-TransportConfig\nGet-Mailbox", 3},
		{"Get-Mailbox | Set-CASMailbox -SmtpClientAuthenticationDisabled $true", 1},
		{"Get-Mailbox |\n  Format-List Name", 1},
		{"Set-Mailbox sean `\n  -DisplayName 'Sean Smith' `\r\n  -Force", 1},
		{"# a comment\nGet-Mailbox # another\n<# block\ncomment #>", 1},
		{"Set-Mailbox sean -EmailAddresses @{Add=\"a@x.com\",\"b@x.com\"; Remove='c@x.com'}", 1},
		{"Set-Mailbox sean -EmailAddresses @{\n  Add = 'a'\n  Remove = 'b'\n}", 1},
		{"Set-Mailbox sean -Languages @('en-US','de-DE') -EmailAddresses a,\n b, c", 1},
		{"Set-Mailbox -Password (ConvertTo-SecureString -String 'P@ss' -AsPlainText -Force) -Identity sean", 1},
		{"Set-Mailbox -Identity (\n Get-Mailbox sean\n)", 1},
		{`"a","b" | Format-List`, 1},
		{`,"a"`, 1},
		{`"x $(Get-Mailbox | Format-List; 1) y"`, 1},
		{`$(Get-Mailbox); @(); @{}`, 3},
		{"Get-Mailbox -Identity:sean -Force:$false", 1},
	}
	for _, tt := range tests {
		s, err := Parse(tt.src)
		if err != nil {
			t.Errorf("Parse(%q): %v", tt.src, err)
			continue
		}
		if len(s.statements) != tt.statements {
			t.Errorf("Parse(%q): %d statements, want %d", tt.src, len(s.statements), tt.statements)
		}
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		src      string
		line, ch int
		msg      string
	}{
		{"Set-Mailbox -Identity (Get-Mailbox", 1, 35, "Missing closing ')' in expression."},
		{"Set-Mailbox -Identity (", 1, 24, "Missing closing ')' in expression."},
		{"Set-Mailbox -Identity ()", 1, 24, "An expression was expected after '('."},
		{"Set-Mailbox -Name 'O'Brien'", 1, 27, "The string is missing the terminator: '."},
		{"Set-Mailbox -EmailAddresses a,", 1, 31, "Missing argument in parameter list."},
		{"Set-Mailbox -EmailAddresses ,a", 1, 29, "Missing argument in parameter list."},
		{",", 1, 2, "Missing expression after unary operator ','."},
		{`"a",`, 1, 5, "Missing expression after ','."},
		{"Get-Mailbox |", 1, 13, "An empty pipe element is not allowed."},
		{"Get-Mailbox | | Format-List", 1, 13, "An empty pipe element is not allowed."},
		{`Get-Mailbox | "a"`, 1, 15, "Expressions are only allowed as the first element of a pipeline."},
		{"Get-Mailbox )", 1, 13, "Unexpected token ')' in expression or statement."},
		{`"a" "b"`, 1, 5, `Unexpected token '"b"' in expression or statement.`},
		{"Get-Mailbox {", 1, 13, "Missing closing '}' in statement block or type definition."},
		{"@{Add='a'", 1, 10, "Missing closing '}' in statement block or type definition."},
		{"@{Add}", 1, 6, "Missing '=' operator after key in hash literal."},
		{"@{=1}", 1, 3, "Missing key before '=' in hash literal."},
		{"@{a=}", 1, 5, "Missing statement after '=' in hash literal."},
		{"@{a=1 b=2}", 1, 7, "Unexpected token 'b' in expression or statement."},
		{"$(Get-Mailbox", 1, 14, "Missing closing ')' in subexpression."},
		{"@(1", 1, 4, "Missing closing ')' in subexpression."},
		{`"$(Get-Mailbox"`, 1, 15, `The string is missing the terminator: ".`},
		{"$x$y", 1, 3, "Unexpected token '$y' in expression or statement."},
		{"Get-Mailbox\nSet-Mailbox -Name 'oops", 2, 19, "The string is missing the terminator: '."},
		{"Get-Mailbox\r\n\r\nGet-Mailbox )", 3, 13, "Unexpected token ')' in expression or statement."},
		{strings.Repeat("(", 200), 1, 101, "The script is nested too deeply."},
		{strings.Repeat(`"$(`, 200), 1, 302, "The script is nested too deeply."},
	}
	for _, tt := range tests {
		_, err := Parse(tt.src)
		pe, ok := err.(*ParseError)
		if !ok {
			t.Errorf("Parse(%q): got %v, want a *ParseError", tt.src, err)
			continue
		}
		if pe.Line != tt.line || pe.Column != tt.ch || pe.Message != tt.msg {
			t.Errorf("Parse(%q):\n got line %d char %d %q\nwant line %d char %d %q", tt.src, pe.Line, pe.Column, pe.Message, tt.line, tt.ch, tt.msg)
		}
	}
}

func TestParseErrorText(t *testing.T) {
	_, err := Parse("Get-Mailbox\n\tSet-Mailbox -Identity (Get-Mailbox")
	want := "At line:2 char:36\n" +
		"+ \tSet-Mailbox -Identity (Get-Mailbox\n" +
		"+ \t                                  ~\n" +
		"Missing closing ')' in expression."
	if errText(err) != want {
		t.Errorf("got\n%s\nwant\n%s", errText(err), want)
	}
}
