package cmdlet

import "fmt"

// maxDepth bounds the nesting of parentheses, arrays, hashtables and
// subexpressions, so that hostile input cannot exhaust the stack.
const maxDepth = 100

// parser is a recursive-descent parser over the lexer. It stops at the
// first error, which it keeps in err: from then on peek returns EOF, so
// every loop ends and the functions unwind without checking at each step.
type parser struct {
	lx    lexer
	pos   int // where the next token starts (its leading space included)
	last  int // where the last token consumed ends, for "missing ... after" errors
	depth int
	err   error
	// bareProperties reads a bare word in an expression as a property of
	// $_: OPATH filters ('SmtpClientAuthenticationDisabled -eq $true').
	bareProperties bool

	// The token at pos, once lexed: the parser usually looks at a token
	// before deciding what to do with it.
	peeked     token
	peekedAt   int
	peekedMode lexMode
	havePeek   bool
}

func newParser(src string, pos, depth int) *parser {
	p := &parser{pos: pos, last: pos, depth: depth}
	p.lx = lexer{src: src, subexpression: p.embedded}
	return p
}

// Parse parses a script. A syntax error is a *ParseError.
func Parse(src string) (*Script, error) {
	p := newParser(src, 0, 0)
	stmts := p.statements(tokEOF)
	if p.err != nil {
		return nil, p.err
	}
	return &Script{statements: stmts}, nil
}

func (p *parser) peek(mode lexMode) token {
	if p.err != nil {
		return token{kind: tokEOF, pos: p.pos, end: p.pos}
	}
	if p.havePeek && p.peekedAt == p.pos && p.peekedMode == mode {
		return p.peeked
	}
	t, err := p.lx.next(p.pos, mode)
	if err != nil {
		p.err = err
		return token{kind: tokEOF, pos: p.pos, end: p.pos}
	}
	p.peeked, p.peekedAt, p.peekedMode, p.havePeek = t, p.pos, mode, true
	return t
}

// advance consumes t.
func (p *parser) advance(t token) { p.pos, p.last = t.end, t.end }

// skip consumes a separator, which does not count as the end of what came
// before it.
func (p *parser) skip(t token) { p.pos = t.end }

func (p *parser) skipNewlines(mode lexMode) {
	for t := p.peek(mode); t.kind == tokNewline; t = p.peek(mode) {
		p.skip(t)
	}
}

func (p *parser) fail(pos int, msg string) {
	if p.err == nil {
		p.err = newParseError(p.lx.src, pos, msg)
	}
}

func (p *parser) unexpected(t token) {
	p.fail(t.pos, fmt.Sprintf("Unexpected token '%s' in expression or statement.", p.lx.src[t.pos:t.end]))
}

// enter notes one more level of nesting, failing when there are too many.
func (p *parser) enter(pos int) bool {
	p.depth++
	if p.depth > maxDepth {
		p.fail(pos, "The script is nested too deeply.")
		return false
	}
	return true
}

func (p *parser) leave() { p.depth-- }

// statements parses statements separated by newlines or semicolons, up to
// end (EOF, or ')' of a subexpression), which it leaves for the caller.
func (p *parser) statements(end tokenKind) []*pipeline {
	var stmts []*pipeline
	for p.err == nil {
		t := p.peek(expressionMode)
		switch t.kind {
		case tokNewline, tokSemicolon:
			p.skip(t)
			continue
		case end, tokEOF:
			return stmts
		}
		stmts = append(stmts, p.pipeline())
		switch t := p.peek(expressionMode); t.kind {
		case tokNewline, tokSemicolon, end, tokEOF:
		default:
			p.unexpected(t)
		}
	}
	return stmts
}

// pipeline parses cmd | cmd ..., or an expression piped into commands.
func (p *parser) pipeline() *pipeline {
	pl := &pipeline{}
	if t := p.peek(expressionMode); t.kind == tokVariable {
		// $name = pipeline: an assignment, told apart by the '=' after it.
		if eq, err := p.lx.next(t.end, expressionMode); err == nil && eq.kind == tokEquals {
			p.advance(t)
			p.advance(eq)
			p.skipNewlines(expressionMode)
			if !p.enter(t.pos) {
				return pl
			}
			defer p.leave()
			pl.assign, pl.value = t.name, p.pipeline()
			return pl
		}
	}
	switch t := p.peek(expressionMode); {
	case t.kind == tokWord:
		pl.commands = append(pl.commands, p.command(t))
	case startsExpression(t.kind):
		pl.expr = p.expression()
	default:
		p.unexpected(t)
	}
	for p.err == nil {
		bar := p.peek(expressionMode)
		if bar.kind != tokPipe {
			break
		}
		p.advance(bar)
		p.skipNewlines(expressionMode)
		switch t := p.peek(expressionMode); {
		case t.kind == tokWord:
			pl.commands = append(pl.commands, p.command(t))
		case startsExpression(t.kind):
			p.fail(t.pos, "Expressions are only allowed as the first element of a pipeline.")
		default:
			p.fail(bar.pos, "An empty pipe element is not allowed.")
		}
	}
	return pl
}

// command parses a command name and its parameters and arguments.
func (p *parser) command(name token) *command {
	lit, ok := name.value.(*constExpr)
	if !ok {
		// A name built from variables needs the call operator, & "$name",
		// which the language does not have yet.
		p.unexpected(name)
		return nil
	}
	p.advance(name)
	c := &command{name: lit.value.(string)}
	for p.err == nil {
		t := p.peek(commandMode)
		switch {
		case t.kind == tokParameter:
			p.advance(t)
			el := commandElement{param: t.name, colon: t.colon}
			if t.colon && startsArgument(p.peek(commandMode).kind) {
				el.arg = p.argument()
			}
			c.elems = append(c.elems, el)
		case startsArgument(t.kind):
			c.elems = append(c.elems, commandElement{arg: p.argument()})
		case t.kind == tokComma:
			p.fail(t.pos, "Missing argument in parameter list.")
		case endsCommand(t.kind):
			return c
		default:
			p.unexpected(t)
		}
	}
	return c
}

// argument parses a command argument: a value, or a comma list of them.
func (p *parser) argument() expr {
	first := p.primary(p.peek(commandMode), commandMode)
	if p.peek(commandMode).kind != tokComma {
		return first
	}
	list := &arrayExpr{elems: []expr{first}}
	for t := p.peek(commandMode); t.kind == tokComma; t = p.peek(commandMode) {
		p.advance(t)
		p.skipNewlines(commandMode)
		next := p.peek(commandMode)
		if !startsArgument(next.kind) {
			p.fail(p.last, "Missing argument in parameter list.")
			break
		}
		list.elems = append(list.elems, p.primary(next, commandMode))
	}
	return list
}

// expression parses a value in expressionMode: comparisons of comma
// lists joined by -and and -or (PowerShell gives them equal precedence,
// left to right). It returns nil, without an error, when there is none.
func (p *parser) expression() expr {
	left := p.comparison()
	for left != nil {
		t := p.peek(expressionMode)
		if t.kind != tokOperator || (t.name != "and" && t.name != "or") {
			return left
		}
		p.advance(t)
		p.skipNewlines(expressionMode)
		right := p.comparison()
		if right == nil {
			p.fail(p.last, "Missing expression after '-"+t.name+"'.")
			return nil
		}
		left = &binaryExpr{op: t.name, left: left, right: right}
	}
	return left
}

// comparison parses [-not] list [-op list]...
func (p *parser) comparison() expr {
	t := p.peek(expressionMode)
	if t.kind == tokOperator && t.name == "not" {
		p.advance(t)
		if !p.enter(t.pos) {
			return nil
		}
		defer p.leave()
		operand := p.comparison()
		if operand == nil {
			p.fail(p.last, "Missing expression after unary operator '-not'.")
			return nil
		}
		return &notExpr{operand: operand}
	}
	left := p.list()
	for left != nil {
		t := p.peek(expressionMode)
		if t.kind != tokOperator || t.name == "and" || t.name == "or" || t.name == "not" {
			return left
		}
		p.advance(t)
		right := p.list()
		if right == nil {
			p.fail(p.last, "You must provide a value expression following the '-"+t.name+"' operator.")
			return nil
		}
		left = &binaryExpr{op: t.name, left: left, right: right}
	}
	return left
}

// list parses a comma list of unary expressions, or nil when there is
// none.
func (p *parser) list() expr {
	first := p.unary()
	if first == nil || p.peek(expressionMode).kind != tokComma {
		return first
	}
	list := &arrayExpr{elems: []expr{first}}
	for t := p.peek(expressionMode); t.kind == tokComma; t = p.peek(expressionMode) {
		p.advance(t)
		p.skipNewlines(expressionMode)
		e := p.unary()
		if e == nil {
			p.fail(p.last, "Missing expression after ','.")
			break
		}
		list.elems = append(list.elems, e)
	}
	return list
}

// unary parses a primary, or ,value: an array of one element.
func (p *parser) unary() expr {
	t := p.peek(expressionMode)
	if t.kind != tokComma {
		return p.primary(t, expressionMode)
	}
	p.advance(t)
	if !p.enter(t.pos) {
		return nil
	}
	defer p.leave()
	operand := p.unary()
	if operand == nil {
		p.fail(p.last, "Missing expression after unary operator ','.")
		return nil
	}
	return &arrayExpr{elems: []expr{operand}}
}

// primary parses the value that starts with t; nil if t starts none. A
// bare word is a value only as a command argument.
func (p *parser) primary(t token, mode lexMode) expr {
	e := p.atom(t, mode)
	if e == nil {
		return nil
	}
	switch e.(type) {
	case *variableExpr, *parenExpr, *subExpr:
		// .Name right after it (no space) reads a property: $_.Name.
		for p.err == nil && p.pos < len(p.lx.src) && p.lx.src[p.pos] == '.' {
			end := p.lx.name(p.pos + 1)
			if end == p.pos+1 {
				break
			}
			e = &memberExpr{target: e, name: p.lx.src[p.pos+1 : end]}
			p.pos, p.last = end, end
		}
	}
	return e
}

// atom parses the value that starts with t, without member access.
func (p *parser) atom(t token, mode lexMode) expr {
	switch t.kind {
	case tokLCurly:
		return p.block(t)
	case tokWord:
		if mode != commandMode {
			if !p.bareProperties {
				return nil
			}
			p.advance(t)
			return &memberExpr{target: &variableExpr{name: "_"}, name: p.lx.src[t.pos:t.end]}
		}
		p.advance(t)
		return t.value
	case tokNumber, tokString:
		p.advance(t)
		return t.value
	case tokVariable:
		p.advance(t)
		return &variableExpr{name: t.name}
	case tokLParen:
		return p.paren(t)
	case tokAtParen, tokDollarParen:
		return p.subexpression(t)
	case tokAtCurly:
		return p.hashtable(t)
	}
	return nil
}

// block parses { statements }, a script block.
func (p *parser) block(open token) expr {
	p.advance(open)
	if !p.enter(open.pos) {
		return nil
	}
	defer p.leave()
	stmts := p.statements(tokRCurly)
	t := p.peek(expressionMode)
	if t.kind != tokRCurly {
		p.fail(open.pos, "Missing closing '}' in statement block or type definition.")
		return nil
	}
	p.advance(t)
	return &blockExpr{statements: stmts}
}

// paren parses (pipeline).
func (p *parser) paren(open token) expr {
	p.advance(open)
	if !p.enter(open.pos) {
		return nil
	}
	defer p.leave()
	p.skipNewlines(expressionMode)
	switch t := p.peek(expressionMode); t.kind {
	case tokRParen, tokSemicolon:
		p.fail(t.pos, "An expression was expected after '('.")
		return nil
	case tokEOF:
		p.fail(p.last, "Missing closing ')' in expression.")
		return nil
	}
	var pl *pipeline
	if p.bareProperties {
		pl = &pipeline{expr: p.expression()} // a filter has no commands
	} else {
		pl = p.pipeline()
	}
	p.skipNewlines(expressionMode)
	t := p.peek(expressionMode)
	if t.kind != tokRParen {
		p.fail(p.last, "Missing closing ')' in expression.")
		return nil
	}
	p.advance(t)
	return &parenExpr{pipeline: pl}
}

// subexpression parses $(statements) or @(statements).
func (p *parser) subexpression(open token) expr {
	p.advance(open)
	if !p.enter(open.pos) {
		return nil
	}
	defer p.leave()
	stmts := p.statements(tokRParen)
	t := p.peek(expressionMode)
	if t.kind != tokRParen {
		p.fail(p.last, "Missing closing ')' in subexpression.")
		return nil
	}
	p.advance(t)
	return &subExpr{statements: stmts, array: open.kind == tokAtParen}
}

// embedded parses the $(...) of a string for the lexer, from just after
// "$(", with a parser of its own so that this one's position is untouched.
func (p *parser) embedded(pos int) (expr, int, error) {
	sub := newParser(p.lx.src, pos, p.depth)
	if !sub.enter(pos - 2) {
		return nil, 0, sub.err
	}
	stmts := sub.statements(tokRParen)
	t := sub.peek(expressionMode)
	if t.kind != tokRParen {
		sub.fail(sub.last, "Missing closing ')' in subexpression.")
	}
	if sub.err != nil {
		return nil, 0, sub.err
	}
	return &subExpr{statements: stmts}, t.end, nil
}

// hashtable parses @{key = value; ...}.
func (p *parser) hashtable(open token) expr {
	p.advance(open)
	if !p.enter(open.pos) {
		return nil
	}
	defer p.leave()
	h := &hashExpr{}
	for p.err == nil {
		t := p.peek(expressionMode)
		switch t.kind {
		case tokNewline, tokSemicolon:
			p.skip(t)
			continue
		case tokRCurly:
			p.advance(t)
			return h
		case tokEOF:
			p.fail(p.last, "Missing closing '}' in statement block or type definition.")
			return nil
		case tokEquals:
			p.fail(t.pos, "Missing key before '=' in hash literal.")
			return nil
		case tokWord, tokString, tokNumber:
			p.advance(t)
		default:
			p.unexpected(t)
			return nil
		}
		key := t.value
		eq := p.peek(expressionMode)
		if eq.kind != tokEquals {
			p.fail(p.last, "Missing '=' operator after key in hash literal.")
			return nil
		}
		p.advance(eq)
		p.skipNewlines(expressionMode)
		if v := p.peek(expressionMode); v.kind != tokWord && !startsExpression(v.kind) {
			p.fail(p.last, "Missing statement after '=' in hash literal.")
			return nil
		}
		h.entries = append(h.entries, hashEntry{key: key, value: p.pipeline()})
		switch t := p.peek(expressionMode); t.kind {
		case tokNewline, tokSemicolon, tokRCurly, tokEOF:
		default:
			p.unexpected(t)
		}
	}
	return nil
}

// startsExpression reports whether a token of kind k can start an
// expression in expressionMode.
func startsExpression(k tokenKind) bool {
	switch k {
	case tokNumber, tokString, tokVariable, tokLParen, tokAtParen, tokDollarParen, tokAtCurly, tokComma, tokLCurly, tokOperator:
		return true
	}
	return false
}

// startsArgument reports whether a token of kind k can start a command
// argument.
func startsArgument(k tokenKind) bool {
	return k == tokWord || k != tokComma && startsExpression(k)
}

// endsCommand reports whether a token of kind k ends a command's
// arguments.
func endsCommand(k tokenKind) bool {
	switch k {
	case tokNewline, tokSemicolon, tokPipe, tokRParen, tokRCurly, tokEOF:
		return true
	}
	return false
}
