package restapi

import (
	"testing"

	"postern.dev/postern/internal/admin"
)

// TestRoutesDeriveFromDeclarations builds the REST resources from the
// cmdlets' declarations: every route names a resource with a list
// cmdlet, no two cmdlets share a method, and every declared output type
// has a schema in the API's description.
func TestRoutesDeriveFromDeclarations(t *testing.T) {
	reg := admin.Cmdlets(&admin.Service{})
	resources, err := resourcesOf(reg)
	if err != nil {
		t.Fatal(err)
	}
	if len(resources) < 20 {
		t.Errorf("only %d resources", len(resources))
	}
	for _, res := range resources {
		if res.Description == "" {
			t.Errorf("/%s has no description (on %s's route)", res.Path, res.Get)
		}
	}
	for _, s := range reg.Specs() {
		if out := s.OutputType(); !s.Builtin() && out != "" && objectTypes[out] == "" {
			t.Errorf("%s returns %s, which objectTypes does not describe", s.Name, out)
		}
	}
	if _, err := document(reg); err != nil {
		t.Fatal(err)
	}
}
