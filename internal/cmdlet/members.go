package cmdlet

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// typeValue is a type literal's value, [string]: the right side of -is and
// -as, and what static members are read from.
type typeValue struct{ name string }

func (t typeValue) String() string { return canonicalType(t.name) }

// typeAliases maps the type names scripts write to the one this shell
// knows them by.
var typeAliases = map[string]string{
	"string": "string", "system.string": "string",
	"int": "int", "int32": "int", "system.int32": "int", "long": "int", "int64": "int", "system.int64": "int",
	"double": "double", "system.double": "double", "float": "double", "single": "double", "decimal": "double", "system.decimal": "double",
	"bool": "bool", "boolean": "bool", "system.boolean": "bool", "switch": "bool",
	"datetime": "datetime", "system.datetime": "datetime",
	"timespan": "timespan", "system.timespan": "timespan",
	"array": "array", "object[]": "array", "system.object[]": "array", "string[]": "string[]", "system.string[]": "string[]",
	"int[]": "array", "psobject[]": "array", "system.collections.arraylist": "array", "collections.arraylist": "array",
	"system.collections.generic.list[string]": "array", "system.collections.generic.list[object]": "array",
	"collections.generic.list[string]": "array", "collections.generic.list[object]": "array",
	"list[string]": "array", "list[object]": "array",
	"hashtable": "hashtable", "system.collections.hashtable": "hashtable", "ordered": "hashtable",
	"pscustomobject": "pscustomobject", "system.management.automation.pscustomobject": "pscustomobject",
	"psobject": "pscustomobject", "system.management.automation.psobject": "pscustomobject",
	"object": "object", "system.object": "object",
	"math": "math", "system.math": "math",
	"guid": "guid", "system.guid": "guid",
	"char": "char", "system.char": "char",
	"environment": "environment", "system.environment": "environment",
	"void": "void", "regex": "regex", "system.text.regularexpressions.regex": "regex",
	"securestring": "securestring", "system.security.securestring": "securestring",
	"mailaddress": "mailaddress", "system.net.mail.mailaddress": "mailaddress",
}

func canonicalType(name string) string {
	if t, ok := typeAliases[strings.ToLower(strings.ReplaceAll(name, " ", ""))]; ok {
		return t
	}
	return strings.ToLower(name)
}

func unknownType(name string) error {
	return fmt.Errorf("Unable to find type [%s].", name)
}

// cast converts v to a type: [int]"5", [string]5, [datetime]"2026-01-02",
// [PSCustomObject]@{...}, [string[]]$list.
func cast(typeName string, v Value) (Value, error) {
	v = scalar(v)
	fail := func() error {
		return fmt.Errorf(`Cannot convert value "%s" to type "%s".`, describe(v), netType(typeName))
	}
	switch canonicalType(typeName) {
	case "string":
		if v == nil {
			return "", nil
		}
		return toString(v), nil
	case "int":
		if v == nil {
			return int64(0), nil
		}
		if f, ok := v.(float64); ok {
			if math.IsNaN(f) || math.Abs(f) > math.MaxInt64 {
				return nil, fail()
			}
			return int64(math.RoundToEven(f)), nil
		}
		n, err := toNumber(v)
		if err != nil {
			return nil, fail()
		}
		if f, ok := n.(float64); ok {
			return int64(math.RoundToEven(f)), nil
		}
		return n, nil
	case "double":
		n, err := toNumber(v)
		if err != nil {
			return nil, fail()
		}
		return toFloat(n), nil
	case "bool":
		return truthy(v), nil
	case "datetime":
		switch x := v.(type) {
		case time.Time:
			return x, nil
		case string:
			if t, ok := parseDateString(x); ok {
				return t, nil
			}
		}
		return nil, fail()
	case "array":
		if v == nil {
			return []Value{}, nil
		}
		return slices.Clone(enumerate(v)), nil
	case "string[]":
		var out []Value
		if v != nil {
			for _, e := range enumerate(v) {
				out = append(out, toString(e))
			}
		}
		return out, nil
	case "hashtable":
		if h, ok := v.(*Hashtable); ok {
			return h, nil
		}
		return nil, fail()
	case "pscustomobject":
		switch x := v.(type) {
		case *Hashtable:
			return customObject(x), nil
		case *Object:
			return x, nil
		}
		return v, nil
	case "object":
		return v, nil
	case "void":
		return nil, nil
	case "guid":
		s := strings.Trim(toString(v), "{}")
		if len(s) != 36 || strings.Count(s, "-") != 4 {
			return nil, fail()
		}
		return strings.ToLower(s), nil
	case "char":
		if n, ok := v.(int64); ok && n >= 0 && n <= unicode.MaxRune {
			return string(rune(n)), nil
		}
		if s, ok := v.(string); ok && utf8.RuneCountInString(s) == 1 {
			return s, nil
		}
		return nil, fail()
	case "securestring":
		if s, ok := v.(secureString); ok {
			return s, nil
		}
		return nil, fail()
	case "mailaddress":
		s := strings.TrimSpace(toString(v))
		local, domain, ok := strings.Cut(s, "@")
		if !ok || local == "" || domain == "" {
			return nil, fmt.Errorf(`Cannot convert value "%s" to type "System.Net.Mail.MailAddress". Error: "The specified string is not in the form required for an e-mail address."`, s)
		}
		return &Object{TypeName: "System.Net.Mail.MailAddress", Props: []Prop{{Name: "DisplayName", Value: ""}, {Name: "User", Value: local},
			{Name: "Host", Value: domain}, {Name: "Address", Value: s}}, DefaultView: ListView}, nil
	}
	return nil, unknownType(typeName)
}

// netType is the .NET name of a type literal, for messages.
func netType(name string) string {
	switch canonicalType(name) {
	case "string":
		return "System.String"
	case "int":
		return "System.Int32"
	case "double":
		return "System.Double"
	case "bool":
		return "System.Boolean"
	case "datetime":
		return "System.DateTime"
	case "guid":
		return "System.Guid"
	}
	return name
}

// netTypeName is the .NET type a value has, for messages and GetType().
func netTypeName(v Value) string {
	switch x := scalar(v).(type) {
	case nil:
		return "null"
	case string:
		return "System.String"
	case int64:
		if x >= math.MinInt32 && x <= math.MaxInt32 {
			return "System.Int32"
		}
		return "System.Int64"
	case float64:
		return "System.Double"
	case bool:
		return "System.Boolean"
	case time.Time:
		return "System.DateTime"
	case []Value:
		return "System.Object[]"
	case *Hashtable:
		return "System.Collections.Hashtable"
	case *Object:
		return x.TypeName
	case *ScriptBlock:
		return "System.Management.Automation.ScriptBlock"
	}
	return "System.Object"
}

// isType is v -is [type].
func isType(v Value, name string) (bool, error) {
	v = scalar(v)
	switch t := canonicalType(name); t {
	case "string":
		_, ok := v.(string)
		return ok, nil
	case "int":
		_, ok := v.(int64)
		return ok, nil
	case "double":
		_, ok := v.(float64)
		return ok, nil
	case "bool":
		_, ok := v.(bool)
		return ok, nil
	case "datetime":
		_, ok := v.(time.Time)
		return ok, nil
	case "array", "string[]":
		_, ok := v.([]Value)
		return ok, nil
	case "hashtable":
		_, ok := v.(*Hashtable)
		return ok, nil
	case "pscustomobject":
		_, ok := v.(*Object)
		return ok, nil
	case "object":
		return v != nil, nil
	default:
		if _, known := typeAliases[strings.ToLower(name)]; !known {
			return false, unknownType(name)
		}
	}
	return false, nil
}

// customObject is [PSCustomObject]@{...}: an object with the hashtable's
// entries as properties, in the order written.
func customObject(h *Hashtable) *Object {
	o := &Object{TypeName: "System.Management.Automation.PSCustomObject", DefaultView: AutoView}
	for _, k := range h.Keys {
		o.Props = append(o.Props, Prop{Name: k, Value: h.Get(k)})
	}
	return o
}

// staticMember reads [Type]::Name.
func staticMember(t Value, name string) (Value, error) {
	tv, ok := t.(typeValue)
	if !ok {
		return nil, fmt.Errorf("Unable to find static member '%s' on a value that is not a type.", name)
	}
	n := strings.ToLower(name)
	switch canonicalType(tv.name) + "::" + n {
	case "datetime::now":
		return time.Now(), nil
	case "datetime::utcnow":
		return time.Now().UTC(), nil
	case "datetime::today":
		y, m, d := time.Now().Date()
		return time.Date(y, m, d, 0, 0, 0, 0, time.Local), nil
	case "datetime::minvalue":
		return time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC), nil
	case "datetime::maxvalue":
		return time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC), nil
	case "int::maxvalue":
		return int64(math.MaxInt32), nil
	case "int::minvalue":
		return int64(math.MinInt32), nil
	case "string::empty":
		return "", nil
	case "math::pi":
		return math.Pi, nil
	case "math::e":
		return math.E, nil
	case "environment::newline":
		return "\n", nil
	}
	return nil, fmt.Errorf("The property '%s' cannot be found on type [%s].", name, tv.name)
}

// staticMethod calls [Type]::Name(args).
func staticMethod(t Value, name string, args []Value) (Value, error) {
	tv, ok := t.(typeValue)
	if !ok {
		return nil, fmt.Errorf("Method invocation failed because the value is not a type: %s::%s().", toString(t), name)
	}
	arg := func(i int) Value {
		if i < len(args) {
			return scalar(args[i])
		}
		return nil
	}
	num := func(i int) (float64, error) {
		n, err := toNumber(arg(i))
		return toFloat(n), err
	}
	typ := canonicalType(tv.name)
	switch typ + "::" + strings.ToLower(name) {
	case "math::round":
		f, err := num(0)
		if err != nil {
			return nil, err
		}
		digits := 0
		if len(args) > 1 {
			d, err := num(1)
			if err != nil || d < 0 || d > 15 {
				return nil, fmt.Errorf("Rounding digits must be between 0 and 15, inclusive.")
			}
			digits = int(d)
		}
		p := math.Pow(10, float64(digits))
		r := math.RoundToEven(f*p) / p
		if _, isInt := arg(0).(int64); isInt || digits == 0 {
			if digits == 0 {
				return r, nil
			}
		}
		return r, nil
	case "math::floor", "math::ceiling", "math::abs", "math::sqrt", "math::truncate":
		f, err := num(0)
		if err != nil {
			return nil, err
		}
		switch strings.ToLower(name) {
		case "floor":
			return math.Floor(f), nil
		case "ceiling":
			return math.Ceil(f), nil
		case "sqrt":
			return math.Sqrt(f), nil
		case "truncate":
			return math.Trunc(f), nil
		}
		if n, ok := arg(0).(int64); ok {
			if n < 0 {
				return -n, nil
			}
			return n, nil
		}
		return math.Abs(f), nil
	case "math::max", "math::min", "math::pow":
		a, err := num(0)
		if err != nil {
			return nil, err
		}
		b, err := num(1)
		if err != nil {
			return nil, err
		}
		ai, aok := arg(0).(int64)
		bi, bok := arg(1).(int64)
		switch strings.ToLower(name) {
		case "max":
			if aok && bok {
				return max(ai, bi), nil
			}
			return math.Max(a, b), nil
		case "min":
			if aok && bok {
				return min(ai, bi), nil
			}
			return math.Min(a, b), nil
		}
		return math.Pow(a, b), nil
	case "string::isnullorempty":
		return toString(arg(0)) == "", nil
	case "string::isnullorwhitespace":
		return strings.TrimSpace(toString(arg(0))) == "", nil
	case "string::join":
		var parts []Value
		for _, a := range args[min(1, len(args)):] {
			parts = append(parts, enumerate(a)...)
		}
		return joinOp(parts, toString(arg(0))), nil
	case "string::format":
		if len(args) == 0 {
			return nil, fmt.Errorf(`Cannot find an overload for "Format" and the argument count: "0".`)
		}
		rest := args[1:]
		if len(rest) == 1 {
			if a, ok := rest[0].([]Value); ok {
				rest = a
			}
		}
		return compositeFormat(toString(arg(0)), rest)
	case "string::concat":
		var b strings.Builder
		for _, a := range args {
			b.WriteString(toString(a))
		}
		return b.String(), nil
	case "datetime::parse", "datetime::parseexact":
		if t, ok := parseDateString(toString(arg(0))); ok {
			return t, nil
		}
		return nil, fmt.Errorf(`Exception calling "%s" with "%d" argument(s): "String '%s' was not recognized as a valid DateTime."`, name, len(args), toString(arg(0)))
	case "guid::newguid":
		return newGUID(), nil
	case "regex::escape":
		return regexEscape(toString(arg(0))), nil
	case "regex::match", "regex::ismatch":
		re, err := compileRegex(toString(arg(1)), false)
		if err != nil {
			return nil, err
		}
		return re.MatchString(toString(arg(0))), nil
	case "regex::replace":
		return replaceOp(arg(0), []Value{arg(1), arg(2)}, true)
	}
	return nil, fmt.Errorf("Method invocation failed because [%s] does not contain a method named '%s'.", tv.name, name)
}

func regexEscape(s string) string {
	var b strings.Builder
	for _, r := range s {
		if strings.ContainsRune(`\*+?|{[()^$.# `, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

func newGUID() string {
	var b [16]byte
	if _, err := cryptoRand(b[:]); err != nil {
		return ""
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// method evaluates target.Name(args).
func (r *Runner) method(ctx context.Context, e *methodExpr) (Value, error) {
	target, err := r.eval(ctx, e.target)
	if err != nil {
		return nil, err
	}
	args := make([]Value, len(e.args))
	for i, a := range e.args {
		if args[i], err = r.eval(ctx, a); err != nil {
			return nil, err
		}
	}
	if e.static {
		return staticMethod(target, e.name, args)
	}
	return r.callMethod(ctx, target, e.name, args)
}

func noMethod(v Value, name string) error {
	if v == nil {
		return fmt.Errorf("You cannot call a method on a null-valued expression.")
	}
	return fmt.Errorf("Method invocation failed because [%s] does not contain a method named '%s'.", netTypeName(v), name)
}

func argCount(name string, n int) error {
	return fmt.Errorf(`Cannot find an overload for "%s" and the argument count: "%d".`, name, n)
}

// callMethod calls the .NET methods admin scripts use on strings, arrays,
// hashtables, dates and numbers.
func (r *Runner) callMethod(ctx context.Context, target Value, name string, args []Value) (Value, error) {
	target = scalar(target)
	n := strings.ToLower(name)
	str := func(i int) string {
		if i < len(args) {
			return toString(scalar(args[i]))
		}
		return ""
	}
	intArg := func(i int) (int, error) {
		if i >= len(args) {
			return 0, argCount(name, len(args))
		}
		v, ok := toInt32(scalar(args[i]))
		if !ok {
			return 0, fmt.Errorf(`Cannot convert argument "%d", with value: "%s", for "%s" to type "System.Int32".`, i, toString(args[i]), name)
		}
		return int(v), nil
	}
	switch n {
	case "tostring":
		if len(args) == 1 {
			return formatWith(target, str(0))
		}
		return toString(target), nil
	case "gettype":
		return &Object{TypeName: "System.RuntimeType", Props: []Prop{{Name: "Name", Value: shortType(netTypeName(target))},
			{Name: "FullName", Value: netTypeName(target)}}, DefaultView: TableView}, nil
	case "equals":
		if len(args) != 1 {
			return nil, argCount(name, len(args))
		}
		c, ok := order(target, args[0], true)
		return ok && c == 0, nil
	}
	switch t := target.(type) {
	case string:
		return stringMethod(t, name, args, str, intArg)
	case []Value:
		switch n {
		case "contains":
			if len(args) != 1 {
				return nil, argCount(name, len(args))
			}
			for _, e := range t {
				if c, ok := order(e, args[0], true); ok && c == 0 {
					return true, nil
				}
			}
			return false, nil
		case "indexof":
			if len(args) != 1 {
				return nil, argCount(name, len(args))
			}
			for i, e := range t {
				if c, ok := order(e, args[0], true); ok && c == 0 {
					return int64(i), nil
				}
			}
			return int64(-1), nil
		case "foreach", "where":
			if len(args) == 0 {
				return nil, argCount(name, 0)
			}
			sb, ok := args[0].(*ScriptBlock)
			if !ok {
				return nil, fmt.Errorf("The %s() method takes a script block: .%s({ ... }).", name, name)
			}
			out := []Value{}
			for _, item := range t {
				v, err := sb.Invoke(ctx, item)
				if err != nil {
					return nil, err
				}
				if n == "foreach" {
					out = append(out, v...)
				} else if truthy(collapse(v)) {
					out = append(out, item)
				}
			}
			return out, nil
		case "add":
			return nil, fmt.Errorf(`Exception calling "Add" with "1" argument(s): "Collection was of a fixed size." Use $list += $item to add to an array.`)
		}
	case *Hashtable:
		switch n {
		case "containskey", "contains":
			if len(args) != 1 {
				return nil, argCount(name, len(args))
			}
			return t.Has(str(0)), nil
		case "containsvalue":
			for _, k := range t.Keys {
				if c, ok := order(t.Get(k), args[0], false); ok && c == 0 {
					return true, nil
				}
			}
			return false, nil
		case "add":
			if len(args) != 2 {
				return nil, argCount(name, len(args))
			}
			if t.Has(str(0)) {
				return nil, fmt.Errorf(`Exception calling "Add" with "2" argument(s): "Item has already been added. Key in dictionary: '%s'  Key being added: '%s'"`, str(0), str(0))
			}
			t.Set(str(0), args[1])
			return nil, nil
		case "remove":
			if len(args) != 1 {
				return nil, argCount(name, len(args))
			}
			t.Delete(str(0))
			return nil, nil
		case "clear":
			t.Keys, t.Values = nil, map[string]Value{}
			return nil, nil
		case "getenumerator":
			out := make([]Value, len(t.Keys))
			for i, k := range t.Keys {
				out[i] = &Object{TypeName: "System.Collections.DictionaryEntry", DefaultView: TableView,
					DefaultDisplay: []string{"Name", "Value"},
					Props:          []Prop{{Name: "Name", Value: k}, {Name: "Key", Value: k}, {Name: "Value", Value: t.Get(k)}}}
			}
			return out, nil
		}
	case time.Time:
		return dateMethod(t, name, args, str)
	case *Object:
		if d, ok := durationOf(t); ok && n == "add" && len(args) == 1 {
			if d2, ok := durationOf(args[0]); ok {
				return timeSpan(d + d2), nil
			}
		}
	}
	return nil, noMethod(target, name)
}

func shortType(full string) string {
	if i := strings.LastIndexByte(full, '.'); i >= 0 {
		return full[i+1:]
	}
	return full
}

func stringMethod(s, name string, args []Value, str func(int) string, intArg func(int) (int, error)) (Value, error) {
	runes := []rune(s)
	switch strings.ToLower(name) {
	case "tolower", "tolowerinvariant":
		return strings.ToLower(s), nil
	case "toupper", "toupperinvariant":
		return strings.ToUpper(s), nil
	case "trim", "trimstart", "trimend":
		cut := " \t\r\n\v\f\u00a0\u2028\u2029\ufeff"
		if len(args) > 0 {
			cut = ""
			for i := range args {
				cut += str(i)
			}
		}
		switch strings.ToLower(name) {
		case "trimstart":
			return strings.TrimLeft(s, cut), nil
		case "trimend":
			return strings.TrimRight(s, cut), nil
		}
		return strings.Trim(s, cut), nil
	case "split":
		// PowerShell 7 calls String.Split(string): the separator is the
		// whole string given; with none, any white space.
		if len(args) == 0 {
			return splitWithEmpties(s, func(r rune) bool { return unicode.IsSpace(r) }), nil
		}
		var seps []string
		for _, a := range enumerate(args[0]) {
			seps = append(seps, toString(a))
		}
		removeEmpty := len(args) > 1 && strings.Contains(strings.ToLower(str(len(args)-1)), "removeemptyentries")
		parts := []string{s}
		for _, sep := range seps {
			if sep == "" {
				continue
			}
			var next []string
			for _, p := range parts {
				next = append(next, strings.Split(p, sep)...)
			}
			parts = next
		}
		out := []Value{}
		for _, p := range parts {
			if removeEmpty && p == "" {
				continue
			}
			out = append(out, p)
		}
		return out, nil
	case "replace":
		if len(args) != 2 {
			return nil, argCount(name, len(args))
		}
		if str(0) == "" {
			return nil, fmt.Errorf(`Exception calling "Replace" with "2" argument(s): "String cannot be of zero length."`)
		}
		out := strings.ReplaceAll(s, str(0), str(1))
		if len(out) > maxStringLen {
			return nil, errTooLarge
		}
		return out, nil
	case "contains":
		if len(args) != 1 {
			return nil, argCount(name, len(args))
		}
		return strings.Contains(s, str(0)), nil
	case "startswith", "endswith":
		if len(args) == 0 {
			return nil, argCount(name, 0)
		}
		a, b := s, str(0)
		if len(args) > 1 && strings.Contains(strings.ToLower(str(1)), "ignorecase") {
			a, b = strings.ToLower(a), strings.ToLower(b)
		}
		if strings.EqualFold(name, "StartsWith") {
			return strings.HasPrefix(a, b), nil
		}
		return strings.HasSuffix(a, b), nil
	case "indexof", "lastindexof":
		if len(args) == 0 {
			return nil, argCount(name, 0)
		}
		var i int
		if strings.EqualFold(name, "IndexOf") {
			i = strings.Index(s, str(0))
		} else {
			i = strings.LastIndex(s, str(0))
		}
		if i < 0 {
			return int64(-1), nil
		}
		return int64(utf8.RuneCountInString(s[:i])), nil
	case "substring":
		start, err := intArg(0)
		if err != nil {
			return nil, err
		}
		end := len(runes)
		if len(args) > 1 {
			l, err := intArg(1)
			if err != nil {
				return nil, err
			}
			end = start + l
		}
		if start < 0 || start > len(runes) || end < start || end > len(runes) {
			return nil, fmt.Errorf(`Exception calling "Substring" with "%d" argument(s): "Index and length must refer to a location within the string."`, len(args))
		}
		return string(runes[start:end]), nil
	case "padleft", "padright":
		w, err := intArg(0)
		if err != nil {
			return nil, err
		}
		if w > 1<<16 {
			return nil, errTooLarge
		}
		pad := " "
		if len(args) > 1 && str(1) != "" {
			pad = string([]rune(str(1))[0])
		}
		if w <= len(runes) {
			return s, nil
		}
		fill := strings.Repeat(pad, w-len(runes))
		if strings.EqualFold(name, "PadLeft") {
			return fill + s, nil
		}
		return s + fill, nil
	case "insert":
		at, err := intArg(0)
		if err != nil {
			return nil, err
		}
		if at < 0 || at > len(runes) {
			return nil, fmt.Errorf(`Exception calling "Insert" with "2" argument(s): "Index was out of range."`)
		}
		return string(runes[:at]) + str(1) + string(runes[at:]), nil
	case "remove":
		start, err := intArg(0)
		if err != nil {
			return nil, err
		}
		end := len(runes)
		if len(args) > 1 {
			l, err := intArg(1)
			if err != nil {
				return nil, err
			}
			end = start + l
		}
		if start < 0 || start > len(runes) || end < start || end > len(runes) {
			return nil, fmt.Errorf(`Exception calling "Remove" with "%d" argument(s): "Index and count must refer to a location within the string."`, len(args))
		}
		return string(runes[:start]) + string(runes[end:]), nil
	case "tochararray":
		out := make([]Value, len(runes))
		for i, r := range runes {
			out[i] = string(r)
		}
		return out, nil
	case "compareto":
		return int64(strings.Compare(s, str(0))), nil
	case "normalize", "clone":
		return s, nil
	}
	return nil, noMethod(s, name)
}

// splitWithEmpties splits s at every separator rune, keeping empty
// fields, as String.Split() does.
func splitWithEmpties(s string, sep func(rune) bool) []Value {
	out := []Value{}
	start := 0
	for i, r := range s {
		if sep(r) {
			out = append(out, s[start:i])
			start = i + utf8.RuneLen(r)
		}
	}
	return append(out, s[start:])
}

// dateMember reads a DateTime's properties.
func dateMember(t time.Time, name string) Value {
	switch strings.ToLower(name) {
	case "year":
		return int64(t.Year())
	case "month":
		return int64(t.Month())
	case "day":
		return int64(t.Day())
	case "hour":
		return int64(t.Hour())
	case "minute":
		return int64(t.Minute())
	case "second":
		return int64(t.Second())
	case "millisecond":
		return int64(t.Nanosecond() / 1e6)
	case "dayofweek":
		return t.Weekday().String()
	case "dayofyear":
		return int64(t.YearDay())
	case "date":
		y, m, d := t.Date()
		return time.Date(y, m, d, 0, 0, 0, 0, t.Location())
	case "ticks":
		return t.Sub(time.Date(1, 1, 1, 0, 0, 0, 0, t.Location())).Nanoseconds()/100 + 0
	case "kind":
		if t.Location() == time.UTC {
			return "Utc"
		}
		return "Local"
	case "timeofday":
		y, m, d := t.Date()
		return timeSpan(t.Sub(time.Date(y, m, d, 0, 0, 0, 0, t.Location())))
	}
	return nil
}

func dateMethod(t time.Time, name string, args []Value, str func(int) string) (Value, error) {
	n := strings.ToLower(name)
	if strings.HasPrefix(n, "add") {
		if len(args) != 1 {
			return nil, argCount(name, len(args))
		}
		num, err := toNumber(args[0])
		if err != nil {
			return nil, err
		}
		f := toFloat(num)
		unit := map[string]float64{"adddays": 24 * 3600, "addhours": 3600, "addminutes": 60, "addseconds": 1, "addmilliseconds": 1e-3}
		switch n {
		case "addmonths":
			return t.AddDate(0, int(f), 0), nil
		case "addyears":
			return t.AddDate(int(f), 0, 0), nil
		case "add":
			if o, ok := args[0].(*Object); ok {
				if d, ok := durationOf(o); ok {
					return t.Add(d), nil
				}
			}
		}
		if u, ok := unit[n]; ok {
			if math.Abs(f*u) > 1e11 {
				return nil, fmt.Errorf(`Exception calling "%s" with "1" argument(s): "The added or subtracted value results in an un-representable DateTime."`, name)
			}
			return t.Add(time.Duration(f * u * float64(time.Second))), nil
		}
	}
	switch n {
	case "touniversaltime":
		return t.UTC(), nil
	case "tolocaltime":
		return t.Local(), nil
	case "toshortdatestring":
		return formatDate(t, "d"), nil
	case "tolongdatestring":
		return formatDate(t, "D"), nil
	case "toshorttimestring":
		return formatDate(t, "t"), nil
	case "tolongtimestring":
		return formatDate(t, "T"), nil
	case "tofiletime", "tofiletimeutc":
		return (t.UnixNano() / 100) + 116444736000000000, nil
	case "subtract":
		if len(args) == 1 {
			switch a := args[0].(type) {
			case time.Time:
				return timeSpan(t.Sub(a)), nil
			case *Object:
				if d, ok := durationOf(a); ok {
					return t.Add(-d), nil
				}
			}
		}
	}
	return nil, noMethod(t, name)
}

// timeSpan is a duration as PowerShell's TimeSpan object.
func timeSpan(d time.Duration) *Object {
	days := int64(d / (24 * time.Hour))
	rest := d - time.Duration(days)*24*time.Hour
	return &Object{TypeName: "System.TimeSpan", DefaultView: ListView, Props: []Prop{
		{Name: "Days", Value: days},
		{Name: "Hours", Value: int64(rest / time.Hour)},
		{Name: "Minutes", Value: int64(rest % time.Hour / time.Minute)},
		{Name: "Seconds", Value: int64(rest % time.Minute / time.Second)},
		{Name: "Milliseconds", Value: int64(rest % time.Second / time.Millisecond)},
		{Name: "Ticks", Value: int64(d / 100)},
		{Name: "TotalDays", Value: d.Hours() / 24},
		{Name: "TotalHours", Value: d.Hours()},
		{Name: "TotalMinutes", Value: d.Minutes()},
		{Name: "TotalSeconds", Value: d.Seconds()},
		{Name: "TotalMilliseconds", Value: float64(d.Milliseconds())},
	}}
}

// durationOf reads a TimeSpan object back.
func durationOf(v Value) (time.Duration, bool) {
	o, ok := v.(*Object)
	if !ok || o.TypeName != "System.TimeSpan" {
		return 0, false
	}
	ticks, _ := o.Get("Ticks")
	t, ok := ticks.(int64)
	return time.Duration(t) * 100, ok
}

// index reads v[i]: an array's element (negative from the end, an array
// of indexes for several), a hashtable's key, a string's character.
func index(v, i Value) Value {
	i = scalar(i)
	if idx, ok := i.([]Value); ok {
		var out []Value
		for _, one := range idx {
			if e := index(v, one); e != nil {
				out = append(out, e)
			}
		}
		return out
	}
	switch x := v.(type) {
	case *Hashtable:
		return x.Get(toString(i))
	case *Object:
		val, _ := x.Get(toString(i))
		return val
	case []Value:
		n, ok := toInt32(i)
		if !ok {
			return nil
		}
		if n < 0 {
			n += int64(len(x))
		}
		if n < 0 || n >= int64(len(x)) {
			return nil
		}
		return x[n]
	case string:
		runes := []rune(x)
		n, ok := toInt32(i)
		if !ok {
			return nil
		}
		if n < 0 {
			n += int64(len(runes))
		}
		if n < 0 || n >= int64(len(runes)) {
			return nil
		}
		return string(runes[n])
	case nil:
		return nil
	}
	if n, ok := toInt32(i); ok && (n == 0 || n == -1) {
		return v // a scalar is a one-element collection
	}
	return nil
}

// setMember assigns obj.Name.
func setMember(obj Value, name string, v Value) error {
	switch x := obj.(type) {
	case *Hashtable:
		x.Set(name, v)
		return nil
	case *Object:
		if p := x.prop(name); p != nil {
			p.Value = v
			return nil
		}
		return fmt.Errorf("The property '%s' cannot be found on this object. Verify that the property exists and can be set.", name)
	case nil:
		return fmt.Errorf("The property '%s' cannot be found on this object. Verify that the property exists and can be set.", name)
	}
	return fmt.Errorf("'%s' is a ReadOnly property.", name)
}

// setIndex assigns obj[i].
func setIndex(obj, i, v Value) error {
	switch x := obj.(type) {
	case *Hashtable:
		x.Set(toString(scalar(i)), v)
		return nil
	case []Value:
		n, ok := toInt32(scalar(i))
		if ok && n < 0 {
			n += int64(len(x))
		}
		if !ok || n < 0 || n >= int64(len(x)) {
			return fmt.Errorf("Index was outside the bounds of the array.")
		}
		x[n] = v
		return nil
	case *Object:
		return setMember(x, toString(scalar(i)), v)
	}
	return fmt.Errorf("Unable to index into an object of type %s.", netTypeName(obj))
}

var errNoFiles = errors.New("file access is disabled here")
