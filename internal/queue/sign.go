package queue

import (
	"bytes"
	"crypto"
	"net/mail"
	"strings"

	"postern.dev/postern/internal/directory"
	"postern.dev/postern/internal/dkimkey"
)

// sign adds a DKIM signature when the From header's domain has an enabled
// DkimSigningConfig in the message's organization; otherwise, or if signing
// fails, the message goes unsigned, as Exchange sends it when a domain has
// no DKIM configuration.
func (q *Queue) sign(j *job, body []byte) []byte {
	domain := fromDomain(body)
	if domain == "" {
		return body
	}
	cfg := q.cfg.Directory.Load().DkimSigningConfig(domain)
	if cfg == nil || !cfg.Enabled || cfg.OrgID != j.msg.OrgID {
		return body
	}
	sealed := cfg.Selector1KeySealed
	if cfg.ActiveSelector == 2 {
		sealed = cfg.Selector2KeySealed
	}
	key, err := q.dkimKey(sealed)
	if err != nil {
		q.cfg.Log.Error("queue: DKIM key", "domain", domain, "err", err)
		return body
	}
	signed, err := dkimkey.SignMessage(body, cfg.Domain, directory.SelectorName(cfg.ActiveSelector), key)
	if err != nil {
		q.cfg.Log.Error("queue: DKIM signing", "domain", domain, "message", j.msg.MessageID, "err", err)
		return body
	}
	return signed
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

// fromDomain is the domain of the message's From address, lower case.
func fromDomain(body []byte) string {
	m, err := mail.ReadMessage(bytes.NewReader(body))
	if err != nil {
		return ""
	}
	list, err := m.Header.AddressList("From")
	if err != nil || len(list) == 0 {
		return ""
	}
	_, domain, _ := strings.Cut(list[0].Address, "@")
	return strings.ToLower(domain)
}
