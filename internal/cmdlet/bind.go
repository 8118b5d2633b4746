package cmdlet

import (
	"errors"
	"fmt"
	"strings"
)

// argument is a command element with its value evaluated.
type argument struct {
	param    string // the parameter name as typed; "" for a positional argument
	colon    bool   // -Name:value, whose value is attached
	value    Value
	hasValue bool
	// shellEmpty: a Unix shell passed an empty word, as bash does for an
	// unquoted $true or $false (see emptyShellArgument).
	shellEmpty bool
	argv       bool // a parameter from a command line (commandElement.argv)
}

// bind binds arguments to spec's parameters as PowerShell does: names are
// case-insensitive and may be shortened to any unambiguous prefix; a
// parameter takes the next argument as its value unless it is a switch or
// has its value attached with a colon; the remaining arguments bind by
// position. Mandatory parameters are checked later, once pipeline input
// has had its chance to supply them.
func bind(spec *Spec, args []argument) (*Invocation, error) {
	inv := &Invocation{Args: map[string]Value{}}
	params := spec.bindable()
	bound := map[string]bool{}
	set := func(p *ParamSpec, a argument) error {
		v := a.value
		if bound[p.Name] {
			return fmt.Errorf(`Cannot bind parameter because parameter '%s' is specified more than once. To provide multiple values to parameters that can accept multiple values, use the array syntax. For example, "-parameter value1,value2,value3".`, p.Name)
		}
		bound[p.Name] = true
		cv, err := convertArg(p, v)
		if err != nil {
			if a.shellEmpty {
				return emptyShellArgument(p)
			}
			return err
		}
		switch {
		case spec.SupportsWhatIf && p.Name == "WhatIf":
			inv.WhatIf = cv.(bool)
		case spec.SupportsWhatIf && p.Name == "Confirm":
			// Accepted so that scripts written for Exchange run; the shell
			// never prompts, so -Confirm:$false changes nothing.
		default:
			inv.Args[p.Name] = cv
		}
		return nil
	}

	var positional []argument
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a.param == "" {
			positional = append(positional, a)
			continue
		}
		p, err := resolveParam(params, a.param)
		if err != nil {
			return nil, err
		}
		switch {
		case a.colon:
			// -Name:value: the value, if one followed, is attached.
		case p.Type == Switch:
			a.value, a.hasValue = true, true
		case i+1 < len(args) && args[i+1].param == "":
			i++
			a.value, a.hasValue, a.shellEmpty = args[i].value, true, args[i].shellEmpty
		}
		if !a.hasValue {
			if a.shellEmpty && a.colon || a.argv && (p.Type == Bool || p.Type == NullableBool) {
				return nil, emptyShellArgument(p)
			}
			return nil, fmt.Errorf("Missing an argument for parameter '%s'. Specify a parameter of type '%s' and try again.", p.Name, p.Type)
		}
		if err := set(p, a); err != nil {
			return nil, err
		}
	}
	for i, a := range positional {
		p := nextPositional(params, bound)
		if p == nil {
			return nil, fmt.Errorf("A positional parameter cannot be found that accepts argument '%s'.", describe(a.value))
		}
		if p.Remaining {
			vals := make([]Value, 0, len(positional)-i)
			for _, rest := range positional[i:] {
				vals = append(vals, rest.value)
			}
			a.value = vals
			if len(vals) == 1 {
				a.value = vals[0]
			}
			if err := set(p, a); err != nil {
				return nil, err
			}
			break
		}
		if err := set(p, a); err != nil {
			return nil, err
		}
	}
	return inv, nil
}

// emptyShellArgument explains a Boolean parameter that received an empty
// word from the command line: bash and sh replace an unquoted $true or
// $false by their (empty) variables before Postern sees the line.
func emptyShellArgument(p *ParamSpec) error {
	return fmt.Errorf("Cannot process argument transformation on parameter '%s'. The value is empty: an unquoted $true or $false on a bash or sh command line is expanded by that shell to nothing. Quote it so that it reaches Postern: -%s '$false' (or '-%s:$false'), or write true or false.", p.Name, p.Name, p.Name)
}

// resolveParam finds the parameter a typed name means: the one with that
// name, else the only one it is a prefix of.
func resolveParam(params []ParamSpec, typed string) (*ParamSpec, error) {
	var matches []*ParamSpec
	for i := range params {
		p := &params[i]
		if strings.EqualFold(p.Name, typed) {
			return p, nil
		}
		if len(typed) < len(p.Name) && strings.EqualFold(p.Name[:len(typed)], typed) {
			matches = append(matches, p)
		}
	}
	switch len(matches) {
	case 0:
		return nil, fmt.Errorf("A parameter cannot be found that matches parameter name '%s'.", typed)
	case 1:
		return matches[0], nil
	}
	var names strings.Builder
	for _, p := range matches {
		names.WriteString(" -" + p.Name)
	}
	return nil, fmt.Errorf("Parameter cannot be processed because the parameter name '%s' is ambiguous. Possible matches include:%s.", typed, names.String())
}

// nextPositional returns the unbound parameter with the lowest position.
func nextPositional(params []ParamSpec, bound map[string]bool) *ParamSpec {
	var next *ParamSpec
	for i := range params {
		p := &params[i]
		if p.Position >= 0 && !bound[p.Name] && (next == nil || p.Position < next.Position) {
			next = p
		}
	}
	return next
}

// checkMandatory reports the Required parameters inv lacks.
func checkMandatory(spec *Spec, inv *Invocation) error {
	var missing []string
	for _, p := range spec.Params {
		if p.Required && !inv.Has(p.Name) {
			missing = append(missing, p.Name)
		}
	}
	if len(missing) > 0 {
		return missingMandatory(missing)
	}
	return nil
}

func missingMandatory(names []string) error {
	return fmt.Errorf("Cannot process command because of one or more missing mandatory parameters: %s.", strings.Join(names, " "))
}

func nullArgument(name string) error {
	return fmt.Errorf("Cannot bind argument to parameter '%s' because it is null.", name)
}

var errInputNotBound = errors.New("The input object cannot be bound to any parameters for the command either because the command does not take pipeline input or the input and its properties do not match any of the parameters that take pipeline input.")

// bindPipelineIdentity returns inv for one pipeline item: an object's
// Identity property, or the item itself when it is a plain value such as a
// string, binds to the Identity parameter p (PowerShell's
// ValueFromPipelineByPropertyName and ValueFromPipeline).
func bindPipelineIdentity(p *ParamSpec, inv *Invocation, item Value) (*Invocation, error) {
	var input []*Object
	v := item
	switch item := item.(type) {
	case *Object:
		input = []*Object{item}
		id, ok := item.Get("Identity")
		if !ok {
			if p.Required {
				return nil, fmt.Errorf("The input object cannot be bound because it did not contain the information required to bind all mandatory parameters: %s", p.Name)
			}
			return inv.withInput(input), nil
		}
		v = id
	case *Hashtable, []Value:
		return nil, errInputNotBound
	}
	cv, err := convertArg(p, v)
	if err != nil {
		return nil, err
	}
	one := inv.withInput(input)
	one.Args[p.Name] = cv
	return one, nil
}

// bindPropertyNames sets each ByPropertyName parameter from the pipeline
// object's property of the same name, when it has one.
func bindPropertyNames(params []*ParamSpec, inv *Invocation, item Value) error {
	o, ok := item.(*Object)
	if !ok {
		return nil
	}
	for _, p := range params {
		v, ok := o.Get(p.Name)
		if !ok || v == nil {
			continue
		}
		cv, err := convertArg(p, v)
		if err != nil {
			return err
		}
		inv.Args[p.Name] = cv
	}
	return nil
}

// inputObjects returns pipeline input for a cmdlet that takes it whole;
// only objects qualify.
func inputObjects(input []Value) ([]*Object, error) {
	objs := make([]*Object, 0, len(input))
	for _, v := range input {
		o, ok := v.(*Object)
		if !ok {
			return nil, errInputNotBound
		}
		objs = append(objs, o)
	}
	return objs, nil
}
