package cmdlet

import "strings"

// keyword parses the control statement that starts with the word t, whose
// lower-cased text is kw. ok is false when kw starts none here: foreach
// and for are also commands when no '(' follows (foreach is
// ForEach-Object's alias), and other words are commands.
func (p *parser) keyword(t token, kw string) (statement, bool) {
	after := func() token { return p.peekAt(t.end, expressionMode) }
	switch kw {
	case "if":
		return p.ifStatement(t), true
	case "foreach":
		if after().kind != tokLParen {
			return nil, false
		}
		return p.foreachStatement(t), true
	case "while":
		if after().kind != tokLParen {
			return nil, false
		}
		p.advance(t)
		cond := p.condition("while")
		return &whileStmt{cond: cond, body: p.body("while")}, true
	case "do":
		if after().kind != tokLCurly {
			return nil, false
		}
		p.advance(t)
		body := p.body("do")
		p.skipNewlines(expressionMode)
		w := p.peek(expressionMode)
		word := strings.ToLower(wordText(w))
		if word != "while" && word != "until" {
			p.fail(p.last, "Missing while or until in do loop.")
			return nil, true
		}
		p.advance(w)
		return &whileStmt{cond: p.condition(word), body: body, post: true, until: word == "until"}, true
	case "for":
		if after().kind != tokLParen {
			return nil, false
		}
		return p.forStatement(t), true
	case "function", "filter":
		return p.functionStatement(t), true
	case "return", "throw", "exit":
		p.advance(t)
		st := &flowStmt{kind: kw}
		if n := p.peek(expressionMode); n.kind == tokWord || startsExpression(n.kind) {
			st.value = p.pipeline()
		}
		return st, true
	case "break", "continue":
		p.advance(t)
		return &flowStmt{kind: kw}, true
	case "try":
		if after().kind != tokLCurly {
			return nil, false
		}
		return p.tryStatement(t), true
	case "param":
		if after().kind != tokLParen {
			return nil, false
		}
		// A script's own param(...) block: its defaults become variables.
		p.advance(t)
		p.advance(p.peek(expressionMode))
		return &functionStmt{fn: &function{params: p.paramList(tokRParen)}}, true
	case "else", "elseif", "catch", "finally":
		p.fail(t.pos, "Unexpected token '"+p.lx.src[t.pos:t.end]+"' in expression or statement.")
		return nil, true
	}
	return nil, false
}

// wordText is the text of a bare word token, "" for other tokens.
func wordText(t token) string {
	if t.kind != tokWord {
		return ""
	}
	if c, ok := t.value.(*constExpr); ok {
		if s, ok := c.value.(string); ok {
			return s
		}
	}
	return ""
}

// condition parses (pipeline) after if, elseif, while, until.
func (p *parser) condition(kw string) *pipeline {
	p.skipNewlines(expressionMode)
	open := p.peek(expressionMode)
	if open.kind != tokLParen {
		p.fail(p.last, "Missing '(' after '"+kw+"' in "+kw+" statement.")
		return nil
	}
	p.advance(open)
	if !p.enter(open.pos) {
		return nil
	}
	defer p.leave()
	defer p.allowComma()()
	p.skipNewlines(expressionMode)
	if t := p.peek(expressionMode); t.kind == tokRParen {
		p.fail(t.pos, "Missing condition in "+kw+" statement after '"+kw+" ('.")
		return nil
	}
	pl := p.pipeline()
	p.skipNewlines(expressionMode)
	if t := p.peek(expressionMode); t.kind != tokRParen {
		p.fail(p.last, "Missing closing ')' after expression in '"+kw+"' statement.")
		return nil
	} else {
		p.advance(t)
	}
	return pl
}

// body parses { statements } after a control keyword.
func (p *parser) body(kw string) []statement {
	p.skipNewlines(expressionMode)
	open := p.peek(expressionMode)
	if open.kind != tokLCurly {
		p.fail(p.last, "Missing statement block after "+kw+" ( condition ).")
		return nil
	}
	b, _ := p.block(open).(*blockExpr)
	if b == nil {
		return nil
	}
	if b.statements == nil {
		return []statement{}
	}
	return b.statements
}

func (p *parser) ifStatement(t token) statement {
	p.advance(t)
	st := &ifStmt{}
	kw := "if"
	for p.err == nil {
		cond := p.condition(kw)
		st.clauses = append(st.clauses, ifClause{cond: cond, body: p.body(kw)})
		// elseif and else may follow on later lines.
		save := p.pos
		p.skipNewlines(expressionMode)
		next := strings.ToLower(wordText(p.peek(expressionMode)))
		switch next {
		case "elseif":
			p.advance(p.peek(expressionMode))
			kw = "elseif"
			continue
		case "else":
			p.advance(p.peek(expressionMode))
			st.elseBody = p.body("else")
			return st
		}
		p.pos = save
		return st
	}
	return st
}

func (p *parser) foreachStatement(t token) statement {
	p.advance(t)
	open := p.peek(expressionMode)
	p.advance(open)
	if !p.enter(open.pos) {
		return nil
	}
	defer p.leave()
	v := p.peek(expressionMode)
	if v.kind != tokVariable {
		p.fail(v.pos, "Missing variable name after foreach.")
		return nil
	}
	p.advance(v)
	in := p.peek(expressionMode)
	if !strings.EqualFold(wordText(in), "in") {
		p.fail(p.last, "Missing 'in' after variable in foreach loop.")
		return nil
	}
	p.advance(in)
	p.skipNewlines(expressionMode)
	if n := p.peek(expressionMode); n.kind != tokWord && !startsExpression(n.kind) {
		p.fail(p.last, "Missing foreach loop pipeline.")
		return nil
	}
	coll := p.pipeline()
	p.skipNewlines(expressionMode)
	if c := p.peek(expressionMode); c.kind != tokRParen {
		p.fail(p.last, "Missing closing ')' after expression in 'foreach' statement.")
		return nil
	} else {
		p.advance(c)
	}
	return &foreachStmt{variable: v.name, collection: coll, body: p.body("foreach")}
}

func (p *parser) forStatement(t token) statement {
	p.advance(t)
	open := p.peek(expressionMode)
	p.advance(open)
	if !p.enter(open.pos) {
		return nil
	}
	defer p.leave()
	st := &forStmt{}
	part := func(end tokenKind) *pipeline {
		p.skipNewlines(expressionMode)
		var pl *pipeline
		if n := p.peek(expressionMode); n.kind != end {
			pl = p.pipeline()
		}
		p.skipNewlines(expressionMode)
		if n := p.peek(expressionMode); n.kind != end {
			p.fail(p.last, "Missing closing ')' in for loop.")
			return nil
		} else {
			p.advance(n)
		}
		return pl
	}
	st.init = part(tokSemicolon)
	st.cond = part(tokSemicolon)
	st.step = part(tokRParen)
	st.body = p.body("for")
	return st
}

func (p *parser) tryStatement(t token) statement {
	p.advance(t)
	st := &tryStmt{body: p.body("try")}
	for p.err == nil {
		save := p.pos
		p.skipNewlines(expressionMode)
		switch strings.ToLower(wordText(p.peek(expressionMode))) {
		case "catch":
			p.advance(p.peek(expressionMode))
			// catch [System.Exception] { }: every error is caught alike.
			for n := p.peek(expressionMode); n.kind == tokType || n.kind == tokComma; n = p.peek(expressionMode) {
				p.advance(n)
			}
			st.catch, st.hasCatch = p.body("catch"), true
			continue
		case "finally":
			p.advance(p.peek(expressionMode))
			st.finally = p.body("finally")
		default:
			p.pos = save
		}
		break
	}
	if !st.hasCatch && st.finally == nil && p.err == nil {
		p.fail(p.last, "The Try statement is missing its Catch or Finally block.")
	}
	return st
}

// functionStatement parses function Name [(params)] { [param(...)] body }.
func (p *parser) functionStatement(t token) statement {
	p.advance(t)
	n := p.peek(commandMode)
	name := wordText(n)
	if name == "" {
		p.fail(p.last, "Missing name after function keyword.")
		return nil
	}
	p.advance(n)
	fn := &function{name: name}
	if o := p.peek(expressionMode); o.kind == tokLParen {
		p.advance(o)
		fn.params = p.paramList(tokRParen)
	}
	p.skipNewlines(expressionMode)
	open := p.peek(expressionMode)
	if open.kind != tokLCurly {
		p.fail(p.last, "Missing function body in function declaration.")
		return nil
	}
	p.advance(open)
	if !p.enter(open.pos) {
		return nil
	}
	defer p.leave()
	defer p.allowComma()()
	// [CmdletBinding()] and param(...) open the body.
	for p.err == nil {
		p.skipNewlines(expressionMode)
		t := p.peek(expressionMode)
		if t.kind == tokType {
			p.advance(t)
			continue
		}
		if strings.EqualFold(wordText(t), "param") && p.peekAt(t.end, expressionMode).kind == tokLParen {
			p.advance(t)
			p.advance(p.peek(expressionMode))
			fn.params = append(fn.params, p.paramList(tokRParen)...)
		}
		break
	}
	// begin/process/end blocks, or plain statements.
	for p.err == nil {
		p.skipNewlines(expressionMode)
		t := p.peek(expressionMode)
		kw := strings.ToLower(wordText(t))
		if (kw != "begin" && kw != "process" && kw != "end") || p.peekAt(t.end, expressionMode).kind != tokLCurly {
			break
		}
		p.advance(t)
		b := p.body(kw)
		switch kw {
		case "begin":
			fn.begin = b
		case "process":
			fn.process = b
		default:
			fn.end = b
		}
	}
	if fn.begin == nil && fn.process == nil && fn.end == nil {
		fn.body = p.statements(tokRCurly)
	}
	if c := p.peek(expressionMode); c.kind != tokRCurly {
		p.fail(open.pos, "Missing closing '}' in statement block or type definition.")
		return nil
	} else {
		p.advance(c)
	}
	return &functionStmt{name: name, fn: fn}
}

// paramList parses the parameters of param( ... ) or function F( ... ),
// after the '(' and through end: [attributes] [type] $name [= default].
func (p *parser) paramList(end tokenKind) []paramDecl {
	defer p.allowComma()()
	var params []paramDecl
	for p.err == nil {
		p.skipNewlines(expressionMode)
		t := p.peek(expressionMode)
		if t.kind == end {
			p.advance(t)
			return params
		}
		var d paramDecl
		for t.kind == tokType {
			p.advance(t)
			name := t.name
			if open := strings.IndexByte(name, '('); open >= 0 {
				// An attribute: [Parameter(Mandatory=$true, Position=0)],
				// [ValidateNotNullOrEmpty()].
				if strings.EqualFold(strings.TrimSpace(name[:open]), "Parameter") {
					args := strings.ToLower(strings.ReplaceAll(name[open:], " ", ""))
					d.mandatory = strings.Contains(args, "mandatory") && !strings.Contains(args, "mandatory=$false")
				}
			} else {
				d.typeName = name
			}
			p.skipNewlines(expressionMode)
			t = p.peek(expressionMode)
		}
		if t.kind != tokVariable {
			p.fail(t.pos, "Missing parameter name: a parameter is written $Name, [type]$Name or $Name = default.")
			return nil
		}
		p.advance(t)
		d.name = t.name
		if eq := p.peek(operatorMode); eq.kind == tokAssign && eq.name == "=" {
			p.advance(eq)
			saved := p.noComma
			p.noComma = true
			d.def = p.expression()
			p.noComma = saved
			if d.def == nil {
				p.fail(p.last, "Missing default value after '=' in the parameter list.")
				return nil
			}
		}
		params = append(params, d)
		p.skipNewlines(expressionMode)
		switch n := p.peek(operatorMode); n.kind {
		case tokComma:
			p.advance(n)
		case end:
		default:
			p.fail(p.last, "Missing ')' in function parameter list.")
			return nil
		}
	}
	return nil
}
