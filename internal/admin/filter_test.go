package admin

import (
	"strings"
	"testing"
)

func TestCheckPassword(t *testing.T) {
	for _, tc := range []struct {
		pw   string
		rule string // "" accepted
	}{
		{"Sean-Pass-1", ""},
		{"abcdEFGH", "at least 3 of these 4 kinds"}, // upper and lower only
		{"abcd1234", "at least 3 of these 4 kinds"}, // lower and digits only
		{"abc!1234", ""},                            // lower, symbol, digit
		{"Passw0rd", ""},                            // upper, lower, digit
		{"pass word 1!", ""},                        // a blank space is allowed
		{"Ab1!", "at least 8"},                      // too short
		{"Ab1!Ab1", "at least 8"},
		{strings.Repeat("Ab1!", 64), ""},
		{strings.Repeat("Ab1!", 64) + "x", "at most 256"},
		{"Pässw0rd!", "may contain only"},
		{"Pass\tw0rd", "may contain only"},
	} {
		err := checkPassword("sean", tc.pw)
		want := tc.rule
		switch {
		case want == "" && err != nil:
			t.Errorf("%q refused: %v", tc.pw, err)
		case want != "" && (err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "Mailbox 'sean'")):
			t.Errorf("%q: err %v, want one naming the mailbox and %q", tc.pw, err, want)
		}
	}
}
