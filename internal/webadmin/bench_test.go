package webadmin

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	"postern.dev/postern/internal/directory"
)

// BenchmarkActiveUsers measures the server's time to render a page of
// Users > Active users over 10,000 mailboxes (the target: under
// 50 ms a page), without TLS or network: a page in the middle, a search
// that matches one user, and the user's Manage email apps page.
func BenchmarkActiveUsers(b *testing.B) {
	f := newFixture(b)
	c := f.svc.Dir.Load().Contents()
	org := f.svc.Dir.Load().MailboxByAddress("sean@contoso.com").OrgID
	for i := range 10000 {
		name := fmt.Sprintf("user%05d", i)
		c.Mailboxes = append(c.Mailboxes, &directory.Mailbox{ID: int64(1_000_000 + i), OrgID: org, GUID: fmt.Sprintf("00000000-0000-4000-8000-%012d", i),
			Name: name, DisplayName: fmt.Sprintf("User %05d", i), PrimarySmtpAddress: name + "@contoso.com", UserPrincipalName: name + "@contoso.com",
			Type: directory.UserMailbox})
	}
	f.svc.Dir.Store(directory.NewSnapshot(c))
	// A signed-in session's cookie, taken from a real sign-in.
	br := f.browser()
	br.signIn("sean@contoso.com", pw)
	u, _ := http.NewRequest("GET", f.srv.URL+"/", nil)
	cookies := br.c.Jar.Cookies(u.URL)
	for _, tt := range []struct{ name, path string }{
		{"page 50 of 101", "/admin/users?page=50"},
		{"search one user", "/admin/users?q=user09999"},
		{"manage email apps", "/admin/users/00000000-0000-4000-8000-000000004242/email-apps"},
	} {
		b.Run(tt.name, func(b *testing.B) {
			for b.Loop() {
				req := httptest.NewRequest("GET", tt.path, nil)
				for _, c := range cookies {
					req.AddCookie(c)
				}
				w := httptest.NewRecorder()
				f.h.ServeHTTP(w, req)
				if w.Code != http.StatusOK {
					b.Fatalf("%s: %d\n%s", tt.path, w.Code, w.Body.String())
				}
			}
		})
	}
}
