package cmdlet

import (
	"fmt"
	"strings"
)

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
	// noComma stops a comma from making a list: it separates the
	// arguments of a method call.
	noComma bool

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
func (p *parser) statements(end tokenKind) []statement {
	var stmts []statement
	for p.err == nil {
		t := p.peek(expressionMode)
		switch t.kind {
		case tokNewline, tokSemicolon:
			p.skip(t)
			continue
		case end, tokEOF:
			return stmts
		}
		st := p.statement()
		if st != nil {
			stmts = append(stmts, st)
		}
		switch t := p.peek(expressionMode); t.kind {
		case tokNewline, tokSemicolon, end, tokEOF:
		default:
			p.unexpected(t)
		}
	}
	return stmts
}

// statement parses a control statement (if, foreach, function...) or a
// pipeline.
func (p *parser) statement() statement {
	if t := p.peek(expressionMode); t.kind == tokWord {
		if kw, ok := t.value.(*constExpr); ok {
			if st, ok := p.keyword(t, strings.ToLower(toString(kw.value))); ok {
				return st
			}
		}
	}
	return p.pipeline()
}

// pipeline parses cmd | cmd ..., an expression piped into commands, or an
// assignment.
func (p *parser) pipeline() *pipeline {
	pl := &pipeline{}
	switch t := p.peek(expressionMode); {
	case t.kind == tokWord:
		pl.commands = append(pl.commands, p.command(t))
	case startsExpression(t.kind):
		e := p.expression()
		if e == nil {
			if p.err == nil {
				p.unexpected(t)
			}
			return pl
		}
		if a := p.peek(operatorMode); a.kind == tokAssign {
			if !assignable(e) {
				p.fail(t.pos, "The assignment expression is not valid. The input to an assignment operator must be an object that is able to accept assignments, such as a variable or a property.")
				return pl
			}
			p.advance(a)
			p.skipNewlines(expressionMode)
			if !p.enter(a.pos) {
				return pl
			}
			defer p.leave()
			v := p.peek(expressionMode)
			if v.kind != tokWord && !startsExpression(v.kind) {
				p.fail(p.last, "You must provide a value expression on the right-hand side of the '"+a.name+"' operator.")
				return pl
			}
			pl.assign = &assignment{target: e, op: a.name, value: p.statement()}
			return pl
		}
		pl.expr = e
	default:
		p.unexpected(t)
	}
	for p.err == nil {
		bar := p.peek(operatorMode)
		if bar.kind == tokRedirect {
			p.redirection(pl, bar)
			continue
		}
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

// redirection parses > path, >> path, 2>$null, 2>&1 at the end of a
// pipeline.
func (p *parser) redirection(pl *pipeline, t token) {
	p.advance(t)
	switch {
	case strings.Contains(t.name, "&"):
		return // 2>&1: errors and output share the host already
	case t.name[0] != '>':
		// The error stream (2>$null) or all streams (*>): errors end the
		// script here whatever happens to their text, so only $null is
		// accepted, as the common way to keep a line quiet.
		v := p.peek(commandMode)
		if v.kind == tokVariable && strings.EqualFold(v.name, "null") {
			p.advance(v)
			return
		}
		p.fail(t.pos, "Only '2>$null' or '2>&1' redirect the error stream here; use -ErrorAction SilentlyContinue to go on after an error.")
		return
	}
	v := p.peek(commandMode)
	if !startsArgument(v.kind) {
		p.fail(t.end, "Missing file specification after redirection operator.")
		return
	}
	if pl.redirect != nil {
		p.fail(t.pos, "The output stream for this command is already redirected.")
		return
	}
	pl.redirect = &redirection{path: p.primary(v, commandMode), append: t.name == ">>"}
}

// assignable reports whether e may be assigned to.
func assignable(e expr) bool {
	switch e := e.(type) {
	case *variableExpr:
		return true
	case *memberExpr:
		return !e.static
	case *indexExpr:
		return true
	case *castExpr:
		return assignable(e.operand) // [int]$n = "5"
	}
	return false
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
		case t.kind == tokSplat:
			p.advance(t)
			c.elems = append(c.elems, commandElement{splat: t.name})
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

// The expression grammar follows PowerShell's operator precedence
// (about_Operator_Precedence), lowest first: -and -or -xor; comparison and
// the other named binary operators (-eq, -like, -replace, -split,
// -join...); + -; * / %; unary -; -f; ..; -not and !; the comma;
// unary -split and -join; casts; then member access, method calls and
// indexing. Each level returns nil, without an error, when there is no
// operand at all.

// expression parses a value in expressionMode.
func (p *parser) expression() expr {
	left := p.comparison()
	for left != nil {
		t := p.peek(operatorMode)
		if t.kind != tokOperator || (t.name != "and" && t.name != "or" && t.name != "xor") {
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

// binaryLevel parses operand { op operand } for the operators ops accepts,
// left to right.
func (p *parser) binaryLevel(ops func(string) bool, operand func() expr) expr {
	left := operand()
	for left != nil && p.err == nil {
		t := p.peek(operatorMode)
		if t.kind != tokOperator || !ops(t.name) {
			return left
		}
		p.advance(t)
		p.skipNewlines(expressionMode)
		if !p.enter(t.pos) {
			return nil
		}
		right := operand()
		p.leave()
		if right == nil {
			name := t.name
			if len(name) > 1 && name != ".." {
				name = "-" + name
			}
			p.fail(p.last, "You must provide a value expression following the '"+name+"' operator.")
			return nil
		}
		left = &binaryExpr{op: t.name, left: left, right: right}
	}
	return left
}

func (p *parser) comparison() expr {
	return p.binaryLevel(isComparison, p.additive)
}

func (p *parser) additive() expr {
	return p.binaryLevel(func(op string) bool { return op == "+" || op == "-" }, p.multiplicative)
}

func (p *parser) multiplicative() expr {
	return p.binaryLevel(func(op string) bool { return op == "*" || op == "/" || op == "%" }, p.negation)
}

// negation parses -operand and +operand.
func (p *parser) negation() expr {
	t := p.peek(expressionMode)
	if t.kind != tokOperator || (t.name != "-" && t.name != "+") {
		return p.format()
	}
	p.advance(t)
	if !p.enter(t.pos) {
		return nil
	}
	defer p.leave()
	operand := p.negation()
	if operand == nil {
		p.fail(p.last, "Missing expression after unary operator '"+t.name+"'.")
		return nil
	}
	return &unaryExpr{op: t.name, operand: operand}
}

func (p *parser) format() expr {
	return p.binaryLevel(func(op string) bool { return op == "f" }, p.rangeLevel)
}

func (p *parser) rangeLevel() expr {
	return p.binaryLevel(func(op string) bool { return op == ".." }, p.not)
}

// not parses -not operand and !operand.
func (p *parser) not() expr {
	t := p.peek(expressionMode)
	if t.kind != tokOperator || t.name != "not" {
		return p.list()
	}
	p.advance(t)
	if !p.enter(t.pos) {
		return nil
	}
	defer p.leave()
	operand := p.not()
	if operand == nil {
		p.fail(p.last, "Missing expression after unary operator '-not'.")
		return nil
	}
	return &notExpr{operand: operand}
}

// list parses a comma list of unary expressions, or nil when there is
// none. Inside a method call's parentheses the comma separates the
// arguments instead (noComma).
func (p *parser) list() expr {
	first := p.unary()
	if first == nil || p.noComma || p.peek(operatorMode).kind != tokComma {
		return first
	}
	list := &arrayExpr{elems: []expr{first}}
	for t := p.peek(operatorMode); t.kind == tokComma; t = p.peek(operatorMode) {
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

// unary parses ,value (an array of one element), -split value,
// -join value, ++$x, --$x, casts and primaries.
func (p *parser) unary() expr {
	t := p.peek(expressionMode)
	switch {
	case t.kind == tokComma:
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
	case t.kind == tokOperator && (t.name == "split" || t.name == "join" || t.name == "csplit" || t.name == "isplit"):
		p.advance(t)
		if !p.enter(t.pos) {
			return nil
		}
		defer p.leave()
		operand := p.unary()
		if operand == nil {
			p.fail(p.last, "Missing expression after unary operator '-"+t.name+"'.")
			return nil
		}
		return &unaryExpr{op: t.name, operand: operand}
	case t.kind == tokIncr:
		p.advance(t)
		operand := p.unary()
		if operand == nil || !assignable(operand) {
			p.fail(t.end, "The '"+t.name+"' operator works only on variables or on properties.")
			return nil
		}
		delta := int64(1)
		if t.name == "--" {
			delta = -1
		}
		return &incrExpr{target: operand, delta: delta, prefix: true}
	case t.kind == tokType:
		return p.cast(t)
	}
	return p.primary(t, expressionMode)
}

// cast parses [type]operand, or a type literal alone ([DateTime]::Now,
// -is [string]).
func (p *parser) cast(t token) expr {
	p.advance(t)
	if p.lx.src[p.pos:min(p.pos+2, len(p.lx.src))] == "::" {
		return p.postfix(&typeExpr{name: t.name}, expressionMode)
	}
	next := p.peek(expressionMode)
	if next.kind == tokType || (startsExpression(next.kind) && next.kind != tokOperator && next.kind != tokComma && next.kind != tokLCurly) {
		if !p.enter(t.pos) {
			return nil
		}
		defer p.leave()
		operand := p.unary()
		if operand == nil {
			return &typeExpr{name: t.name}
		}
		return &castExpr{typeName: t.name, operand: operand}
	}
	return &typeExpr{name: t.name}
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
		return p.postfix(e, mode)
	case *hashExpr, *constExpr, *expandExpr:
		// "text".ToUpper() in an expression; as a command argument a
		// quoted string or word ends where it ends.
		if mode != commandMode {
			return p.postfix(e, mode)
		}
	}
	return e
}

// postfix parses what follows a value without a space: .Name, .Name(args),
// ::Name, [index], and ++ or -- after a variable.
func (p *parser) postfix(e expr, mode lexMode) expr {
	for p.err == nil && p.pos < len(p.lx.src) {
		src := p.lx.src
		static := false
		switch {
		case src[p.pos] == '.' && p.pos+1 < len(src) && src[p.pos+1] != '.':
		case strings.HasPrefix(src[p.pos:], "::"):
			static = true
		case src[p.pos] == '[':
			open := p.pos
			p.pos++
			if !p.enter(open) {
				return nil
			}
			saved := p.noComma
			p.noComma = false
			p.skipNewlines(expressionMode)
			index := p.expression()
			p.noComma = saved
			p.leave()
			if index == nil {
				p.fail(p.pos, "Array index expression is missing or not valid.")
				return nil
			}
			p.skipNewlines(expressionMode)
			if t := p.peek(operatorMode); t.kind != tokRBracket {
				p.fail(p.last, "Missing ']' after array index expression.")
				return nil
			} else {
				p.advance(t)
			}
			e = &indexExpr{target: e, index: index}
			continue
		default:
			if mode != commandMode {
				if t := p.peek(operatorMode); t.kind == tokIncr && assignable(e) && t.pos == p.pos {
					p.advance(t)
					delta := int64(1)
					if t.name == "--" {
						delta = -1
					}
					return &incrExpr{target: e, delta: delta}
				}
			}
			return e
		}
		dot := p.pos
		nameStart := p.pos + 1
		if static {
			nameStart = p.pos + 2
		}
		var name string
		end := p.lx.name(nameStart)
		switch {
		case end > nameStart:
			name = src[nameStart:end]
		case nameStart < len(src) && (isSingleQuote(p.lx.runeAt(nameStart)) || isDoubleQuote(p.lx.runeAt(nameStart))):
			// $_."Display Name", for CSV columns with spaces.
			t := p.peekAt(nameStart, expressionMode)
			if t.kind != tokString {
				return e
			}
			c, ok := t.value.(*constExpr)
			if !ok {
				p.fail(nameStart, "A property name must be a constant string here.")
				return nil
			}
			name, end = toString(c.value), t.end
		default:
			if static {
				p.fail(dot, "Missing property name after '::'.")
				return nil
			}
			return e
		}
		p.pos, p.last = end, end
		if p.pos < len(src) && src[p.pos] == '(' {
			args := p.methodArguments()
			if p.err != nil {
				return nil
			}
			e = &methodExpr{target: e, name: name, args: args, static: static}
			continue
		}
		e = &memberExpr{target: e, name: name, static: static}
	}
	return e
}

// peekAt lexes the token at pos without consuming anything.
func (p *parser) peekAt(pos int, mode lexMode) token {
	t, err := p.lx.next(pos, mode)
	if err != nil {
		p.fail(pos, err.Error())
		return token{kind: tokEOF, pos: pos, end: pos}
	}
	return t
}

// methodArguments parses (arg, arg...) at p.pos.
func (p *parser) methodArguments() []expr {
	open := p.pos
	p.pos++
	if !p.enter(open) {
		return nil
	}
	defer p.leave()
	saved := p.noComma
	p.noComma = true
	defer func() { p.noComma = saved }()
	var args []expr
	p.skipNewlines(expressionMode)
	if t := p.peek(expressionMode); t.kind == tokRParen {
		p.advance(t)
		return args
	}
	for p.err == nil {
		p.skipNewlines(expressionMode)
		a := p.expression()
		if a == nil {
			p.fail(p.last, "Missing argument in method call.")
			return nil
		}
		args = append(args, a)
		p.skipNewlines(expressionMode)
		t := p.peek(operatorMode)
		switch t.kind {
		case tokComma:
			p.advance(t)
			continue
		case tokRParen:
			p.advance(t)
			return args
		}
		p.fail(p.last, "Missing closing ')' in method call.")
	}
	return nil
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
	case tokType:
		if mode == expressionMode {
			return p.cast(t)
		}
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
	defer p.allowComma()()
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
	defer p.allowComma()()
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
	defer p.allowComma()()
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
	defer p.allowComma()()
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

// allowComma lets commas make lists again inside brackets within a
// method call's arguments; the function it returns restores the setting.
func (p *parser) allowComma() func() {
	saved := p.noComma
	p.noComma = false
	return func() { p.noComma = saved }
}

// startsExpression reports whether a token of kind k can start an
// expression in expressionMode.
func startsExpression(k tokenKind) bool {
	switch k {
	case tokNumber, tokString, tokVariable, tokLParen, tokAtParen, tokDollarParen, tokAtCurly, tokComma, tokLCurly, tokOperator,
		tokType, tokIncr:
		return true
	}
	return false
}

// startsArgument reports whether a token of kind k can start a command
// argument.
func startsArgument(k tokenKind) bool {
	return k == tokWord || k != tokComma && k != tokType && k != tokIncr && startsExpression(k)
}

// endsCommand reports whether a token of kind k ends a command's
// arguments.
func endsCommand(k tokenKind) bool {
	switch k {
	case tokNewline, tokSemicolon, tokPipe, tokRParen, tokRCurly, tokEOF, tokRedirect:
		return true
	}
	return false
}
