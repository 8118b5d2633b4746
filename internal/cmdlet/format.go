package cmdlet

import (
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// FormatValue renders a value as PowerShell shows it in a list or a table:
// $null blank, booleans True and False, arrays {a, b}, times in en-US
// form (1/2/2026 3:04:05 PM), other values through their String method.
func FormatValue(v Value) string {
	switch v := v.(type) {
	case nil:
		return ""
	case string:
		return v
	case bool:
		if v {
			return "True"
		}
		return "False"
	case *bool:
		if v == nil {
			return ""
		}
		return FormatValue(*v)
	case int:
		return strconv.Itoa(v)
	case int32:
		return strconv.FormatInt(int64(v), 10)
	case int64:
		return strconv.FormatInt(v, 10)
	case float64:
		return formatFloat(v)
	case time.Time:
		return v.Format("1/2/2006 3:04:05 PM")
	case []Value:
		parts := make([]string, len(v))
		for i, e := range v {
			parts[i] = FormatValue(e)
		}
		return "{" + strings.Join(parts, ", ") + "}"
	case []string:
		return "{" + strings.Join(v, ", ") + "}"
	case *Hashtable:
		return "System.Collections.Hashtable"
	case *Object:
		if v == nil {
			return ""
		}
		return v.String()
	case fmt.Stringer:
		return v.String()
	}
	return fmt.Sprint(v)
}

// formatFloat formats like .NET's shortest round-trip form: 1.5, 1E+21.
func formatFloat(f float64) string {
	switch abs := math.Abs(f); {
	case math.IsInf(f, 1):
		return "Infinity"
	case math.IsInf(f, -1):
		return "-Infinity"
	case abs == 0 || abs >= 1e-5 && abs < 1e15, math.IsNaN(f):
		return strconv.FormatFloat(f, 'f', -1, 64)
	}
	return strconv.FormatFloat(f, 'E', -1, 64)
}

// FormatList writes objs as Format-List does: a blank line, then per
// object its properties as "Name : Value" lines, names padded to the
// longest, and a blank line. props selects the properties: names in any
// case, wildcards such as Smtp*, or * for all; without them an object
// shows all its properties, or its DefaultDisplay ones if its default
// view is a list.
func FormatList(w io.Writer, objs []*Object, props []string) {
	writeList(w, objs, func(o *Object) []string {
		switch {
		case len(props) > 0:
			return selectProperties(o, props, false)
		case o.DefaultView == ListView:
			return defaultProperties(o)
		}
		return allProperties(o)
	})
}

// FormatTable writes objs as Format-Table -AutoSize does: a blank line, a
// header, a line of dashes under each name, a row per object and a blank
// line. Columns are one space apart and as wide as their longest value;
// numbers are right-aligned. props selects the columns as for FormatList,
// resolved against the first object, as PowerShell does; without them the
// columns are its DefaultDisplay properties, or all.
func FormatTable(w io.Writer, objs []*Object, props []string) {
	if len(objs) == 0 {
		return
	}
	names := defaultProperties(objs[0])
	if len(props) > 0 {
		names = selectProperties(objs[0], props, true)
	}
	writeTable(w, objs, names)
}

func writeList(w io.Writer, objs []*Object, properties func(*Object) []string) {
	if len(objs) == 0 {
		return
	}
	var b strings.Builder
	b.WriteString("\n")
	for _, o := range objs {
		names := properties(o)
		width := 0
		for _, n := range names {
			width = max(width, utf8.RuneCountInString(n))
		}
		for _, n := range names {
			v, _ := o.Get(n)
			lines := strings.Split(normalizeNewlines(FormatValue(v)), "\n")
			writeLine(&b, pad(n, width)+" : "+lines[0])
			// Continuation lines line up under the value, as PowerShell's do.
			for _, l := range lines[1:] {
				writeLine(&b, strings.Repeat(" ", width+3)+l)
			}
		}
		b.WriteString("\n")
	}
	io.WriteString(w, b.String())
}

func writeTable(w io.Writer, objs []*Object, names []string) {
	if len(objs) == 0 || len(names) == 0 {
		return
	}
	widths := make([]int, len(names))
	dashes := make([]string, len(names))
	for j, n := range names {
		widths[j] = utf8.RuneCountInString(n)
		dashes[j] = strings.Repeat("-", widths[j])
	}
	// A column is right-aligned when its first value is a number.
	right := make([]bool, len(names))
	decided := make([]bool, len(names))
	rows := make([][]string, len(objs))
	for i, o := range objs {
		rows[i] = make([]string, len(names))
		for j, n := range names {
			v, _ := o.Get(n)
			if !decided[j] && v != nil {
				right[j], decided[j] = isNumber(v), true
			}
			rows[i][j] = strings.ReplaceAll(normalizeNewlines(FormatValue(v)), "\n", " ")
			widths[j] = max(widths[j], utf8.RuneCountInString(rows[i][j]))
		}
	}
	var b strings.Builder
	b.WriteString("\n")
	for _, row := range append([][]string{names, dashes}, rows...) {
		var line strings.Builder
		for j, cell := range row {
			if j > 0 {
				line.WriteByte(' ')
			}
			if right[j] {
				line.WriteString(strings.Repeat(" ", widths[j]-utf8.RuneCountInString(cell)))
			}
			line.WriteString(cell)
			if !right[j] && j < len(row)-1 {
				line.WriteString(strings.Repeat(" ", widths[j]-utf8.RuneCountInString(cell)))
			}
		}
		writeLine(&b, line.String())
	}
	b.WriteString("\n")
	io.WriteString(w, b.String())
}

// writeLine writes s without trailing spaces, which padding leaves after a
// blank value.
func writeLine(b *strings.Builder, s string) {
	b.WriteString(strings.TrimRight(s, " "))
	b.WriteString("\n")
}

func pad(s string, width int) string {
	return s + strings.Repeat(" ", width-utf8.RuneCountInString(s))
}

func normalizeNewlines(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "\r\n", "\n"), "\r", "\n")
}

func isNumber(v Value) bool {
	switch v.(type) {
	case int, int32, int64, float64:
		return true
	}
	return false
}

// selectProperties resolves property patterns against o: names in the
// order asked and spelled as o spells them, wildcards expanded in o's
// order, no name twice. A name o lacks is dropped, or kept when
// keepMissing (a table shows it as an empty column).
func selectProperties(o *Object, patterns []string, keepMissing bool) []string {
	var names []string
	seen := map[string]bool{}
	add := func(name string) {
		if k := strings.ToLower(name); !seen[k] {
			seen[k] = true
			names = append(names, name)
		}
	}
	for _, pattern := range patterns {
		if ContainsWildcard(pattern) {
			for _, p := range o.Props {
				if MatchWildcard(pattern, p.Name) {
					add(p.Name)
				}
			}
		} else if p := o.prop(pattern); p != nil {
			add(p.Name)
		} else if keepMissing {
			add(pattern)
		}
	}
	return names
}

// defaultProperties are the properties o's default view shows.
func defaultProperties(o *Object) []string {
	if len(o.DefaultDisplay) > 0 {
		return selectProperties(o, o.DefaultDisplay, true)
	}
	return allProperties(o)
}

func allProperties(o *Object) []string {
	names := make([]string, len(o.Props))
	for i, p := range o.Props {
		names[i] = p.Name
	}
	return names
}

// formatted is text a Format-* command produced; the host writes it as it
// is.
type formatted string

func (f formatted) String() string { return string(f) }

// writeOutput writes what a statement output when it reaches the host
// without a Format-* command (PowerShell's Out-Default): runs of objects
// of one type in their default view, hashtables as Name/Value tables,
// other values one per line.
func writeOutput(w io.Writer, values []Value) {
	for i := 0; i < len(values); i++ {
		switch v := values[i].(type) {
		case nil:
		case formatted:
			io.WriteString(w, string(v))
		case *Object:
			group := []*Object{v}
			for i+1 < len(values) {
				next, ok := values[i+1].(*Object)
				if !ok || next.TypeName != v.TypeName {
					break
				}
				group = append(group, next)
				i++
			}
			writeDefault(w, group)
		case *Hashtable:
			writeTable(w, hashtableEntries(v), []string{"Name", "Value"})
		case []Value:
			writeOutput(w, v)
		default:
			fmt.Fprintln(w, FormatValue(v))
		}
	}
}

// writeDefault writes objects of one type in their default view.
func writeDefault(w io.Writer, objs []*Object) {
	names := defaultProperties(objs[0])
	view := objs[0].DefaultView
	if view == AutoView {
		view = TableView
		if len(names) > 4 {
			view = ListView
		}
	}
	if view == ListView {
		writeList(w, objs, defaultProperties)
		return
	}
	writeTable(w, objs, names)
}

// hashtableEntries turns a hashtable into Name/Value objects, the way
// PowerShell displays one. The values are text already: PowerShell's view
// of an entry aligns every value left, numbers included.
func hashtableEntries(h *Hashtable) []*Object {
	objs := make([]*Object, len(h.Keys))
	for i, k := range h.Keys {
		objs[i] = &Object{
			TypeName:    "System.Collections.DictionaryEntry",
			Props:       []Prop{{Name: "Name", Value: k}, {Name: "Value", Value: FormatValue(h.Get(k))}},
			DefaultView: TableView,
		}
	}
	return objs
}
