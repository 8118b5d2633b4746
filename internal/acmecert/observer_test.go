package acmecert

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestDescribe(t *testing.T) {
	authz := `{"status":"invalid","identifier":{"type":"dns","value":"mail.contoso.com"},"challenges":[
	  {"type":"tls-alpn-01","status":"invalid","error":{"type":"urn:ietf:params:acme:error:connection","detail":"Connection refused","status":400}},
	  {"type":"http-01","status":"pending"}]}`
	for _, tc := range []struct {
		what, mediaType, body string
		want                  []string // each finding: message and attributes, joined
		minor                 bool
	}{
		{"failed authorization", "application/json", authz,
			[]string{"ACME challenge failed name mail.contoso.com challenge tls-alpn-01 problem urn:ietf:params:acme:error:connection detail Connection refused"}, false},
		{"valid authorization", "application/json", strings.Replace(authz, `"status":"invalid","identifier"`, `"status":"valid","identifier"`, 1), nil, false},
		{"pending", "application/json", `{"status":"pending","challenges":[]}`, nil, false},
		{"failed order", "application/json", `{"status":"invalid","identifiers":[{"value":"x"}],"error":{"type":"urn:ietf:params:acme:error:rejectedIdentifier","detail":"no"}}`,
			[]string{"ACME order failed name  challenge  problem urn:ietf:params:acme:error:rejectedIdentifier detail no"}, false},
		{"failed challenge", "application/json", `{"type":"http-01","status":"invalid","error":{"type":"urn:ietf:params:acme:error:unauthorized","detail":"bad token"}}`,
			[]string{"ACME challenge failed name  challenge http-01 problem urn:ietf:params:acme:error:unauthorized detail bad token"}, false},
		{"problem", "application/problem+json", `{"type":"urn:ietf:params:acme:error:rateLimited","detail":"too many certificates","status":429}`,
			[]string{"ACME CA refused a request problem urn:ietf:params:acme:error:rateLimited detail too many certificates status 429"}, false},
		{"stale nonce", "application/problem+json", `{"type":"urn:ietf:params:acme:error:badNonce","detail":"JWS has an invalid anti-replay nonce","status":400}`,
			[]string{"ACME CA refused a request problem urn:ietf:params:acme:error:badNonce detail JWS has an invalid anti-replay nonce status 400"}, true},
		{"empty problem", "application/problem+json", `{}`, nil, false},
		{"not JSON", "application/json", `<html>`, nil, false},
		{"directory", "application/json", `{"newNonce":"https://ca/nonce"}`, nil, false},
	} {
		got := describe(tc.mediaType, []byte(tc.body))
		var lines []string
		for _, f := range got {
			parts := []string{f.msg}
			for _, a := range f.attrs {
				parts = append(parts, fmt.Sprint(a))
			}
			lines = append(lines, strings.Join(parts, " "))
			if f.minor != tc.minor {
				t.Errorf("%s: minor = %v", tc.what, f.minor)
			}
		}
		if strings.Join(lines, "\n") != strings.Join(tc.want, "\n") {
			t.Errorf("%s:\n got %q\nwant %q", tc.what, lines, tc.want)
		}
	}
	long := `{"status":"invalid","challenges":[` + strings.Repeat(`{"type":"x","error":{"type":"t","detail":"`+strings.Repeat("d", 2000)+`"}},`, 20) + `{}]}`
	got := describe("application/json", []byte(long))
	if len(got) != maxFindings {
		t.Errorf("%d findings, want the cap %d", len(got), maxFindings)
	}
	for _, f := range got {
		for _, a := range f.attrs {
			if s, ok := a.(string); ok && len(s) > 600 {
				t.Errorf("an attribute of %d bytes", len(s))
			}
		}
	}
}

// FuzzDescribe: whatever a CA answers, describe returns a bounded list of
// bounded findings and never panics.
func FuzzDescribe(f *testing.F) {
	f.Add("application/json", `{"status":"invalid","identifier":{"value":"a.b"},"challenges":[{"type":"http-01","error":{"type":"t","detail":"d"}}],"error":{"type":"t"}}`)
	f.Add("application/problem+json", `{"type":"urn:ietf:params:acme:error:badNonce","detail":"x","status":400}`)
	f.Add("application/json", `{"status":"invalid","challenges":[null,{"error":null}]}`)
	f.Fuzz(func(t *testing.T, mediaType, body string) {
		got := describe(mediaType, []byte(body))
		if len(got) > maxFindings {
			t.Fatalf("%d findings", len(got))
		}
		for _, fd := range got {
			for _, a := range fd.attrs {
				if s, ok := a.(string); ok && len(s) > 520 {
					t.Fatalf("an attribute of %d bytes", len(s))
				}
			}
		}
	})
}

// TestObserverPassesThrough: the ACME client reads every answer
// unchanged, inspected or not, and a failure is logged once however often
// its object is fetched.
func TestObserverPassesThrough(t *testing.T) {
	big := `{"status":"invalid","x":"` + strings.Repeat("y", maxObserved) + `"}`
	invalid := `{"status":"invalid","identifier":{"value":"mail.contoso.com"},"challenges":[{"type":"tls-alpn-01","error":{"type":"urn:ietf:params:acme:error:connection","detail":"refused"}}]}`
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/big":
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, big)
		case "/authz":
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, invalid)
		case "/problem":
			w.Header().Set("Content-Type", "application/problem+json; charset=utf-8")
			w.WriteHeader(403)
			io.WriteString(w, `{"type":"urn:ietf:params:acme:error:unauthorized","detail":"no"}`)
		default:
			w.Header().Set("Content-Type", "application/pem-certificate-chain")
			io.WriteString(w, "-----BEGIN CERTIFICATE-----\n")
		}
	}))
	defer srv.Close()
	logs := &bytes.Buffer{}
	client := &http.Client{Transport: &observer{base: http.DefaultTransport, log: slog.New(slog.NewTextHandler(logs, nil))}}
	for _, tc := range []struct{ path, body string }{
		{"/big", big}, {"/authz", invalid}, {"/authz", invalid}, {"/problem", `{"type":"urn:ietf:params:acme:error:unauthorized","detail":"no"}`},
		{"/cert", "-----BEGIN CERTIFICATE-----\n"},
	} {
		resp, err := client.Get(srv.URL + tc.path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(b) != tc.body {
			t.Errorf("%s: the client read %d bytes, not the %d sent", tc.path, len(b), len(tc.body))
		}
	}
	log := logs.String()
	if n := strings.Count(log, `msg="ACME challenge failed" name=mail.contoso.com challenge=tls-alpn-01`); n != 1 {
		t.Errorf("the failed authorization logged %d times:\n%s", n, log)
	}
	if !strings.Contains(log, `msg="ACME CA refused a request" problem=urn:ietf:params:acme:error:unauthorized detail=no status=0`) {
		t.Errorf("the problem is not logged:\n%s", log)
	}
	if strings.Count(log, "\n") != 2 {
		t.Errorf("other answers logged:\n%s", log)
	}
}
