// Package imapbench measures an IMAP server from the outside, the same way
// for Postern and for a peer such as Dovecot, so that BENCHMARKS.md can
// compare the two as ratios from one run: it fills a mailbox with APPEND,
// times SELECT followed by a header FETCH of every message, times a
// full-text SEARCH, and holds many IDLE sessions open while the caller
// reads the server's memory.
package imapbench

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
)

// Config is one benchmark run.
type Config struct {
	Addr     string
	User     string
	Password string
	CAFile   string
	// Mode is fill, fetch, search or idle.
	Mode string
	// Messages is how many messages fill appends.
	Messages int
	// Size is each filled message's body size in bytes.
	Size int
	// Rounds is how many times fetch and search repeat; the median counts.
	Rounds int
	// Conns is how many IDLE sessions idle opens.
	Conns int
	// Hold is how long idle keeps its sessions open once all idle.
	Hold time.Duration
}

// RegisterFlags defines the benchmark's flags on fs.
func RegisterFlags(fs *flag.FlagSet) *Config {
	c := &Config{}
	fs.StringVar(&c.Addr, "addr", "127.0.0.1:993", "IMAP server address (implicit TLS)")
	fs.StringVar(&c.User, "user", "", "sign-in name")
	fs.StringVar(&c.Password, "password", "", "password")
	fs.StringVar(&c.CAFile, "cafile", "", "CA certificate to trust; empty for plain IMAP without TLS")
	fs.StringVar(&c.Mode, "mode", "fetch", "fill, fetch, search or idle")
	fs.IntVar(&c.Messages, "n", 10000, "messages to append (fill)")
	fs.IntVar(&c.Size, "size", 2048, "message body size in bytes (fill)")
	fs.IntVar(&c.Rounds, "rounds", 5, "repetitions (fetch, search); the median is reported")
	fs.IntVar(&c.Conns, "c", 1000, "IDLE sessions (idle)")
	fs.DurationVar(&c.Hold, "hold", 10*time.Second, "how long to hold the IDLE sessions open (idle)")
	return c
}

// Run runs one benchmark and writes its result lines to out.
func Run(ctx context.Context, c Config, out io.Writer) error {
	switch c.Mode {
	case "fill":
		return fill(c, out)
	case "fetch", "search":
		return timed(c, out)
	case "idle":
		return idle(ctx, c, out)
	}
	return fmt.Errorf("imapbench: unknown mode %q (fill, fetch, search or idle)", c.Mode)
}

func dial(c Config) (*imapclient.Client, error) {
	var cl *imapclient.Client
	var err error
	if c.CAFile == "" {
		cl, err = imapclient.DialInsecure(c.Addr, nil)
	} else {
		pem, rerr := os.ReadFile(c.CAFile)
		if rerr != nil {
			return nil, rerr
		}
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM(pem)
		cl, err = imapclient.DialTLS(c.Addr, &imapclient.Options{TLSConfig: &tls.Config{RootCAs: pool, ServerName: "localhost"}})
	}
	if err != nil {
		return nil, err
	}
	if err := cl.Login(c.User, c.Password).Wait(); err != nil {
		cl.Close()
		return nil, fmt.Errorf("LOGIN %s: %w", c.User, err)
	}
	return cl, nil
}

// message is the i-th filled message: a scanner's notice with a searchable
// word in its body every hundredth message.
func message(i, size int) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "From: scanner@contoso.com\r\nTo: bench@contoso.com\r\nSubject: Scan %d\r\nMessage-ID: <bench-%d@contoso.com>\r\nDate: Wed, 02 Dec 2026 18:00:00 +0000\r\n\r\n", i, i)
	line := "Scanned document attached as a link; no reply is needed for this notice.\r\n"
	if i%100 == 0 {
		line = "This one carries the word zanzibar for the full-text search benchmark.\r\n"
	}
	for b.Len() < size {
		b.WriteString(line)
	}
	return []byte(b.String())
}

func fill(c Config, out io.Writer) error {
	cl, err := dial(c)
	if err != nil {
		return err
	}
	defer cl.Close()
	start := time.Now()
	for i := 1; i <= c.Messages; i++ {
		msg := message(i, c.Size)
		cmd := cl.Append("INBOX", int64(len(msg)), nil)
		if _, err := cmd.Write(msg); err != nil {
			return err
		}
		if err := cmd.Close(); err != nil {
			return err
		}
		if _, err := cmd.Wait(); err != nil {
			return fmt.Errorf("APPEND %d: %w", i, err)
		}
	}
	fmt.Fprintf(out, "fill: %d messages appended in %v\n", c.Messages, time.Since(start).Round(time.Millisecond))
	return cl.Logout().Wait()
}

// timed runs SELECT + UID FETCH 1:* (FLAGS RFC822.SIZE BODY.PEEK[HEADER]),
// or UID SEARCH TEXT, Rounds times on one connection and reports the median.
func timed(c Config, out io.Writer) error {
	cl, err := dial(c)
	if err != nil {
		return err
	}
	defer cl.Close()
	var times []time.Duration
	var n int
	for r := 0; r < max(c.Rounds, 1); r++ {
		start := time.Now()
		sel, err := cl.Select("INBOX", &imap.SelectOptions{ReadOnly: true}).Wait()
		if err != nil {
			return fmt.Errorf("SELECT: %w", err)
		}
		if c.Mode == "fetch" {
			all := imap.UIDSet{imap.UIDRange{Start: 1, Stop: 0}}
			msgs, err := cl.Fetch(all, &imap.FetchOptions{UID: true, Flags: true, RFC822Size: true,
				BodySection: []*imap.FetchItemBodySection{{Specifier: imap.PartSpecifierHeader, Peek: true}}}).Collect()
			if err != nil {
				return fmt.Errorf("FETCH: %w", err)
			}
			n = len(msgs)
			if uint32(n) != sel.NumMessages {
				return fmt.Errorf("FETCH returned %d messages of %d", n, sel.NumMessages)
			}
		} else {
			data, err := cl.UIDSearch(&imap.SearchCriteria{Text: []string{"zanzibar"}}, nil).Wait()
			if err != nil {
				return fmt.Errorf("SEARCH: %w", err)
			}
			n = len(data.AllUIDs())
			if n == 0 {
				return errors.New("SEARCH TEXT zanzibar found nothing: was the mailbox filled?")
			}
		}
		times = append(times, time.Since(start))
		if err := cl.Unselect().Wait(); err != nil {
			return err
		}
	}
	slices.Sort(times)
	med := times[len(times)/2]
	fmt.Fprintf(out, "%s: %d messages, median %v of %d rounds (min %v, max %v)\n", c.Mode, n,
		med.Round(time.Microsecond), len(times), times[0].Round(time.Microsecond), times[len(times)-1].Round(time.Microsecond))
	return cl.Logout().Wait()
}

// idle opens Conns sessions that each SELECT INBOX and IDLE, reports when
// all are idling, holds them for Hold, and closes them.
func idle(ctx context.Context, c Config, out io.Writer) error {
	var mu sync.Mutex
	var clients []*imapclient.Client
	var idles []*imapclient.IdleCommand
	defer func() {
		for _, i := range idles {
			i.Close()
		}
		for _, cl := range clients {
			cl.Close()
		}
	}()
	start := time.Now()
	sem := make(chan struct{}, 32)
	errs := make(chan error, c.Conns)
	var wg sync.WaitGroup
	for i := 0; i < c.Conns; i++ {
		if i == 1 {
			// The first sign-in verifies the password; the others, from
			// the same address, then find it verified (a server that
			// bounds verifications per address would refuse a crowd).
			wg.Wait()
		}
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			cl, err := dial(c)
			if err != nil {
				errs <- err
				return
			}
			if _, err := cl.Select("INBOX", nil).Wait(); err != nil {
				cl.Close()
				errs <- err
				return
			}
			cmd, err := cl.Idle()
			mu.Lock()
			clients = append(clients, cl)
			if err == nil {
				idles = append(idles, cmd)
			}
			mu.Unlock()
			if err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		return fmt.Errorf("opening IDLE sessions: %w", err)
	}
	fmt.Fprintf(out, "idle: %d sessions idling after %v\n", len(idles), time.Since(start).Round(time.Millisecond))
	select {
	case <-time.After(c.Hold):
	case <-ctx.Done():
	}
	return nil
}
