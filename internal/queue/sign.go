package queue

import (
	"context"
	"crypto"
	"io"
	"net/mail"
	"strings"

	"github.com/emersion/go-msgauth/dkim"

	"postern.dev/postern/internal/directory"
	"postern.dev/postern/internal/dkimkey"
)

// prepared is what delivery needs to know about a message before it
// sends it: the DKIM-Signature field to put in front (or ""), whether the
// message has 8-bit octets (BODY=8BITMIME, RFC 6152), and its size.
type prepared struct {
	signature string
	eightBit  bool
	size      int64
}

// prepare reads the stored message once, streaming (DKIM signing is a
// hash over the whole message, RFC 6376 section 3.7, so the signature is
// known only at its end; the message is then read a second time to send
// it, with the signature in front). Memory stays O(1) in the message size.
func (q *Queue) prepare(ctx context.Context, j *job) (*prepared, error) {
	domain, err := q.fromDomain(ctx, j.msg.Message)
	if err != nil {
		return nil, err
	}
	var signer *dkim.Signer
	var cfg *directory.DkimSigningConfig
	if domain != "" {
		if c := q.cfg.Directory.Load().DkimSigningConfig(domain); c != nil && c.Enabled && c.OrgID == j.msg.OrgID {
			cfg = c
		}
	}
	if cfg != nil {
		sealed := cfg.Selector1KeySealed
		if cfg.ActiveSelector == 2 {
			sealed = cfg.Selector2KeySealed
		}
		if key, err := q.dkimKey(sealed); err != nil {
			q.cfg.Log.Error("queue: DKIM key", "domain", domain, "err", err)
		} else if signer, err = dkimkey.NewSigner(cfg.Domain, directory.SelectorName(cfg.ActiveSelector), key); err != nil {
			q.cfg.Log.Error("queue: DKIM signing", "domain", domain, "message", j.msg.MessageID, "err", err)
			signer = nil
		}
	}
	body, err := q.cfg.Store.MessageBody(ctx, j.msg.Message)
	if err != nil {
		if signer != nil {
			signer.Close()
		}
		return nil, err
	}
	defer body.Close()
	p := &prepared{}
	scan := &eightBitWriter{}
	var w io.Writer = scan
	if signer != nil {
		w = io.MultiWriter(scan, signer)
	}
	p.size, err = io.Copy(w, body)
	if err != nil {
		if signer != nil {
			signer.Close()
		}
		return nil, err
	}
	p.eightBit = scan.eightBit
	if signer != nil {
		// Without a signature the message goes unsigned, as Exchange sends
		// it when a domain has no DKIM configuration.
		if err := signer.Close(); err != nil {
			q.cfg.Log.Error("queue: DKIM signing", "domain", domain, "message", j.msg.MessageID, "err", err)
		} else {
			p.signature = signer.Signature()
			p.size += int64(len(p.signature))
		}
	}
	return p, nil
}

// eightBitWriter notes whether anything written has the high bit set.
type eightBitWriter struct{ eightBit bool }

func (w *eightBitWriter) Write(p []byte) (int, error) {
	if !w.eightBit {
		for _, c := range p {
			if c >= 0x80 {
				w.eightBit = true
				break
			}
		}
	}
	return len(p), nil
}

// dkimKey opens and parses a sealed key once, then serves it from memory.
func (q *Queue) dkimKey(sealed string) (crypto.Signer, error) {
	if k, ok := q.keys.Load(sealed); ok {
		return k.(crypto.Signer), nil
	}
	pemText, err := q.cfg.Secrets.Open(sealed)
	if err != nil {
		return nil, err
	}
	k, err := dkimkey.Parse(pemText)
	if err != nil {
		return nil, err
	}
	q.keys.Store(sealed, k)
	return k, nil
}

// maxHeaderRead bounds how much of a stored message is read to find its
// From field: the header section Postern accepted is at most 1 MiB, plus
// the fields it added.
const maxHeaderRead = 2 << 20

// fromDomain is the domain of the stored message's From address, lower
// case; only the header section is read.
func (q *Queue) fromDomain(ctx context.Context, message int64) (string, error) {
	body, err := q.cfg.Store.MessageBody(ctx, message)
	if err != nil {
		return "", err
	}
	defer body.Close()
	m, err := mail.ReadMessage(io.LimitReader(body, maxHeaderRead))
	if err != nil {
		return "", nil
	}
	list, err := m.Header.AddressList("From")
	if err != nil || len(list) == 0 {
		return "", nil
	}
	_, domain, _ := strings.Cut(list[0].Address, "@")
	return strings.ToLower(domain), nil
}
