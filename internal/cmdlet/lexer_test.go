package cmdlet

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
)

// lexAll returns the tokens of src in one mode, rendered for comparison.
func lexAll(t *testing.T, src string, mode lexMode) ([]string, error) {
	t.Helper()
	p := newParser(src, 0, 0)
	var got []string
	for pos := 0; ; {
		tok, err := p.lx.next(pos, mode)
		if err != nil {
			return got, err
		}
		if tok.kind == tokEOF {
			return got, nil
		}
		got = append(got, renderToken(tok))
		pos = tok.end
	}
}

func renderToken(t token) string {
	switch t.kind {
	case tokParameter:
		if t.colon {
			return "-" + t.name + ":"
		}
		return "-" + t.name
	case tokVariable:
		return "$" + t.name
	case tokWord:
		return "word " + renderExpr(t.value)
	case tokString:
		return "string " + renderExpr(t.value)
	case tokNumber:
		return "number " + renderExpr(t.value)
	case tokNewline:
		return "newline"
	}
	return map[tokenKind]string{
		tokSemicolon: ";", tokPipe: "|", tokComma: ",", tokEquals: "=", tokLParen: "(", tokRParen: ")",
		tokLCurly: "{", tokRCurly: "}", tokAtParen: "@(", tokAtCurly: "@{", tokDollarParen: "$(",
	}[t.kind]
}

func renderExpr(e expr) string {
	switch e := e.(type) {
	case *constExpr:
		if n, ok := e.value.(typedNumber); ok {
			return fmt.Sprintf("%v(%s)", n.value, n.text)
		}
		return fmt.Sprintf("%#v", e.value)
	case *variableExpr:
		return "$" + e.name
	case *subExpr:
		return fmt.Sprintf("$(%d statements)", len(e.statements))
	case *expandExpr:
		parts := make([]string, len(e.parts))
		for i, p := range e.parts {
			parts[i] = renderExpr(p)
		}
		return "[" + strings.Join(parts, " ") + "]"
	}
	return fmt.Sprintf("%T", e)
}

func TestLexer(t *testing.T) {
	tests := []struct {
		name string
		src  string
		mode lexMode
		want []string
	}{
		{"cmdlet line", "Set-CASMailbox -Identity sean@contoso.com -SmtpClientAuthenticationDisabled $false", commandMode,
			[]string{`word "Set-CASMailbox"`, "-Identity", `word "sean@contoso.com"`, "-SmtpClientAuthenticationDisabled", "$false"}},
		{"bare words", `contoso.com 192.168.0.1/24 *.contoso.com C:\temp\x.csv`, commandMode,
			[]string{`word "contoso.com"`, `word "192.168.0.1/24"`, `word "*.contoso.com"`, `word "C:\\temp\\x.csv"`}},
		{"numbers keep their text in arguments", "35MB 100 007 0x10 1.5 -5 1kb 1e3", commandMode,
			[]string{"number 36700160(35MB)", "number 100(100)", "number 7(007)", "number 16(0x10)", "number 1.5(1.5)",
				"number -5(-5)", "number 1024(1kb)", "number 1000(1e3)"}},
		{"numbers in expressions", "007 2GB", expressionMode, []string{"number 7", "number 2147483648"}},
		{"not numbers", "1.2.3 35QB 0x 1e", commandMode,
			[]string{`word "1.2.3"`, `word "35QB"`, `word "0x"`, `word "1e"`}},
		{"single quotes", `'it''s' 'a"b' '$x ` + "`n'", commandMode,
			[]string{`string "it's"`, `string "a\"b"`, "string \"$x `n\""}},
		{"double quotes", `"say ""hi""" "tab` + "`t" + `here" "` + "`$x" + `" "a` + "`u{2013}" + `b"`, commandMode,
			[]string{`string "say \"hi\""`, `string "tab\there"`, `string "$x"`, `string "a–b"`}},
		{"expansion", `"Hello $name, $(Get-Date) ${odd name}$"`, commandMode,
			[]string{`string ["Hello " $name ", " $(1 statements) " " $odd name "$"]`}},
		{"variables", "$true $NULL ${my var} $env:Path $", commandMode,
			[]string{"$true", "$NULL", "$my var", "$env:Path", `word "$"`}},
		{"comma list", `a,b,"c d"`, commandMode, []string{`word "a"`, ",", `word "b"`, ",", `string "c d"`}},
		{"hashtable", `@{Add="a","b"; Remove='c'}`, expressionMode,
			[]string{"@{", `word "Add"`, "=", `string "a"`, ",", `string "b"`, ";", `word "Remove"`, "=", `string "c"`, "}"}},
		{"= is part of an argument", "a=b", commandMode, []string{`word "a=b"`}},
		{"brackets", "@(1) $(2) (3)", expressionMode, []string{"@(", "number 1", ")", "$(", "number 2", ")", "(", "number 3", ")"}},
		{"colon parameter", "-Force:$false -Name: x", commandMode, []string{"-Force:", "$false", "-Name:", `word "x"`}},
		{"a parameter only in command mode", "-Name", expressionMode, []string{`word "-Name"`}},
		{"quotes inside a word", `sean"@"contoso.com a'b c'`, commandMode, []string{`word "sean@contoso.com"`, `word "ab c"`}},
		{"escapes in a word", "a`,b a`tb", commandMode, []string{`word "a,b"`, `word "a\tb"`}},
		{"# inside a word", "a#b #comment", commandMode, []string{`word "a#b"`}},
		{"comments", "Get-X # note\r\nGet-Y <# block\n #> -P", commandMode,
			[]string{`word "Get-X"`, "newline", `word "Get-Y"`, "-P"}},
		{"line continuation", "Get-X `\n  -Identity a `\r\n-B", commandMode, []string{`word "Get-X"`, "-Identity", `word "a"`, "-B"}},
		{"pasted dashes and quotes", "–Identity “sean” —Force ‘it’’s’", commandMode,
			[]string{"-Identity", `string "sean"`, "-Force", `string "it’s"`}},
		{"separators", "a;b|c\nd", commandMode, []string{`word "a"`, ";", `word "b"`, "|", `word "c"`, "newline", `word "d"`}},
		{"byte order mark", "\uFEFFGet-X", commandMode, []string{`word "Get-X"`}},
		{"trailing backtick", "a `", commandMode, []string{`word "a"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := lexAll(t, tt.src, tt.mode)
			if err != nil {
				t.Fatalf("lexing %q: %v", tt.src, err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("lexing %q\n got %q\nwant %q", tt.src, got, tt.want)
			}
		})
	}
}

func TestLexerErrors(t *testing.T) {
	tests := []struct {
		src      string
		line, ch int
		msg      string
	}{
		{"Set-X -Name 'abc", 1, 13, "The string is missing the terminator: '."},
		{"Set-X -Name \"abc", 1, 13, `The string is missing the terminator: ".`},
		{"Get-X <# never closed", 1, 7, "The terminator '#>' is missing from the multiline comment."},
		{"Get-X @ splat", 1, 7, "Unrecognized token in source text."},
		{"${abc", 1, 1, "Missing } at end of variable name."},
		{"${}", 1, 1, "An empty ${} variable reference was found. A name is required inside the braces."},
		{"\"`u{110000}\"", 1, 2, "The Unicode escape sequence value is out of range. The maximum value is 0x10FFFF."},
		{"\"`u{}\"", 1, 2, "The Unicode escape sequence is not valid. A valid sequence is `u{ followed by one to six hex digits and a closing '}'."},
		{"\"`u{1234567}\"", 1, 2, "The Unicode escape sequence contains more than the maximum of six hex digits between braces."},
		{"\"`u{12\"", 1, 2, "The Unicode escape sequence is missing the closing '}'."},
	}
	for _, tt := range tests {
		_, err := lexAll(t, tt.src, commandMode)
		pe, ok := err.(*ParseError)
		if !ok {
			t.Errorf("lexing %q: got %v, want a *ParseError", tt.src, err)
			continue
		}
		if pe.Line != tt.line || pe.Column != tt.ch || pe.Message != tt.msg {
			t.Errorf("lexing %q: got line %d char %d %q, want line %d char %d %q", tt.src, pe.Line, pe.Column, pe.Message, tt.line, tt.ch, tt.msg)
		}
	}
}

func TestParseNumber(t *testing.T) {
	tests := []struct {
		in   string
		want Value
	}{
		{"0", int64(0)}, {"42", int64(42)}, {"-42", int64(-42)}, {"+7", int64(7)}, {"–3", int64(-3)},
		{"0x2A", int64(42)}, {"35MB", int64(36700160)}, {"35mb", int64(36700160)}, {"1GB", int64(1 << 30)},
		{"150MB", int64(157286400)}, {"1TB", int64(1 << 40)}, {"2PB", int64(1 << 51)},
		{"1.5", 1.5}, {".5", 0.5}, {"1.5GB", 1610612736.0}, {"1e3", 1000.0}, {"1E-2", 0.01},
		{"99999999999999999999", 1e20}, {"9000000000PB", 9000000000.0 * (1 << 50)},
	}
	for _, tt := range tests {
		got, ok := parseNumber(tt.in)
		if !ok || got != tt.want {
			t.Errorf("parseNumber(%q) = %#v, %v; want %#v", tt.in, got, ok, tt.want)
		}
	}
	for _, in := range []string{"", "-", "MB", "1.2.3", "0x", "0xZZ", "1e", "Inf", "NaN", "1_000", "12ab", "192.168.0.1", "0x1p3"} {
		if got, ok := parseNumber(in); ok {
			t.Errorf("parseNumber(%q) = %#v, want no number", in, got)
		}
	}
}
