package cmdlet

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

type tokenKind int

const (
	tokEOF tokenKind = iota
	tokNewline
	tokSemicolon
	tokPipe
	tokComma
	tokEquals // only in expressionMode, between a hashtable key and its value
	tokLParen
	tokRParen
	tokLCurly
	tokRCurly
	tokAtParen     // @(
	tokAtCurly     // @{
	tokDollarParen // $(
	tokParameter   // -Name, or -Name: when its argument is attached
	tokVariable    // $name
	tokNumber
	tokString   // a quoted string
	tokWord     // a bare word: an argument, a command name, a hashtable key
	tokOperator // -eq, -and, -not, + - * / % .. (expression modes); name holds it, lower case
	tokAssign   // = += -= *= /= %= (operatorMode); name holds it
	tokIncr     // ++ or -- ; name holds it
	tokType     // [TypeName] (expressionMode); name holds what is between the brackets
	tokRBracket // ] (expression modes)
	tokSplat    // @name (commandMode); name holds the variable's name
	tokRedirect // > or >> (name), 2> 2>> 2>&1 ...: the stream's number first
)

// lexMode is what the parser expects next. PowerShell tokenizes a command's
// arguments differently from expressions: in an argument, -Name is a
// parameter and a bare word such as sean@contoso.com is a string.
type lexMode int

const (
	commandMode lexMode = iota
	// expressionMode is for values: the start of a statement, hashtable
	// keys and values, the elements of a comma list in parentheses. A bare
	// word there is a number, a command name or a hashtable key, and it
	// ends at '='.
	expressionMode
	// operatorMode is after an operand: + - * / % are operators there,
	// = and += assign, ++ increments, and -name is a binary operator. A
	// character that starts no operator is lexed as in expressionMode.
	operatorMode
)

type token struct {
	kind     tokenKind
	pos, end int    // byte offsets of the token in the source
	name     string // of a parameter or variable
	colon    bool   // a parameter written -Name:
	value    expr   // of a word, string or number
}

// lexer turns source into tokens on demand: the parser asks for the token
// at an offset in the mode it expects, which is how PowerShell's tokenizer
// and parser cooperate too.
type lexer struct {
	src string
	// subexpression parses the statements of a "$(...)" inside a string,
	// from just after "$(", returning them and the offset after ')'. It
	// belongs to the parser, because a subexpression is a whole script.
	subexpression func(pos int) (expr, int, error)
}

// next returns the token at or after pos (skipping spaces and comments).
func (l *lexer) next(pos int, mode lexMode) (token, error) {
	pos, err := l.skipSpace(pos)
	if err != nil {
		return token{}, err
	}
	if pos >= len(l.src) {
		return token{kind: tokEOF, pos: pos, end: pos}, nil
	}
	if t, ok := l.redirect(pos, mode); ok {
		return t, nil
	}
	if mode == operatorMode {
		if t, ok := l.operator(pos); ok {
			return t, nil
		}
		mode = expressionMode
	}
	punct := func(kind tokenKind, width int) (token, error) {
		return token{kind: kind, pos: pos, end: pos + width}, nil
	}
	r, w := utf8.DecodeRuneInString(l.src[pos:])
	switch {
	case r == '\n':
		return punct(tokNewline, 1)
	case r == '\r':
		return punct(tokNewline, l.newlineEnd(pos)-pos)
	case r == ';':
		return punct(tokSemicolon, 1)
	case r == '|':
		return punct(tokPipe, 1)
	case r == ',':
		return punct(tokComma, 1)
	case r == '(':
		return punct(tokLParen, 1)
	case r == ')':
		return punct(tokRParen, 1)
	case r == '{':
		return punct(tokLCurly, 1)
	case r == '}':
		return punct(tokRCurly, 1)
	case r == '=' && mode == expressionMode:
		return punct(tokEquals, 1)
	case r == ']' && mode == expressionMode:
		return punct(tokRBracket, 1)
	case r == '[' && mode == expressionMode:
		return l.typeLiteral(pos)
	case r == '@':
		switch l.at(pos + 1) {
		case '(':
			return punct(tokAtParen, 2)
		case '{':
			return punct(tokAtCurly, 2)
		}
		if mode == commandMode {
			if end := l.name(pos + 1); end > pos+1 {
				return token{kind: tokSplat, pos: pos, end: end, name: l.src[pos+1 : end]}, nil
			}
		}
		// Splatting (@name) and here-strings (@"...") are not supported yet.
		return token{}, l.errorf(pos, "Unrecognized token in source text.")
	case r == '$' && l.at(pos+1) == '(':
		return punct(tokDollarParen, 2)
	case r == '$':
		name, end, ok, err := l.variable(pos)
		if err != nil {
			return token{}, err
		}
		if ok {
			return token{kind: tokVariable, pos: pos, end: end, name: name}, nil
		}
		// A '$' without a name after it is an ordinary character.
	case isSingleQuote(r):
		s, end, err := l.singleQuoted(pos)
		if err != nil {
			return token{}, err
		}
		return token{kind: tokString, pos: pos, end: end, value: &constExpr{value: s}}, nil
	case isDoubleQuote(r):
		var b textBuilder
		end, err := l.doubleQuoted(pos, &b)
		if err != nil {
			return token{}, err
		}
		return token{kind: tokString, pos: pos, end: end, value: b.expr()}, nil
	case mode == commandMode && isDash(r) && isParameterStart(l.runeAt(pos+w)):
		return l.parameter(pos, w), nil
	case mode == expressionMode && isDash(r) && isParameterStart(l.runeAt(pos+w)) && !l.parameter(pos, w).colon &&
		operators[strings.ToLower(l.parameter(pos, w).name)]:
		// Any other -word in an expression stays a word.
		t := l.parameter(pos, w)
		return token{kind: tokOperator, pos: pos, end: t.end, name: strings.ToLower(t.name)}, nil
	case mode == expressionMode && r == '!' && l.at(pos+1) != '=':
		return token{kind: tokOperator, pos: pos, end: pos + 1, name: "not"}, nil
	case mode == expressionMode && (isDash(r) || r == '+') && l.unarySign(pos+w):
		// A sign before a variable, a parenthesis or another sign is the
		// unary operator; before a digit it is part of the number.
		name := "-"
		if r == '+' {
			name = "+"
		}
		if next, w2 := utf8.DecodeRuneInString(l.src[pos+w:]); next == r && (r == '+' || isDash(next)) {
			return token{kind: tokIncr, pos: pos, end: pos + w + w2, name: name + name}, nil
		}
		return token{kind: tokOperator, pos: pos, end: pos + w, name: name}, nil
	}
	return l.word(pos, mode)
}

// unarySign reports whether a + or - followed by what is at i is a unary
// operator in an expression rather than the start of a word or number.
func (l *lexer) unarySign(i int) bool {
	if i >= len(l.src) {
		return false
	}
	switch l.src[i] {
	case '$', '(', '[', '@', '"', '\'', '-', '+':
		return true
	}
	return false
}

// operator lexes a binary operator, an assignment or ++/-- at pos, in
// operatorMode; ok is false when none starts there.
func (l *lexer) operator(pos int) (token, bool) {
	r, w := utf8.DecodeRuneInString(l.src[pos:])
	next := l.runeAt(pos + w)
	tok := func(kind tokenKind, width int, name string) (token, bool) {
		return token{kind: kind, pos: pos, end: pos + width, name: name}, true
	}
	switch {
	case r == '=':
		return tok(tokAssign, 1, "=")
	case r == '+':
		switch next {
		case '+':
			return tok(tokIncr, 2, "++")
		case '=':
			return tok(tokAssign, 2, "+=")
		}
		return tok(tokOperator, 1, "+")
	case isDash(r):
		switch {
		case isDash(next):
			return tok(tokIncr, w+utf8.RuneLen(next), "--")
		case next == '=':
			return tok(tokAssign, w+1, "-=")
		case isParameterStart(next):
			t := l.parameter(pos, w)
			if name := strings.ToLower(t.name); !t.colon && operators[name] {
				return token{kind: tokOperator, pos: pos, end: t.end, name: name}, true
			}
			return token{}, false
		}
		return tok(tokOperator, w, "-")
	case r == '*' || r == '/' || r == '%':
		if next == '=' {
			return tok(tokAssign, 2, string(r)+"=")
		}
		return tok(tokOperator, 1, string(r))
	case r == '.' && next == '.':
		return tok(tokOperator, 2, "..")
	case r == ']':
		return tok(tokRBracket, 1, "")
	}
	return token{}, false
}

// redirect lexes > file, >> file and the error stream's 2> 2>> 2>&1,
// which end a pipeline (operatorMode and commandMode).
func (l *lexer) redirect(pos int, mode lexMode) (token, bool) {
	if mode == expressionMode {
		return token{}, false
	}
	i := pos
	stream := ""
	if c := l.at(i); (c >= '1' && c <= '6' || c == '*') && l.at(i+1) == '>' {
		stream = string(c)
		i++
	}
	if l.at(i) != '>' {
		return token{}, false
	}
	i++
	name := stream + ">"
	if l.at(i) == '>' {
		name += ">"
		i++
	}
	if l.at(i) == '&' && l.at(i+1) >= '1' && l.at(i+1) <= '6' {
		name += l.src[i : i+2]
		i += 2
	}
	return token{kind: tokRedirect, pos: pos, end: i, name: name}, true
}

// typeLiteral lexes [TypeName] at pos, brackets nested for generic and
// array types ([string[]]) and attribute arguments kept verbatim
// ([Parameter(Mandatory=$true)]).
func (l *lexer) typeLiteral(pos int) (token, error) {
	depth := 0
	for i := pos; i < len(l.src); i++ {
		switch l.src[i] {
		case '[':
			depth++
		case ']':
			depth--
			if depth == 0 {
				name := strings.TrimSpace(l.src[pos+1 : i])
				if name == "" {
					return token{}, l.errorf(pos+1, "Missing type name after '['.")
				}
				return token{kind: tokType, pos: pos, end: i + 1, name: name}, nil
			}
		case '\n', '\r':
			return token{}, l.errorf(pos, "Missing ] at end of type token.")
		}
	}
	return token{}, l.errorf(pos, "Missing ] at end of type token.")
}

// operators are the expression operators the language knows.
var operators = map[string]bool{
	"eq": true, "ne": true, "gt": true, "ge": true, "lt": true, "le": true,
	"like": true, "notlike": true, "match": true, "notmatch": true, "contains": true, "notcontains": true,
	"in": true, "notin": true,
	"ieq": true, "ine": true, "ilike": true, "inotlike": true, "imatch": true, "inotmatch": true,
	"ceq": true, "cne": true, "clike": true, "cnotlike": true, "cmatch": true, "cnotmatch": true,
	"and": true, "or": true, "not": true,
}

// skipSpace skips spaces, comments and line continuations (a backtick at
// the end of a line), stopping at a newline, which separates statements.
func (l *lexer) skipSpace(pos int) (int, error) {
	for pos < len(l.src) {
		r, w := utf8.DecodeRuneInString(l.src[pos:])
		switch {
		case r == '\n' || r == '\r':
			return pos, nil
		case isSpace(r):
			pos += w
		case r == '`' && pos+1 == len(l.src):
			pos++ // a continuation of nothing
		case r == '`' && isNewline(l.src[pos+1]):
			pos = l.newlineEnd(pos + 1)
		case r == '#':
			for pos < len(l.src) && !isNewline(l.src[pos]) {
				pos++
			}
		case r == '<' && l.at(pos+1) == '#':
			end := strings.Index(l.src[pos+2:], "#>")
			if end < 0 {
				return pos, l.errorf(pos, "The terminator '#>' is missing from the multiline comment.")
			}
			pos += 2 + end + 2
		default:
			return pos, nil
		}
	}
	return pos, nil
}

// parameter scans -Name or -Name: at pos; dash is the width of the dash,
// which may be an en or em dash pasted from a document.
func (l *lexer) parameter(pos, dash int) token {
	i := pos + dash
	for i < len(l.src) {
		r, w := utf8.DecodeRuneInString(l.src[i:])
		if r == ':' || endsWord(r, commandMode) || isSingleQuote(r) || isDoubleQuote(r) {
			break
		}
		i += w
	}
	t := token{kind: tokParameter, pos: pos, name: l.src[pos+dash : i]}
	if l.at(i) == ':' {
		t.colon = true
		i++
	}
	t.end = i
	return t
}

// word scans a bare word. Quoted parts, escapes and $variables may occur
// inside it (sean"@"contoso.com is one word); a word of ordinary
// characters that reads as a number is a number.
func (l *lexer) word(pos int, mode lexMode) (token, error) {
	var b textBuilder
	ordinary := true // only ordinary characters, so possibly a number
	i := pos
scan:
	for i < len(l.src) {
		r, w := utf8.DecodeRuneInString(l.src[i:])
		if endsWord(r, mode) {
			break
		}
		var err error
		switch {
		case r == '`' && i+1 == len(l.src):
			i++ // a backtick at the very end escapes nothing
			break scan
		case r == '`' && isNewline(l.src[i+1]):
			break scan // a line continuation
		case r == '`':
			var s string
			s, i, err = l.escape(i)
			b.text(s)
		case isSingleQuote(r):
			var s string
			s, i, err = l.singleQuoted(i)
			b.text(s)
		case isDoubleQuote(r):
			i, err = l.doubleQuoted(i, &b)
		case r == '$':
			i, err = l.dollar(i, &b)
		default:
			b.text(l.src[i : i+w])
			i += w
			continue
		}
		if err != nil {
			return token{}, err
		}
		ordinary = false
	}
	if i == pos {
		r, _ := utf8.DecodeRuneInString(l.src[pos:])
		return token{}, l.errorf(pos, fmt.Sprintf("Unexpected token '%c' in expression or statement.", r))
	}
	if mode == expressionMode && ordinary {
		// In an expression a number ends where an operator starts: 1+2,
		// $a[0], 1..5, 10/2.
		if n := numberPrefix(l.src[pos:i]); n > 0 && n < i-pos {
			i = pos + n
			b = textBuilder{}
			b.text(l.src[pos:i])
		}
	}
	t := token{kind: tokWord, pos: pos, end: i, value: b.expr()}
	if text := l.src[pos:i]; ordinary {
		if n, ok := parseNumber(text); ok {
			t.kind = tokNumber
			t.value = &constExpr{value: n}
			if mode == commandMode {
				t.value = &constExpr{value: typedNumber{value: n, text: text}}
			}
		}
	}
	return t, nil
}

// singleQuoted scans a verbatim string at pos: no escapes, and two
// quotes stand for one.
func (l *lexer) singleQuoted(pos int) (string, int, error) {
	_, w := utf8.DecodeRuneInString(l.src[pos:])
	var b strings.Builder
	for i := pos + w; i < len(l.src); {
		r, w := utf8.DecodeRuneInString(l.src[i:])
		if isSingleQuote(r) {
			next, w2 := utf8.DecodeRuneInString(l.src[i+w:])
			if !isSingleQuote(next) {
				return b.String(), i + w, nil
			}
			b.WriteString(l.src[i+w : i+w+w2])
			i += w + w2
			continue
		}
		b.WriteString(l.src[i : i+w])
		i += w
	}
	return "", 0, l.errorf(pos, "The string is missing the terminator: '.")
}

// doubleQuoted scans an expandable string at pos into b: backtick escapes,
// "" for one quote, $variables and $(subexpressions).
func (l *lexer) doubleQuoted(pos int, b *textBuilder) (int, error) {
	_, w := utf8.DecodeRuneInString(l.src[pos:])
	for i := pos + w; i < len(l.src); {
		r, w := utf8.DecodeRuneInString(l.src[i:])
		var err error
		switch {
		case isDoubleQuote(r):
			next, w2 := utf8.DecodeRuneInString(l.src[i+w:])
			if !isDoubleQuote(next) {
				return i + w, nil
			}
			b.text(l.src[i+w : i+w+w2])
			i += w + w2
		case r == '`' && i+1 < len(l.src):
			var s string
			s, i, err = l.escape(i)
			b.text(s)
		case r == '$':
			i, err = l.dollar(i, b)
		default:
			b.text(l.src[i : i+w])
			i += w
		}
		if err != nil {
			return 0, err
		}
	}
	return 0, l.errorf(pos, `The string is missing the terminator: ".`)
}

// escape decodes the backtick escape at i (`n, `t, `u{2013}...; any other
// character stands for itself), returning its text and where it ends.
func (l *lexer) escape(i int) (string, int, error) {
	r, w := utf8.DecodeRuneInString(l.src[i+1:])
	end := i + 1 + w
	switch r {
	case '0':
		return "\x00", end, nil
	case 'a':
		return "\a", end, nil
	case 'b':
		return "\b", end, nil
	case 'e':
		return "\x1b", end, nil
	case 'f':
		return "\f", end, nil
	case 'n':
		return "\n", end, nil
	case 'r':
		return "\r", end, nil
	case 't':
		return "\t", end, nil
	case 'v':
		return "\v", end, nil
	case 'u':
		if l.at(end) == '{' {
			return l.unicodeEscape(i, end+1)
		}
	}
	return l.src[i+1 : end], end, nil
}

// unicodeEscape decodes the hex digits of `u{...} starting at digits.
func (l *lexer) unicodeEscape(pos, digits int) (string, int, error) {
	i := digits
	for i < len(l.src) && isHexDigit(l.src[i]) {
		i++
	}
	switch {
	case i-digits > 6:
		return "", 0, l.errorf(pos, "The Unicode escape sequence contains more than the maximum of six hex digits between braces.")
	case i == digits:
		return "", 0, l.errorf(pos, "The Unicode escape sequence is not valid. A valid sequence is `u{ followed by one to six hex digits and a closing '}'.")
	case l.at(i) != '}':
		return "", 0, l.errorf(pos, "The Unicode escape sequence is missing the closing '}'.")
	}
	v, _ := strconv.ParseUint(l.src[digits:i], 16, 32)
	if v > unicode.MaxRune {
		return "", 0, l.errorf(pos, "The Unicode escape sequence value is out of range. The maximum value is 0x10FFFF.")
	}
	return string(rune(v)), i + 1, nil
}

// dollar adds the $variable or $(subexpression) at i to b, or a plain '$'
// when no name follows it.
func (l *lexer) dollar(i int, b *textBuilder) (int, error) {
	if l.at(i+1) == '(' {
		e, end, err := l.subexpression(i + 2)
		if err != nil {
			return 0, err
		}
		b.expand(e)
		return end, nil
	}
	name, end, ok, err := l.variable(i)
	switch {
	case err != nil:
		return 0, err
	case !ok:
		b.text("$")
		return i + 1, nil
	}
	b.expand(&variableExpr{name: name})
	return end, nil
}

// variable scans $name, $scope:name or ${any name} at pos. ok is false when
// no name follows the '$'.
func (l *lexer) variable(pos int) (name string, end int, ok bool, err error) {
	i := pos + 1
	if l.at(i) == '{' {
		brace := strings.IndexByte(l.src[i:], '}')
		switch {
		case brace < 0:
			return "", 0, false, l.errorf(pos, "Missing } at end of variable name.")
		case brace == 1:
			return "", 0, false, l.errorf(pos, "An empty ${} variable reference was found. A name is required inside the braces.")
		}
		return l.src[i+1 : i+brace], i + brace + 1, true, nil
	}
	end = l.name(i)
	if end == i {
		return "", 0, false, nil
	}
	if l.at(end) == ':' && l.name(end+1) > end+1 {
		end = l.name(end + 1) // $env:Path, $script:count
	}
	return l.src[i:end], end, true, nil
}

// name returns the end of the variable name starting at i.
func (l *lexer) name(i int) int {
	for i < len(l.src) {
		r, w := utf8.DecodeRuneInString(l.src[i:])
		if !unicode.IsLetter(r) && !unicode.IsDigit(r) && r != '_' {
			break
		}
		i += w
	}
	return i
}

func (l *lexer) at(i int) byte {
	if i < len(l.src) {
		return l.src[i]
	}
	return 0
}

func (l *lexer) runeAt(i int) rune {
	if i >= len(l.src) {
		return utf8.RuneError
	}
	r, _ := utf8.DecodeRuneInString(l.src[i:])
	return r
}

// newlineEnd returns the end of the line break at i: \n, \r\n or \r.
func (l *lexer) newlineEnd(i int) int {
	if l.src[i] == '\r' && l.at(i+1) == '\n' {
		return i + 2
	}
	return i + 1
}

func (l *lexer) errorf(pos int, msg string) error {
	return newParseError(l.src, pos, msg)
}

// textBuilder collects an expandable string or word: literal text, and the
// variables and subexpressions to expand when it is evaluated.
type textBuilder struct {
	parts   []expr
	lit     strings.Builder
	expands bool
}

func (b *textBuilder) text(s string) { b.lit.WriteString(s) }

func (b *textBuilder) expand(e expr) {
	b.flush()
	b.parts = append(b.parts, e)
	b.expands = true
}

func (b *textBuilder) flush() {
	if b.lit.Len() > 0 {
		b.parts = append(b.parts, &constExpr{value: b.lit.String()})
		b.lit.Reset()
	}
}

func (b *textBuilder) expr() expr {
	if !b.expands {
		return &constExpr{value: b.lit.String()}
	}
	b.flush()
	return &expandExpr{parts: b.parts}
}

// typedNumber is a number written as a bare command argument. It binds as
// the number, or as the text typed when the parameter takes a string, so
// that -Name 007 keeps its zeros, as in PowerShell.
type typedNumber struct {
	value Value // int64 or float64
	text  string
}

func (n typedNumber) String() string { return n.text }

// multipliers are PowerShell's numeric suffixes, powers of 1024.
var multipliers = map[string]int64{"kb": 1 << 10, "mb": 1 << 20, "gb": 1 << 30, "tb": 1 << 40, "pb": 1 << 50}

// parseNumber reads a PowerShell numeric literal: 42, -42, 0x2A, 1.5, 1e3,
// with an optional KB/MB/GB/TB/PB multiplier (35MB). Integers are int64,
// widened to float64 like PowerShell's when they overflow; anything with a
// fraction or exponent is float64.
func parseNumber(s string) (Value, bool) {
	neg := false
	if r, w := utf8.DecodeRuneInString(s); isDash(r) || r == '+' {
		neg, s = isDash(r), s[w:]
	}
	mult := int64(1)
	if len(s) > 2 {
		if m, ok := multipliers[strings.ToLower(s[len(s)-2:])]; ok {
			mult, s = m, s[:len(s)-2]
		}
	}
	var n int64
	isInt := false
	switch {
	case len(s) > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X'):
		u, err := strconv.ParseUint(s[2:], 16, 64)
		if err != nil || u > math.MaxInt64 {
			return nil, false
		}
		n, isInt = int64(u), true
	case s != "" && strings.Trim(s, "0123456789") == "":
		v, err := strconv.ParseInt(s, 10, 64)
		n, isInt = v, err == nil
	}
	sign := func(f float64) float64 {
		if neg {
			return -f
		}
		return f
	}
	if isInt {
		if n <= math.MaxInt64/mult {
			if neg {
				return -n * mult, true
			}
			return n * mult, true
		}
		return sign(float64(n) * float64(mult)), true
	}
	if !isDecimal(s) {
		return nil, false
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return nil, false
	}
	return sign(f * float64(mult)), true
}

// isDecimal checks the characters of a decimal literal before
// strconv.ParseFloat sees it, since ParseFloat also accepts "Inf", "NaN"
// and hex floats.
func isDecimal(s string) bool {
	if s == "" || !(s[0] == '.' || isDigit(s[0])) {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case isDigit(c), c == '.', c == 'e', c == 'E':
		case (c == '+' || c == '-') && (s[i-1] == 'e' || s[i-1] == 'E'):
		default:
			return false
		}
	}
	return true
}

// endsWord reports whether r ends a bare word.
func endsWord(r rune, mode lexMode) bool {
	switch r {
	case ';', '|', ',', '(', ')', '{', '}', '\n', '\r', '>':
		return true
	case '=', ']':
		return mode != commandMode
	}
	return isSpace(r)
}

// numberPrefix returns the length of the numeric literal at the start of
// s when an operator character follows it (1+2, 0x10*2, 1..5), else 0.
func numberPrefix(s string) int {
	i := 0
	if i < len(s) && (s[i] == '+' || s[i] == '-') {
		i++
	}
	start := i
	if strings.HasPrefix(strings.ToLower(s[i:]), "0x") {
		i += 2
		for i < len(s) && isHexDigit(s[i]) {
			i++
		}
		if i == start+2 {
			return 0
		}
	} else {
		for i < len(s) && isDigit(s[i]) {
			i++
		}
		if i < len(s) && s[i] == '.' && i+1 < len(s) && isDigit(s[i+1]) {
			i++
			for i < len(s) && isDigit(s[i]) {
				i++
			}
		}
		if i == start {
			return 0
		}
		if i+1 < len(s) && (s[i] == 'e' || s[i] == 'E') {
			j := i + 1
			if s[j] == '+' || s[j] == '-' {
				j++
			}
			if j < len(s) && isDigit(s[j]) {
				for j < len(s) && isDigit(s[j]) {
					j++
				}
				i = j
			}
		}
	}
	if i+2 <= len(s) {
		if _, ok := multipliers[strings.ToLower(s[i:i+2])]; ok {
			i += 2
		}
	}
	if i < len(s) && strings.ContainsRune("+-*/%.[", rune(s[i])) {
		return i
	}
	return 0
}

// isSpace reports spaces within a line; a byte order mark at the start of
// a script file counts as one.
func isSpace(r rune) bool {
	return r != '\n' && r != '\r' && (unicode.IsSpace(r) || r == '\uFEFF')
}

func isNewline(c byte) bool { return c == '\n' || c == '\r' }

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

func isHexDigit(c byte) bool {
	return isDigit(c) || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func isParameterStart(r rune) bool { return unicode.IsLetter(r) || r == '_' || r == '?' }

// PowerShell accepts the typographic dashes and quotes that word processors
// substitute, so that commands pasted from documentation work. isDash,
// isSingleQuote and isDoubleQuote recognise them.

func isDash(r rune) bool {
	return r == '-' || r == '\u2013' || r == '\u2014' || r == '\u2015'
}

func isSingleQuote(r rune) bool {
	return r == '\'' || r == '\u2018' || r == '\u2019' || r == '\u201A' || r == '\u201B'
}

func isDoubleQuote(r rune) bool {
	return r == '"' || r == '\u201C' || r == '\u201D' || r == '\u201E'
}
