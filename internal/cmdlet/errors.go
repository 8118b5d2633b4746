package cmdlet

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// ParseError is a syntax error, reported as PowerShell reports it:
//
//	At line:1 char:36
//	+ Set-Mailbox -Identity (Get-Mailbox
//	+                                   ~
//	Missing closing ')' in expression.
type ParseError struct {
	Line   int // 1-based
	Column int // 1-based, in characters, PowerShell's "char:"
	// Source is the text of the line the error is on.
	Source  string
	Message string
}

func (e *ParseError) Error() string {
	// The marker keeps the line's tabs so that it lines up under the
	// offending character however the terminal expands them.
	var marker strings.Builder
	for i, r := range []rune(e.Source) {
		if i >= e.Column-1 {
			break
		}
		if r == '\t' {
			marker.WriteRune('\t')
		} else {
			marker.WriteByte(' ')
		}
	}
	return fmt.Sprintf("At line:%d char:%d\n+ %s\n+ %s~\n%s", e.Line, e.Column, e.Source, marker.String(), e.Message)
}

// newParseError locates the byte offset pos in src.
func newParseError(src string, pos int, msg string) *ParseError {
	pos = min(max(pos, 0), len(src))
	line, start := 1, 0
	for i := 0; i < pos; i++ {
		switch src[i] {
		case '\r':
			if i+1 < len(src) && src[i+1] == '\n' {
				continue // \r\n is one line break, counted at the \n
			}
			fallthrough
		case '\n':
			line++
			start = i + 1
		}
	}
	end := start
	for end < len(src) && src[end] != '\n' && src[end] != '\r' {
		end++
	}
	return &ParseError{
		Line:    line,
		Column:  utf8.RuneCountInString(src[start:pos]) + 1,
		Source:  src[start:end],
		Message: msg,
	}
}

// Error is a statement that failed at run time. Its message is PowerShell's
// one-line form, naming the cmdlet:
//
//	Set-CASMailbox : Cannot process command because of one or more missing mandatory parameters: Identity.
type Error struct {
	// Command is the cmdlet that failed, or the name that was not
	// recognised as one; empty for an error in an expression.
	Command string
	Err     error
}

func (e *Error) Error() string {
	if e.Command == "" {
		return e.Err.Error()
	}
	return e.Command + " : " + e.Err.Error()
}

func (e *Error) Unwrap() error { return e.Err }

// commandError attributes err to the named command, unless it already
// names one: an argument's sub-pipeline reports its own command.
func commandError(command string, err error) error {
	if _, ok := errors.AsType[*Error](err); ok {
		return err
	}
	return &Error{Command: command, Err: err}
}

func notRecognized(name string) error {
	return fmt.Errorf("The term '%s' is not recognized as the name of a cmdlet, function, script file, or operable program. Check the spelling of the name, or if a path was included, verify that the path is correct and try again.", name)
}
