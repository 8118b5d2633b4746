package cmdlet

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
)

// RegisterBuiltins adds the shell's own cmdlets to r: Format-List (fl),
// Format-Table (ft), ConvertTo-SecureString and Get-Command (gcm).
func RegisterBuiltins(r *Registry) {
	registerPipelineCmdlets(r)
	property := ParamSpec{Name: "Property", Type: StringList, Position: 0,
		Help: "The properties to show: names, wildcards such as Smtp*, or * for all."}
	r.Register(Spec{
		Name:     "Format-List",
		Aliases:  []string{"fl"},
		Synopsis: "Shows objects as lists of properties, one property per line.",
		Params:   []ParamSpec{property},
		process: func(_ context.Context, inv *Invocation, input []Value) ([]Value, error) {
			props := Strings(inv.Args["Property"])
			return formatInput(input, func(w io.Writer, objs []*Object) { FormatList(w, objs, props) }), nil
		},
	})
	r.Register(Spec{
		Name:     "Format-Table",
		Aliases:  []string{"ft"},
		Synopsis: "Shows objects as a table, one row per object.",
		Params: []ParamSpec{
			property,
			// Columns are always as wide as their contents and never cut,
			// so -AutoSize and -Wrap, which scripts habitually pass, change
			// nothing.
			{Name: "AutoSize", Type: Switch, Position: Named},
			{Name: "Wrap", Type: Switch, Position: Named},
		},
		process: func(_ context.Context, inv *Invocation, input []Value) ([]Value, error) {
			props := Strings(inv.Args["Property"])
			return formatInput(input, func(w io.Writer, objs []*Object) { FormatTable(w, objs, props) }), nil
		},
	})
	r.Register(Spec{
		Name:     "ConvertTo-SecureString",
		Synopsis: "Makes a SecureString, for -Password, from plain text: ConvertTo-SecureString -String 'P@ssw0rd' -AsPlainText -Force.",
		Params: []ParamSpec{
			{Name: "String", Type: String, Position: 0, Help: "The text; it may also come from the pipeline."},
			{Name: "AsPlainText", Type: Switch, Position: Named},
			// Windows PowerShell 5.1 insists on -Force with -AsPlainText;
			// it is accepted, and not required, as in PowerShell 7.
			{Name: "Force", Type: Switch, Position: Named},
		},
		process: convertToSecureString,
	})
	r.Register(Spec{
		Name:     "Get-Command",
		Aliases:  []string{"gcm"},
		Synopsis: "Lists the cmdlets, or those matching -Name (Get-Command *Mailbox*), -Verb (Set) or -Noun (*Connector).",
		Params: []ParamSpec{{Name: "Name", Type: StringList, Position: 0}, {Name: "Verb", Type: StringList, Position: Named},
			{Name: "Noun", Type: StringList, Position: Named}},
		process: func(_ context.Context, inv *Invocation, _ []Value) ([]Value, error) {
			out, err := getCommand(r, Strings(inv.Args["Name"]))
			if err != nil {
				return nil, err
			}
			matches := func(patterns []string, part string) bool {
				return len(patterns) == 0 || slices.ContainsFunc(patterns, func(p string) bool { return MatchWildcard(p, part) })
			}
			var kept []Value
			for _, v := range out {
				name := toString(member(v, "Name"))
				verb, noun, _ := strings.Cut(name, "-")
				if matches(Strings(inv.Args["Verb"]), verb) && matches(Strings(inv.Args["Noun"]), noun) {
					kept = append(kept, v)
				}
			}
			return kept, nil
		},
	})
	r.Register(Spec{
		Name:     "Get-Help",
		Aliases:  []string{"help"},
		Synopsis: "Shows what a cmdlet does and its parameters: Get-Help Set-CASMailbox.",
		Params:   []ParamSpec{{Name: "Name", Type: String, Position: 0, Required: true}},
		process: func(_ context.Context, inv *Invocation, _ []Value) ([]Value, error) {
			spec, ok := r.Lookup(inv.String("Name"))
			if !ok {
				return nil, fmt.Errorf("Get-Help could not find %s in a help file in this session.", inv.String("Name"))
			}
			var b strings.Builder
			fmt.Fprintf(&b, "\nNAME\n    %s\n\nSYNOPSIS\n    %s\n\nSYNTAX\n    %s", spec.Name, spec.Synopsis, spec.Name)
			for _, p := range spec.bindable() {
				arg := " <" + p.Type.String() + ">"
				if p.Type == Switch {
					arg = ""
				}
				part := "-" + p.Name + arg
				if p.Position >= 0 {
					part = "[-" + p.Name + "]" + arg
				}
				if !p.Required {
					part = "[" + part + "]"
				}
				b.WriteString(" " + part)
			}
			b.WriteString("\n\nPARAMETERS\n")
			for _, p := range spec.bindable() {
				fmt.Fprintf(&b, "    -%s", p.Name)
				if p.Type != Switch {
					fmt.Fprintf(&b, " <%s>", p.Type)
				}
				b.WriteString("\n")
				if p.Help != "" {
					fmt.Fprintf(&b, "        %s\n", p.Help)
				}
				if len(p.ValidValues) > 0 {
					fmt.Fprintf(&b, "        One of: %s\n", strings.Join(p.ValidValues, ", "))
				}
				fmt.Fprintf(&b, "        Required? %v\n", p.Required)
			}
			if len(spec.Aliases) > 0 {
				fmt.Fprintf(&b, "\nALIASES\n    %s\n", strings.Join(spec.Aliases, ", "))
			}
			return []Value{b.String()}, nil
		},
	})
}

// formatInput renders a Format-* command's input: format gets each run of
// consecutive objects (a hashtable becomes its Name/Value entries); other
// values are written one per line.
func formatInput(input []Value, format func(io.Writer, []*Object)) []Value {
	var b strings.Builder
	var run []*Object
	flush := func() {
		if len(run) > 0 {
			format(&b, run)
			run = nil
		}
	}
	for _, v := range input {
		switch v := v.(type) {
		case nil:
		case *Object:
			run = append(run, v)
		case *Hashtable:
			run = append(run, hashtableEntries(v)...)
		default:
			flush()
			b.WriteString(FormatValue(v) + "\n")
		}
	}
	flush()
	if b.Len() == 0 {
		return nil
	}
	return []Value{formatted(b.String())}
}

func convertToSecureString(_ context.Context, inv *Invocation, input []Value) ([]Value, error) {
	if !inv.Bool("AsPlainText") {
		// Without -AsPlainText the input would be an encrypted standard
		// string, which only the Windows account that encrypted it can
		// decrypt.
		return nil, errors.New("Input string was not in a correct format. Give the password with -AsPlainText.")
	}
	texts := input
	if inv.Has("String") {
		texts = []Value{inv.Args["String"]}
	}
	if len(texts) == 0 {
		return nil, missingMandatory([]string{"String"})
	}
	out := make([]Value, len(texts))
	for i, t := range texts {
		if t == nil {
			return nil, nullArgument("String")
		}
		out[i] = secureString{toString(t)}
	}
	return out, nil
}

func getCommand(r *Registry, patterns []string) ([]Value, error) {
	for _, p := range patterns {
		if _, ok := r.Lookup(p); !ok && !ContainsWildcard(p) {
			return nil, notRecognized(p)
		}
	}
	var out []Value
	for _, name := range r.Names() {
		spec, _ := r.Lookup(name)
		selected := len(patterns) == 0 || slices.ContainsFunc(patterns, func(p string) bool {
			s, ok := r.Lookup(p) // a name or an alias
			return ok && s == spec || MatchWildcard(p, name)
		})
		if selected {
			out = append(out, &Object{
				TypeName:       "CmdletInfo",
				Props:          []Prop{{Name: "CommandType", Value: "Cmdlet"}, {Name: "Name", Value: spec.Name}, {Name: "Synopsis", Value: spec.Synopsis}},
				DefaultDisplay: []string{"CommandType", "Name", "Synopsis"},
				DefaultView:    TableView,
			})
		}
	}
	return out, nil
}
