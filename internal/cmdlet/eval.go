package cmdlet

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
)

// Runner runs scripts: it looks cmdlets up in Registry and writes their
// output, formatted, to Out.
type Runner struct {
	Registry *Registry
	Out      io.Writer
	// Warnings receives the warning stream (Write-Warning, notes such as
	// Connect-ExchangeOnline's), each line "WARNING: ..."; nil: Out.
	Warnings io.Writer
	// Dir is where relative paths (Get-Content, Import-Csv, Export-Csv,
	// Out-File) are taken from: the directory the shell was started in.
	Dir string
	// Files reads and writes the files those cmdlets name; nil: this
	// process's file system. A shell served to another process (the admin
	// socket) sets it so that files are read and written by the client,
	// with the client's rights, where the client's directory is.
	Files FileSystem
	// NoFiles refuses every file access (the REST API, fuzzing), whatever
	// Files says.
	NoFiles bool
	// MaxSteps, when positive, ends a script after that many statements
	// (fuzzing runs random loops).
	MaxSteps int

	global    *scope
	scope     *scope
	under     []Value // $_ of the script blocks running, innermost last
	functions map[string]*function
	pending   []Value // output not yet written to the host
	steps     int
	calls     int // nesting of function calls
}

// maxCallDepth bounds the nesting of function calls, as PowerShell does,
// so that a recursive function fails instead of exhausting the stack.
const maxCallDepth = 100

// Run executes the script's statements in order. Output reaches Out as
// PowerShell's host shows it: consecutive objects of one type share a
// table, and what Write-Host and warnings write appears where it was
// written. It stops at the first statement that fails and returns an
// *Error, whose message is PowerShell's "<Cmdlet> : <message>".
//
// Pipelines run a command at a time: each command gets all of the previous
// one's output, not a stream of it.
func (r *Runner) Run(ctx context.Context, s *Script) error {
	r.steps = 0
	defer r.flush()
	for _, st := range s.statements {
		if err := r.exec(ctx, st, &r.pending); err != nil {
			var f *flowSignal
			if errors.As(err, &f) {
				// exit, or a break, continue or return outside a loop or
				// function, ends the script quietly.
				r.pending = append(r.pending, f.value...)
				return nil
			}
			return commandError("", err)
		}
	}
	return nil
}

// flush writes the output collected so far to the host.
func (r *Runner) flush() {
	if len(r.pending) > 0 {
		vals := r.pending
		r.pending = nil
		writeOutput(r.out(), vals)
	}
}

func (r *Runner) out() io.Writer {
	if r.Out == nil {
		return io.Discard
	}
	return r.Out
}

// host is what cmdlets write to directly (Write-Host, What if:): the
// output collected before it is written first, so the two stay in order.
type host struct{ r *Runner }

func (h host) Write(p []byte) (int, error) {
	h.r.flush()
	return h.r.out().Write(p)
}

// warn writes a line to the warning stream.
func (r *Runner) warn(msg string) {
	w := r.Warnings
	if w == nil {
		w = host{r}
	}
	for _, line := range strings.Split(strings.TrimRight(msg, "\n"), "\n") {
		fmt.Fprintln(w, "WARNING: "+line)
	}
}

// flowSignal carries break, continue, return and exit to the statement
// that handles them; value is what return or exit output.
type flowSignal struct {
	kind  string
	value []Value
}

func (f *flowSignal) Error() string { return "unexpected " + f.kind }

// exec runs one statement, adding its output to out.
func (r *Runner) exec(ctx context.Context, st statement, out *[]Value) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := r.tick(ctx); err != nil {
		return err
	}
	switch st := st.(type) {
	case *pipeline:
		o, err := r.pipeline(ctx, st)
		*out = append(*out, o...)
		return err
	case *ifStmt:
		for _, c := range st.clauses {
			v, err := r.condition(ctx, c.cond)
			if err != nil {
				return err
			}
			if v {
				return r.block(ctx, c.body, out)
			}
		}
		return r.block(ctx, st.elseBody, out)
	case *foreachStmt:
		coll, err := r.pipeline(ctx, st.collection)
		if err != nil {
			return err
		}
		for _, item := range flatten(coll) {
			r.setVar(st.variable, item)
			err := r.block(ctx, st.body, out)
			if brk, err := loopControl(err); brk || err != nil {
				return err
			}
		}
		return nil
	case *whileStmt:
		for first := true; ; first = false {
			if !(st.post && first) {
				v, err := r.condition(ctx, st.cond)
				if err != nil {
					return err
				}
				if v == st.until {
					return nil
				}
			}
			err := r.block(ctx, st.body, out)
			if brk, err := loopControl(err); brk || err != nil {
				return err
			}
			if err := r.tick(ctx); err != nil {
				return err
			}
		}
	case *forStmt:
		if st.init != nil {
			if _, err := r.pipeline(ctx, st.init); err != nil {
				return err
			}
		}
		for {
			if st.cond != nil {
				v, err := r.condition(ctx, st.cond)
				if err != nil || !v {
					return err
				}
			}
			err := r.block(ctx, st.body, out)
			if brk, err := loopControl(err); brk || err != nil {
				return err
			}
			if st.step != nil {
				if _, err := r.pipeline(ctx, st.step); err != nil {
					return err
				}
			}
			if err := r.tick(ctx); err != nil {
				return err
			}
		}
	case *functionStmt:
		if st.name == "" {
			// A script's param(...) block: each parameter gets its default.
			for _, d := range st.fn.params {
				if r.lookup(d.name) != nil {
					continue
				}
				var v Value
				if d.def != nil {
					var err error
					if v, err = r.eval(ctx, d.def); err != nil {
						return err
					}
				}
				r.setVar(d.name, v)
			}
			return nil
		}
		if r.functions == nil {
			r.functions = map[string]*function{}
		}
		r.functions[strings.ToLower(st.name)] = st.fn
		return nil
	case *flowStmt:
		f := &flowSignal{kind: st.kind}
		if st.value != nil {
			v, err := r.pipeline(ctx, st.value)
			if err != nil {
				return err
			}
			f.value = v
		}
		if st.kind == "throw" {
			msg := "ScriptHalted"
			if len(f.value) > 0 {
				msg = toString(collapse(f.value))
			}
			return &thrownError{msg: msg, value: collapse(f.value)}
		}
		return f
	case *tryStmt:
		err := r.block(ctx, st.body, out)
		var f *flowSignal
		if err != nil && st.hasCatch && !errors.As(err, &f) && ctx.Err() == nil && !errors.Is(err, errStepLimit) {
			r.under = append(r.under, &ErrorRecord{Err: err})
			err = r.block(ctx, st.catch, out)
			r.under = r.under[:len(r.under)-1]
		}
		if st.finally != nil {
			if ferr := r.block(ctx, st.finally, out); ferr != nil {
				return ferr
			}
		}
		return err
	}
	return fmt.Errorf("cmdlet: cannot run %T", st)
}

// errStepLimit ends a script that ran more than MaxSteps statements;
// try/catch does not catch it.
var errStepLimit = errors.New("The script was stopped: it ran more statements than this shell allows.")

// tick counts a statement or loop iteration against MaxSteps and checks
// ctx, so that a loop cannot spin forever past a cancelled request.
func (r *Runner) tick(ctx context.Context) error {
	r.steps++
	if r.MaxSteps > 0 && r.steps > r.MaxSteps {
		return errStepLimit
	}
	return ctx.Err()
}

// loopControl handles break and continue at a loop: brk ends the loop;
// other errors pass through.
func loopControl(err error) (brk bool, _ error) {
	var f *flowSignal
	if errors.As(err, &f) {
		switch f.kind {
		case "break":
			return true, nil
		case "continue":
			return false, nil
		}
	}
	return false, err
}

// block runs statements in order.
func (r *Runner) block(ctx context.Context, stmts []statement, out *[]Value) error {
	for _, st := range stmts {
		if err := r.exec(ctx, st, out); err != nil {
			return err
		}
	}
	return nil
}

// condition evaluates the (pipeline) of if, while and for.
func (r *Runner) condition(ctx context.Context, pl *pipeline) (bool, error) {
	if pl == nil {
		return false, nil
	}
	out, err := r.pipeline(ctx, pl)
	return truthy(collapse(out)), err
}

// thrownError is what throw raises: its message is the thrown value's
// text.
type thrownError struct {
	msg   string
	value Value
}

func (e *thrownError) Error() string { return e.msg }

// ErrorRecord is $_ in a catch block: "$_" and $_.Exception.Message give
// the error's message.
type ErrorRecord struct{ Err error }

func (e *ErrorRecord) String() string { return e.message() }

func (e *ErrorRecord) message() string {
	var ce *Error
	if errors.As(e.Err, &ce) {
		return ce.Err.Error()
	}
	return e.Err.Error()
}

func (r *Runner) pipeline(ctx context.Context, pl *pipeline) ([]Value, error) {
	if pl.assign != nil {
		return nil, r.assign(ctx, pl.assign)
	}
	var items []Value
	fed := false // whether the next command reads pipeline input
	if pl.expr != nil {
		v, err := r.eval(ctx, pl.expr)
		if err != nil {
			return nil, err
		}
		items, fed = enumerate(v), true
		if _, ok := pl.expr.(*incrExpr); ok && len(pl.commands) == 0 {
			items = nil // $i++ as a statement outputs nothing
		}
	}
	for _, c := range pl.commands {
		out, err := r.invoke(ctx, c, items, fed)
		if err != nil {
			return nil, err
		}
		items, fed = out, true
	}
	if pl.redirect != nil {
		return nil, r.redirectOutput(ctx, pl.redirect, items)
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

// flatten enumerates pipeline output for foreach: each item, arrays
// unrolled one level, $null skipped when it is the only value.
func flatten(out []Value) []Value {
	if len(out) == 1 {
		if out[0] == nil {
			return nil
		}
		return enumerate(out[0])
	}
	return out
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
	if fn, ok := r.functions[strings.ToLower(c.name)]; ok {
		args, err := r.arguments(ctx, c.elems)
		if err != nil {
			return nil, commandError(c.name, err)
		}
		out, err := r.callFunction(ctx, fn, args, input, fed)
		if err != nil {
			return nil, commandError(c.name, err)
		}
		return out, nil
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
	inv.Host, inv.Dir, inv.noFiles, inv.files, inv.runner = host{r}, r.Dir, r.NoFiles, r.Files, r
	// A command runs once per input object, so one fed nothing does not
	// run at all: Get-Mailbox -Identity nobody* | Set-Mailbox ... is no
	// error when nothing matches.
	if fed && len(input) == 0 && !spec.runsUnfed {
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
		var f *flowSignal
		if errors.As(err, &f) {
			return nil, err
		}
		ea, given := inv.Args["ErrorAction"].(string)
		if !given {
			// $ErrorActionPreference is the default for every command.
			ea, _ = r.lookup("ErrorActionPreference").(string)
		}
		switch {
		case strings.EqualFold(ea, "Continue"):
			// A non-terminating error: shown, and the script goes on.
			fmt.Fprintln(host{r}, commandError(spec.Name, err).Error())
			return nil, nil
		case strings.EqualFold(ea, "SilentlyContinue"), strings.EqualFold(ea, "Ignore"):
			return nil, nil
		}
		return nil, commandError(spec.Name, err)
	}
	return out, nil
}

// run calls a registered cmdlet's Run: once, or once per pipeline object
// when the objects supply its Identity or other parameters that take
// pipeline input by property name.
func (r *Runner) run(ctx context.Context, spec *Spec, inv *Invocation, input []Value, fed bool) ([]Value, error) {
	if !fed {
		return call(ctx, spec, inv)
	}
	id := spec.param("Identity")
	byName := spec.byPropertyName(inv)
	if (id == nil || inv.Has(id.Name)) && len(byName) == 0 {
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
		one := inv.withInput(nil)
		if id != nil && !inv.Has(id.Name) {
			var err error
			if one, err = bindPipelineIdentity(id, inv, item); err != nil {
				return nil, err
			}
		} else if o, ok := item.(*Object); ok {
			one.Input = []*Object{o}
		}
		if err := bindPropertyNames(byName, one, item); err != nil {
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

// arguments evaluates a command's argument expressions, left to right,
// expanding splatted variables.
func (r *Runner) arguments(ctx context.Context, elems []commandElement) ([]argument, error) {
	args := make([]argument, 0, len(elems))
	for _, el := range elems {
		if el.splat != "" {
			switch v := r.lookup(el.splat).(type) {
			case *Hashtable:
				for _, k := range v.Keys {
					args = append(args, argument{param: k, colon: true, value: v.Get(k), hasValue: true})
				}
			case []Value:
				for _, e := range v {
					args = append(args, argument{value: e, hasValue: true})
				}
			case nil:
			default:
				args = append(args, argument{value: v, hasValue: true})
			}
			continue
		}
		a := argument{param: el.param, colon: el.colon, shellEmpty: el.shellEmpty, argv: el.argv}
		if el.arg != nil {
			v, err := r.eval(ctx, el.arg)
			if err != nil {
				return nil, err
			}
			a.value, a.hasValue = v, true
		}
		args = append(args, a)
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
		if e.static {
			return staticMember(v, e.name)
		}
		return member(v, e.name), nil
	case *methodExpr:
		return r.method(ctx, e)
	case *indexExpr:
		v, err := r.eval(ctx, e.target)
		if err != nil {
			return nil, err
		}
		i, err := r.eval(ctx, e.index)
		if err != nil {
			return nil, err
		}
		return index(v, i), nil
	case *typeExpr:
		return typeValue{name: e.name}, nil
	case *castExpr:
		v, err := r.eval(ctx, e.operand)
		if err != nil {
			return nil, err
		}
		return cast(e.typeName, v)
	case *binaryExpr:
		return r.binary(ctx, e)
	case *unaryExpr:
		v, err := r.eval(ctx, e.operand)
		if err != nil {
			return nil, err
		}
		return unaryOp(e.op, v)
	case *notExpr:
		v, err := r.eval(ctx, e.operand)
		return !truthy(v), err
	case *incrExpr:
		return r.increment(ctx, e)
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
			if err := r.exec(ctx, st, &out); err != nil {
				return nil, err
			}
		}
		if e.array {
			return flattenArrays(out), nil
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
	return nil, fmt.Errorf("cmdlet: cannot evaluate %T", e)
}

// flattenArrays is @(...)'s value: the output, with an array that was
// output as one value unrolled, as PowerShell does.
func flattenArrays(out []Value) []Value {
	if len(out) == 1 {
		if a, ok := out[0].([]Value); ok {
			return a
		}
	}
	return out
}

// assign runs target op value.
func (r *Runner) assign(ctx context.Context, a *assignment) error {
	var out []Value
	if err := r.exec(ctx, a.value, &out); err != nil {
		return err
	}
	v := collapse(out)
	if a.op != "=" {
		cur, err := r.eval(ctx, a.target)
		if err != nil {
			return err
		}
		if v, err = arithmetic(strings.TrimSuffix(a.op, "="), cur, v); err != nil {
			return err
		}
	}
	return r.store(ctx, a.target, v)
}

// store sets a variable, property or element.
func (r *Runner) store(ctx context.Context, target expr, v Value) error {
	switch t := target.(type) {
	case *variableExpr:
		r.setVar(t.name, v)
		return nil
	case *castExpr:
		cv, err := cast(t.typeName, v)
		if err != nil {
			return err
		}
		return r.store(ctx, t.operand, cv)
	case *memberExpr:
		obj, err := r.eval(ctx, t.target)
		if err != nil {
			return err
		}
		return setMember(obj, t.name, v)
	case *indexExpr:
		obj, err := r.eval(ctx, t.target)
		if err != nil {
			return err
		}
		i, err := r.eval(ctx, t.index)
		if err != nil {
			return err
		}
		return setIndex(obj, i, v)
	}
	return fmt.Errorf("The assignment expression is not valid.")
}

// increment runs $x++, $x--, ++$x, --$x.
func (r *Runner) increment(ctx context.Context, e *incrExpr) (Value, error) {
	cur, err := r.eval(ctx, e.target)
	if err != nil {
		return nil, err
	}
	next, err := arithmetic("+", cur, e.delta)
	if err != nil {
		return nil, err
	}
	if err := r.store(ctx, e.target, next); err != nil {
		return nil, err
	}
	if e.prefix {
		return next, nil
	}
	if cur == nil {
		return int64(0), nil
	}
	return cur, nil
}
