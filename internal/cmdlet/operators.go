package cmdlet

import (
	"context"
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Caps on what one operator may build, so that a mistyped script ("x" *
// 1e9, 1..1e9) fails with a message instead of exhausting the server's
// memory.
const (
	maxStringLen = 16 << 20
	maxArrayLen  = 1 << 20
)

var errTooLarge = fmt.Errorf("The result is too large: this shell builds strings of at most %d MB and arrays of at most %d elements.", maxStringLen>>20, maxArrayLen)

// comparisonOps are the named binary operators of the comparison level,
// by their base names; each also has an i (case-insensitive, the default)
// and a c (case-sensitive) form.
var comparisonOps = map[string]bool{
	"eq": true, "ne": true, "gt": true, "ge": true, "lt": true, "le": true,
	"like": true, "notlike": true, "match": true, "notmatch": true, "contains": true, "notcontains": true,
	"in": true, "notin": true, "replace": true, "split": true, "join": true, "is": true, "isnot": true, "as": true,
}

func init() {
	for op := range comparisonOps {
		operators[op], operators["i"+op], operators["c"+op] = true, true, true
	}
	for _, op := range []string{"f", "xor", "band", "bor", "bxor", "bnot", "shl", "shr"} {
		operators[op] = true
	}
}

// baseOperator splits an operator into its base name and whether it is
// case-sensitive: ceq is (eq, true), ilike is (like, false).
func baseOperator(op string) (string, bool) {
	if comparisonOps[op] {
		return op, false
	}
	if len(op) > 1 && comparisonOps[op[1:]] {
		return op[1:], op[0] == 'c'
	}
	return op, false
}

func isComparison(op string) bool {
	base, _ := baseOperator(op)
	return comparisonOps[base]
}

// binary evaluates a binary operator. With an array on the left, a
// comparison filters it, as in PowerShell: (1,2,3) -gt 1 is 2,3.
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
	case "xor":
		return truthy(left) != truthy(right), nil
	case "+", "-", "*", "/", "%":
		return arithmetic(e.op, left, right)
	case "..":
		return rangeOp(left, right)
	case "f":
		return formatOperator(toString(left), right)
	case "band", "bor", "bxor", "shl", "shr":
		return bitwise(e.op, left, right)
	}
	op, cs := baseOperator(e.op)
	switch op {
	case "contains", "notcontains":
		found := false
		for _, l := range enumerate(left) {
			if ok, _ := compare("eq", l, right, cs); ok {
				found = true
				break
			}
		}
		return found == (op == "contains"), nil
	case "in", "notin":
		found := false
		for _, rv := range enumerate(right) {
			if ok, _ := compare("eq", left, rv, cs); ok {
				found = true
				break
			}
		}
		return found == (op == "in"), nil
	case "replace":
		return replaceOp(left, right, cs)
	case "split":
		return splitOp(left, right, cs)
	case "join":
		return joinOp(left, toString(right)), nil
	case "is", "isnot":
		t, ok := right.(typeValue)
		if !ok {
			return nil, fmt.Errorf("The right operand of '-%s' must be a type, such as [string].", op)
		}
		is, err := isType(left, t.name)
		return is == (op == "is"), err
	case "as":
		t, ok := right.(typeValue)
		if !ok {
			return nil, fmt.Errorf("The right operand of '-as' must be a type, such as [int].")
		}
		v, err := cast(t.name, left)
		if err != nil {
			return nil, nil
		}
		return v, nil
	}
	if arr, ok := left.([]Value); ok {
		out := []Value{}
		for _, l := range arr {
			ok, err := compare(op, l, right, cs)
			if err != nil {
				return nil, err
			}
			if ok {
				out = append(out, l)
			}
		}
		return out, nil
	}
	return compare(op, left, right, cs)
}

// unaryOp evaluates -x, +x, -split x and -join x.
func unaryOp(op string, v Value) (Value, error) {
	switch op {
	case "-":
		return arithmetic("-", int64(0), v)
	case "+":
		return arithmetic("+", int64(0), v)
	case "split", "isplit", "csplit":
		var out []Value
		for _, s := range enumerate(v) {
			for _, f := range strings.Fields(toString(s)) {
				out = append(out, f)
			}
		}
		return out, nil
	case "join":
		return joinOp(v, ""), nil
	}
	return nil, fmt.Errorf("The operator '-%s' is not supported.", op)
}

// arithmetic applies + - * / % as PowerShell does: the left operand's
// type decides. Numbers add (integers widen to double on overflow, a
// division with a remainder gives a double); a string on the left
// concatenates (+) or repeats (*); an array concatenates or repeats; a
// hashtable merges (+); $null on the left takes the right's type.
func arithmetic(op string, left, right Value) (Value, error) {
	left, right = scalar(left), scalar(right)
	switch l := left.(type) {
	case nil:
		switch right.(type) {
		case nil:
			if op == "+" {
				return nil, nil
			}
			return int64(0), nil
		case string, []Value, *Hashtable:
			if op == "+" {
				return right, nil
			}
		}
		return numeric(op, int64(0), right)
	case string:
		switch op {
		case "+":
			s := l + toString(right)
			if len(s) > maxStringLen {
				return nil, errTooLarge
			}
			return s, nil
		case "*":
			n, err := toCount(right)
			if err != nil {
				return nil, err
			}
			if n*int64(len(l)) > maxStringLen {
				return nil, errTooLarge
			}
			return strings.Repeat(l, int(n)), nil
		}
		return numeric(op, left, right)
	case []Value:
		switch op {
		case "+":
			out := append(append([]Value(nil), l...), enumerate(right)...)
			if right == nil {
				out = append(append([]Value(nil), l...), nil)
			}
			if len(out) > maxArrayLen {
				return nil, errTooLarge
			}
			return out, nil
		case "*":
			n, err := toCount(right)
			if err != nil {
				return nil, err
			}
			if n*int64(len(l)) > maxArrayLen {
				return nil, errTooLarge
			}
			var out []Value
			for range n {
				out = append(out, l...)
			}
			return out, nil
		}
		return nil, opError(op, left)
	case *Hashtable:
		if op != "+" {
			return nil, opError(op, left)
		}
		h2, ok := right.(*Hashtable)
		if !ok {
			return nil, fmt.Errorf("A hash table can only be added to another hash table.")
		}
		out := NewHashtable()
		for _, k := range l.Keys {
			out.Set(k, l.Get(k))
		}
		for _, k := range h2.Keys {
			if out.Has(k) {
				return nil, fmt.Errorf("Item has already been added. Key in dictionary: '%s'  Key being added: '%s'", k, k)
			}
			out.Set(k, h2.Get(k))
		}
		return out, nil
	case time.Time:
		switch rv := right.(type) {
		case time.Time:
			if op == "-" {
				return timeSpan(l.Sub(rv)), nil
			}
		case *Object:
			if d, ok := durationOf(rv); ok && (op == "+" || op == "-") {
				if op == "-" {
					d = -d
				}
				return l.Add(d), nil
			}
		}
		return nil, opError(op, left)
	case bool, int64, float64:
		return numeric(op, left, right)
	}
	return nil, opError(op, left)
}

func opError(op string, left Value) error {
	names := map[string]string{"+": "op_Addition", "-": "op_Subtraction", "*": "op_Multiply", "/": "op_Division", "%": "op_Modulus"}
	return fmt.Errorf("Method invocation failed because [%s] does not contain a method named '%s'.", netTypeName(left), names[op])
}

// toCount reads the right operand of string or array repetition.
func toCount(v Value) (int64, error) {
	n, ok := toInt32(v)
	if !ok || n < 0 {
		return 0, fmt.Errorf(`Cannot convert value "%s" to type "System.Int32". Error: "Input string was not in a correct format."`, toString(v))
	}
	return n, nil
}

// toNumber converts an operand of arithmetic: numbers, booleans,
// numeric strings ("" and $null are 0).
func toNumber(v Value) (Value, error) {
	switch x := scalar(v).(type) {
	case nil:
		return int64(0), nil
	case int64, float64:
		return x, nil
	case bool:
		return int64(boolInt(x)), nil
	case string:
		t := strings.TrimSpace(x)
		if t == "" {
			return int64(0), nil
		}
		if n, ok := parseNumber(t); ok {
			return n, nil
		}
		return nil, fmt.Errorf(`Cannot convert value "%s" to type "System.Int32". Error: "Input string was not in a correct format."`, x)
	}
	return nil, fmt.Errorf(`Cannot convert the "%s" value of type "%s" to type "System.Int32".`, toString(v), netTypeName(v))
}

func numeric(op string, left, right Value) (Value, error) {
	l, err := toNumber(left)
	if err != nil {
		return nil, err
	}
	r, err := toNumber(right)
	if err != nil {
		return nil, err
	}
	li, lok := l.(int64)
	ri, rok := r.(int64)
	if lok && rok {
		switch op {
		case "+":
			if s := li + ri; (s > li) == (ri > 0) {
				return s, nil
			}
		case "-":
			if d := li - ri; (d < li) == (ri > 0) {
				return d, nil
			}
		case "*":
			if li == 0 || ri == 0 {
				return int64(0), nil
			}
			if p := li * ri; p/ri == li && !(li == -1 && ri == math.MinInt64) && !(ri == -1 && li == math.MinInt64) {
				return p, nil
			}
		case "/":
			if ri == 0 {
				return nil, fmt.Errorf("Attempted to divide by zero.")
			}
			if li%ri == 0 && !(li == math.MinInt64 && ri == -1) {
				return li / ri, nil
			}
		case "%":
			if ri == 0 {
				return nil, fmt.Errorf("Attempted to divide by zero.")
			}
			if ri == -1 {
				return int64(0), nil
			}
			return li % ri, nil
		}
	}
	lf, rf := toFloat(l), toFloat(r)
	switch op {
	case "+":
		return lf + rf, nil
	case "-":
		return lf - rf, nil
	case "*":
		return lf * rf, nil
	case "/":
		if rf == 0 {
			return nil, fmt.Errorf("Attempted to divide by zero.")
		}
		return lf / rf, nil
	case "%":
		if rf == 0 {
			return nil, fmt.Errorf("Attempted to divide by zero.")
		}
		return math.Mod(lf, rf), nil
	}
	return nil, fmt.Errorf("The operator '%s' is not supported.", op)
}

func bitwise(op string, left, right Value) (Value, error) {
	l, err := toNumber(left)
	if err != nil {
		return nil, err
	}
	r, err := toNumber(right)
	if err != nil {
		return nil, err
	}
	li, ri := int64(toFloat(l)), int64(toFloat(r))
	switch op {
	case "band":
		return li & ri, nil
	case "bor":
		return li | ri, nil
	case "bxor":
		return li ^ ri, nil
	case "shl":
		return li << (uint64(ri) & 63), nil
	}
	return li >> (uint64(ri) & 63), nil
}

// rangeOp is a..b: the integers from a to b, either way.
func rangeOp(left, right Value) (Value, error) {
	a, ok1 := toInt32(scalar(left))
	b, ok2 := toInt32(scalar(right))
	if !ok1 || !ok2 {
		return nil, fmt.Errorf(`Cannot convert value "%s" to type "System.Int32".`, toString(left)+".."+toString(right))
	}
	n := b - a
	if n < 0 {
		n = -n
	}
	if n+1 > maxArrayLen {
		return nil, errTooLarge
	}
	out := make([]Value, 0, n+1)
	step := int64(1)
	if b < a {
		step = -1
	}
	for i := a; ; i += step {
		out = append(out, i)
		if i == b {
			break
		}
	}
	return out, nil
}

// joinOp is -join: the elements' text, separated.
func joinOp(v Value, sep string) Value {
	parts := enumerate(v)
	if v == nil {
		parts = nil
	}
	texts := make([]string, len(parts))
	for i, p := range parts {
		texts[i] = toString(p)
	}
	return strings.Join(texts, sep)
}

// splitOp is "a,b" -split "," : a regular expression, without case
// unless -csplit; the right side may be (pattern, max).
func splitOp(left, right Value, cs bool) (Value, error) {
	pattern := right
	limit := -1
	if arr, ok := right.([]Value); ok && len(arr) > 0 {
		pattern = arr[0]
		if len(arr) > 1 {
			if n, ok := toInt32(scalar(arr[1])); ok && n > 0 {
				limit = int(n)
			}
		}
	}
	re, err := compileRegex(toString(pattern), cs)
	if err != nil {
		return nil, err
	}
	var out []Value
	for _, s := range enumerate(left) {
		for _, part := range re.Split(toString(s), limit) {
			out = append(out, part)
		}
	}
	if len(out) > maxArrayLen {
		return nil, errTooLarge
	}
	return out, nil
}

// dotnetGroup matches .NET's $1, ${name} and $$ in a -replace
// substitution.
var dotnetGroup = regexp.MustCompile(`\$(\d+|\{[^}]*\}|\$|&|_)`)

// replaceOp is "text" -replace pattern, substitution: a regular
// expression, without case unless -creplace; $1 and ${name} refer to the
// groups, as in .NET.
func replaceOp(left, right Value, cs bool) (Value, error) {
	pattern, repl := right, Value("")
	if arr, ok := right.([]Value); ok {
		switch len(arr) {
		case 0:
			pattern = ""
		case 1:
			pattern = arr[0]
		case 2:
			pattern, repl = arr[0], arr[1]
		default:
			return nil, fmt.Errorf("The -replace operator allows only two elements to follow it, not %d.", len(arr))
		}
	}
	re, err := compileRegex(toString(pattern), cs)
	if err != nil {
		return nil, err
	}
	// Go's template syntax reads $1x as a group named "1x"; .NET's as
	// group 1 followed by x. Braces make the meaning explicit.
	template := dotnetGroup.ReplaceAllStringFunc(toString(repl), func(m string) string {
		switch m {
		case "$$":
			return "$$"
		case "$&", "$_":
			return "${0}"
		}
		if strings.HasPrefix(m, "${") {
			return m
		}
		return "${" + m[1:] + "}"
	})
	do := func(s string) string { return re.ReplaceAllString(s, template) }
	if arr, ok := left.([]Value); ok {
		out := make([]Value, len(arr))
		for i, e := range arr {
			out[i] = do(toString(e))
		}
		return out, nil
	}
	s := do(toString(left))
	if len(s) > maxStringLen {
		return nil, errTooLarge
	}
	return s, nil
}

// formatOperator is "{0} has {1}" -f $a, $b: .NET's composite formatting.
func formatOperator(format string, args Value) (Value, error) {
	var list []Value
	if a, ok := args.([]Value); ok {
		list = a
	} else {
		list = []Value{args}
	}
	return compositeFormat(format, list)
}

// compositeFormat implements .NET's String.Format: {index[,alignment][:format]},
// with {{ and }} for braces.
func compositeFormat(format string, args []Value) (string, error) {
	var b strings.Builder
	bad := fmt.Errorf("Error formatting a string: Input string was not in a correct format..")
	for i := 0; i < len(format); i++ {
		c := format[i]
		switch c {
		case '}':
			if i+1 < len(format) && format[i+1] == '}' {
				b.WriteByte('}')
				i++
				continue
			}
			return "", bad
		case '{':
			if i+1 < len(format) && format[i+1] == '{' {
				b.WriteByte('{')
				i++
				continue
			}
			end := strings.IndexByte(format[i:], '}')
			if end < 0 {
				return "", bad
			}
			spec := format[i+1 : i+end]
			i += end
			item, fmtStr, _ := strings.Cut(spec, ":")
			idxText, alignText, hasAlign := strings.Cut(item, ",")
			idx, err := strconv.Atoi(strings.TrimSpace(idxText))
			if err != nil || idx < 0 {
				return "", bad
			}
			if idx >= len(args) {
				return "", fmt.Errorf("Error formatting a string: Index (zero based) must be greater than or equal to zero and less than the size of the argument list..")
			}
			text, err := formatWith(args[idx], fmtStr)
			if err != nil {
				return "", err
			}
			if hasAlign {
				w, err := strconv.Atoi(strings.TrimSpace(alignText))
				if err != nil || w > 1000 || w < -1000 {
					return "", bad
				}
				n := len([]rune(text))
				switch {
				case w > n:
					text = strings.Repeat(" ", w-n) + text
				case -w > n:
					text += strings.Repeat(" ", -w-n)
				}
			}
			b.WriteString(text)
			if b.Len() > maxStringLen {
				return "", errTooLarge
			}
		default:
			b.WriteByte(c)
		}
	}
	return b.String(), nil
}

// formatWith formats one value with a .NET format string (N0, D3, F2,
// yyyy-MM-dd...); without one, as its text.
func formatWith(v Value, f string) (string, error) {
	v = scalar(v)
	if f == "" {
		return toString(v), nil
	}
	switch x := v.(type) {
	case int64, float64:
		return formatNumber(x, f)
	case time.Time:
		return formatDate(x, f), nil
	case string:
		return x, nil
	}
	return toString(v), nil
}
