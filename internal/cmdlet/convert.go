package cmdlet

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// convertArg converts an argument to p's type (see ParamType for what each
// type holds), with PowerShell's error messages.
func convertArg(p *ParamSpec, v Value) (Value, error) {
	if v == nil {
		switch {
		case p.Type == Switch:
			return false, nil
		case p.Type == Bool:
			return nil, boolError(p, v)
		case p.Required:
			return nil, nullArgument(p.Name)
		case p.Type == Enum:
			return nil, enumError(p, "")
		}
		return nil, nil
	}
	switch p.Type {
	case String, Identity:
		return toStringArg(p, v)
	case Bool, NullableBool, Switch:
		if b, ok := toBool(single(v)); ok {
			return b, nil
		}
		return nil, boolError(p, v)
	case Int:
		if n, ok := toInt32(single(v)); ok {
			return n, nil
		}
	case IntOrUnlimited:
		if isUnlimited(single(v)) {
			return Unlimited, nil
		}
		if n, ok := toInt32(single(v)); ok {
			return n, nil
		}
	case ByteSize:
		if size, ok := toByteSize(single(v)); ok {
			return size, nil
		}
	case Enum:
		return toEnum(p, single(v))
	case StringList:
		return toStringList(p, v)
	case SecureString:
		switch v := single(v).(type) {
		case secureString:
			return v, nil
		case string:
			return secureString{v}, nil
		case typedNumber:
			return secureString{v.text}, nil
		}
	case Any:
		return plain(v), nil
	}
	return nil, conversionError(p, v)
}

// single unwraps an array of one element, as PowerShell does when it
// converts an array to a scalar type.
func single(v Value) Value {
	if a, ok := v.([]Value); ok && len(a) == 1 {
		return a[0]
	}
	return v
}

// plain replaces typed numbers by their values, for parameters that take
// values as they are.
func plain(v Value) Value {
	switch v := v.(type) {
	case typedNumber:
		return v.value
	case []Value:
		out := make([]Value, len(v))
		for i, e := range v {
			out[i] = plain(e)
		}
		return out
	}
	return v
}

func toStringArg(p *ParamSpec, v Value) (Value, error) {
	v = single(v)
	var s string
	switch x := v.(type) {
	case *Hashtable:
		return nil, conversionError(p, v)
	case []Value:
		if p.Type == Identity {
			return nil, conversionError(p, v)
		}
		s = toString(x) // PowerShell joins an array with spaces
	case *Object:
		if _, ok := x.Get("Identity"); !ok && p.Type == Identity {
			return nil, conversionError(p, v)
		}
		s = x.String()
	case time.Time:
		// A date given to a text parameter (-StartDate (Get-Date)) keeps
		// its zone and fraction of a second, in a form the cmdlet parses.
		s = x.Format(time.RFC3339Nano)
	default:
		s = toString(x)
	}
	if s == "" && p.Required {
		return nil, fmt.Errorf("Cannot bind argument to parameter '%s' because it is an empty string.", p.Name)
	}
	return s, nil
}

func toBool(v Value) (bool, bool) {
	switch v := v.(type) {
	case bool:
		return v, true
	case int64:
		return v != 0, true
	case float64:
		return v != 0, true
	case typedNumber:
		return toBool(v.value)
	case string:
		// PowerShell refuses strings here; the words true and false are
		// accepted because a Unix shell passes $true only when quoted.
		switch strings.ToLower(v) {
		case "true":
			return true, true
		case "false":
			return false, true
		}
	}
	return false, false
}

func boolError(p *ParamSpec, v Value) error {
	return fmt.Errorf(`Cannot process argument transformation on parameter '%s'. Cannot convert value "%s" to type "System.Boolean". Boolean parameters accept only Boolean values and numbers, such as $True, $False, 1 or 0.`, p.Name, describe(v))
}

// toInt32 converts to an int64 in the range of System.Int32: numbers
// (fractions round to even, as .NET's do), numeric strings ("100", "0x10",
// "1KB") and booleans.
func toInt32(v Value) (int64, bool) {
	var n int64
	switch v := v.(type) {
	case int64:
		n = v
	case float64:
		if math.IsNaN(v) || math.Abs(v) > math.MaxInt32+1 {
			return 0, false
		}
		n = int64(math.RoundToEven(v))
	case typedNumber:
		return toInt32(v.value)
	case string:
		num, ok := parseNumber(strings.TrimSpace(v))
		if !ok {
			return 0, false
		}
		return toInt32(num)
	case bool:
		if v {
			n = 1
		}
	default:
		return 0, false
	}
	return n, math.MinInt32 <= n && n <= math.MaxInt32
}

func isUnlimited(v Value) bool {
	if s, ok := v.(string); ok {
		return strings.EqualFold(strings.TrimSpace(s), "Unlimited")
	}
	return v == Unlimited
}

// toByteSize converts to a byte count (int64) or Unlimited.
func toByteSize(v Value) (Value, bool) {
	switch v := v.(type) {
	case int64:
		return v, v >= 0
	case float64:
		if !(v >= 0 && v < math.MaxInt64) {
			return nil, false
		}
		return int64(math.Round(v)), true
	case typedNumber:
		return toByteSize(v.value)
	case string:
		return parseByteSize(v)
	}
	return nil, v == Unlimited
}

// byteUnits are the units of a ByteQuantifiedSize, powers of 1024.
var byteUnits = map[string]float64{"": 1, "b": 1, "kb": 1 << 10, "mb": 1 << 20, "gb": 1 << 30, "tb": 1 << 40}

// parseByteSize reads a size as Exchange does: "Unlimited", a byte count,
// a number with a unit ("35MB", "35 MB", "1.5GB"), or Exchange's own
// display, "35 MB (36,700,160 bytes)", whose exact count is in the
// parentheses.
func parseByteSize(s string) (Value, bool) {
	s = strings.TrimSpace(s)
	if strings.EqualFold(s, "Unlimited") {
		return Unlimited, true
	}
	if open := strings.LastIndexByte(s, '('); open >= 0 && strings.HasSuffix(s, " bytes)") {
		n, err := strconv.ParseInt(strings.ReplaceAll(s[open+1:len(s)-len(" bytes)")], ",", ""), 10, 64)
		return n, err == nil && n >= 0
	}
	i := strings.IndexFunc(s, func(r rune) bool { return (r < '0' || r > '9') && r != '.' })
	if i < 0 {
		i = len(s)
	}
	unit, ok := byteUnits[strings.ToLower(strings.TrimSpace(s[i:]))]
	if !ok || i == 0 {
		return nil, false
	}
	if n, err := strconv.ParseInt(s[:i], 10, 64); err == nil {
		if float64(n)*unit >= math.MaxInt64 {
			return nil, false
		}
		return n * int64(unit), true
	}
	f, err := strconv.ParseFloat(s[:i], 64)
	if err != nil || f*unit >= math.MaxInt64 {
		return nil, false
	}
	return int64(math.Round(f * unit)), true
}

// toEnum matches v against p's ValidValues, ignoring case, and returns the
// value as spelled there.
func toEnum(p *ParamSpec, v Value) (Value, error) {
	s := toString(v)
	for _, valid := range p.ValidValues {
		if strings.EqualFold(s, valid) {
			return valid, nil
		}
	}
	return nil, enumError(p, s)
}

func enumError(p *ParamSpec, s string) error {
	return fmt.Errorf(`Cannot validate argument on parameter '%s'. The argument "%s" does not belong to the set "%s" specified by the ValidateSet attribute. Supply an argument that is in the set and then try the command again.`, p.Name, s, strings.Join(p.ValidValues, ","))
}

// toStringList converts a list or single value to []string, and, for a
// MultiValued parameter, @{Add=...; Remove=...} to a hashtable with those
// keys spelled so and []string values.
func toStringList(p *ParamSpec, v Value) (Value, error) {
	h, ok := v.(*Hashtable)
	if !ok {
		return stringList(p, v)
	}
	if !p.MultiValued {
		return nil, conversionError(p, v)
	}
	edit := NewHashtable()
	for _, key := range h.Keys {
		var canonical string
		switch {
		case strings.EqualFold(key, "Add"):
			canonical = "Add"
		case strings.EqualFold(key, "Remove"):
			canonical = "Remove"
		default:
			return nil, fmt.Errorf("Cannot bind parameter '%s'. The hashtable key '%s' is not valid: use Add or Remove, as in @{Add=\"value\"; Remove=\"value\"}.", p.Name, key)
		}
		list, err := stringList(p, h.Get(key))
		if err != nil {
			return nil, err
		}
		edit.Set(canonical, list)
	}
	return edit, nil
}

func stringList(p *ParamSpec, v Value) ([]string, error) {
	elems, ok := v.([]Value)
	if !ok {
		elems = []Value{v}
	}
	list := make([]string, 0, len(elems))
	for _, e := range elems {
		switch e.(type) {
		case nil:
			continue
		case []Value, *Hashtable:
			return nil, conversionError(p, v)
		}
		list = append(list, toString(e))
	}
	return list, nil
}

// conversionError is PowerShell's message for an argument that does not
// convert to the parameter's type.
func conversionError(p *ParamSpec, v Value) error {
	switch v.(type) {
	case []Value, *Hashtable, *Object:
		return fmt.Errorf(`Cannot bind parameter '%s'. Cannot convert the "%s" value of type "%s" to type "%s".`, p.Name, describe(v), typeName(v), p.Type)
	}
	return fmt.Errorf(`Cannot bind parameter '%s'. Cannot convert value "%s" to type "%s".`, p.Name, describe(v), p.Type)
}

// describe is how an error message quotes a value: arrays and hashtables
// by their type, as PowerShell does.
func describe(v Value) string {
	switch v.(type) {
	case []Value, *Hashtable:
		return typeName(v)
	}
	return toString(v)
}

// typeName is the .NET type PowerShell would report for v.
func typeName(v Value) string {
	switch v := v.(type) {
	case []Value:
		return "System.Object[]"
	case *Hashtable:
		return "System.Collections.Hashtable"
	case *Object:
		return v.TypeName
	}
	return "System.Object"
}

// toString converts v to a string as PowerShell does where a string is
// needed: arrays joined with spaces, numbers as typed, other values as
// FormatValue shows them.
func toString(v Value) string {
	switch v := v.(type) {
	case []Value:
		parts := make([]string, len(v))
		for i, e := range v {
			parts[i] = toString(e)
		}
		return strings.Join(parts, " ")
	case []string:
		return strings.Join(v, " ")
	case time.Time:
		// PowerShell converts a date to text in the invariant culture, so
		// that it parses back: -StartDate (Get-Date).AddDays(-2).
		return v.Format("01/02/2006 15:04:05")
	}
	return FormatValue(v)
}
