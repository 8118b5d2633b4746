package cmdlet

// Script is parsed source, ready to run with a Runner.
type Script struct {
	statements []*pipeline
}

// pipeline is cmd | cmd | ... The first element may be an expression
// instead of a command: "a","b" | Format-List.
type pipeline struct {
	expr     expr // nil when the pipeline starts with a command
	commands []*command
	// assign names the variable of "$name = pipeline", whose value is the
	// pipeline in value; expr and commands are then unused.
	assign string
	value  *pipeline
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
}

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
	statements []*pipeline
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
type blockExpr struct{ statements []*pipeline }

// memberExpr is target.Name: an object's property.
type memberExpr struct {
	target expr
	name   string
}

// binaryExpr is left -op right: a comparison (-eq, -like, ...) or a
// logical operator (-and, -or).
type binaryExpr struct {
	op          string // lower case, without the dash
	left, right expr
}

// notExpr is -not operand, or !operand.
type notExpr struct{ operand expr }

func (*blockExpr) isExpr()    {}
func (*memberExpr) isExpr()   {}
func (*binaryExpr) isExpr()   {}
func (*notExpr) isExpr()      {}
func (*constExpr) isExpr()    {}
func (*expandExpr) isExpr()   {}
func (*variableExpr) isExpr() {}
func (*arrayExpr) isExpr()    {}
func (*parenExpr) isExpr()    {}
func (*subExpr) isExpr()      {}
func (*hashExpr) isExpr()     {}
