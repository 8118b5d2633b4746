package cmdlet

import (
	"context"
	"encoding/csv"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// registerPipelineCmdlets adds the cmdlets scripts use to work on
// pipelines: Where-Object (where, ?), ForEach-Object (foreach, %),
// Select-Object (select), Sort-Object (sort), Measure-Object (measure),
// Get-Content (gc, cat, type) and Export-Csv.
func registerPipelineCmdlets(r *Registry) {
	block := func(name string) ParamSpec { return ParamSpec{Name: name, Type: Any, Position: 0, Required: true} }
	r.Register(Spec{
		Name: "Where-Object", Aliases: []string{"where", "?"},
		Synopsis: "Keeps the pipeline objects for which the script block is true: where {$_.SmtpClientAuthenticationDisabled -eq $true}.",
		Params:   []ParamSpec{block("FilterScript")},
		process: func(ctx context.Context, inv *Invocation, input []Value) ([]Value, error) {
			sb, err := scriptBlock(inv, "FilterScript")
			if err != nil {
				return nil, err
			}
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
		},
	})
	r.Register(Spec{
		Name: "ForEach-Object", Aliases: []string{"foreach", "%"},
		Synopsis: "Runs the script block once per pipeline object, with $_ set to it: foreach {Set-CASMailbox -Identity $_ ...}.",
		Params:   []ParamSpec{block("Process")},
		process: func(ctx context.Context, inv *Invocation, input []Value) ([]Value, error) {
			sb, err := scriptBlock(inv, "Process")
			if err != nil {
				return nil, err
			}
			var out []Value
			for _, item := range input {
				v, err := sb.Invoke(ctx, item)
				if err != nil {
					return nil, err
				}
				out = append(out, v...)
			}
			return out, nil
		},
	})
	r.Register(Spec{
		Name: "Select-Object", Aliases: []string{"select"},
		Synopsis: "Keeps some properties (-Property), or the first or last objects (-First, -Last), or unique ones (-Unique).",
		Params: []ParamSpec{{Name: "Property", Type: StringList, Position: 0}, {Name: "First", Type: Int, Position: Named},
			{Name: "Last", Type: Int, Position: Named}, {Name: "ExpandProperty", Type: String, Position: Named}, {Name: "Unique", Type: Switch, Position: Named}},
		process: selectObject,
	})
	r.Register(Spec{
		Name: "Sort-Object", Aliases: []string{"sort"},
		Synopsis: "Sorts the pipeline by -Property (or by value), -Descending for the reverse order.",
		Params:   []ParamSpec{{Name: "Property", Type: StringList, Position: 0}, {Name: "Descending", Type: Switch, Position: Named}, {Name: "Unique", Type: Switch, Position: Named}},
		process: func(_ context.Context, inv *Invocation, input []Value) ([]Value, error) {
			props := Strings(inv.Args["Property"])
			key := func(v Value) Value {
				if len(props) == 0 {
					return v
				}
				return member(v, props[0])
			}
			out := append([]Value(nil), input...)
			sort.SliceStable(out, func(i, j int) bool {
				c, _ := order(key(out[i]), key(out[j]), false)
				if inv.Bool("Descending") {
					return c > 0
				}
				return c < 0
			})
			if inv.Bool("Unique") {
				out = unique(out)
			}
			return out, nil
		},
	})
	r.Register(Spec{
		Name: "Measure-Object", Aliases: []string{"measure"},
		Synopsis: "Counts the pipeline objects (and sums, averages, finds the extremes of -Property with -Sum, -Average, -Minimum, -Maximum).",
		Params: []ParamSpec{{Name: "Property", Type: String, Position: 0}, {Name: "Sum", Type: Switch, Position: Named},
			{Name: "Average", Type: Switch, Position: Named}, {Name: "Minimum", Type: Switch, Position: Named}, {Name: "Maximum", Type: Switch, Position: Named}},
		process: measureObject,
	})
	r.Register(Spec{
		Name: "Get-Content", Aliases: []string{"gc", "cat", "type"},
		Synopsis: "Reads a text file, one pipeline item per line: $Allow = Get-Content \"allow-smtp-auth.txt\".",
		Params:   []ParamSpec{{Name: "Path", Type: String, Position: 0, Required: true}},
		process: func(_ context.Context, inv *Invocation, _ []Value) ([]Value, error) {
			path, err := resolvePath(inv, inv.String("Path"))
			if err != nil {
				return nil, err
			}
			b, err := os.ReadFile(path)
			if err != nil {
				return nil, fmt.Errorf("Cannot find path '%s' because it does not exist.", inv.String("Path"))
			}
			var out []Value
			for _, l := range strings.Split(strings.TrimSuffix(strings.ReplaceAll(string(b), "\r\n", "\n"), "\n"), "\n") {
				out = append(out, strings.TrimPrefix(l, "\uFEFF"))
			}
			return out, nil
		},
	})
	r.Register(Spec{
		Name:     "Export-Csv",
		Synopsis: "Writes the pipeline objects to a CSV file, one column per property (-NoTypeInformation is accepted).",
		Params: []ParamSpec{{Name: "Path", Type: String, Position: 0, Required: true}, {Name: "NoTypeInformation", Type: Switch, Position: Named},
			{Name: "Encoding", Type: String, Position: Named}},
		process: exportCsv,
	})
}

func scriptBlock(inv *Invocation, name string) (*ScriptBlock, error) {
	sb, ok := inv.Args[name].(*ScriptBlock)
	if !ok {
		return nil, fmt.Errorf("Cannot bind parameter '%s'. Give a script block: { ... }.", name)
	}
	return sb, nil
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
		path, err := resolvePath(inv, v)
		if err != nil {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return &ParameterError{fmt.Errorf("Cannot bind parameter '%s'. Cannot find path '%s' because it does not exist.", p.Name, v)}
		}
		inv.Args[p.Name] = string(b)
	}
	return nil
}

// resolvePath takes a relative path from the shell's directory.
func resolvePath(inv *Invocation, p string) (string, error) {
	if inv.noFiles {
		return "", fmt.Errorf("file access is disabled here")
	}
	if filepath.IsAbs(p) || inv.Dir == "" {
		return p, nil
	}
	return filepath.Join(inv.Dir, p), nil
}

func unique(in []Value) []Value {
	var out []Value
	for _, v := range in {
		dup := false
		for _, o := range out {
			if c, ok := order(v, o, false); ok && c == 0 {
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

func selectObject(_ context.Context, inv *Invocation, input []Value) ([]Value, error) {
	out := input
	if inv.Has("ExpandProperty") {
		var vals []Value
		for _, v := range input {
			vals = append(vals, enumerate(member(v, inv.String("ExpandProperty")))...)
		}
		out = vals
	} else if props := Strings(inv.Args["Property"]); len(props) > 0 {
		out = nil
		for _, v := range input {
			o := &Object{TypeName: "Selected", DefaultView: AutoView}
			for _, p := range props {
				name := p
				if src, ok := v.(*Object); ok {
					if pr := src.prop(p); pr != nil {
						name = pr.Name
					}
				}
				o.Props = append(o.Props, Prop{Name: name, Value: member(v, p)})
			}
			out = append(out, o)
		}
	}
	if inv.Bool("Unique") {
		out = unique(out)
	}
	if inv.Has("First") {
		n, _ := inv.Int("First")
		out = out[:min(int(n), len(out))]
	}
	if inv.Has("Last") {
		n, _ := inv.Int("Last")
		out = out[max(0, len(out)-int(n)):]
	}
	return out, nil
}

func measureObject(_ context.Context, inv *Invocation, input []Value) ([]Value, error) {
	o := &Object{TypeName: "GenericMeasureInfo", DefaultView: ListView}
	o.Props = append(o.Props, Prop{Name: "Count", Value: int64(len(input))})
	var sum float64
	var minV, maxV Value
	for _, v := range input {
		if inv.Has("Property") {
			v = member(v, inv.String("Property"))
		}
		f, _ := number(v)
		sum += f
		if c, ok := order(v, minV, false); minV == nil || ok && c < 0 {
			minV = v
		}
		if c, ok := order(v, maxV, false); maxV == nil || ok && c > 0 {
			maxV = v
		}
	}
	add := func(name string, on bool, v Value) {
		if !on {
			v = nil
		}
		o.Props = append(o.Props, Prop{Name: name, Value: v})
	}
	var avg Value
	if len(input) > 0 {
		avg = sum / float64(len(input))
	}
	add("Average", inv.Bool("Average"), avg)
	add("Sum", inv.Bool("Sum"), sum)
	add("Maximum", inv.Bool("Maximum"), maxV)
	add("Minimum", inv.Bool("Minimum"), minV)
	add("Property", inv.Has("Property"), inv.String("Property"))
	return []Value{o}, nil
}

// exportCsv writes objects as PowerShell 7 does: a header of property
// names, every value quoted.
func exportCsv(_ context.Context, inv *Invocation, input []Value) ([]Value, error) {
	path, err := resolvePath(inv, inv.String("Path"))
	if err != nil {
		return nil, err
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("Could not write '%s': %v", inv.String("Path"), err)
	}
	defer f.Close()
	w := csv.NewWriter(f)
	var header []string
	for _, v := range input {
		o, ok := v.(*Object)
		if !ok {
			o = &Object{Props: []Prop{{Name: "Value", Value: v}}}
		}
		if header == nil {
			for _, p := range o.Props {
				header = append(header, p.Name)
			}
			w.Write(header)
		}
		row := make([]string, len(header))
		for i, h := range header {
			val, _ := o.Get(h)
			if val != nil {
				row[i] = toString(val)
			}
		}
		w.Write(row)
	}
	w.Flush()
	if err := w.Error(); err != nil {
		return nil, err
	}
	return nil, f.Close()
}
