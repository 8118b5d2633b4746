package transport

import (
	"context"
	"crypto/tls"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"postern.dev/postern/internal/address"
	"postern.dev/postern/internal/directory"
	"postern.dev/postern/internal/policy"
	"postern.dev/postern/internal/reply"
	"postern.dev/postern/internal/store"
)

func TestFinishHeaders(t *testing.T) {
	s := &Submitter{Hostname: "mail.contoso.com"}
	now := time.Date(2026, 11, 22, 14, 0, 0, 0, time.UTC)
	from, _ := address.Parse("scanner@contoso.com")
	read := func(raw string) *Message {
		m, rep := ReadMessage(strings.NewReader(raw), 1<<20, t.TempDir())
		if rep != nil {
			t.Fatal(rep)
		}
		return m
	}
	tlsState := &tls.ConnectionState{Version: tls.VersionTLS13, CipherSuite: tls.TLS_AES_128_GCM_SHA256}

	body, id := s.finishHeaders(&Submission{
		AuthMailbox: &directory.Mailbox{}, From: from, ClientIP: "192.0.2.10", Helo: "copier(1);x", TLS: tlsState,
		Message: read("Subject: scan\r\n\r\nbody\r\n"),
	}, now)
	got := string(body) + "Subject: scan\r\n\r\nbody\r\n" // the head goes in front of the message
	for _, want := range []string{
		"Received: from copier1x ([192.0.2.10])\r\n\tby mail.contoso.com (Postern) with ESMTPSA\r\n\t(version=TLS 1.3 cipher=TLS_AES_128_GCM_SHA256);\r\n\tSun, 22 Nov 2026 14:00:00 +0000\r\n",
		"Message-ID: <" + id + ">\r\n",
		"Date: Sun, 22 Nov 2026 14:00:00 +0000\r\n",
		"From: <scanner@contoso.com>\r\n",
		"Subject: scan\r\n\r\nbody\r\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("message lacks %q:\n%s", want, got)
		}
	}
	if !strings.HasSuffix(id, "@mail.contoso.com") {
		t.Errorf("generated Message-ID %q", id)
	}

	// The client's own Message-ID, Date and From are kept, not duplicated;
	// an anonymous plain-text session is plain ESMTP.
	client := "From: scanner@contoso.com\r\nDate: Sat, 21 Nov 2026 10:00:00 +0000\r\nMessage-ID: <abc@device>\r\n\r\nx\r\n"
	body, id = s.finishHeaders(&Submission{
		From: from, ClientIP: "192.0.2.10", Helo: "printer",
		Message: read(client),
	}, now)
	got = string(body) + client
	if id != "abc@device" || strings.Count(got, "Message-ID:") != 1 || strings.Count(got, "Date:") != 1 || strings.Count(got, "From:") != 1 {
		t.Errorf("client headers must be kept once (id %q):\n%s", id, got)
	}
	if !strings.Contains(got, "with ESMTP;") {
		t.Errorf("plain anonymous session should say ESMTP:\n%s", got)
	}
}

// commitRecorder is a store that records what Submit commits, reading a
// BodyFile at once (as the store links it before Commit returns).
type commitRecorder struct {
	store.Store
	bodies []string
	files  []string
}

func (c *commitRecorder) Commit(_ context.Context, s *store.Submission) error {
	body := string(s.Body)
	if s.BodyFile != "" {
		b, err := os.ReadFile(s.BodyFile)
		if err != nil {
			return err
		}
		body += string(b)
	}
	c.bodies = append(c.bodies, body)
	c.files = append(c.files, s.BodyFile)
	return nil
}

// TestSubmitBodies: a small message is committed from memory, a spooled
// one as the added headers plus its spool file; either may be submitted
// twice (once per organization) and each commit gets the whole message.
func TestSubmitBodies(t *testing.T) {
	dir := t.TempDir()
	for _, tt := range []struct {
		name    string
		size    int
		spooled bool
	}{
		{"small, in memory", 1 << 10, false},
		{"at the threshold", SpoolThreshold, false},
		{"large, spooled", 3 << 20, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			raw := "From: a@contoso.com\r\nMessage-ID: <x@contoso.com>\r\nDate: Sat, 21 Nov 2026 10:00:00 +0000\r\n\r\n"
			raw += strings.Repeat("y", tt.size-len(raw)-2) + "\r\n"
			m, rep := ReadMessage(strings.NewReader(raw), 1<<30, dir)
			if rep != nil {
				t.Fatal(reply.String(rep))
			}
			defer m.Close()
			rec := &commitRecorder{}
			s := &Submitter{Store: rec, Hostname: "mail.contoso.com", Now: time.Now, Log: slog.New(slog.DiscardHandler)}
			from, _ := address.Parse("a@contoso.com")
			to, _ := address.Parse("b@fabrikam.example")
			for range 2 {
				got := s.Submit(context.Background(), &Submission{Org: &directory.Organization{ID: 1}, From: from, ClientIP: "192.0.2.1",
					Recipients: []Recipient{{Address: to, Route: policy.Route{Destination: policy.Outbound}}}, Message: m})
				if !strings.HasPrefix(reply.String(got), "250 ") {
					t.Fatal(reply.String(got))
				}
			}
			for i, body := range rec.bodies {
				if !strings.HasPrefix(body, "Received: ") || !strings.HasSuffix(body, raw) {
					t.Errorf("commit %d: body of %d octets is not Received + the message", i, len(body))
				}
				if (rec.files[i] != "") != tt.spooled {
					t.Errorf("commit %d: BodyFile %q, spooled %v", i, rec.files[i], tt.spooled)
				}
			}
		})
	}
}
