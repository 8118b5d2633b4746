// Package cmdlet is the PowerShell subset Postern's admins type: the
// language (tokenizer, parser, evaluator), parameter binding, and the output
// formatting Exchange Online's PowerShell module shows. The cmdlets
// themselves — Get-Mailbox, Set-CASMailbox and the rest — are registered by
// other packages with a Spec; this package only knows the built-ins that are
// part of the shell (Format-List, Format-Table, ConvertTo-SecureString,
// Get-Command).
//
// The language today is statements of pipelines with arguments: bare words,
// numbers with KB/MB/GB suffixes, quoted strings, $true/$false/$null, comma
// lists, @(...) arrays, @{...} hashtables and (...) sub-pipelines. Errors
// are worded as PowerShell words them, so that an admin who knows Exchange
// recognises them:
//
//	Set-CASMailbox : A parameter cannot be found that matches parameter name 'Foo'.
//
// The pieces are separate so that the language can grow (variables, script
// blocks, Where-Object...): lexer.go turns source into tokens, parser.go
// tokens into the syntax tree of ast.go, eval.go runs the tree, bind.go and
// convert.go bind arguments to a Spec's parameters, format.go renders
// output.
package cmdlet
