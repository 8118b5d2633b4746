package address

import (
	"errors"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	tests := []struct {
		in      string
		key     string
		wantErr error
	}{
		{in: "sean@contoso.com", key: "sean@contoso.com"},
		{in: "Sean.Kim@Contoso.COM", key: "sean.kim@contoso.com"},
		{in: "sean@contoso.com.", key: "sean@contoso.com"},
		{in: "first+tag@sub.contoso.com", key: "first+tag@sub.contoso.com"},
		{in: "o'brien@contoso.com", key: "o'brien@contoso.com"},
		{in: "jörg@bücher.example", key: "jörg@xn--bcher-kva.example"},
		{in: "sean@MÜNCHEN.example", key: "sean@xn--mnchen-3ya.example"},
		{in: "sean@xn--mnchen-3ya.example", key: "sean@xn--mnchen-3ya.example"},
		{in: "sean@bü_cher.example", wantErr: ErrDomain},
		{in: "", wantErr: ErrEmpty},
		{in: "sean", wantErr: ErrNoAt},
		{in: "@contoso.com", wantErr: ErrRouting},
		{in: "sean@", wantErr: ErrDomain},
		{in: "user%outside.example@contoso.com", wantErr: ErrRouting},
		{in: "outside.example!user@contoso.com", wantErr: ErrRouting},
		{in: "@contoso.com:user@outside.example", wantErr: ErrRouting},
		{in: "@a.example,@b.example:user@outside.example", wantErr: ErrRouting},
		{in: `"user@outside.example"@contoso.com`, wantErr: ErrQuotedPart},
		{in: "user@[192.0.2.1]", wantErr: ErrIPLiteral},
		{in: "user@contoso..com", wantErr: ErrDomain},
		{in: "user@-contoso.com", wantErr: ErrDomain},
		{in: "user@contoso_com", wantErr: ErrDomain},
		{in: ".user@contoso.com", wantErr: ErrLocalPart},
		{in: "us..er@contoso.com", wantErr: ErrLocalPart},
		{in: "us er@contoso.com", wantErr: ErrLocalPart},
		{in: "user@contoso.com\x00", wantErr: ErrControl},
		{in: "user\r\n@contoso.com", wantErr: ErrControl},
		{in: "a@b@contoso.com", wantErr: ErrLocalPart},
		{in: strings.Repeat("a", 65) + "@contoso.com", wantErr: ErrLocalPart},
		{in: "a@" + strings.Repeat("b", 64) + ".com", wantErr: ErrDomain},
		{in: "a@" + strings.Repeat("b.", 130) + "com", wantErr: ErrTooLong},
		{in: "\xff@contoso.com", wantErr: ErrNotUTF8},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			a, err := Parse(tt.in)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("Parse(%q) error = %v, want %v", tt.in, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse(%q): %v", tt.in, err)
			}
			if a.Key() != tt.key {
				t.Errorf("Key = %q, want %q", a.Key(), tt.key)
			}
		})
	}
}

// FuzzParse checks that Parse never panics and that whatever it accepts is
// safe to route on: no routing characters, one '@', a clean lower-case
// domain, and a canonical form that parses to itself.
func FuzzParse(f *testing.F) {
	for _, s := range []string{"sean@contoso.com", "user%x@y.com", "@a:b@c", `"a@b"@c.com`, "a@[1.2.3.4]", "a@b.", "ü@ö.de", "a@b@c", "sean@MÜNCHEN.example", "x@xn--mnchen-3ya.example", "x@xn--zz.example", "x@ａｂｃ.example"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		a, err := Parse(s)
		if err != nil {
			return
		}
		key := a.Key()
		if strings.Count(key, "@") != 1 || strings.ContainsAny(key, "%!:,\"[]\r\n\x00 ") {
			t.Fatalf("Parse(%q) accepted unsafe %q", s, key)
		}
		if a.Domain != strings.ToLower(a.Domain) || strings.HasSuffix(a.Domain, ".") {
			t.Fatalf("domain not canonical: %q", a.Domain)
		}
		for _, c := range a.Domain {
			if c >= 0x80 {
				t.Fatalf("domain %q is not in A-label form", a.Domain)
			}
		}
		again, err := Parse(key)
		if err != nil || again.Key() != key {
			t.Fatalf("canonical form %q does not round-trip: %v", key, err)
		}
	})
}
