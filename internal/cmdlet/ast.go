package cmdlet

// Script is parsed source, ready to run with a Runner.
type Script struct {
	statements []statement
}

// statement is one statement of a script or block: a pipeline (an
// assignment included) or a control statement (if, foreach, function...).
type statement interface{ isStatement() }

// pipeline is cmd | cmd | ... The first element may be an expression
// instead of a command: "a","b" | Format-List.
type pipeline struct {
	expr     expr // nil when the pipeline starts with a command
	commands []*command
	// assign is set for "target op pipeline" ($x = ..., $x += ...,
	// $h.Name = ...); expr and commands are then unused.
	assign *assignment
	// redirect is "> file" or ">> file" at the end of the pipeline:
	// Out-File, written by the shell.
	redirect *redirection
}

// assignment is target op value, op one of = += -= *= /= %=.
type assignment struct {
	target expr // *variableExpr, *memberExpr or *indexExpr
	op     string
	value  statement
}

type redirection struct {
	path   expr
	append bool
}

type command struct {
	name  string
	elems []commandElement
}

// commandElement is a parameter or an argument as written. Which value
// goes with which parameter depends on the parameter's type (a switch
// takes none), so the binder pairs them, not the parser.
type commandElement struct {
	param string // the parameter name as typed, without the dash; "" for an argument
	colon bool   // -Name:value; arg is nil if nothing followed the colon
	arg   expr
	// splat is @name: the hashtable's entries become named parameters,
	// an array's elements positional arguments.
	splat string
	// shellEmpty marks an argument a Unix shell passed as an empty
	// string, which is what an unquoted $true or $false becomes in bash.
	shellEmpty bool
	// argv marks a parameter from a command line a Unix shell split
	// (RunArgs), where a missing value is most likely an unquoted $true
	// or $false the shell removed.
	argv bool
}

// ifStmt is if (cond) {...} elseif (cond) {...} else {...}.
type ifStmt struct {
	clauses  []ifClause
	elseBody []statement // nil without else
}

type ifClause struct {
	cond *pipeline
	body []statement
}

// foreachStmt is foreach ($name in collection) {...}.
type foreachStmt struct {
	variable   string
	collection *pipeline
	body       []statement
}

// whileStmt is while (cond) {...}, or do {...} while/until (cond) when
// post is set (until inverts the condition).
type whileStmt struct {
	cond  *pipeline
	body  []statement
	post  bool
	until bool
}

// forStmt is for (init; cond; step) {...}; any part may be nil.
type forStmt struct {
	init, cond, step *pipeline
	body             []statement
}

// functionStmt is function Name { param(...) ... } or
// function Name($a, $b) {...}: it defines a command.
type functionStmt struct {
	name string
	fn   *function
}

// function is a script function: its parameters and body. begin,
// process and end are set when the body is written as those blocks.
type function struct {
	name                string
	params              []paramDecl
	body                []statement
	begin, process, end []statement
}

// paramDecl is one parameter of param(...): [type] $name = default.
type paramDecl struct {
	name      string
	typeName  string // "" when untyped
	def       expr   // nil without a default
	mandatory bool
}

// flowStmt is return, break, continue, throw or exit, with its value.
type flowStmt struct {
	kind  string
	value *pipeline // nil when none is given
}

// tryStmt is try {...} catch {...} finally {...}.
type tryStmt struct {
	body     []statement
	catch    []statement // nil without catch
	hasCatch bool
	finally  []statement
}

func (*pipeline) isStatement()     {}
func (*ifStmt) isStatement()       {}
func (*foreachStmt) isStatement()  {}
func (*whileStmt) isStatement()    {}
func (*forStmt) isStatement()      {}
func (*functionStmt) isStatement() {}
func (*flowStmt) isStatement()     {}
func (*tryStmt) isStatement()      {}

// expr is an expression node. Evaluation is in eval.go.
type expr interface{ isExpr() }

// constExpr is a literal: a number, a string, a bare word.
type constExpr struct{ value Value }

// expandExpr is a double-quoted string or a bare word with $variables or
// $(subexpressions) in it; its parts are concatenated.
type expandExpr struct{ parts []expr }

type variableExpr struct{ name string }

// arrayExpr is a comma list: a,b,"c d".
type arrayExpr struct{ elems []expr }

// parenExpr is (pipeline): its output as a value.
type parenExpr struct{ pipeline *pipeline }

// subExpr is $(statements), or @(statements) when array is set, which is
// always an array.
type subExpr struct {
	statements []statement
	array      bool
}

// hashExpr is @{key = value; ...}. A value is a pipeline, as in
// PowerShell: @{Add=Get-Something} runs Get-Something.
type hashExpr struct{ entries []hashEntry }

type hashEntry struct {
	key   expr
	value *pipeline
}

// blockExpr is a script block, { statements }: code a cmdlet runs, with
// $_ set to each pipeline object (Where-Object, ForEach-Object).
type blockExpr struct{ statements []statement }

// memberExpr is target.Name: an object's property; target::Name when
// static (a type's member, [DateTime]::UtcNow).
type memberExpr struct {
	target expr
	name   string
	static bool
}

// methodExpr is target.Name(args): a method call; static as for
// memberExpr ([math]::Round($x, 2)).
type methodExpr struct {
	target expr
	name   string
	args   []expr
	static bool
}

// indexExpr is target[index].
type indexExpr struct {
	target, index expr
}

// typeExpr is a type literal, [DateTime].
type typeExpr struct{ name string }

// castExpr is [type]operand.
type castExpr struct {
	typeName string
	operand  expr
}

// binaryExpr is left op right: a comparison (-eq, -like, ...), a logical
// operator (-and, -or), arithmetic (+ - * / %), a range (..), -f, -join,
// -split, -replace.
type binaryExpr struct {
	op          string // lower case, without the dash
	left, right expr
}

// unaryExpr is -operand, +operand, -split operand or -join operand.
type unaryExpr struct {
	op      string
	operand expr
}

// notExpr is -not operand, or !operand.
type notExpr struct{ operand expr }

// incrExpr is $x++ or $x-- (post) or ++$x, --$x.
type incrExpr struct {
	target expr
	delta  int64
	prefix bool
}

func (*blockExpr) isExpr()    {}
func (*memberExpr) isExpr()   {}
func (*methodExpr) isExpr()   {}
func (*indexExpr) isExpr()    {}
func (*typeExpr) isExpr()     {}
func (*castExpr) isExpr()     {}
func (*binaryExpr) isExpr()   {}
func (*unaryExpr) isExpr()    {}
func (*notExpr) isExpr()      {}
func (*incrExpr) isExpr()     {}
func (*constExpr) isExpr()    {}
func (*expandExpr) isExpr()   {}
func (*variableExpr) isExpr() {}
func (*arrayExpr) isExpr()    {}
func (*parenExpr) isExpr()    {}
func (*subExpr) isExpr()      {}
func (*hashExpr) isExpr()     {}
