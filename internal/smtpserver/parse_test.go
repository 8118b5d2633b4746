package smtpserver

import (
	"strings"
	"testing"
)

func TestParsePath(t *testing.T) {
	for _, tc := range []struct {
		in, path, params string
		rcpt, ok         bool
	}{
		{"<a@b.example>", "a@b.example", "", false, true},
		{"<a@b.example> SIZE=10 BODY=8BITMIME", "a@b.example", " SIZE=10 BODY=8BITMIME", false, true},
		{"a@b.example", "a@b.example", "", false, true}, // devices that leave out the brackets
		{"<@relay.example:a@b.example>", "a@b.example", "", false, true},
		{`<"a b"@b.example>`, "a b@b.example", "", false, true},
		{`<"a\"b"@b.example>`, `a"b@b.example`, "", false, true},
		{"<postmaster>", "postmaster", "", true, true},
		{"<PostMaster>", "PostMaster", "", true, true},
		{"<postmaster>", "", "", false, false}, // MAIL FROM needs a domain
		{"<bob>", "", "", true, false},
		{"<a@>", "", "", false, false},
		{"<@b.example>", "", "", false, false},
		{"<a@b.example", "", "", false, false},
		{"<>", "", "", false, false},
		{`<"unterminated@b.example>`, "", "", false, false},
	} {
		path, params, err := parsePath(tc.in, tc.rcpt)
		if (err == nil) != tc.ok || (tc.ok && (path != tc.path || params != tc.params)) {
			t.Errorf("parsePath(%q, rcpt=%v) = %q, %q, %v", tc.in, tc.rcpt, path, params, err)
		}
	}
	if p, rest, err := parseReversePath("<> SIZE=1"); err != nil || p != "" || rest != " SIZE=1" {
		t.Errorf("null reverse-path: %q %q %v", p, rest, err)
	}
}

func FuzzParsePath(f *testing.F) {
	for _, s := range []string{"<a@b.example>", "<@r:a@b> X=1", `<"q\"x"@d>`, "<postmaster>", "a@b"} {
		f.Add(s, true)
	}
	f.Fuzz(func(t *testing.T, in string, rcpt bool) {
		path, params, err := parsePath(in, rcpt)
		if err != nil {
			return
		}
		if path == "" || len(path)+len(params) > len(in) {
			t.Fatalf("%q parsed as %q + %q", in, path, params)
		}
		if !strings.HasSuffix(in, params) {
			t.Fatalf("parameters %q are not the rest of %q", params, in)
		}
		ps, err := parseParams(params)
		for _, p := range ps {
			if err == nil && (p.key == "" || p.key != strings.ToUpper(p.key)) {
				t.Fatalf("parameters %q gave keyword %q", params, p.key)
			}
		}
	})
}
