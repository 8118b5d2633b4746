package cmdlet

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

// callFunction runs a script function: its parameters bound from the
// arguments as a cmdlet's are (by name, a unique prefix of it, or by
// position; [switch] parameters take no value; the rest go to $args), in a
// scope of its own. Fed by a pipeline, $input holds the input and a
// process block runs once per object with $_ set to it.
func (r *Runner) callFunction(ctx context.Context, fn *function, args []argument, input []Value, fed bool) ([]Value, error) {
	if r.calls >= maxCallDepth {
		return nil, fmt.Errorf("The script failed due to call depth overflow.")
	}
	r.calls++
	defer func() { r.calls-- }()
	parent := r.current()
	local := &scope{vars: map[string]Value{}, parent: parent}
	r.scope = local
	defer func() { r.scope = parent }()

	bound := map[string]bool{}
	set := func(d *paramDecl, v Value) error {
		if bound[d.name] {
			return fmt.Errorf("Cannot bind parameter because parameter '%s' is specified more than once.", d.name)
		}
		bound[d.name] = true
		if d.typeName != "" {
			cv, err := cast(d.typeName, v)
			if err != nil {
				return fmt.Errorf("Cannot process argument transformation on parameter '%s'. %v", d.name, err)
			}
			v = cv
		}
		local.vars[strings.ToLower(d.name)] = v
		return nil
	}
	var rest []Value
	var positional []argument
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a.param == "" {
			positional = append(positional, a)
			continue
		}
		d, err := resolveFunctionParam(fn.params, a.param)
		if err != nil {
			return nil, err
		}
		switch {
		case a.colon:
		case isSwitch(d):
			a.value, a.hasValue = true, true
		case i+1 < len(args) && args[i+1].param == "":
			i++
			a.value, a.hasValue = args[i].value, true
		}
		if !a.hasValue {
			return nil, fmt.Errorf("Missing an argument for parameter '%s'. Specify a parameter of type '%s' and try again.", d.name, netType(d.typeName))
		}
		if err := set(d, a.value); err != nil {
			return nil, err
		}
	}
	for _, a := range positional {
		var next *paramDecl
		for i := range fn.params {
			if d := &fn.params[i]; !bound[d.name] && !isSwitch(d) {
				next = d
				break
			}
		}
		if next == nil {
			rest = append(rest, a.value)
			continue
		}
		if err := set(next, a.value); err != nil {
			return nil, err
		}
	}
	var missing []string
	for i := range fn.params {
		d := &fn.params[i]
		if bound[d.name] {
			continue
		}
		var v Value
		switch {
		case d.mandatory:
			missing = append(missing, d.name)
			continue
		case d.def != nil:
			var err error
			if v, err = r.eval(ctx, d.def); err != nil {
				return nil, err
			}
		case isSwitch(d):
			v = false
		}
		local.vars[strings.ToLower(d.name)] = v
	}
	if len(missing) > 0 {
		return nil, missingMandatory(missing)
	}
	if rest == nil {
		rest = []Value{}
	}
	local.vars["args"] = rest
	local.vars["input"] = input
	if input == nil {
		local.vars["input"] = []Value{}
	}

	var out []Value
	run := func(stmts []statement) error {
		err := r.block(ctx, stmts, &out)
		var f *flowSignal
		if errors.As(err, &f) && f.kind == "return" {
			out = append(out, f.value...)
			return nil
		}
		return err
	}
	if fn.begin == nil && fn.process == nil && fn.end == nil {
		return out, run(fn.body)
	}
	if err := run(fn.begin); err != nil {
		return nil, err
	}
	if fn.process != nil {
		items := input
		if !fed {
			items = []Value{nil}
		}
		for _, item := range items {
			r.under = append(r.under, item)
			err := run(fn.process)
			r.under = r.under[:len(r.under)-1]
			if err != nil {
				return nil, err
			}
		}
	}
	return out, run(fn.end)
}

func isSwitch(d *paramDecl) bool { return strings.EqualFold(d.typeName, "switch") }

// resolveFunctionParam finds the parameter a typed name means: its name,
// or the only one it is a prefix of.
func resolveFunctionParam(params []paramDecl, typed string) (*paramDecl, error) {
	var matches []*paramDecl
	for i := range params {
		d := &params[i]
		if strings.EqualFold(d.name, typed) {
			return d, nil
		}
		if len(typed) < len(d.name) && strings.EqualFold(d.name[:len(typed)], typed) {
			matches = append(matches, d)
		}
	}
	switch len(matches) {
	case 0:
		return nil, fmt.Errorf("A parameter cannot be found that matches parameter name '%s'.", typed)
	case 1:
		return matches[0], nil
	}
	var names strings.Builder
	for _, d := range matches {
		names.WriteString(" -" + d.name)
	}
	return nil, fmt.Errorf("Parameter cannot be processed because the parameter name '%s' is ambiguous. Possible matches include:%s.", typed, names.String())
}
