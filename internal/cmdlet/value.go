package cmdlet

import (
	"strings"
)

// Value is a PowerShell value as the language passes it around: nil
// ($null), bool, int64, float64, string, []Value (an array), *Hashtable,
// *Object, Unlimited, or any other type, displayed through its String
// method when it has one (a byte size, say).
//
// A cmdlet may also put int, []string, *bool and time.Time values in an
// Object's properties; FormatValue shows them as PowerShell shows the
// corresponding .NET types.
type Value = any

// Hashtable is a hashtable literal such as @{Add="a","b"; Remove="c"}.
// Keys keeps the keys in the order and spelling they were written in;
// Values holds the values by lower-cased key, because PowerShell's
// hashtables ignore case.
type Hashtable struct {
	Keys   []string
	Values map[string]Value
}

// NewHashtable returns an empty hashtable.
func NewHashtable() *Hashtable {
	return &Hashtable{Values: map[string]Value{}}
}

// Get returns the value of key, ignoring case; nil when it is absent.
func (h *Hashtable) Get(key string) Value {
	return h.Values[strings.ToLower(key)]
}

// Has reports whether key is present, ignoring case.
func (h *Hashtable) Has(key string) bool {
	_, ok := h.Values[strings.ToLower(key)]
	return ok
}

// Set sets key to v, keeping the key's original position if it is present.
func (h *Hashtable) Set(key string, v Value) {
	k := strings.ToLower(key)
	if _, ok := h.Values[k]; !ok {
		h.Keys = append(h.Keys, key)
	}
	h.Values[k] = v
}

// Delete removes key, ignoring case.
func (h *Hashtable) Delete(key string) {
	k := strings.ToLower(key)
	if _, ok := h.Values[k]; !ok {
		return
	}
	delete(h.Values, k)
	for i, name := range h.Keys {
		if strings.ToLower(name) == k {
			h.Keys = append(h.Keys[:i:i], h.Keys[i+1:]...)
			break
		}
	}
}

// View is how an object is shown when it reaches the host without a
// Format-* command.
type View int

const (
	// AutoView is PowerShell's rule for types without a view of their own:
	// a table when at most four properties are shown, a list otherwise.
	AutoView View = iota
	// ListView shows "Name : Value" lines, one block per object
	// (Get-TransportConfig).
	ListView
	// TableView shows one row per object (Get-Mailbox).
	TableView
)

// Object is a cmdlet's output record: an ordered property list, like the
// PSObjects Exchange's cmdlets return.
type Object struct {
	// TypeName names the kind of record ("Mailbox", "TransportConfig").
	// Consecutive objects of one type share a table in default output.
	TypeName string
	// Props are the properties in display order, named as Exchange
	// spells them.
	Props []Prop
	// DefaultDisplay lists the properties the default view shows, e.g.
	// Get-Mailbox's Name, Alias, ServerName, ProhibitSendQuota; empty
	// means all. Format-Table without -Property shows the same columns;
	// Format-List without -Property shows every property unless the
	// default view is itself a list, as with Exchange's format files.
	DefaultDisplay []string
	// DefaultView is the shape of default output.
	DefaultView View
}

// Prop is one property of an Object.
type Prop struct {
	Name  string
	Value Value
}

// Get returns the named property's value, ignoring case in the name.
func (o *Object) Get(name string) (Value, bool) {
	if p := o.prop(name); p != nil {
		return p.Value, true
	}
	return nil, false
}

func (o *Object) prop(name string) *Prop {
	for i := range o.Props {
		if strings.EqualFold(o.Props[i].Name, name) {
			return &o.Props[i]
		}
	}
	return nil
}

// String is the object's text where a string is needed, as .NET's
// ToString is for Exchange's objects: its Identity, else its type name.
func (o *Object) String() string {
	if id, ok := o.Get("Identity"); ok && id != nil {
		return toString(id)
	}
	return o.TypeName
}

// Unlimited is the value of an IntOrUnlimited or ByteSize parameter given
// as the word Unlimited, Exchange's Unlimited<T> without a limit.
var Unlimited Value = unlimited{}

type unlimited struct{}

func (unlimited) String() string { return "Unlimited" }

// secureString is what ConvertTo-SecureString returns and SecureString
// parameters hold. It shows as its .NET type name, as a SecureString does,
// so that a password never reaches the output by accident.
type secureString struct{ plain string }

func (secureString) String() string   { return "System.Security.SecureString" }
func (secureString) GoString() string { return "System.Security.SecureString" }

// Strings returns v as a list of strings: nil for $null, one string for a
// single value, one per element for an array. It reads StringList
// parameters and the Add and Remove values of their hashtables.
func Strings(v Value) []string {
	switch v := v.(type) {
	case nil:
		return nil
	case []string:
		return v
	case []Value:
		out := make([]string, 0, len(v))
		for _, e := range v {
			out = append(out, toString(e))
		}
		return out
	}
	return []string{toString(v)}
}
