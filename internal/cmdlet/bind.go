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
	set := func(p *ParamSpec, v Value) error {
		if bound[p.Name] {
			return fmt.Errorf(`Cannot bind parameter because parameter '%s' is specified more than once. To provide multiple values to parameters that can accept multiple values, use the array syntax. For example, "-parameter value1,value2,value3".`, p.Name)
		}
		bound[p.Name] = true
		cv, err := convertArg(p, v)
		if err != nil {
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
			a.value, a.hasValue = args[i].value, true
		}
		if !a.hasValue {
			return nil, fmt.Errorf("Missing an argument for parameter '%s'. Specify a parameter of type '%s' and try again.", p.Name, p.Type)
		}
		if err := set(p, a.value); err != nil {
			return nil, err
		}
	}
	for _, a := range positional {
		p := nextPositional(params, bound)
		if p == nil {
			return nil, fmt.Errorf("A positional parameter cannot be found that accepts argument '%s'.", describe(a.value))
		}
		if err := set(p, a.value); err != nil {
			return nil, err
		}
	}
	return inv, nil
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
