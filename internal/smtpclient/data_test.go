package smtpclient

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"postern.dev/postern/internal/testsmtp"
)

// failingReader returns data, then an error: a body file that cannot be
// read to its end.
type failingReader struct{ r io.Reader }

func (f *failingReader) Read(p []byte) (int, error) {
	n, err := f.r.Read(p)
	if err == io.EOF {
		return n, errors.New("disk error")
	}
	return n, err
}

// TestDataFrom streams messages larger than one write block: dot-stuffing
// holds across block boundaries, and a message that cannot be read to its
// end is never completed (no final dot), so no truncated copy is delivered.
func TestDataFrom(t *testing.T) {
	srv, err := testsmtp.Start(testsmtp.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	// Lines of 100 octets, many starting with a dot, over several 64 KiB blocks.
	var msg bytes.Buffer
	msg.WriteString("Subject: dots\r\n\r\n")
	for i := range 3000 {
		if i%3 == 0 {
			msg.WriteString(".")
		}
		msg.WriteString(strings.Repeat("x", 97) + "\r\n")
	}
	tests := []struct {
		name   string
		body   io.Reader
		wantOK bool
	}{
		{"streamed whole", bytes.NewReader(msg.Bytes()), true},
		{"read error midway", &failingReader{bytes.NewReader(msg.Bytes()[:200000])}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := len(srv.Messages())
			c, err := Dial(context.Background(), &net.Dialer{}, srv.Addr, "mx.test", Timeouts{Command: 10 * time.Second, DataLine: 10 * time.Second, DataEnd: 10 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if err := c.Hello("postern.test"); err != nil {
				t.Fatal(err)
			}
			if err := c.Mail("a@contoso.com", MailOptions{}); err != nil {
				t.Fatal(err)
			}
			if err := c.Rcpt("b@fabrikam.example"); err != nil {
				t.Fatal(err)
			}
			_, err = c.DataFrom(tt.body)
			if (err == nil) != tt.wantOK {
				t.Fatalf("DataFrom: %v", err)
			}
			if !tt.wantOK {
				// The connection was closed without the final dot: the
				// receiver cannot take the part it got as a message.
				if err := c.Reset(); err == nil {
					t.Error("the connection is still open after a failed DataFrom")
				}
				return
			}
			msgs, err := srv.WaitMessages(before+1, 10*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			if got := msgs[before].Data; !bytes.Equal(got, msg.Bytes()) {
				t.Errorf("received %d octets, sent %d (equal: %v)", len(got), msg.Len(), bytes.Equal(got, msg.Bytes()))
			}
		})
	}
}
