package webadmin

import (
	"net/http"
	"strings"
	"testing"

	"golang.org/x/net/html"
)

// TestAccessibility checks every page's markup for what a screen reader
// and a keyboard need: a viewport and a language, one h1, every form
// control labelled (a <label for> naming its id, or aria-label), ids
// unique, every wide table in a focusable, named scroll region, and no
// control a keyboard cannot reach (a click handler on a non-control).
func TestAccessibility(t *testing.T) {
	f := newFixture(t)
	b := f.browser()
	b.signIn("sean@contoso.com", pw)
	m := f.svc.Dir.Load().MailboxByAddress("scanner@contoso.com")
	pages := []string{
		"/admin", "/admin/users", "/admin/users/new", "/admin/users/" + m.GUID, "/admin/users/" + m.GUID + "?tab=mail",
		"/admin/users/" + m.GUID + "/email-apps", "/admin/users/" + m.GUID + "/password", "/admin/users/" + m.GUID + "/delegates/sendas",
		"/admin/shared-mailboxes", "/admin/settings/domains", "/admin/settings/domains/contoso.com", "/admin/troubleshoot",
		"/exchange/settings/mailflow", "/exchange/connectors", "/exchange/connectors/new", "/exchange/accepteddomains", "/exchange/queues",
		"/exchange/reports/smtpauthclients", "/exchange/auditlog", "/exchange/authpolicies", "/exchange/dkim", "/exchange/oauth",
		"/exchange/apikeys", "/exchange/messagetrace", "/exchange/messagetrace?run=1",
	}
	for _, p := range pages {
		status, body, _ := b.get(p)
		if status != http.StatusOK {
			t.Errorf("GET %s: %d", p, status)
			continue
		}
		for _, problem := range a11yProblems(body) {
			t.Errorf("%s: %s", p, problem)
		}
	}
	// The sign-in page too, signed out.
	_, body, _ := f.browser().get("/signin")
	for _, problem := range a11yProblems(body) {
		t.Errorf("/signin: %s", problem)
	}
}

func a11yProblems(page string) []string {
	doc, err := html.Parse(strings.NewReader(page))
	if err != nil {
		return []string{err.Error()}
	}
	var problems []string
	ids := map[string]int{}
	labelFor := map[string]bool{}
	var controls []*html.Node
	h1, viewport, lang := 0, false, false
	var walk func(n *html.Node, inScroll bool)
	walk = func(n *html.Node, inScroll bool) {
		if n.Type == html.ElementNode {
			if id := attr(n, "id"); id != "" {
				ids[id]++
			}
			switch n.Data {
			case "html":
				lang = attr(n, "lang") != ""
			case "meta":
				viewport = viewport || (attr(n, "name") == "viewport" && strings.Contains(attr(n, "content"), "width=device-width"))
			case "h1":
				h1++
			case "label":
				if v := attr(n, "for"); v != "" {
					labelFor[v] = true
				}
			case "input", "select", "textarea":
				if attr(n, "type") != "hidden" {
					controls = append(controls, n)
				}
			case "table":
				if strings.Contains(attr(n, "class"), "list") && !inScroll {
					problems = append(problems, "a table ("+attr(n, "id")+") outside a scroll region")
				}
			case "div":
				if strings.Contains(attr(n, "class"), "scroll") {
					if attr(n, "role") != "region" || attr(n, "tabindex") != "0" || attr(n, "aria-label") == "" {
						problems = append(problems, "a scroll region without role, tabindex or name")
					}
					inScroll = true
				}
			}
			for _, a := range n.Attr {
				if strings.HasPrefix(a.Key, "on") {
					problems = append(problems, "an inline event handler on <"+n.Data+">")
				}
			}
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c, inScroll)
		}
	}
	walk(doc, false)
	if !viewport {
		problems = append(problems, "no viewport meta")
	}
	if !lang {
		problems = append(problems, "no lang on <html>")
	}
	if h1 != 1 {
		problems = append(problems, "not exactly one h1")
	}
	for id, n := range ids {
		if n > 1 {
			problems = append(problems, "duplicate id "+id)
		}
	}
	for _, c := range controls {
		if attr(c, "aria-label") == "" && attr(c, "aria-labelledby") == "" && !labelFor[attr(c, "id")] {
			problems = append(problems, "an unlabelled <"+c.Data+" name="+attr(c, "name")+">")
		}
	}
	return problems
}

func attr(n *html.Node, key string) string {
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val
		}
	}
	return ""
}

// TestA11yProblemsFinds: the checker itself finds each problem.
func TestA11yProblemsFinds(t *testing.T) {
	good := `<!DOCTYPE html><html lang="en"><head><meta name="viewport" content="width=device-width, initial-scale=1"></head><body><h1>T</h1>%s</body></html>`
	for _, c := range []struct{ body, want string }{
		{`<input id="a" name="a">`, "unlabelled <input name=a>"},
		{`<label for="a">A</label><input id="a"><p id="a"></p>`, "duplicate id a"},
		{`<table class="list"></table>`, "outside a scroll region"},
		{`<div class="scroll"><table class="list"></table></div>`, "scroll region without"},
		{`<button onclick="x()">x</button>`, "inline event handler"},
		{`<h1>again</h1>`, "exactly one h1"},
	} {
		ps := a11yProblems(strings.Replace(good, "%s", c.body, 1))
		if !strings.Contains(strings.Join(ps, "\n"), c.want) {
			t.Errorf("%s: problems %q, want %q", c.body, ps, c.want)
		}
	}
	if ps := a11yProblems(strings.Replace(good, "%s", `<label for="a">A</label><input id="a"><div class="scroll" role="region" tabindex="0" aria-label="T"><table class="list"></table></div>`, 1)); len(ps) != 0 {
		t.Errorf("a good page: %q", ps)
	}
}
