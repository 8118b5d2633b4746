package cmdlet

import (
	"context"
	"fmt"
)

// Filter is a compiled -Filter: Exchange's OPATH syntax, which reads as a
// PowerShell expression over the object's properties by their bare names:
// 'SmtpClientAuthenticationDisabled -eq $true -and Name -like "s*"'.
type Filter struct{ e expr }

// CompileFilter parses a filter; a syntax error names the position.
func CompileFilter(src string) (*Filter, error) {
	p := newParser(src, 0, 0)
	p.bareProperties = true
	e := p.expression()
	if p.err == nil {
		if t := p.peek(expressionMode); t.kind != tokEOF {
			p.unexpected(t)
		}
	}
	if p.err != nil {
		return nil, fmt.Errorf("Invalid filter syntax: %v", p.err)
	}
	if e == nil {
		return nil, fmt.Errorf("Invalid filter syntax: the filter is empty.")
	}
	return &Filter{e: e}, nil
}

// Match evaluates the filter on an object.
func (f *Filter) Match(ctx context.Context, o *Object) (bool, error) {
	r := &Runner{Registry: NewRegistry(), under: []Value{o}}
	v, err := r.eval(ctx, f.e)
	return truthy(v), err
}
