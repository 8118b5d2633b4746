package cmdlet

import (
	"fmt"
	"io"
	"maps"
)

// Invocation is one call of a cmdlet, with its arguments bound.
type Invocation struct {
	// Args holds the parameters given, by their canonical name (as in the
	// Spec), converted to the parameter's type (see ParamType). A
	// parameter given as $null is present with a nil value; one not given
	// is absent.
	Args map[string]Value
	// Input holds pipeline input: the one object whose Identity this call
	// got, or all the objects when the cmdlet has no Identity parameter
	// or -Identity was given. Empty when the cmdlet was not fed by a
	// pipeline or was fed plain values (strings binding to Identity).
	Input []*Object
	// WhatIf is set by -WhatIf: describe the change with Printf
	// ("What if: ...") instead of making it.
	WhatIf bool
	// Dir is the directory relative paths are taken from.
	Dir     string
	noFiles bool
	files   FileSystem
	runner  *Runner
	// Host receives Printf's output; nil discards it.
	Host io.Writer
}

// Has reports whether the parameter was given, $null included.
func (inv *Invocation) Has(name string) bool {
	_, ok := inv.Args[name]
	return ok
}

// String returns the parameter's value as text: a String, Identity or Enum
// as given, the plain text of a SecureString, "" when absent or $null.
func (inv *Invocation) String(name string) string {
	if s, ok := inv.Args[name].(secureString); ok {
		return s.plain
	}
	return toString(inv.Args[name])
}

// Bool returns the value of a Bool or Switch parameter; false when absent
// or $null.
func (inv *Invocation) Bool(name string) bool {
	b, _ := inv.Args[name].(bool)
	return b
}

// NullableBool returns the value of a NullableBool, Bool or Switch
// parameter; nil when absent or $null (use Has to tell them apart).
func (inv *Invocation) NullableBool(name string) *bool {
	b, ok := inv.Args[name].(bool)
	if !ok {
		return nil
	}
	return &b
}

// Int returns the value of an Int, IntOrUnlimited or ByteSize parameter
// (bytes for a ByteSize); noLimit is true, with n 0, for Unlimited. It
// returns 0, false when the parameter is absent or $null.
func (inv *Invocation) Int(name string) (n int64, noLimit bool) {
	switch v := inv.Args[name].(type) {
	case int64:
		return v, false
	case unlimited:
		return 0, true
	}
	return 0, false
}

// Printf writes to the host, for "What if:" lines and warnings.
func (inv *Invocation) Printf(format string, args ...any) {
	if inv.Host != nil {
		fmt.Fprintf(inv.Host, format, args...)
	}
}

// Warn writes a line to the warning stream ("WARNING: ..."), which the
// CLI shows on standard error.
func (inv *Invocation) Warn(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if inv.runner != nil {
		inv.runner.warn(msg)
		return
	}
	inv.Printf("WARNING: %s\n", msg)
}

// withInput returns a copy of inv for one pipeline object, whose Args can
// be changed without touching inv's.
func (inv *Invocation) withInput(input []*Object) *Invocation {
	c := *inv
	c.Args = maps.Clone(inv.Args)
	c.Input = input
	return &c
}
