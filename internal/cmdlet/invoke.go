package cmdlet

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// ErrUnknownCmdlet is returned by Invoke for a name no cmdlet has.
var ErrUnknownCmdlet = errors.New("unknown cmdlet")

// ParameterError is an argument Invoke could not bind: an unknown or
// ambiguous parameter, a value of the wrong type, a missing mandatory one.
// The caller's request is at fault, not the cmdlet.
type ParameterError struct{ Err error }

func (e *ParameterError) Error() string { return e.Err.Error() }
func (e *ParameterError) Unwrap() error { return e.Err }

// Invoke runs one cmdlet with named parameters, as the REST API calls
// cmdlets, and returns its output objects; what the cmdlet tells the host
// (What if: ..., warnings) goes to r.Out. params maps parameter names
// (case-insensitive) to values as encoding/json decodes them with
// UseNumber: strings, bools, json.Number, nil, []any for arrays and
// map[string]any for hashtables such as {"Add": [...], "Remove": [...]}.
//
// Only Postern's cmdlets can be invoked, not the shell's pipeline
// built-ins. ErrorAction has no meaning for a single call and is ignored.
func (r *Runner) Invoke(ctx context.Context, name string, params map[string]any) ([]*Object, error) {
	spec, ok := r.Registry.Lookup(name)
	if !ok || spec.Builtin() {
		return nil, fmt.Errorf("%w: %s", ErrUnknownCmdlet, notRecognized(name))
	}
	names := make([]string, 0, len(params))
	for n := range params {
		names = append(names, n)
	}
	slices.Sort(names) // a stable order, so that errors are too
	args := make([]argument, 0, len(names))
	for _, n := range names {
		v, err := fromJSON(params[n])
		if err != nil {
			return nil, &ParameterError{fmt.Errorf("parameter '%s': %w", n, err)}
		}
		args = append(args, argument{param: n, colon: true, value: v, hasValue: true})
	}
	inv, err := bind(spec, args)
	if err == nil {
		err = checkMandatory(spec, inv)
	}
	if err != nil {
		return nil, &ParameterError{err}
	}
	delete(inv.Args, "ErrorAction")
	inv.Host, inv.Dir, inv.noFiles = r.Out, r.Dir, true
	if err := readContentParams(spec, inv); err != nil {
		return nil, err
	}
	objs, err := spec.Run(ctx, inv)
	if err != nil {
		return nil, err
	}
	return slices.DeleteFunc(objs, func(o *Object) bool { return o == nil }), nil
}

// fromJSON turns a decoded JSON value into a shell value.
func fromJSON(v any) (Value, error) {
	switch v := v.(type) {
	case json.Number:
		if n, err := v.Int64(); err == nil {
			return n, nil
		}
		f, err := v.Float64()
		if err != nil {
			return nil, fmt.Errorf("the number %s is out of range", v)
		}
		return f, nil
	case []any:
		out := make([]Value, len(v))
		for i, e := range v {
			ev, err := fromJSON(e)
			if err != nil {
				return nil, err
			}
			out[i] = ev
		}
		return out, nil
	case map[string]any:
		h := NewHashtable()
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			ev, err := fromJSON(v[k])
			if err != nil {
				return nil, err
			}
			h.Set(k, ev)
		}
		return h, nil
	case nil, string, bool:
		return v, nil
	}
	return nil, fmt.Errorf("a value of type %T cannot be given", v)
}

// MarshalJSON writes the object as ConvertTo-Json does: its properties in
// order, by their names.
func (o *Object) MarshalJSON() ([]byte, error) { return o.AppendJSON(nil) }

// AppendJSON appends the object's JSON to b. Writing it directly, rather
// than through MarshalJSON, spares encoding/json's check and compaction
// of a Marshaler's output, which costs as much as the encoding itself in
// long lists.
func (o *Object) AppendJSON(b []byte) ([]byte, error) {
	b = append(b, '{')
	for i, p := range o.Props {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, p.Name)
		b = append(b, ':')
		var err error
		if b, err = appendJSON(b, JSONValue(p.Value)); err != nil {
			return nil, fmt.Errorf("property %s: %w", p.Name, err)
		}
	}
	return append(b, '}'), nil
}

// appendJSON appends what JSONValue returns; the common kinds directly.
func appendJSON(b []byte, v any) ([]byte, error) {
	switch v := v.(type) {
	case nil:
		return append(b, "null"...), nil
	case string:
		return appendJSONString(b, v), nil
	case bool:
		return strconv.AppendBool(b, v), nil
	case int64:
		return strconv.AppendInt(b, v, 10), nil
	case *Object:
		return v.AppendJSON(b)
	case []any:
		b = append(b, '[')
		for i, e := range v {
			if i > 0 {
				b = append(b, ',')
			}
			var err error
			if b, err = appendJSON(b, e); err != nil {
				return nil, err
			}
		}
		return append(b, ']'), nil
	}
	data, err := json.Marshal(v)
	return append(b, data...), err
}

// appendJSONString appends s as a JSON string (RFC 8259 section 7):
// quotes, backslashes and control characters escaped, invalid UTF-8 as
// U+FFFD, and U+2028 and U+2029 escaped for JavaScript's sake, as
// encoding/json does.
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c == '\n':
				b = append(b, '\\', 'n')
			case c == '\r':
				b = append(b, '\\', 'r')
			case c == '\t':
				b = append(b, '\\', 't')
			case c < 0x20:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			default:
				b = append(b, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xf])
		default:
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return append(b, '"')
}

// JSONValue converts a property value to what encoding/json writes for it:
// numbers, strings, booleans, null, arrays and nested objects as they are;
// times in RFC 3339 (UTC); a SecureString as its type name, never its
// text; anything else (Unlimited, sizes) as the text the shell shows.
func JSONValue(v Value) any {
	switch v := v.(type) {
	case nil, string, bool, int64, *Object:
		return v
	case int:
		return int64(v)
	case int32:
		return int64(v)
	case float64:
		if math.IsInf(v, 0) || math.IsNaN(v) {
			return nil
		}
		return v
	case *bool:
		if v == nil {
			return nil
		}
		return *v
	case time.Time:
		if v.IsZero() {
			return nil
		}
		return v.UTC().Format(time.RFC3339Nano)
	case typedNumber:
		return JSONValue(v.value)
	case []Value:
		out := make([]any, len(v))
		for i, e := range v {
			out[i] = JSONValue(e)
		}
		return out
	case []string:
		return v
	case *Hashtable:
		m := map[string]any{}
		for _, k := range v.Keys {
			m[k] = JSONValue(v.Get(k))
		}
		return m
	}
	return strings.TrimSpace(FormatValue(v))
}
