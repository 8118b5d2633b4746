package cmdlet

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"time"
)

// registerPipelineCmdlets adds the cmdlets scripts use to work on
// pipelines, files and the host: Where-Object (where, ?), ForEach-Object
// (foreach, %), Select-Object (select), Sort-Object (sort), Group-Object
// (group), Measure-Object (measure), Get-Content (gc, cat, type),
// Set-Content, Add-Content, Import-Csv, Export-Csv, ConvertTo-Csv,
// ConvertFrom-Csv, Out-File, Out-String, Out-Null, Out-Host, Write-Host,
// Write-Output (echo, write), Write-Warning, Write-Error, Write-Verbose,
// Write-Debug, Write-Information, Write-Progress, Get-Date, New-TimeSpan,
// New-Object, Add-Member, Join-Path and Clear-Host (cls).
func registerPipelineCmdlets(r *Registry) {
	block := func(name string) ParamSpec { return ParamSpec{Name: name, Type: Any, Position: 0} }
	named := func(name string, t ParamType) ParamSpec { return ParamSpec{Name: name, Type: t, Position: Named} }
	path := ParamSpec{Name: "Path", Type: String, Position: 0, Required: true}
	encoding := named("Encoding", String)

	whereOps := []string{"EQ", "NE", "GT", "GE", "LT", "LE", "Like", "NotLike", "Match", "NotMatch", "Contains", "NotContains", "In", "NotIn",
		"CEQ", "CNE", "CGT", "CGE", "CLT", "CLE", "CLike", "CNotLike", "CMatch", "CNotMatch", "CContains", "CNotContains", "CIn", "CNotIn", "Is", "IsNot", "Not"}
	whereParams := []ParamSpec{block("FilterScript"), {Name: "Value", Type: Any, Position: 1}}
	for _, op := range whereOps {
		whereParams = append(whereParams, named(op, Switch))
	}
	r.Register(Spec{
		Name: "Where-Object", Aliases: []string{"where", "?"},
		Synopsis: "Keeps the pipeline objects for which the script block is true: where {$_.SmtpClientAuthenticationDisabled -eq $true}; or Where-Object Name -like 's*'.",
		Params:   whereParams,
		process:  whereObject,
	})
	r.Register(Spec{
		Name: "ForEach-Object", Aliases: []string{"foreach", "%"},
		Synopsis: "Runs the script block once per pipeline object, with $_ set to it: foreach {Set-CASMailbox -Identity $_ ...}; % Name reads a property.",
		Params:   []ParamSpec{block("Process"), named("Begin", Any), named("End", Any), named("MemberName", String)},
		process:  forEachObject,
	})
	r.Register(Spec{
		Name: "Select-Object", Aliases: []string{"select"},
		Synopsis: "Keeps some properties (-Property, with @{Name=...; Expression={...}} for computed ones), or the first, last or unique objects (-First, -Last, -Skip, -Unique).",
		Params: []ParamSpec{{Name: "Property", Type: Any, Position: 0}, named("First", Int), named("Last", Int), named("Skip", Int), named("SkipLast", Int),
			named("ExpandProperty", String), named("ExcludeProperty", StringList), named("Unique", Switch), named("Index", Any)},
		process: selectObject,
	})
	r.Register(Spec{
		Name: "Sort-Object", Aliases: []string{"sort"},
		Synopsis: "Sorts the pipeline by -Property (names, script blocks or @{Expression=...; Descending=$true}), or by value; -Descending for the reverse order.",
		Params: []ParamSpec{{Name: "Property", Type: Any, Position: 0}, named("Descending", Switch), named("Unique", Switch), named("CaseSensitive", Switch),
			named("Top", Int), named("Bottom", Int)},
		process: sortObject,
	})
	r.Register(Spec{
		Name: "Group-Object", Aliases: []string{"group"},
		Synopsis: "Groups the pipeline objects by -Property: one Count, Name, Group row per value.",
		Params: []ParamSpec{{Name: "Property", Type: Any, Position: 0}, named("NoElement", Switch), named("AsHashTable", Switch), named("AsString", Switch),
			named("CaseSensitive", Switch)},
		process: groupObject,
	})
	r.Register(Spec{
		Name: "Measure-Object", Aliases: []string{"measure"},
		Synopsis: "Counts the pipeline objects (and sums, averages, finds the extremes of -Property with -Sum, -Average, -Minimum, -Maximum).",
		Params: []ParamSpec{{Name: "Property", Type: String, Position: 0}, named("Sum", Switch), named("Average", Switch), named("Minimum", Switch),
			named("Maximum", Switch), named("AllStats", Switch)},
		process:   measureObject,
		runsUnfed: true,
	})
	r.Register(Spec{
		Name: "Get-Content", Aliases: []string{"gc", "cat", "type"},
		Synopsis: "Reads a text file, one pipeline item per line (-Raw: one string): $Allow = Get-Content \"allow-smtp-auth.txt\".",
		Params:   []ParamSpec{path, named("Raw", Switch), named("TotalCount", Int), named("Tail", Int), encoding},
		process:  getContent,
	})
	content := []ParamSpec{path, {Name: "Value", Type: Any, Position: 1}, encoding, named("NoNewline", Switch), named("Force", Switch)}
	r.Register(Spec{Name: "Set-Content", Synopsis: "Writes the values (or the pipeline), one line each, to a file, replacing it.",
		Params: content, process: func(ctx context.Context, inv *Invocation, input []Value) ([]Value, error) {
			return writeContent(inv, input, false)
		}, runsUnfed: true})
	r.Register(Spec{Name: "Add-Content", Synopsis: "Appends the values (or the pipeline), one line each, to a file: Add-Content log.txt \"done\".",
		Params: content, process: func(ctx context.Context, inv *Invocation, input []Value) ([]Value, error) {
			return writeContent(inv, input, true)
		}, runsUnfed: true})
	r.Register(Spec{
		Name: "Import-Csv", Aliases: []string{"ipcsv"},
		Synopsis: "Reads a CSV file: one object per row, with the header's columns as properties: Import-Csv users.csv | ForEach-Object { ... $_.UserPrincipalName }.",
		Params:   []ParamSpec{path, named("Delimiter", String), named("Header", StringList), encoding, named("LiteralPath", String)},
		process:  importCsv,
	})
	r.Register(Spec{
		Name: "Export-Csv", Aliases: []string{"epcsv"},
		Synopsis: "Writes the pipeline objects to a CSV file, one column per property (-NoTypeInformation is accepted; -Append adds rows).",
		Params: []ParamSpec{path, named("NoTypeInformation", Switch), encoding, named("Append", Switch), named("Delimiter", String),
			named("Force", Switch), named("NoClobber", Switch), named("UseCulture", Switch)},
		process:   exportCsv,
		runsUnfed: true,
	})
	r.Register(Spec{
		Name: "ConvertTo-Csv", Synopsis: "Turns the pipeline objects into CSV lines.",
		Params:  []ParamSpec{named("NoTypeInformation", Switch), named("Delimiter", String)},
		process: convertToCsv,
	})
	r.Register(Spec{
		Name: "ConvertFrom-Csv", Synopsis: "Reads CSV lines from the pipeline into objects.",
		Params: []ParamSpec{{Name: "InputObject", Type: Any, Position: 0}, named("Delimiter", String), named("Header", StringList)},
		process: func(_ context.Context, inv *Invocation, input []Value) ([]Value, error) {
			if inv.Has("InputObject") {
				input = enumerate(inv.Args["InputObject"])
			}
			var b strings.Builder
			for _, v := range input {
				b.WriteString(toString(v) + "\n")
			}
			return parseCsv([]byte(b.String()), inv)
		},
	})
	r.Register(Spec{
		Name: "Out-File", Synopsis: "Writes the pipeline to a text file as the host would show it: Get-Mailbox | Out-File mailboxes.txt (-Append adds to it).",
		Params: []ParamSpec{{Name: "FilePath", Type: String, Position: 0, Required: true}, encoding, named("Append", Switch), named("NoNewline", Switch),
			named("Width", Int), named("Force", Switch), named("NoClobber", Switch), named("InputObject", Any), named("LiteralPath", String)},
		process:   outFile,
		runsUnfed: true,
	})
	r.Register(Spec{
		Name: "Out-String", Synopsis: "Turns the pipeline into the text the host would show (-Stream: one string per line).",
		Params: []ParamSpec{named("Stream", Switch), named("Width", Int), named("InputObject", Any)},
		process: func(_ context.Context, inv *Invocation, input []Value) ([]Value, error) {
			if inv.Has("InputObject") {
				input = enumerate(inv.Args["InputObject"])
			}
			var b strings.Builder
			writeOutput(&b, input)
			if inv.Bool("Stream") {
				var out []Value
				for _, l := range strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n") {
					out = append(out, l)
				}
				return out, nil
			}
			return []Value{b.String()}, nil
		},
		runsUnfed: true,
	})
	r.Register(Spec{Name: "Out-Null", Synopsis: "Discards the pipeline.", Params: []ParamSpec{named("InputObject", Any)},
		process: func(context.Context, *Invocation, []Value) ([]Value, error) { return nil, nil }})
	r.Register(Spec{Name: "Out-Host", Aliases: []string{"oh"}, Synopsis: "Shows the pipeline on the host now.", Params: []ParamSpec{named("InputObject", Any), named("Paging", Switch)},
		process: func(_ context.Context, inv *Invocation, input []Value) ([]Value, error) {
			if inv.Has("InputObject") {
				input = enumerate(inv.Args["InputObject"])
			}
			var b strings.Builder
			writeOutput(&b, input)
			inv.Printf("%s", b.String())
			return nil, nil
		}})
	r.Register(Spec{
		Name: "Write-Host", Synopsis: "Shows text on the host (not in the pipeline): Write-Host \"Done\" -ForegroundColor Green.",
		Params: []ParamSpec{{Name: "Object", Type: Any, Position: 0, Remaining: true}, named("NoNewline", Switch), named("Separator", Any),
			named("ForegroundColor", String), named("BackgroundColor", String)},
		process: func(_ context.Context, inv *Invocation, input []Value) ([]Value, error) {
			sep := " "
			if inv.Has("Separator") {
				sep = toString(inv.Args["Separator"])
			}
			objs := input
			if inv.Has("Object") {
				objs = enumerate(inv.Args["Object"])
			}
			parts := make([]string, 0, len(objs))
			for _, o := range objs {
				parts = append(parts, hostText(o, sep))
			}
			text := strings.Join(parts, sep)
			if !inv.Bool("NoNewline") {
				text += "\n"
			}
			inv.Printf("%s", text)
			return nil, nil
		},
		runsUnfed: true,
	})
	r.Register(Spec{
		Name: "Write-Output", Aliases: []string{"echo", "write"},
		Synopsis: "Sends values down the pipeline (or to the host at its end): Write-Output \"$n mailboxes\".",
		Params:   []ParamSpec{{Name: "InputObject", Type: Any, Position: 0, Remaining: true}, named("NoEnumerate", Switch)},
		process: func(_ context.Context, inv *Invocation, input []Value) ([]Value, error) {
			if !inv.Has("InputObject") {
				return input, nil
			}
			v := inv.Args["InputObject"]
			if inv.Bool("NoEnumerate") {
				return []Value{v}, nil
			}
			if v == nil {
				return []Value{nil}, nil
			}
			return enumerate(v), nil
		},
	})
	message := ParamSpec{Name: "Message", Type: Any, Position: 0}
	r.Register(Spec{Name: "Write-Warning", Synopsis: "Writes a warning (WARNING: ...) to the warning stream, standard error in the CLI.", Params: []ParamSpec{message},
		process: func(_ context.Context, inv *Invocation, input []Value) ([]Value, error) {
			for _, m := range messages(inv, input) {
				inv.Warn("%s", m)
			}
			return nil, nil
		}, runsUnfed: true})
	r.Register(Spec{Name: "Write-Error", Synopsis: "Reports an error and goes on (with -ErrorAction Stop, ends the script).",
		Params: []ParamSpec{message, named("Category", String), named("ErrorId", String), named("Exception", Any)},
		process: func(_ context.Context, inv *Invocation, input []Value) ([]Value, error) {
			msgs := messages(inv, input)
			if ea, _ := inv.Args["ErrorAction"].(string); strings.EqualFold(ea, "Stop") {
				return nil, errors.New(strings.Join(msgs, " "))
			}
			for _, m := range msgs {
				inv.Printf("Write-Error: %s\n", m)
			}
			return nil, nil
		}, runsUnfed: true})
	quiet := func(name, synopsis string) {
		r.Register(Spec{Name: name, Synopsis: synopsis, Params: []ParamSpec{message, named("Tags", Any)},
			process: func(context.Context, *Invocation, []Value) ([]Value, error) { return nil, nil }, runsUnfed: true})
	}
	quiet("Write-Verbose", "Writes to the verbose stream, which this shell does not show.")
	quiet("Write-Debug", "Writes to the debug stream, which this shell does not show.")
	quiet("Write-Information", "Writes to the information stream, which this shell does not show.")
	r.Register(Spec{Name: "Write-Progress", Synopsis: "Accepted and ignored: the shell shows no progress bars.",
		Params: []ParamSpec{{Name: "Activity", Type: Any, Position: 0}, {Name: "Status", Type: Any, Position: 1}, named("PercentComplete", Any), named("Id", Any),
			named("CurrentOperation", Any), named("Completed", Switch), named("SecondsRemaining", Any)},
		process: func(context.Context, *Invocation, []Value) ([]Value, error) { return nil, nil }, runsUnfed: true})
	r.Register(Spec{Name: "Clear-Host", Aliases: []string{"cls"}, Synopsis: "Accepted and ignored.",
		process: func(context.Context, *Invocation, []Value) ([]Value, error) { return nil, nil }})
	r.Register(Spec{
		Name: "Get-Date", Synopsis: "Returns the current date and time (or -Date's), or its text with -Format: (Get-Date).AddDays(-2), Get-Date -Format yyyyMMdd.",
		Params: []ParamSpec{{Name: "Date", Type: Any, Position: 0}, named("Format", String), named("UFormat", String), named("Year", Int), named("Month", Int),
			named("Day", Int), named("Hour", Int), named("Minute", Int), named("Second", Int), named("Millisecond", Int), named("AsUTC", Switch)},
		process: getDate,
	})
	r.Register(Spec{
		Name: "New-TimeSpan", Synopsis: "Makes a TimeSpan: -Start and -End, or -Days, -Hours, -Minutes, -Seconds.",
		Params: []ParamSpec{{Name: "Start", Type: Any, Position: 0}, {Name: "End", Type: Any, Position: 1}, named("Days", Int), named("Hours", Int),
			named("Minutes", Int), named("Seconds", Int)},
		process: newTimeSpan,
	})
	r.Register(Spec{
		Name: "New-Object", Synopsis: "Makes a PSObject (-TypeName PSObject -Property @{...}), as [PSCustomObject]@{...} does.",
		Params:  []ParamSpec{{Name: "TypeName", Type: String, Position: 0, Required: true}, named("Property", Any), {Name: "ArgumentList", Type: Any, Position: 1}},
		process: newObject,
	})
	r.Register(Spec{
		Name: "Add-Member", Synopsis: "Adds a property to an object: $o | Add-Member -MemberType NoteProperty -Name X -Value 1 (or -NotePropertyName/-NotePropertyValue).",
		Params: []ParamSpec{{Name: "MemberType", Type: String, Position: 0}, {Name: "Name", Type: String, Position: 1}, {Name: "Value", Type: Any, Position: 2},
			named("NotePropertyName", String), named("NotePropertyValue", Any), named("NotePropertyMembers", Any), named("InputObject", Any),
			named("PassThru", Switch), named("Force", Switch)},
		process: addMember,
	})
	r.Register(Spec{
		Name: "Join-Path", Synopsis: "Joins path parts with '/'.",
		Params: []ParamSpec{{Name: "Path", Type: String, Position: 0, Required: true}, {Name: "ChildPath", Type: String, Position: 1},
			{Name: "AdditionalChildPath", Type: Any, Position: 2, Remaining: true}},
		process: func(_ context.Context, inv *Invocation, _ []Value) ([]Value, error) {
			parts := []string{inv.String("Path"), inv.String("ChildPath")}
			if inv.Has("AdditionalChildPath") {
				for _, v := range enumerate(inv.Args["AdditionalChildPath"]) {
					parts = append(parts, toString(v))
				}
			}
			out := ""
			for _, p := range parts {
				switch {
				case p == "":
				case out == "":
					out = p
				default:
					out = strings.TrimRight(out, `/\`) + "/" + strings.TrimLeft(p, `/\`)
				}
			}
			return []Value{out}, nil
		},
	})
}

func scriptBlock(inv *Invocation, name string) (*ScriptBlock, error) {
	sb, ok := inv.Args[name].(*ScriptBlock)
	if !ok {
		return nil, fmt.Errorf("Cannot bind parameter '%s'. Give a script block: { ... }.", name)
	}
	return sb, nil
}

// hostText is how Write-Host shows one argument: an array's elements
// separated by sep, anything else as its text.
func hostText(v Value, sep string) string {
	if a, ok := v.([]Value); ok {
		parts := make([]string, len(a))
		for i, e := range a {
			parts[i] = hostText(e, sep)
		}
		return strings.Join(parts, sep)
	}
	return toString(v)
}

// messages is -Message, or the pipeline.
func messages(inv *Invocation, input []Value) []string {
	vals := input
	if inv.Has("Message") {
		vals = []Value{inv.Args["Message"]}
	}
	out := make([]string, len(vals))
	for i, v := range vals {
		out[i] = toString(v)
	}
	return out
}

func whereObject(ctx context.Context, inv *Invocation, input []Value) ([]Value, error) {
	if sb, ok := inv.Args["FilterScript"].(*ScriptBlock); ok {
		var out []Value
		for _, item := range input {
			v, err := sb.Invoke(ctx, item)
			if err != nil {
				return nil, err
			}
			if truthy(collapse(v)) {
				out = append(out, item)
			}
		}
		return out, nil
	}
	// Where-Object Name -like 's*': a property, an operator switch, a value.
	if !inv.Has("FilterScript") {
		return nil, missingMandatory([]string{"FilterScript"})
	}
	prop := toString(inv.Args["FilterScript"])
	op := ""
	for name, v := range inv.Args {
		if b, ok := v.(bool); ok && b && name != "FilterScript" && name != "Value" {
			if op != "" {
				return nil, fmt.Errorf("Parameter set cannot be resolved using the specified named parameters.")
			}
			op = strings.ToLower(name)
		}
	}
	var out []Value
	for _, item := range input {
		v := member(item, prop)
		var keep bool
		switch {
		case op == "":
			keep = truthy(v)
		case op == "not":
			keep = !truthy(v)
		default:
			base, cs := baseOperator(op)
			var err error
			switch base {
			case "contains", "notcontains":
				found := false
				for _, l := range enumerate(v) {
					if ok, _ := compare("eq", l, inv.Args["Value"], cs); ok {
						found = true
					}
				}
				keep = found == (base == "contains")
			case "in", "notin":
				found := false
				for _, rv := range enumerate(inv.Args["Value"]) {
					if ok, _ := compare("eq", v, rv, cs); ok {
						found = true
					}
				}
				keep = found == (base == "in")
			case "is", "isnot":
				var is bool
				is, err = isType(v, toString(inv.Args["Value"]))
				keep = is == (base == "is")
			default:
				keep, err = compare(base, v, inv.Args["Value"], cs)
			}
			if err != nil {
				return nil, err
			}
		}
		if keep {
			out = append(out, item)
		}
	}
	return out, nil
}

func forEachObject(ctx context.Context, inv *Invocation, input []Value) ([]Value, error) {
	var out []Value
	runBlock := func(name string, item Value) error {
		if !inv.Has(name) {
			return nil
		}
		sb, err := scriptBlock(inv, name)
		if err != nil {
			return err
		}
		v, err := sb.Invoke(ctx, item)
		out = append(out, v...)
		return err
	}
	if err := runBlock("Begin", nil); err != nil {
		return nil, err
	}
	member := inv.String("MemberName")
	if s, ok := inv.Args["Process"].(string); ok {
		member = s // % Name
	}
	for _, item := range input {
		if member != "" {
			if v := memberOf(item, member); v != nil {
				out = append(out, enumerate(v)...)
			}
			continue
		}
		if err := runBlock("Process", item); err != nil {
			return nil, err
		}
	}
	if err := runBlock("End", nil); err != nil {
		return nil, err
	}
	return out, nil
}

func memberOf(v Value, name string) Value { return member(v, name) }

// propertySpec is one -Property of Select-Object or Sort-Object: a name
// (or wildcard), a script block, or a hashtable with Name/Label and
// Expression (and Descending for sorting).
type propertySpec struct {
	name       string
	expr       *ScriptBlock
	descending *bool
}

func propertySpecs(v Value) ([]propertySpec, error) {
	if v == nil {
		return nil, nil
	}
	var out []propertySpec
	for _, e := range enumerate(v) {
		switch x := e.(type) {
		case *ScriptBlock:
			out = append(out, propertySpec{expr: x, name: "$_"})
		case *Hashtable:
			var p propertySpec
			var expression Value
			for _, k := range x.Keys {
				val := x.Get(k)
				switch lk := strings.ToLower(k); lk {
				case "n", "name", "l", "label":
					p.name = toString(val)
				case "e", "expression":
					expression = val
				case "descending", "d", "ascending", "a":
					b := truthy(val) == (lk[0] == 'd')
					p.descending = &b
				default:
					return nil, fmt.Errorf("The %s key is not valid. Use Name (or Label) and Expression.", k)
				}
			}
			switch ev := expression.(type) {
			case *ScriptBlock:
				p.expr = ev
			case nil:
			default:
				// A property by name, perhaps shown under another name.
				prop := toString(ev)
				if p.name == "" || strings.EqualFold(p.name, prop) {
					p.name = prop
				} else {
					p.expr = propertyBlock(prop)
				}
			}
			if p.name == "" && p.expr == nil {
				return nil, fmt.Errorf("The Expression key is missing: give @{Name=\"...\"; Expression={...}}.")
			}
			if p.name == "" {
				p.name = "$_"
			}
			out = append(out, p)
		default:
			out = append(out, propertySpec{name: toString(x)})
		}
	}
	return out, nil
}

// propertyBlock is a script block that reads a property, for a renamed
// property in a calculated one.
func propertyBlock(name string) *ScriptBlock {
	return &ScriptBlock{statements: []statement{&pipeline{expr: &memberExpr{target: &variableExpr{name: "_"}, name: name}}}}
}

// value reads the property spec from an object.
func (p propertySpec) value(ctx context.Context, inv *Invocation, v Value) (Value, error) {
	if p.expr == nil {
		return member(v, p.name), nil
	}
	sb := p.expr
	if sb.runner == nil {
		sb = &ScriptBlock{statements: sb.statements, runner: inv.runner}
	}
	if sb.runner == nil {
		return nil, nil
	}
	out, err := sb.Invoke(ctx, v)
	return collapse(out), err
}

func uniqueValues(in []Value, caseSensitive bool) []Value {
	var out []Value
	for _, v := range in {
		dup := false
		for _, o := range out {
			if sameValue(v, o, caseSensitive) {
				dup = true
				break
			}
		}
		if !dup {
			out = append(out, v)
		}
	}
	return out
}

// sameValue compares two values for -Unique: objects by all their
// properties.
func sameValue(a, b Value, caseSensitive bool) bool {
	oa, okA := a.(*Object)
	ob, okB := b.(*Object)
	if okA && okB {
		if len(oa.Props) != len(ob.Props) {
			return false
		}
		for i := range oa.Props {
			if !strings.EqualFold(oa.Props[i].Name, ob.Props[i].Name) || !sameValue(oa.Props[i].Value, ob.Props[i].Value, caseSensitive) {
				return false
			}
		}
		return true
	}
	if okA != okB {
		return false
	}
	c, ok := order(a, b, caseSensitive)
	return ok && c == 0
}

func selectObject(ctx context.Context, inv *Invocation, input []Value) ([]Value, error) {
	out := input
	specs, err := propertySpecs(inv.Args["Property"])
	if err != nil {
		return nil, err
	}
	exclude := Strings(inv.Args["ExcludeProperty"])
	if len(specs) > 0 || len(exclude) > 0 {
		out = nil
		for _, v := range input {
			o := &Object{TypeName: "Selected", DefaultView: AutoView}
			src, isObj := v.(*Object)
			var names []propertySpec
			for _, p := range specs {
				if p.expr == nil && ContainsWildcard(p.name) && isObj {
					for _, sp := range src.Props {
						if MatchWildcard(p.name, sp.Name) {
							names = append(names, propertySpec{name: sp.Name})
						}
					}
					continue
				}
				names = append(names, p)
			}
			if len(specs) == 0 && isObj {
				for _, sp := range src.Props {
					names = append(names, propertySpec{name: sp.Name})
				}
			}
			for _, p := range names {
				if slices.ContainsFunc(exclude, func(x string) bool { return MatchWildcard(x, p.name) }) {
					continue
				}
				name := p.name
				if p.expr == nil && isObj {
					if pr := src.prop(p.name); pr != nil {
						name = pr.Name
					}
				}
				val, err := p.value(ctx, inv, v)
				if err != nil {
					return nil, err
				}
				o.Props = append(o.Props, Prop{Name: name, Value: val})
			}
			out = append(out, o)
		}
	}
	if inv.Has("ExpandProperty") {
		var vals []Value
		for _, v := range out {
			m := member(v, inv.String("ExpandProperty"))
			if m == nil {
				if _, ok := v.(*Object); ok && v.(*Object).prop(inv.String("ExpandProperty")) == nil {
					return nil, fmt.Errorf("Property \"%s\" cannot be found.", inv.String("ExpandProperty"))
				}
				continue
			}
			vals = append(vals, enumerate(m)...)
		}
		out = vals
	}
	if inv.Bool("Unique") {
		out = uniqueValues(out, true)
	}
	if inv.Has("Index") {
		var picked []Value
		for _, i := range enumerate(inv.Args["Index"]) {
			if n, ok := toInt32(scalar(i)); ok && n >= 0 && n < int64(len(out)) {
				picked = append(picked, out[n])
			}
		}
		return picked, nil
	}
	skip, _ := inv.Int("Skip")
	skip = max(skip, 0)
	if inv.Has("SkipLast") {
		n, _ := inv.Int("SkipLast")
		out = out[:max(0, len(out)-int(max(n, 0)))]
	}
	switch {
	case inv.Has("Last"):
		// With -Last, -Skip counts from the end.
		out = out[:max(0, len(out)-int(skip))]
		n, _ := inv.Int("Last")
		out = out[max(0, len(out)-int(max(n, 0))):]
	default:
		out = out[min(int(skip), len(out)):]
		if inv.Has("First") {
			n, _ := inv.Int("First")
			out = out[:min(int(max(n, 0)), len(out))]
		}
	}
	return out, nil
}

// sortKey compares two values as Sort-Object does: $null first, numbers
// by value, text without case unless caseSensitive.
func sortKey(a, b Value, caseSensitive bool) int {
	a, b = scalar(a), scalar(b)
	switch {
	case a == nil && b == nil:
		return 0
	case a == nil:
		return -1
	case b == nil:
		return 1
	}
	if c, ok := order(a, b, caseSensitive); ok {
		if c == 0 && !caseSensitive {
			return 0
		}
		return c
	}
	return strings.Compare(strings.ToLower(toString(a)), strings.ToLower(toString(b)))
}

func sortObject(ctx context.Context, inv *Invocation, input []Value) ([]Value, error) {
	specs, err := propertySpecs(inv.Args["Property"])
	if err != nil {
		return nil, err
	}
	cs := inv.Bool("CaseSensitive")
	type row struct {
		v    Value
		keys []Value
	}
	rows := make([]row, len(input))
	for i, v := range input {
		rows[i].v = v
		if len(specs) == 0 {
			rows[i].keys = []Value{v}
			continue
		}
		for _, p := range specs {
			k, err := p.value(ctx, inv, v)
			if err != nil {
				return nil, err
			}
			rows[i].keys = append(rows[i].keys, k)
		}
	}
	desc := inv.Bool("Descending")
	sort.SliceStable(rows, func(i, j int) bool {
		for k := range rows[i].keys {
			c := sortKey(rows[i].keys[k], rows[j].keys[k], cs)
			d := desc
			if k < len(specs) && specs[k].descending != nil {
				d = *specs[k].descending
			}
			if d {
				c = -c
			}
			if c != 0 {
				return c < 0
			}
		}
		return false
	})
	out := make([]Value, 0, len(rows))
	for i, r := range rows {
		if inv.Bool("Unique") && i > 0 {
			same := true
			for k := range r.keys {
				if sortKey(r.keys[k], rows[i-1].keys[k], cs) != 0 {
					same = false
				}
			}
			if same {
				continue
			}
		}
		out = append(out, r.v)
	}
	if inv.Has("Top") {
		n, _ := inv.Int("Top")
		out = out[:min(int(max(n, 0)), len(out))]
	}
	if inv.Has("Bottom") {
		n, _ := inv.Int("Bottom")
		out = out[max(0, len(out)-int(max(n, 0))):]
	}
	return out, nil
}

// groupObject groups by the properties' values: GroupInfo objects with
// Count, Name (the values, joined with ", ") and Group, sorted by Name as
// PowerShell 7 sorts them.
func groupObject(ctx context.Context, inv *Invocation, input []Value) ([]Value, error) {
	specs, err := propertySpecs(inv.Args["Property"])
	if err != nil {
		return nil, err
	}
	cs := inv.Bool("CaseSensitive")
	type group struct {
		name   string
		values []Value
		items  []Value
	}
	var groups []*group
	byName := map[string]*group{}
	for _, v := range input {
		var vals []Value
		if len(specs) == 0 {
			vals = []Value{v}
		}
		for _, p := range specs {
			k, err := p.value(ctx, inv, v)
			if err != nil {
				return nil, err
			}
			vals = append(vals, k)
		}
		parts := make([]string, len(vals))
		for i, k := range vals {
			parts[i] = toString(k)
		}
		name := strings.Join(parts, ", ")
		key := name
		if !cs {
			key = strings.ToLower(key)
		}
		g := byName[key]
		if g == nil {
			g = &group{name: name, values: vals}
			byName[key] = g
			groups = append(groups, g)
		}
		g.items = append(g.items, v)
	}
	sort.SliceStable(groups, func(i, j int) bool {
		for k := range groups[i].values {
			if k >= len(groups[j].values) {
				break
			}
			if c := sortKey(groups[i].values[k], groups[j].values[k], cs); c != 0 {
				return c < 0
			}
		}
		return false
	})
	if inv.Bool("AsHashTable") {
		h := NewHashtable()
		for _, g := range groups {
			var key Value = g.name
			if len(g.values) == 1 && !inv.Bool("AsString") {
				key = g.values[0]
			}
			h.Set(toString(key), g.items)
		}
		return []Value{h}, nil
	}
	out := make([]Value, 0, len(groups))
	for _, g := range groups {
		o := &Object{TypeName: "Microsoft.PowerShell.Commands.GroupInfo", DefaultView: TableView,
			DefaultDisplay: []string{"Count", "Name", "Group"},
			Props: []Prop{{Name: "Count", Value: int64(len(g.items))}, {Name: "Name", Value: g.name},
				{Name: "Values", Value: g.values}, {Name: "Group", Value: g.items}}}
		if inv.Bool("NoElement") {
			o.DefaultDisplay = []string{"Count", "Name"}
			o.Props = o.Props[:3]
		}
		out = append(out, o)
	}
	return out, nil
}

func measureObject(_ context.Context, inv *Invocation, input []Value) ([]Value, error) {
	o := &Object{TypeName: "GenericMeasureInfo", DefaultView: ListView}
	all := inv.Bool("AllStats")
	var sum float64
	var minV, maxV Value
	count := 0
	for _, v := range input {
		if inv.Has("Property") {
			if obj, ok := v.(*Object); ok && obj.prop(inv.String("Property")) == nil {
				continue // PowerShell skips objects without the property
			}
			v = member(v, inv.String("Property"))
		}
		count++
		f, _ := number(v)
		sum += f
		if minV == nil || sortKey(v, minV, false) < 0 {
			minV = v
		}
		if maxV == nil || sortKey(v, maxV, false) > 0 {
			maxV = v
		}
	}
	o.Props = append(o.Props, Prop{Name: "Count", Value: int64(count)})
	add := func(name string, on bool, v Value) {
		if !on && !all {
			v = nil
		}
		o.Props = append(o.Props, Prop{Name: name, Value: v})
	}
	var avg Value
	if count > 0 {
		avg = sum / float64(count)
	}
	numeric := func(v Value) Value {
		if f, ok := number(v); ok {
			if f == float64(int64(f)) {
				return f
			}
			return f
		}
		return v
	}
	add("Average", inv.Bool("Average"), avg)
	add("Sum", inv.Bool("Sum"), sum)
	add("Maximum", inv.Bool("Maximum"), numeric(maxV))
	add("Minimum", inv.Bool("Minimum"), numeric(minV))
	add("Property", inv.Has("Property"), inv.String("Property"))
	return []Value{o}, nil
}

// textLines splits a file's text into lines, as Get-Content does: \r\n,
// \n or \r, no trailing empty line, no byte order mark.
func textLines(b []byte) []string {
	s := strings.TrimPrefix(string(b), "\uFEFF")
	s = strings.ReplaceAll(strings.ReplaceAll(s, "\r\n", "\n"), "\r", "\n")
	s = strings.TrimSuffix(s, "\n")
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

func getContent(_ context.Context, inv *Invocation, _ []Value) ([]Value, error) {
	b, err := inv.readFile(inv.String("Path"))
	if err != nil {
		return nil, err
	}
	if inv.Bool("Raw") {
		return []Value{strings.TrimPrefix(string(b), "\uFEFF")}, nil
	}
	lines := textLines(b)
	if n, _ := inv.Int("TotalCount"); inv.Has("TotalCount") && n >= 0 {
		lines = lines[:min(int(n), len(lines))]
	}
	if n, _ := inv.Int("Tail"); inv.Has("Tail") && n >= 0 {
		lines = lines[max(0, len(lines)-int(n)):]
	}
	out := make([]Value, len(lines))
	for i, l := range lines {
		out[i] = l
	}
	return out, nil
}

func writeContent(inv *Invocation, input []Value, appendTo bool) ([]Value, error) {
	vals := input
	if inv.Has("Value") {
		vals = enumerate(inv.Args["Value"])
	}
	var b strings.Builder
	for _, v := range vals {
		b.WriteString(toString(v))
		if !inv.Bool("NoNewline") {
			b.WriteString("\n")
		}
	}
	return nil, inv.writeFile(inv.String("Path"), []byte(b.String()), appendTo)
}

// delimiter reads -Delimiter: one character, a comma by default.
func delimiter(inv *Invocation) (rune, error) {
	if !inv.Has("Delimiter") {
		return ',', nil
	}
	d := []rune(inv.String("Delimiter"))
	if len(d) != 1 || d[0] == '"' || d[0] == '\r' || d[0] == '\n' {
		return 0, fmt.Errorf("Cannot bind parameter 'Delimiter'. Give one character, such as ';'.")
	}
	return d[0], nil
}

func importCsv(_ context.Context, inv *Invocation, _ []Value) ([]Value, error) {
	p := inv.String("Path")
	if inv.Has("LiteralPath") {
		p = inv.String("LiteralPath")
	}
	b, err := inv.readFile(p)
	if err != nil {
		return nil, err
	}
	return parseCsv(b, inv)
}

// parseCsv reads CSV as Import-Csv does: the first row (or -Header) names
// the columns; a #TYPE line is skipped; each row becomes an object whose
// properties are strings, $null where a row is short.
func parseCsv(b []byte, inv *Invocation) ([]Value, error) {
	d, err := delimiter(inv)
	if err != nil {
		return nil, err
	}
	text := strings.TrimPrefix(string(b), "\uFEFF")
	if strings.HasPrefix(text, "#TYPE") {
		if _, rest, ok := strings.Cut(text, "\n"); ok {
			text = rest
		} else {
			text = ""
		}
	}
	rd := csv.NewReader(strings.NewReader(text))
	rd.Comma, rd.FieldsPerRecord, rd.LazyQuotes = d, -1, true
	var header []string
	if inv.Has("Header") {
		header = Strings(inv.Args["Header"])
	}
	var out []Value
	for line := 1; ; line++ {
		rec, err := rd.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("The CSV text is not valid at line %d: %v", line, err)
		}
		if header == nil {
			seen := map[string]bool{}
			for i, h := range rec {
				h = strings.TrimSpace(h)
				if h == "" {
					h = fmt.Sprintf("H%d", i+1)
				}
				if seen[strings.ToLower(h)] {
					return nil, fmt.Errorf("The member \"%s\" is already present.", h)
				}
				seen[strings.ToLower(h)] = true
				header = append(header, h)
			}
			continue
		}
		if len(rec) == 1 && rec[0] == "" {
			continue
		}
		o := &Object{TypeName: "System.Management.Automation.PSCustomObject", DefaultView: AutoView}
		for i, h := range header {
			var v Value
			if i < len(rec) {
				v = rec[i]
			}
			o.Props = append(o.Props, Prop{Name: h, Value: v})
		}
		out = append(out, o)
		if len(out) > maxArrayLen {
			return nil, errTooLarge
		}
	}
	return out, nil
}

// csvText writes objects as CSV: a header of the first object's property
// names, then a row per object. header false leaves the header out (rows
// appended to an existing file).
func csvText(input []Value, d rune, header bool) (string, error) {
	var buf bytes.Buffer
	w := csv.NewWriter(&buf)
	w.Comma = d
	var names []string
	for _, v := range input {
		o, ok := v.(*Object)
		if !ok {
			if h, isHash := v.(*Hashtable); isHash {
				o = customObject(h)
			} else {
				o = &Object{Props: []Prop{{Name: "Length", Value: member(v, "Length")}}}
				if _, isStr := v.(string); !isStr {
					o = &Object{Props: []Prop{{Name: "Value", Value: v}}}
				}
			}
		}
		if names == nil {
			for _, p := range o.Props {
				names = append(names, p.Name)
			}
			if header {
				w.Write(names)
			}
		}
		row := make([]string, len(names))
		for i, h := range names {
			val, _ := o.Get(h)
			if val != nil {
				row[i] = csvValue(val)
			}
		}
		w.Write(row)
		if buf.Len() > MaxFileSize {
			return "", ErrFileTooLarge
		}
	}
	w.Flush()
	return buf.String(), w.Error()
}

// csvValue is how Export-Csv writes a value: its text; an array as
// PowerShell writes one, System.Object[].
func csvValue(v Value) string {
	switch v.(type) {
	case []Value, []string:
		return "System.Object[]"
	case *Hashtable:
		return "System.Collections.Hashtable"
	}
	return toString(v)
}

// exportCsv writes objects as CSV, without PowerShell 5.1's #TYPE line
// (PowerShell 7's default; -NoTypeInformation is accepted).
func exportCsv(_ context.Context, inv *Invocation, input []Value) ([]Value, error) {
	d, err := delimiter(inv)
	if err != nil {
		return nil, err
	}
	header := true
	if inv.Bool("Append") {
		if b, err := inv.readFile(inv.String("Path")); err == nil && len(bytes.TrimSpace(b)) > 0 {
			header = false
		}
	}
	text, err := csvText(input, d, header)
	if err != nil {
		return nil, err
	}
	return nil, inv.writeFile(inv.String("Path"), []byte(text), inv.Bool("Append"))
}

func convertToCsv(_ context.Context, inv *Invocation, input []Value) ([]Value, error) {
	d, err := delimiter(inv)
	if err != nil {
		return nil, err
	}
	text, err := csvText(input, d, true)
	if err != nil {
		return nil, err
	}
	var out []Value
	for _, l := range textLines([]byte(text)) {
		out = append(out, l)
	}
	return out, nil
}

func outFile(_ context.Context, inv *Invocation, input []Value) ([]Value, error) {
	if inv.Has("InputObject") {
		input = enumerate(inv.Args["InputObject"])
	}
	var b strings.Builder
	writeOutput(&b, input)
	text := b.String()
	if inv.Bool("NoNewline") {
		text = strings.ReplaceAll(text, "\n", "")
	}
	p := inv.String("FilePath")
	if inv.Has("LiteralPath") {
		p = inv.String("LiteralPath")
	}
	if inv.Bool("NoClobber") && !inv.Bool("Append") {
		if _, err := inv.readFile(p); err == nil {
			return nil, fmt.Errorf("The file '%s' already exists.", p)
		}
	}
	return nil, inv.writeFile(p, []byte(text), inv.Bool("Append"))
}

func getDate(_ context.Context, inv *Invocation, input []Value) ([]Value, error) {
	t := time.Now()
	if inv.Has("Date") || len(input) == 1 {
		v := inv.Args["Date"]
		if !inv.Has("Date") {
			v = input[0]
		}
		switch x := scalar(v).(type) {
		case time.Time:
			t = x
		default:
			pt, ok := parseDateString(toString(x))
			if !ok {
				return nil, fmt.Errorf(`Cannot bind parameter 'Date'. Cannot convert value "%s" to type "System.DateTime".`, toString(x))
			}
			t = pt
		}
	}
	set := func(name string, cur int) int {
		if n, _ := inv.Int(name); inv.Has(name) {
			return int(n)
		}
		return cur
	}
	t = time.Date(set("Year", t.Year()), time.Month(set("Month", int(t.Month()))), set("Day", t.Day()), set("Hour", t.Hour()),
		set("Minute", t.Minute()), set("Second", t.Second()), t.Nanosecond(), t.Location())
	if inv.Bool("AsUTC") {
		t = t.UTC()
	}
	switch {
	case inv.Has("Format"):
		return []Value{formatDate(t, inv.String("Format"))}, nil
	case inv.Has("UFormat"):
		return []Value{uFormat(t, inv.String("UFormat"))}, nil
	}
	return []Value{t}, nil
}

// uFormat is Get-Date -UFormat: Unix strftime specifiers.
func uFormat(t time.Time, f string) string {
	var b strings.Builder
	for i := 0; i < len(f); i++ {
		if f[i] != '%' || i+1 == len(f) {
			b.WriteByte(f[i])
			continue
		}
		i++
		switch f[i] {
		case 'Y':
			b.WriteString(formatDate(t, "yyyy"))
		case 'y':
			b.WriteString(formatDate(t, "yy"))
		case 'm':
			b.WriteString(formatDate(t, "MM"))
		case 'd':
			b.WriteString(formatDate(t, "dd"))
		case 'H':
			b.WriteString(formatDate(t, "HH"))
		case 'M':
			b.WriteString(formatDate(t, "mm"))
		case 'S':
			b.WriteString(formatDate(t, "ss"))
		case 'A':
			b.WriteString(formatDate(t, "dddd"))
		case 'a':
			b.WriteString(formatDate(t, "ddd"))
		case 'B':
			b.WriteString(formatDate(t, "MMMM"))
		case 'b', 'h':
			b.WriteString(formatDate(t, "MMM"))
		case 'F':
			b.WriteString(formatDate(t, "yyyy-MM-dd"))
		case 'T':
			b.WriteString(formatDate(t, "HH:mm:ss"))
		case 's':
			fmt.Fprintf(&b, "%d", t.Unix())
		case 'j':
			fmt.Fprintf(&b, "%03d", t.YearDay())
		case '%':
			b.WriteByte('%')
		default:
			b.WriteByte('%')
			b.WriteByte(f[i])
		}
	}
	return b.String()
}

func newTimeSpan(_ context.Context, inv *Invocation, _ []Value) ([]Value, error) {
	if inv.Has("Start") || inv.Has("End") {
		date := func(name string) (time.Time, error) {
			if !inv.Has(name) {
				return time.Now(), nil
			}
			v, err := cast("datetime", inv.Args[name])
			if err != nil {
				return time.Time{}, err
			}
			return v.(time.Time), nil
		}
		start, err := date("Start")
		if err != nil {
			return nil, err
		}
		end, err := date("End")
		if err != nil {
			return nil, err
		}
		return []Value{timeSpan(end.Sub(start))}, nil
	}
	var d time.Duration
	for name, unit := range map[string]time.Duration{"Days": 24 * time.Hour, "Hours": time.Hour, "Minutes": time.Minute, "Seconds": time.Second} {
		n, _ := inv.Int(name)
		d += time.Duration(n) * unit
	}
	return []Value{timeSpan(d)}, nil
}

func newObject(_ context.Context, inv *Invocation, _ []Value) ([]Value, error) {
	switch canonicalType(inv.String("TypeName")) {
	case "pscustomobject", "object":
		h, _ := inv.Args["Property"].(*Hashtable)
		if h == nil {
			h = NewHashtable()
		}
		return []Value{customObject(h)}, nil
	case "array":
		return []Value{[]Value{}}, nil
	case "hashtable":
		return []Value{NewHashtable()}, nil
	}
	return nil, fmt.Errorf("Cannot find type [%s]: this shell makes PSObject, PSCustomObject and Hashtable objects.", inv.String("TypeName"))
}

func addMember(_ context.Context, inv *Invocation, input []Value) ([]Value, error) {
	targets := input
	if inv.Has("InputObject") {
		targets = []Value{inv.Args["InputObject"]}
	}
	props := NewHashtable()
	switch {
	case inv.Has("NotePropertyMembers"):
		h, ok := inv.Args["NotePropertyMembers"].(*Hashtable)
		if !ok {
			return nil, fmt.Errorf("Cannot bind parameter 'NotePropertyMembers'. Give a hashtable.")
		}
		props = h
	case inv.Has("NotePropertyName"):
		props.Set(inv.String("NotePropertyName"), inv.Args["NotePropertyValue"])
	case inv.Has("Name"):
		mt := inv.String("MemberType")
		if mt != "" && !strings.EqualFold(mt, "NoteProperty") {
			return nil, fmt.Errorf("Add-Member adds NoteProperty members only; -MemberType %s is not supported.", mt)
		}
		props.Set(inv.String("Name"), inv.Args["Value"])
	default:
		return nil, missingMandatory([]string{"NotePropertyName"})
	}
	var out []Value
	for _, t := range targets {
		o, ok := t.(*Object)
		if !ok {
			return nil, fmt.Errorf("Add-Member adds properties to objects, not to a %s.", netTypeName(t))
		}
		for _, k := range props.Keys {
			if p := o.prop(k); p != nil {
				if !inv.Bool("Force") {
					return nil, fmt.Errorf("Cannot add a member with the name \"%s\" because a member with that name already exists. To overwrite the member anyway, add the Force parameter to your command.", k)
				}
				p.Value = props.Get(k)
				continue
			}
			o.Props = append(o.Props, Prop{Name: k, Value: props.Get(k)})
		}
		if inv.Bool("PassThru") {
			out = append(out, o)
		}
	}
	return out, nil
}

// readContentParams replaces the value of each IsContent parameter that
// is a path by the file's text (see ParamSpec.IsContent).
func readContentParams(spec *Spec, inv *Invocation) error {
	for _, p := range spec.Params {
		if p.IsContent == nil || !inv.Has(p.Name) {
			continue
		}
		v := inv.String(p.Name)
		if v == "" || p.IsContent(v) {
			continue
		}
		if inv.noFiles {
			return &ParameterError{fmt.Errorf("Cannot bind parameter '%s'. Give the document itself (its text): files are not read here.", p.Name)}
		}
		b, err := inv.readFile(v)
		if err != nil {
			return &ParameterError{fmt.Errorf("Cannot bind parameter '%s'. %v", p.Name, err)}
		}
		inv.Args[p.Name] = string(b)
	}
	return nil
}
