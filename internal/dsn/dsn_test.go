package dsn

import (
	"bytes"
	"io"
	"mime"
	"mime/multipart"
	"net/mail"
	"strings"
	"testing"
	"time"
)

var original = []byte("From: sean@contoso.com\r\nTo: a@fabrikam.com\r\nSubject: scan\r\nMessage-ID: <orig@contoso.com>\r\n\r\nbody line\r\n")

func report(action Action, status, diag string) Report {
	when := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	return Report{ReportingMTA: "mail.contoso.com", From: "postmaster@contoso.com", To: "sean@contoso.com", Date: when,
		MessageID: "ndr1@mail.contoso.com", ArrivalDate: when.Add(-time.Hour), OriginalMessageID: "orig@contoso.com",
		OriginalSubject: "scan", Original: original, ReturnContent: action == Failed,
		Recipients: []Recipient{{Address: "a@fabrikam.com", Action: action, Status: status, RemoteMTA: "mx.fabrikam.com",
			Diagnostic: diag, LastAttempt: when, WillRetryUntil: when.Add(48 * time.Hour)}}}
}

// parse checks the structure RFC 6522 requires and returns the header and
// the three parts (content type, body).
func parse(t *testing.T, msg []byte) (mail.Header, [][2]string) {
	t.Helper()
	m, err := mail.ReadMessage(bytes.NewReader(msg))
	if err != nil {
		t.Fatalf("not a message: %v\n%s", err, msg)
	}
	mt, params, err := mime.ParseMediaType(m.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/report" || params["report-type"] != "delivery-status" {
		t.Fatalf("Content-Type %q: %v", m.Header.Get("Content-Type"), err)
	}
	mr := multipart.NewReader(m.Body, params["boundary"])
	var parts [][2]string
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(p)
		parts = append(parts, [2]string{p.Header.Get("Content-Type"), string(b)})
	}
	if len(parts) != 3 {
		t.Fatalf("%d parts, want 3", len(parts))
	}
	return m.Header, parts
}

// fields parses the delivery-status part's blocks into name → value maps.
func fields(status string) []map[string]string {
	var out []map[string]string
	for _, block := range strings.Split(strings.ReplaceAll(status, "\r\n ", " "), "\r\n\r\n") {
		f := map[string]string{}
		for _, line := range strings.Split(block, "\r\n") {
			if k, v, ok := strings.Cut(line, ": "); ok {
				f[k] = v
			}
		}
		if len(f) > 0 {
			out = append(out, f)
		}
	}
	return out
}

func TestBuild(t *testing.T) {
	for _, tt := range []struct {
		name            string
		r               Report
		subject, part3  string
		recipientFields map[string]string
		human           string
	}{
		{"failure", report(Failed, "5.1.1", "550 5.1.1 user unknown"), "Undeliverable: scan", "message/rfc822",
			map[string]string{"Final-Recipient": "rfc822; a@fabrikam.com", "Action": "failed", "Status": "5.1.1",
				"Remote-MTA": "dns; mx.fabrikam.com", "Diagnostic-Code": "smtp; 550 5.1.1 user unknown"},
			"Remote server returned '550 5.1.1 user unknown'"},
		{"delay", report(Delayed, "4.4.1", "451 4.4.1 try later"), "Delivery delayed: scan", "text/rfc822-headers",
			map[string]string{"Action": "delayed", "Status": "4.4.1", "Will-Retry-Until": "Tue, 24 Nov 2026 10:00:00 +0000"},
			"You don't need to resend your message."},
	} {
		t.Run(tt.name, func(t *testing.T) {
			msg, err := Build(tt.r)
			if err != nil {
				t.Fatal(err)
			}
			h, parts := parse(t, msg)
			if h.Get("Subject") != tt.subject || h.Get("Auto-Submitted") != "auto-replied" || h.Get("In-Reply-To") != "<orig@contoso.com>" {
				t.Errorf("header: %v", h)
			}
			if !strings.HasPrefix(parts[0][0], "text/plain") || !strings.Contains(parts[0][1], tt.human) {
				t.Errorf("human part %q:\n%s", parts[0][0], parts[0][1])
			}
			if parts[1][0] != "message/delivery-status" {
				t.Errorf("part 2 is %q", parts[1][0])
			}
			blocks := fields(parts[1][1])
			if len(blocks) != 2 || blocks[0]["Reporting-MTA"] != "dns; mail.contoso.com" || blocks[0]["Arrival-Date"] == "" {
				t.Fatalf("per-message fields: %v", blocks)
			}
			for k, v := range tt.recipientFields {
				if blocks[1][k] != v {
					t.Errorf("%s = %q, want %q", k, blocks[1][k], v)
				}
			}
			if parts[2][0] != tt.part3 || !strings.Contains(parts[2][1], "Message-ID: <orig@contoso.com>") {
				t.Errorf("part 3 %q:\n%s", parts[2][0], parts[2][1])
			}
			if strings.Contains(parts[2][1], "body line") != (tt.part3 == "message/rfc822") {
				t.Errorf("part 3 body presence wrong")
			}
		})
	}
}

func TestReturnCap(t *testing.T) {
	r := report(Failed, "5.1.1", "")
	r.MaxReturn = 10
	msg, err := Build(r)
	if err != nil {
		t.Fatal(err)
	}
	if _, parts := parse(t, msg); parts[2][0] != "text/rfc822-headers" {
		t.Errorf("a message over MaxReturn was returned whole")
	}
}

// TestTruncatedOriginal: a caller streaming a large original passes only
// its first MaxReturn+1 octets; the report returns the header section
// found in them, never the cut-off body.
func TestTruncatedOriginal(t *testing.T) {
	big := append([]byte("From: sean@contoso.com\r\nSubject: scan\r\n\r\n"), bytes.Repeat([]byte("scanned page data\r\n"), 1000)...)
	for _, tt := range []struct {
		name      string
		original  []byte
		wantType  string
		wantWhole bool
	}{
		{"fits", big[:100], "message/rfc822", true},
		{"exactly MaxReturn", big[:200], "message/rfc822", true},
		{"cut at MaxReturn+1", big[:201], "text/rfc822-headers", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := report(Failed, "5.1.1", "")
			r.MaxReturn, r.Original = 200, tt.original
			msg, err := Build(r)
			if err != nil {
				t.Fatal(err)
			}
			_, parts := parse(t, msg)
			if parts[2][0] != tt.wantType {
				t.Fatalf("returned as %s, want %s", parts[2][0], tt.wantType)
			}
			if got := strings.Contains(parts[2][1], "scanned page data"); got != tt.wantWhole {
				t.Errorf("body returned: %v, want %v", got, tt.wantWhole)
			}
		})
	}
}

func TestHostileInputStaysInItsField(t *testing.T) {
	evil := "550 nope\r\nBcc: evil@example.com\r\n\r\n--=_dsn_x\r\nContent-Type: text/html\r\n\r\n<script>"
	r := report(Failed, "5.0.0", evil)
	r.OriginalSubject = "hi\r\nBcc: evil@example.com"
	r.Recipients[0].RemoteMTA = "mx\r\nX-Injected: 1"
	msg, err := Build(r)
	if err != nil {
		t.Fatal(err)
	}
	h, parts := parse(t, msg)
	for _, line := range strings.Split(string(msg), "\r\n") {
		if strings.HasPrefix(line, "Bcc:") || strings.HasPrefix(line, "X-Injected:") {
			t.Errorf("injected line %q", line)
		}
	}
	if h.Get("Bcc") != "" || len(parts) != 3 {
		t.Errorf("structure changed: %v, %d parts", h, len(parts))
	}
}

func TestBoundaryAvoidsContent(t *testing.T) {
	r := report(Failed, "5.1.1", "")
	first := pickBoundary(r.MessageID, nil)
	r.Original = append([]byte("X-Trap: "+first+"\r\n"), original...)
	msg, err := Build(r)
	if err != nil {
		t.Fatal(err)
	}
	parse(t, msg)
	if bytes.Contains(msg, []byte("boundary=\""+first+"\"")) {
		t.Error("the boundary occurs in the returned content")
	}
}

func TestBuildErrors(t *testing.T) {
	mixed := report(Failed, "5.1.1", "")
	mixed.Recipients = append(mixed.Recipients, Recipient{Address: "b@x", Action: Delayed, Status: "4.4.1"})
	noTo := report(Failed, "5.1.1", "")
	noTo.To = ""
	none := report(Failed, "5.1.1", "")
	none.Recipients = nil
	for name, r := range map[string]Report{
		"mixed actions": mixed, "no To": noTo, "no recipients": none,
		"bad status": report(Failed, "5.1", ""), "class 3": report(Failed, "3.1.1", ""), "letters": report(Failed, "5.a.1", ""),
		"bad action": {ReportingMTA: "m", From: "f", To: "t", Recipients: []Recipient{{Address: "a", Action: "relayed", Status: "2.0.0"}}},
	} {
		if _, err := Build(r); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func FuzzBuild(f *testing.F) {
	f.Add("550 5.1.1 user unknown", original, "scan")
	f.Add("\r\n--x\r\n", []byte("no header break"), "\xff\xfe")
	f.Fuzz(func(t *testing.T, diag string, orig []byte, subject string) {
		r := report(Failed, "5.1.1", diag)
		r.Original, r.OriginalSubject = orig, subject
		msg, err := Build(r)
		if err != nil {
			return
		}
		m, err := mail.ReadMessage(bytes.NewReader(msg))
		if err != nil {
			t.Fatalf("unparseable: %v", err)
		}
		_, params, err := mime.ParseMediaType(m.Header.Get("Content-Type"))
		if err != nil {
			t.Fatal(err)
		}
		mr := multipart.NewReader(m.Body, params["boundary"])
		n := 0
		for {
			_, err := mr.NextPart()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("part %d: %v", n, err)
			}
			n++
		}
		if n != 3 {
			t.Fatalf("%d parts", n)
		}
	})
}
