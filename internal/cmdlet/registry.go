package cmdlet

import (
	"context"
	"fmt"
	"slices"
	"strings"
)

// ParamType is a parameter's type: how an argument is converted before the
// cmdlet sees it, and which Go type Invocation.Args then holds.
type ParamType int

const (
	// String holds a string. Numbers keep the text they were typed as
	// (-Name 007 is "007").
	String ParamType = iota
	// Bool holds a bool; it accepts $true/$false, 1/0, and the words
	// true/false that a Unix shell passes through unquoted.
	Bool
	// NullableBool holds a bool, or nil for $null.
	NullableBool
	// Int holds an int64 in the range of System.Int32.
	Int
	// IntOrUnlimited holds an int64, or Unlimited.
	IntOrUnlimited
	// Switch holds a bool: true when given as -Name, or the value of
	// -Name:$false.
	Switch
	// StringList holds a []string: a comma list (a,b) or a single value.
	// With ParamSpec.MultiValued it also accepts @{Add=...; Remove=...},
	// held as a *Hashtable with the keys Add and/or Remove and []string
	// values.
	StringList
	// SecureString holds a password given as a plain string or as the
	// output of ConvertTo-SecureString; Invocation.String returns its
	// text.
	SecureString
	// ByteSize holds a byte count as int64, or Unlimited. It accepts
	// 36700160, 35MB, "35 MB", 1.5GB and Exchange's own
	// "35 MB (36,700,160 bytes)"; KB, MB, GB and TB are 1024 multiples.
	ByteSize
	// Enum holds a string, one of ParamSpec.ValidValues as spelled there;
	// the argument may be in any case.
	Enum
	// Identity holds a string naming an object. An Object given for it
	// (-Identity (Get-Mailbox sean)) passes its Identity property.
	Identity
	// Any holds the argument as it is.
	Any
)

// String returns the .NET type the parameter has in Exchange's cmdlets, as
// binding errors name it.
func (t ParamType) String() string {
	switch t {
	case Bool:
		return "System.Boolean"
	case NullableBool:
		return "System.Nullable`1[System.Boolean]"
	case Int:
		return "System.Int32"
	case IntOrUnlimited:
		return "Microsoft.Exchange.Data.Unlimited`1[System.Int32]"
	case Switch:
		return "System.Management.Automation.SwitchParameter"
	case StringList:
		return "System.String[]"
	case SecureString:
		return "System.Security.SecureString"
	case ByteSize:
		return "Microsoft.Exchange.Data.Unlimited`1[Microsoft.Exchange.Data.ByteQuantifiedSize]"
	case Any:
		return "System.Object"
	}
	return "System.String"
}

// Named is the Position of a parameter that binds only by name.
const Named = -1

// ParamSpec declares one parameter of a cmdlet.
type ParamSpec struct {
	Name     string
	Type     ParamType
	Required bool
	// Position is the index among positional arguments that binds to this
	// parameter (0 for the first), or Named (-1).
	Position int
	// ValidValues are the values of an Enum.
	ValidValues []string
	// MultiValued lets a StringList take @{Add=...; Remove=...}.
	MultiValued bool
	Help        string
	// IsContent, when set, marks a parameter that takes a document (a
	// PEM certificate): a value it accepts is the document itself; any
	// other value is a path that the shell reads for the cmdlet, relative
	// to its directory, before Run sees it. Only the shell does: where
	// files are off (the REST API), a path is refused, so that no caller
	// makes the server read a file it names. The admin service only ever
	// receives the content.
	IsContent func(string) bool
	// ByPropertyName takes the parameter from a pipeline object's property
	// of the same name when it is not given (PowerShell's
	// ValueFromPipelineByPropertyName): Get-MessageTrace |
	// Get-MessageTraceDetail binds MessageTraceId and RecipientAddress.
	ByPropertyName bool
	// Remaining collects every positional argument left over, as an
	// array (ValueFromRemainingArguments): Write-Host a b c.
	Remaining bool
}

// Spec declares a cmdlet.
type Spec struct {
	Name     string // "Set-CASMailbox"
	Aliases  []string
	Synopsis string
	Params   []ParamSpec
	// SupportsWhatIf accepts -WhatIf, which sets Invocation.WhatIf, and
	// -Confirm, which is ignored since the shell never prompts. Set-, New-
	// and Remove- cmdlets have it.
	SupportsWhatIf bool
	// Run does the work. When a cmdlet with an Identity parameter is fed
	// by a pipeline and -Identity is not given, Run is called once per
	// input object with Identity taken from the object's Identity
	// property (Get-Mailbox | Set-CASMailbox ...).
	Run func(ctx context.Context, inv *Invocation) ([]*Object, error)
	// The declaration (declare.go): front ends derive their tables from
	// it, so that a cmdlet is added by writing its Spec alone.

	// Output is the TypeName of the objects Run returns, NoOutput when it
	// returns none; the REST API's description of responses uses it.
	Output string
	// Access is what the cmdlet may do; the admin service decides from
	// it which role groups may run the cmdlet.
	Access Access
	// REST is where the REST API serves the cmdlet.
	REST Route

	// process replaces Run for the built-ins, which take and produce
	// values other than objects (formatted text, a SecureString) and see
	// all their pipeline input at once.
	process func(ctx context.Context, inv *Invocation, input []Value) ([]Value, error)
	// runsUnfed runs a built-in even when its pipeline input is empty
	// (Measure-Object counts nothing as 0; Out-File creates the file).
	runsUnfed bool
}

// byPropertyName returns the ByPropertyName parameters inv did not give.
func (s *Spec) byPropertyName(inv *Invocation) []*ParamSpec {
	var out []*ParamSpec
	for i := range s.Params {
		if p := &s.Params[i]; p.ByPropertyName && !inv.Has(p.Name) {
			out = append(out, p)
		}
	}
	return out
}

// whatIfParams are the common parameters of cmdlets that SupportsWhatIf.
var whatIfParams = []ParamSpec{
	{Name: "WhatIf", Type: Switch, Position: Named},
	{Name: "Confirm", Type: Switch, Position: Named},
}

// bindable returns the parameters arguments can bind to.
func (s *Spec) bindable() []ParamSpec {
	params := append(slices.Clip(s.Params), errorActionParam)
	if s.SupportsWhatIf {
		params = append(params, whatIfParams...)
	}
	return params
}

// errorActionParam is the common parameter every cmdlet takes: Stop (the
// default here: the script ends), Continue (the error is shown and the
// script goes on), SilentlyContinue and Ignore (it goes on silently).
var errorActionParam = ParamSpec{Name: "ErrorAction", Type: Enum, Position: Named,
	ValidValues: []string{"Stop", "Continue", "SilentlyContinue", "Ignore"}}

// param returns the declared parameter with the canonical name, or nil.
func (s *Spec) param(name string) *ParamSpec {
	for i := range s.Params {
		if s.Params[i].Name == name {
			return &s.Params[i]
		}
	}
	return nil
}

func (s *Spec) validate() error {
	if s.Name == "" {
		return fmt.Errorf("a cmdlet has no name")
	}
	if s.Run == nil && s.process == nil {
		return fmt.Errorf("%s has no Run function", s.Name)
	}
	names := map[string]bool{}
	positions := map[int]string{}
	for _, p := range s.bindable() {
		key := strings.ToLower(p.Name)
		if p.Name == "" || names[key] {
			return fmt.Errorf("%s: parameter %q is empty or declared twice", s.Name, p.Name)
		}
		names[key] = true
		if p.Position >= 0 {
			if other, dup := positions[p.Position]; dup {
				return fmt.Errorf("%s: parameters %s and %s both have position %d (use Named for named-only parameters)", s.Name, other, p.Name, p.Position)
			}
			positions[p.Position] = p.Name
		}
		if p.Type == Enum && len(p.ValidValues) == 0 {
			return fmt.Errorf("%s: enum parameter %s has no ValidValues", s.Name, p.Name)
		}
	}
	return nil
}

// Registry holds the cmdlets a Runner can call. Register everything before
// running scripts; lookups may then happen concurrently.
type Registry struct {
	byName map[string]*Spec // by lower-cased name and alias
	specs  []*Spec
}

// NewRegistry returns an empty registry; RegisterBuiltins adds the shell's
// own cmdlets.
func NewRegistry() *Registry {
	return &Registry{byName: map[string]*Spec{}}
}

// Register adds a cmdlet. It panics if the spec is malformed or a name is
// taken: those are programming errors, which the first test that builds
// the registry finds.
func (r *Registry) Register(s Spec) {
	if err := s.validate(); err != nil {
		panic("cmdlet: " + err.Error())
	}
	names := append([]string{s.Name}, s.Aliases...)
	for _, name := range names {
		if _, dup := r.byName[strings.ToLower(name)]; dup {
			panic(fmt.Sprintf("cmdlet: %s is registered twice", name))
		}
	}
	spec := &s
	for _, name := range names {
		r.byName[strings.ToLower(name)] = spec
	}
	r.specs = append(r.specs, spec)
}

// Lookup finds a cmdlet by name or alias, ignoring case.
func (r *Registry) Lookup(name string) (*Spec, bool) {
	s, ok := r.byName[strings.ToLower(name)]
	return s, ok
}

// Specs returns the registered cmdlets, in the order they were registered.
func (r *Registry) Specs() []*Spec { return slices.Clone(r.specs) }

// Bindable returns the parameters the cmdlet accepts: its own and the
// common ones (ErrorAction; WhatIf and Confirm where it supports them).
func (s *Spec) Bindable() []ParamSpec { return s.bindable() }

// Builtin reports whether the cmdlet is one of the shell's own (Format-List,
// Where-Object ...), which work on pipeline values rather than on Postern's
// objects.
func (s *Spec) Builtin() bool { return s.process != nil }

// Names returns the cmdlets' names, sorted, without aliases.
func (r *Registry) Names() []string {
	names := make([]string, 0, len(r.specs))
	for _, s := range r.specs {
		names = append(names, s.Name)
	}
	slices.SortFunc(names, func(a, b string) int {
		return strings.Compare(strings.ToLower(a), strings.ToLower(b))
	})
	return names
}
