// Package cmdlet is the PowerShell subset Postern's admins type: the
// language (tokenizer, parser, evaluator), parameter binding, and the output
// formatting Exchange Online's PowerShell module shows. The cmdlets
// themselves — Get-Mailbox, Set-CASMailbox and the rest — are registered by
// other packages with a Spec; this package only knows the built-ins that are
// part of the shell (Format-List, Where-Object, Import-Csv, Write-Host,
// Get-Date and the others of pipelinecmds.go).
//
// The language is the PowerShell that Exchange admin scripts use:
// pipelines with arguments (bare words, numbers with KB/MB/GB suffixes,
// quoted strings, $true/$false/$null, comma lists, @(...) arrays, @{...}
// hashtables, (...) sub-pipelines, splatting); variables and assignments;
// if/elseif/else, foreach, while, do, for, try/catch, functions with
// param(...); arithmetic, comparisons, -f, -split, -join and -replace with
// PowerShell's precedence and type rules; member access, method calls on
// strings, arrays, hashtables and dates, casts and static members
// ([math]::Round, [DateTime]::UtcNow). Errors are worded as PowerShell
// words them, so that an admin who knows Exchange recognises them:
//
//	Set-CASMailbox : A parameter cannot be found that matches parameter name 'Foo'.
//
// lexer.go turns source into tokens; parser.go and parser_statements.go
// turn tokens into the syntax tree of ast.go; eval.go, script.go,
// operators.go, members.go and functions.go run the tree; bind.go and
// convert.go bind arguments to a Spec's parameters; format.go and
// dotnetformat.go render output; files.go is where file cmdlets read and
// write (a FileSystem, so that a shell served to a client uses the
// client's files).
package cmdlet
