package cmdlet

import (
	"context"
	"fmt"
	"path"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// ScriptBlock is the value of { statements }: code that Where-Object and
// ForEach-Object run once per pipeline object, with $_ set to it.
type ScriptBlock struct {
	statements []*pipeline
	runner     *Runner
}

func (*ScriptBlock) String() string { return "ScriptBlock" }

// Invoke runs the block with $_ set to item and returns its output.
func (b *ScriptBlock) Invoke(ctx context.Context, item Value) ([]Value, error) {
	r := b.runner
	r.under = append(r.under, item)
	defer func() { r.under = r.under[:len(r.under)-1] }()
	var out []Value
	for _, st := range b.statements {
		o, err := r.pipeline(ctx, st)
		if err != nil {
			return nil, err
		}
		out = append(out, o...)
	}
	return out, nil
}

// lookup returns a variable's value: the constants, $_, then what the
// script assigned. A variable never set is $null, as in PowerShell outside
// strict mode.
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
	default:
		return r.vars[n]
	}
}

// member reads a property: of an object or a hashtable; of each element
// of an array (PowerShell's member enumeration); Count and Length of
// arrays and strings.
func member(v Value, name string) Value {
	switch x := v.(type) {
	case *Object:
		val, _ := x.Get(name)
		return val
	case *Hashtable:
		return x.Get(name)
	case []Value:
		if strings.EqualFold(name, "Count") || strings.EqualFold(name, "Length") {
			return int64(len(x))
		}
		var out []Value
		for _, e := range x {
			out = append(out, member(e, name))
		}
		return out
	case string:
		if strings.EqualFold(name, "Length") {
			return int64(len(x))
		}
	case nil:
		return nil
	}
	if strings.EqualFold(name, "Count") {
		return int64(1)
	}
	return nil
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

// binary evaluates an operator. With an array on the left, a comparison
// filters it, as in PowerShell: (1,2,3) -gt 1 is 2,3.
func (r *Runner) binary(ctx context.Context, e *binaryExpr) (Value, error) {
	left, err := r.eval(ctx, e.left)
	if err != nil {
		return nil, err
	}
	switch e.op {
	case "and", "or":
		if truthy(left) == (e.op == "or") {
			return e.op == "or", nil // short circuit
		}
		right, err := r.eval(ctx, e.right)
		return truthy(right), err
	}
	right, err := r.eval(ctx, e.right)
	if err != nil {
		return nil, err
	}
	switch e.op {
	case "contains", "notcontains":
		found := false
		for _, l := range enumerate(left) {
			if ok, _ := compare("eq", l, right); ok {
				found = true
			}
		}
		return found == (e.op == "contains"), nil
	case "in", "notin":
		found := false
		for _, rv := range enumerate(right) {
			if ok, _ := compare("eq", left, rv); ok {
				found = true
			}
		}
		return found == (e.op == "in"), nil
	}
	if arr, ok := left.([]Value); ok {
		out := []Value{}
		for _, l := range arr {
			ok, err := compare(e.op, l, right)
			if err != nil {
				return nil, err
			}
			if ok {
				out = append(out, l)
			}
		}
		return out, nil
	}
	return compare(e.op, left, right)
}

// compare applies a comparison operator to two scalars. The right side is
// converted to the left side's type, and strings compare without case
// unless the operator starts with c (-ceq).
func compare(op string, left, right Value) (bool, error) {
	caseSensitive := strings.HasPrefix(op, "c") && op != "contains"
	if caseSensitive || (strings.HasPrefix(op, "i") && op != "in") {
		op = op[1:]
	}
	if n, ok := left.(typedNumber); ok {
		left = n.value
	}
	if n, ok := right.(typedNumber); ok {
		right = n.value
	}
	if p, ok := left.(*bool); ok {
		left = nil
		if p != nil {
			left = *p
		}
	}
	switch op {
	case "like", "notlike":
		ok := wildcard(toString(right), toString(left), caseSensitive)
		return ok == (op == "like"), nil
	case "match", "notmatch":
		pattern := toString(right)
		if !caseSensitive {
			pattern = "(?i)" + pattern
		}
		re, err := regexp.Compile(pattern)
		if err != nil {
			return false, fmt.Errorf("The regular expression pattern %s is not valid.", toString(right))
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

// order compares left with right converted to left's type; ok is false
// when they cannot be compared (then only -ne holds).
func order(left, right Value, caseSensitive bool) (int, bool) {
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
		if rt, ok := right.(time.Time); ok {
			return l.Compare(rt), true
		}
	}
	ls, rs := toString(left), toString(right)
	if !caseSensitive {
		ls, rs = strings.ToLower(ls), strings.ToLower(rs)
	}
	return strings.Compare(ls, rs), true
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
	switch x := v.(type) {
	case int64, float64:
		return toFloat(x), true
	case string:
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
