package cmdlet

import (
	"context"
	"errors"
	"fmt"
	"path"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// ScriptBlock is the value of { statements }: code that Where-Object and
// ForEach-Object run once per pipeline object, with $_ set to it.
type ScriptBlock struct {
	statements []statement
	runner     *Runner
}

func (*ScriptBlock) String() string { return "ScriptBlock" }

// Invoke runs the block with $_ set to item and returns its output. The
// block runs in the current scope, as ForEach-Object's do: what it
// assigns stays assigned.
func (b *ScriptBlock) Invoke(ctx context.Context, item Value) ([]Value, error) {
	r := b.runner
	r.under = append(r.under, item)
	defer func() { r.under = r.under[:len(r.under)-1] }()
	var out []Value
	err := r.block(ctx, b.statements, &out)
	var f *flowSignal
	if errors.As(err, &f) && f.kind == "return" {
		// return in a script block ends this run of it.
		return append(out, f.value...), nil
	}
	return out, err
}

// scope holds variables; a function call gets a new one whose parent is
// the caller's (PowerShell's dynamic scoping).
type scope struct {
	vars   map[string]Value // by lower-case name
	parent *scope
}

func (r *Runner) current() *scope {
	if r.global == nil {
		r.global = &scope{vars: map[string]Value{}}
	}
	if r.scope == nil {
		r.scope = r.global
	}
	return r.scope
}

// splitScope separates a scope modifier: $script:x and $global:x name the
// script's variable; $local:x and $private:x the current scope's.
func splitScope(name string) (modifier, rest string) {
	if m, rest, ok := strings.Cut(name, ":"); ok {
		switch m := strings.ToLower(m); m {
		case "script", "global", "local", "private", "env", "variable":
			return m, rest
		}
	}
	return "", name
}

// setVar assigns a variable in the current scope, or the script's with
// $script: or $global:.
func (r *Runner) setVar(name string, v Value) {
	s := r.current()
	mod, rest := splitScope(name)
	switch mod {
	case "script", "global":
		s = r.global
	case "env":
		return // the server's environment is not the admin's to change
	}
	s.vars[strings.ToLower(rest)] = v
}

// lookup returns a variable's value: the constants, $_, then the scopes
// from the current one out. A variable never set is $null, as in
// PowerShell outside strict mode; so is $env:X, since the shell runs in
// the server, whose environment is not the admin's.
func (r *Runner) lookup(name string) Value {
	switch n := strings.ToLower(name); n {
	case "true":
		return true
	case "false":
		return false
	case "null":
		return nil
	case "_", "psitem":
		if len(r.under) > 0 {
			return r.under[len(r.under)-1]
		}
		return nil
	case "pwd":
		return r.Dir
	case "psscriptroot":
		// A script's own folder is the shell's directory: shell -f reads
		// the file from there, and paths are taken from it.
		return r.Dir
	}
	mod, rest := splitScope(name)
	key := strings.ToLower(rest)
	switch mod {
	case "env":
		return nil
	case "script", "global":
		if r.global == nil {
			return nil
		}
		return r.global.vars[key]
	}
	for s := r.current(); s != nil; s = s.parent {
		if v, ok := s.vars[key]; ok {
			return v
		}
	}
	return nil
}

// member reads a property: of an object or a hashtable (a key first,
// then Keys, Values and Count); of each element of an array
// (PowerShell's member enumeration); Count and Length of arrays and
// strings; the parts of a date; an error's Exception and Message.
func member(v Value, name string) Value {
	switch x := v.(type) {
	case *Object:
		val, ok := x.Get(name)
		if !ok && strings.EqualFold(name, "Count") {
			return int64(1)
		}
		return val
	case *Hashtable:
		if x.Has(name) {
			return x.Get(name)
		}
		switch strings.ToLower(name) {
		case "keys":
			keys := make([]Value, len(x.Keys))
			for i, k := range x.Keys {
				keys[i] = k
			}
			return keys
		case "values":
			vals := make([]Value, len(x.Keys))
			for i, k := range x.Keys {
				vals[i] = x.Get(k)
			}
			return vals
		case "count":
			return int64(len(x.Keys))
		}
		return nil
	case []Value:
		if strings.EqualFold(name, "Count") || strings.EqualFold(name, "Length") {
			return int64(len(x))
		}
		var out []Value
		for _, e := range x {
			if m := member(e, name); m != nil {
				out = append(out, enumerate(m)...)
			}
		}
		return collapseMembers(out)
	case []string:
		if strings.EqualFold(name, "Count") || strings.EqualFold(name, "Length") {
			return int64(len(x))
		}
		return nil
	case string:
		if strings.EqualFold(name, "Length") {
			return int64(utf8.RuneCountInString(x))
		}
	case time.Time:
		return dateMember(x, name)
	case *ErrorRecord:
		switch strings.ToLower(name) {
		case "exception":
			return &Object{TypeName: "System.Exception", Props: []Prop{{Name: "Message", Value: x.message()}}}
		case "message":
			return x.message()
		case "fullyqualifiederrorid":
			return "Postern"
		}
		return nil
	case nil:
		return nil
	}
	if strings.EqualFold(name, "Count") {
		return int64(1)
	}
	return nil
}

// collapseMembers is the value of member enumeration: one value as
// itself, several as an array.
func collapseMembers(out []Value) Value {
	switch len(out) {
	case 0:
		return nil
	case 1:
		return out[0]
	}
	return out
}

// truthy is PowerShell's conversion to bool in a condition.
func truthy(v Value) bool {
	switch x := v.(type) {
	case nil:
		return false
	case bool:
		return x
	case int64:
		return x != 0
	case float64:
		return x != 0
	case typedNumber:
		return truthy(x.value)
	case string:
		return x != ""
	case []Value:
		switch len(x) {
		case 0:
			return false
		case 1:
			return truthy(x[0])
		}
		return true
	case *bool:
		return x != nil && *x
	}
	return true
}

// compare applies a comparison operator (its base name: eq, like...) to
// two scalars. The right side is converted to the left side's type, and
// strings compare without case unless caseSensitive (-ceq).
func compare(op string, left, right Value, caseSensitive bool) (bool, error) {
	left, right = scalar(left), scalar(right)
	switch op {
	case "like", "notlike":
		ok := wildcard(toString(right), toString(left), caseSensitive)
		return ok == (op == "like"), nil
	case "match", "notmatch":
		re, err := compileRegex(toString(right), caseSensitive)
		if err != nil {
			return false, err
		}
		return re.MatchString(toString(left)) == (op == "match"), nil
	}
	c, ok := order(left, right, caseSensitive)
	switch op {
	case "eq":
		return ok && c == 0, nil
	case "ne":
		return !ok || c != 0, nil
	case "gt":
		return ok && c > 0, nil
	case "ge":
		return ok && c >= 0, nil
	case "lt":
		return ok && c < 0, nil
	case "le":
		return ok && c <= 0, nil
	}
	return false, fmt.Errorf("The operator '-%s' is not supported.", op)
}

// scalar unwraps the values that stand for another: a typed number, a
// *bool.
func scalar(v Value) Value {
	switch x := v.(type) {
	case typedNumber:
		return x.value
	case *bool:
		if x == nil {
			return nil
		}
		return *x
	case int:
		return int64(x)
	case int32:
		return int64(x)
	}
	return v
}

// compileRegex compiles a -match, -replace or -split pattern, without case
// unless caseSensitive. .NET's syntax and Go's RE2 agree on what admin
// scripts use; lookarounds and backreferences are refused with the
// pattern named.
func compileRegex(pattern string, caseSensitive bool) (*regexp.Regexp, error) {
	p := pattern
	if !caseSensitive {
		p = "(?i)" + p
	}
	re, err := regexp.Compile(p)
	if err != nil {
		return nil, fmt.Errorf("The regular expression pattern %s is not valid.", pattern)
	}
	return re, nil
}

// order compares left with right converted to left's type; ok is false
// when they cannot be compared (then only -ne holds).
func order(left, right Value, caseSensitive bool) (int, bool) {
	left, right = scalar(left), scalar(right)
	if left == nil || right == nil {
		if left == nil && right == nil {
			return 0, true
		}
		return 0, false
	}
	switch l := left.(type) {
	case bool:
		r, ok := toBool(right)
		if !ok {
			return 0, false
		}
		return boolInt(l) - boolInt(r), true
	case int64, float64:
		if li, ok := l.(int64); ok {
			if ri, ok := scalar(right).(int64); ok {
				return cmpInt(li, ri), true
			}
		}
		lf := toFloat(l)
		rf, ok := number(right)
		if !ok {
			return 0, false
		}
		switch {
		case lf < rf:
			return -1, true
		case lf > rf:
			return 1, true
		}
		return 0, true
	case time.Time:
		switch rt := right.(type) {
		case time.Time:
			return l.Compare(rt), true
		case string:
			if t, ok := parseDateString(rt); ok {
				return l.Compare(t), true
			}
		}
	}
	ls, rs := toString(left), toString(right)
	if !caseSensitive {
		ls, rs = strings.ToLower(ls), strings.ToLower(rs)
	}
	return strings.Compare(ls, rs), true
}

func cmpInt(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

func toFloat(v Value) float64 {
	switch x := v.(type) {
	case int64:
		return float64(x)
	case float64:
		return x
	}
	return 0
}

func number(v Value) (float64, bool) {
	switch x := scalar(v).(type) {
	case int64, float64:
		return toFloat(x), true
	case string:
		if n, ok := parseNumber(strings.TrimSpace(x)); ok {
			return toFloat(n), true
		}
		f, err := strconv.ParseFloat(strings.TrimSpace(x), 64)
		return f, err == nil
	case bool:
		return float64(boolInt(x)), true
	}
	return 0, false
}

// wildcard matches PowerShell's -like patterns: * and ?, and [set].
func wildcard(pattern, s string, caseSensitive bool) bool {
	if !caseSensitive {
		pattern, s = strings.ToLower(pattern), strings.ToLower(s)
	}
	ok, err := path.Match(pattern, s)
	if err != nil {
		return pattern == s
	}
	return ok
}
