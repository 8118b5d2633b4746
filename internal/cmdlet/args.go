package cmdlet

import (
	"context"
	"errors"
	"strings"
	"unicode/utf8"
)

// RunArgs runs a command line that the operating system's shell already
// split, such as
//
//	Set-CASMailbox -Identity sean@contoso.com -SmtpClientAuthenticationDisabled '$null'
//
// Each element is one token: -Name or -Name:value is a parameter; any other
// element is read as a PowerShell argument when it is exactly one
// ($true, $null, 35MB, a@x.com,b@x.com, @{Add="a@x.com"},
// (ConvertTo-SecureString ...)), and taken literally otherwise, so that a
// value with spaces or an apostrophe arrives intact. A "|" element
// separates the commands of a pipeline.
func (r *Runner) RunArgs(ctx context.Context, args []string) error {
	s, err := parseArgs(args)
	if err != nil {
		return err
	}
	return r.Run(ctx, s)
}

var errEmptyPipeElement = errors.New("An empty pipe element is not allowed.")

func parseArgs(args []string) (*Script, error) {
	if len(args) == 0 {
		return &Script{}, nil
	}
	pl := &pipeline{}
	var c *command
	for _, a := range args {
		switch {
		case a == "|":
			if c == nil {
				return nil, errEmptyPipeElement
			}
			c = nil
		case c == nil:
			c = &command{name: a}
			pl.commands = append(pl.commands, c)
		default:
			c.elems = append(c.elems, argElement(a))
		}
	}
	if c == nil {
		return nil, errEmptyPipeElement
	}
	return &Script{statements: []statement{pl}}, nil
}

// argElement reads one command-line element.
func argElement(a string) commandElement {
	if r, w := utf8.DecodeRuneInString(a); isDash(r) {
		if next, _ := utf8.DecodeRuneInString(a[w:]); isParameterStart(next) {
			name, value, colon := strings.Cut(a[w:], ":")
			el := commandElement{param: name, colon: colon, shellEmpty: colon && value == "", argv: true}
			if value != "" {
				el.arg = argValue(value)
			}
			return el
		}
	}
	return commandElement{arg: argValue(a), shellEmpty: a == ""}
}

// argValue reads an element as a PowerShell argument if it is exactly one,
// otherwise as a literal string.
func argValue(s string) expr {
	if s != "" && strings.TrimSpace(s) == s {
		p := newParser(s, 0, 0)
		if t := p.peek(commandMode); t.pos == 0 && startsArgument(t.kind) {
			e := p.argument()
			if p.err == nil && p.pos == len(s) {
				return e
			}
		}
	}
	return &constExpr{value: s}
}
