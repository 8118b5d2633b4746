package admin

import (
	"context"
	"strings"
	"testing"

	"postern.dev/postern/internal/policy"
)

// TestSubmissionListsEveryStep: Test-SmtpSubmission shows every step of
// the server's decision chain for its path, in the chain's order, each
// with its stage, so that a step added to the chain is diagnosed by
// construction; the verdict is the first refusal's exact reply.
func TestSubmissionListsEveryStep(t *testing.T) {
	ctx := context.Background()
	svc := testService(t, openStore(t))
	if _, err := svc.NewAcceptedDomain(ctx, "contoso.com", "contoso.com", "Authoritative"); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.NewMailbox(ctx, NewMailboxParams{Name: "sean", PrimarySmtpAddress: "sean@contoso.com", Password: "Sean-Pass-1"}); err != nil {
		t.Fatal(err)
	}
	off := false
	if err := svc.SetCASMailbox(ctx, "sean@contoso.com", &off); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name    string
		test    SubmissionTest
		path    policy.Path
		verdict string
		failed  []string // the checks that fail, in order
	}{
		{"authenticated, accepted", SubmissionTest{Identity: "sean@contoso.com", Port: 587, UseTls: true, From: "sean@contoso.com", Recipient: "bob@example.net"},
			policy.Authenticated, acceptedVerdict, nil},
		{"authenticated, every refusal shown", SubmissionTest{Identity: "sean@contoso.com", Port: 587, UseTls: true, From: "kim@contoso.com", Recipient: "nobody@contoso.com"},
			policy.Authenticated, "550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient nobody@contoso.com not found by SMTP address lookup", []string{"Recipient", "Send As"}},
		{"anonymous Direct Send", SubmissionTest{Identity: "scanner@contoso.com", Port: 25, ClientIP: "127.0.0.5", Recipient: "sean@contoso.com"},
			policy.Anonymous, acceptedVerdict, nil},
		{"anonymous relay without a connector", SubmissionTest{Identity: "scanner@contoso.com", Port: 25, ClientIP: "127.0.0.5", Recipient: "bob@example.net"},
			policy.Anonymous, "550 5.7.64 TenantAttribution; Relay Access Denied", []string{"Recipient"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			checks, verdict, err := svc.TestSubmission(tt.test)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(verdict, tt.verdict) {
				t.Errorf("verdict %q, want %q", verdict, tt.verdict)
			}
			var got, want, failed []string
			for _, c := range checks {
				if c.Stage != "" {
					got = append(got, c.Stage+" "+c.Check)
				}
				if c.Result == "Fail" {
					failed = append(failed, c.Check)
					if !strings.Contains(c.Detail, "Refused with ") && !strings.Contains(c.Detail, "refused at end of DATA with ") {
						t.Errorf("%s fails without the reply: %s", c.Check, c.Detail)
					}
				}
			}
			for _, st := range policy.Chain() {
				if st.Path&tt.path != 0 {
					want = append(want, st.Stage.String()+" "+st.Check)
				}
			}
			if strings.Join(got, "; ") != strings.Join(want, "; ") {
				t.Errorf("steps shown:\n%s\nwant the chain's:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
			if strings.Join(failed, ",") != strings.Join(tt.failed, ",") {
				t.Errorf("failed checks %v, want %v", failed, tt.failed)
			}
			if t.Failed() {
				for _, c := range checks {
					t.Logf("%-22s %-5s %-13s %s", c.Check, c.Stage, c.Result, c.Detail)
				}
			}
		})
	}
}
