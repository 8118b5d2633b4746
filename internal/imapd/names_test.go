package imapd

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestListPattern(t *testing.T) {
	for _, tc := range []struct {
		name, ref, pattern string
		want               bool
	}{
		{"INBOX", "", "*", true},
		{"INBOX", "", "inbox", true},
		{"INBOX/Sub", "", "inbox/%", true},
		{"Sent Items", "", "%", true},
		{"Work/2026", "", "%", false},
		{"Work/2026", "", "*", true},
		{"Work/2026", "Work", "%", true},
		{"Work/2026", "Work/", "%", true},
		{"Work/2026/Q1", "Work/", "%", false},
		{"Work/2026", "", "W*6", true},
		{"Work/2026", "", "W%6", false},
		{"Drafts", "", "Dr?fts", false},
		{"Drafts", "Other", "/Drafts", true},
	} {
		if got := matchListPattern(tc.name, tc.ref, tc.pattern); got != tc.want {
			t.Errorf("match(%q, ref %q, pattern %q) = %v, want %v", tc.name, tc.ref, tc.pattern, got, tc.want)
		}
	}
	// Many wildcards cost time linear in their number, not exponential.
	if matchListPattern(strings.Repeat("a", 200)+"b", "", strings.Repeat("*a", 1000)+"c") {
		t.Error("pathological pattern matched")
	}
}

func TestCheckNewName(t *testing.T) {
	for name, want := range map[string]string{
		"Projects":               "Projects",
		"Projects/2026/":         "Projects/2026",
		"inbox/Receipts":         "Inbox/Receipts",
		"":                       "",
		"/x":                     "",
		"a//b":                   "",
		"a/*":                    "",
		"a%":                     "",
		" lead":                  "",
		"ctl\x01":                "",
		"\xff":                   "",
		strings.Repeat("x", 256): "",
	} {
		got, err := checkNewName(name)
		if (err != nil) != (want == "") || got != want {
			t.Errorf("checkNewName(%q) = %q, %v; want %q", name, got, err, want)
		}
	}
}

// backtrack is the obvious recursive matcher, the reference for the fuzz
// target.
func backtrack(name, pattern string) bool {
	if pattern == "" {
		return name == ""
	}
	switch pattern[0] {
	case '*':
		for i := 0; i <= len(name); i++ {
			if backtrack(name[i:], pattern[1:]) {
				return true
			}
		}
		return false
	case '%':
		for i := 0; i <= len(name); i++ {
			if i > 0 && name[i-1] == '/' {
				return false
			}
			if backtrack(name[i:], pattern[1:]) {
				return true
			}
		}
		return false
	}
	return name != "" && name[0] == pattern[0] && backtrack(name[1:], pattern[1:])
}

func FuzzListPattern(f *testing.F) {
	f.Add("Work/2026", "W*%6")
	f.Add("INBOX", "%")
	f.Add("a/b/c", "*/%")
	f.Fuzz(func(t *testing.T, name, pattern string) {
		if len(name) > 40 || strings.Count(pattern, "*")+strings.Count(pattern, "%") > 6 {
			return // keep the reference fast
		}
		if got, want := wildcardMatch(name, pattern), backtrack(name, pattern); got != want {
			t.Fatalf("wildcardMatch(%q, %q) = %v, reference %v", name, pattern, got, want)
		}
	})
}

func FuzzFolderName(f *testing.F) {
	for _, s := range []string{"Projects/2026", "INBOX/x", "a//b", "/", "Sent Items", "\xff"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		sn, err := checkNewName(name)
		if err != nil {
			return
		}
		if !utf8.ValidString(sn) || sn == "" || strings.Contains(sn, "//") || strings.HasPrefix(sn, "/") || strings.HasSuffix(sn, "/") {
			t.Fatalf("checkNewName(%q) accepted %q", name, sn)
		}
		if strings.ContainsAny(sn, "*%") {
			t.Fatalf("wildcards accepted in %q", sn)
		}
		// The name IMAP shows maps back to the same store name.
		back, ok := storeName(imapName(sn))
		if !ok || back != sn {
			t.Fatalf("round trip %q -> %q -> %q", sn, imapName(sn), back)
		}
	})
}
