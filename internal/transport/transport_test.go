package transport

import (
	"crypto/tls"
	"strings"
	"testing"
	"time"

	"postern.dev/postern/internal/address"
	"postern.dev/postern/internal/directory"
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
