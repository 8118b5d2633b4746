package admin

import (
	"os"
	"strings"
	"testing"
)

// TestREADMEListsEveryCmdlet: the README's cmdlet reference names every
// cmdlet Postern registers (issue 15: "README's cmdlet table lists every
// cmdlet"), so an admin reading it finds what the shell accepts.
func TestREADMEListsEveryCmdlet(t *testing.T) {
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	readme := string(b)
	for _, s := range Cmdlets(&Service{}).Specs() {
		if s.Builtin() {
			continue
		}
		if !strings.Contains(readme, "`"+s.Name+"`") {
			t.Errorf("README.md does not list %s", s.Name)
		}
	}
}
