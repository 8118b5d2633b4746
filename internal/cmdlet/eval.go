package cmdlet

import (
	"context"
	"fmt"
	"io"
	"strings"
)

// Runner runs scripts: it looks cmdlets up in Registry and writes their
// output, formatted, to Out.
type Runner struct {
	Registry *Registry
	Out      io.Writer
	// Dir is where relative paths (Get-Content, Export-Csv) are taken
	// from: the directory the shell was started in.
	Dir string
	// NoFiles refuses Get-Content and Export-Csv (fuzzing runs scripts
	// from random input).
	NoFiles bool

	vars  map[string]Value // assigned variables, by lower-case name
	under []Value          // $_ of the script blocks running, innermost last
}

// Run executes the script's statements in order, writing each one's output
// when it completes. It stops at the first statement that fails and
// returns an *Error, whose message is PowerShell's "<Cmdlet> : <message>".
//
// Pipelines run a command at a time: each command gets all of the previous
// one's output, not a stream of it.
func (r *Runner) Run(ctx context.Context, s *Script) error {
	for _, st := range s.statements {
		out, err := r.pipeline(ctx, st)
		if err != nil {
			return commandError("", err)
		}
		writeOutput(r.out(), out)
	}
	return nil
}

func (r *Runner) out() io.Writer {
	if r.Out == nil {
		return io.Discard
	}
	return r.Out
}

func (r *Runner) pipeline(ctx context.Context, pl *pipeline) ([]Value, error) {
	if pl.value != nil {
		out, err := r.pipeline(ctx, pl.value)
		if err != nil {
			return nil, err
		}
		if r.vars == nil {
			r.vars = map[string]Value{}
		}
		v := collapse(out)
		if len(out) > 1 {
			v = out
		}
		r.vars[strings.ToLower(pl.assign)] = v
		return nil, nil
	}
	var items []Value
	fed := false // whether the next command reads pipeline input
	if pl.expr != nil {
		v, err := r.eval(ctx, pl.expr)
		if err != nil {
			return nil, err
		}
		items, fed = enumerate(v), true
	}
	for _, c := range pl.commands {
		out, err := r.invoke(ctx, c, items, fed)
		if err != nil {
			return nil, err
		}
		items, fed = out, true
	}
	return items, nil
}

// enumerate unrolls an array into pipeline items, as PowerShell does with
// an expression's value.
func enumerate(v Value) []Value {
	if a, ok := v.([]Value); ok {
		return a
	}
	return []Value{v}
}

// collapse is the value of a pipeline's output: $null for none, the item
// for one, an array for more.
func collapse(out []Value) Value {
	switch len(out) {
	case 0:
		return nil
	case 1:
		return out[0]
	}
	return out
}

// invoke runs one command of a pipeline. fed says whether it is fed by a
// pipeline; input is what it is fed.
func (r *Runner) invoke(ctx context.Context, c *command, input []Value, fed bool) ([]Value, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	spec, ok := r.Registry.Lookup(c.name)
	if !ok {
		return nil, &Error{Command: c.name, Err: notRecognized(c.name)}
	}
	args, err := r.arguments(ctx, c.elems)
	if err != nil {
		return nil, commandError(spec.Name, err)
	}
	inv, err := bind(spec, args)
	if err != nil {
		return nil, commandError(spec.Name, err)
	}
	inv.Host, inv.Dir, inv.noFiles = r.Out, r.Dir, r.NoFiles
	// A command runs once per input object, so one fed nothing does not
	// run at all: Get-Mailbox -Identity nobody* | Set-Mailbox ... is no
	// error when nothing matches.
	if fed && len(input) == 0 {
		return nil, nil
	}
	var out []Value
	if spec.process != nil {
		if err = checkMandatory(spec, inv); err == nil {
			out, err = spec.process(ctx, inv, input)
		}
	} else {
		out, err = r.run(ctx, spec, inv, input, fed)
	}
	if err != nil {
		switch ea, _ := inv.Args["ErrorAction"].(string); {
		case strings.EqualFold(ea, "Continue"):
			// A non-terminating error: shown, and the script goes on.
			fmt.Fprintln(r.out(), commandError(spec.Name, err).Error())
			return nil, nil
		case strings.EqualFold(ea, "SilentlyContinue"), strings.EqualFold(ea, "Ignore"):
			return nil, nil
		}
		return nil, commandError(spec.Name, err)
	}
	return out, nil
}

// run calls a registered cmdlet's Run: once, or once per pipeline object
// when the objects supply its Identity.
func (r *Runner) run(ctx context.Context, spec *Spec, inv *Invocation, input []Value, fed bool) ([]Value, error) {
	if !fed {
		return call(ctx, spec, inv)
	}
	id := spec.param("Identity")
	if id == nil || inv.Has(id.Name) {
		objs, err := inputObjects(input)
		if err != nil {
			return nil, err
		}
		return call(ctx, spec, inv.withInput(objs))
	}
	var out []Value
	for _, item := range input {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		one, err := bindPipelineIdentity(id, inv, item)
		if err != nil {
			return nil, err
		}
		o, err := call(ctx, spec, one)
		if err != nil {
			return nil, err
		}
		out = append(out, o...)
	}
	return out, nil
}

func call(ctx context.Context, spec *Spec, inv *Invocation) ([]Value, error) {
	if err := checkMandatory(spec, inv); err != nil {
		return nil, err
	}
	if err := readContentParams(spec, inv); err != nil {
		return nil, err
	}
	objs, err := spec.Run(ctx, inv)
	if err != nil {
		return nil, err
	}
	out := make([]Value, 0, len(objs))
	for _, o := range objs {
		if o != nil {
			out = append(out, o)
		}
	}
	return out, nil
}

// arguments evaluates a command's argument expressions, left to right.
func (r *Runner) arguments(ctx context.Context, elems []commandElement) ([]argument, error) {
	args := make([]argument, len(elems))
	for i, el := range elems {
		args[i] = argument{param: el.param, colon: el.colon}
		if el.arg != nil {
			v, err := r.eval(ctx, el.arg)
			if err != nil {
				return nil, err
			}
			args[i].value, args[i].hasValue = v, true
		}
	}
	return args, nil
}

func (r *Runner) eval(ctx context.Context, e expr) (Value, error) {
	switch e := e.(type) {
	case *constExpr:
		return e.value, nil
	case *variableExpr:
		return r.lookup(e.name), nil
	case *blockExpr:
		return &ScriptBlock{statements: e.statements, runner: r}, nil
	case *memberExpr:
		v, err := r.eval(ctx, e.target)
		if err != nil {
			return nil, err
		}
		return member(v, e.name), nil
	case *binaryExpr:
		return r.binary(ctx, e)
	case *notExpr:
		v, err := r.eval(ctx, e.operand)
		return !truthy(v), err
	case *expandExpr:
		var b strings.Builder
		for _, part := range e.parts {
			v, err := r.eval(ctx, part)
			if err != nil {
				return nil, err
			}
			b.WriteString(toString(v))
		}
		return b.String(), nil
	case *arrayExpr:
		vals := make([]Value, len(e.elems))
		for i, el := range e.elems {
			v, err := r.eval(ctx, el)
			if err != nil {
				return nil, err
			}
			vals[i] = v
		}
		return vals, nil
	case *parenExpr:
		out, err := r.pipeline(ctx, e.pipeline)
		return collapse(out), err
	case *subExpr:
		out := []Value{}
		for _, st := range e.statements {
			o, err := r.pipeline(ctx, st)
			if err != nil {
				return nil, err
			}
			out = append(out, o...)
		}
		if e.array {
			return out, nil
		}
		return collapse(out), nil
	case *hashExpr:
		h := NewHashtable()
		for _, entry := range e.entries {
			k, err := r.eval(ctx, entry.key)
			if err != nil {
				return nil, err
			}
			key := toString(k)
			if h.Has(key) {
				return nil, fmt.Errorf("Duplicate keys '%s' are not allowed in hash literals.", key)
			}
			out, err := r.pipeline(ctx, entry.value)
			if err != nil {
				return nil, err
			}
			h.Set(key, collapse(out))
		}
		return h, nil
	}
	panic(fmt.Sprintf("cmdlet: cannot evaluate %T", e))
}
