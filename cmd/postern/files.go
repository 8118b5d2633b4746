package main

import (
	"os"
	"path/filepath"
	"strings"

	"postern.dev/postern/internal/admin"
	"postern.dev/postern/internal/cmdlet"
)

// readContentArgs reads, here in the CLI process, the files that a
// one-cmdlet command line names for document parameters (-Certificate
// FILE; cmdlet.ParamSpec.IsContent), and sends their text instead: the
// admin service only ever takes the document itself, and the file is read
// with the invoking user's rights, on the client side. A value that is
// not a readable file is left as it is for the cmdlet to refuse.
func readContentArgs(args []string, wd string) []string {
	if len(args) == 0 {
		return args
	}
	spec, ok := admin.Cmdlets(&admin.Service{}).Lookup(args[0])
	if !ok {
		return args
	}
	content := func(name string) *cmdlet.ParamSpec {
		for i := range spec.Params {
			if p := &spec.Params[i]; p.IsContent != nil && strings.EqualFold(p.Name, name) {
				return p
			}
		}
		return nil
	}
	read := func(p *cmdlet.ParamSpec, v string) (string, bool) {
		if v == "" || p.IsContent(v) {
			return "", false
		}
		path := v
		if !filepath.IsAbs(path) {
			path = filepath.Join(wd, path)
		}
		if fi, err := os.Stat(path); err != nil || !fi.Mode().IsRegular() || fi.Size() > 1<<20 {
			return "", false
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return "", false
		}
		return string(b), true
	}
	out := append([]string{}, args...)
	for i := 1; i < len(out); i++ {
		a := out[i]
		if !strings.HasPrefix(a, "-") {
			continue
		}
		name, value, colon := strings.Cut(a[1:], ":")
		p := content(name)
		if p == nil {
			continue
		}
		switch {
		case colon:
			if text, ok := read(p, value); ok {
				out[i] = "-" + name + ":" + text
			}
		case i+1 < len(out):
			if text, ok := read(p, out[i+1]); ok {
				out[i+1] = text
			}
			i++
		}
	}
	return out
}
