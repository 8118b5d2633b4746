// Package senderauth checks who really sent anonymous mail: SPF (RFC 7208)
// for the envelope sender, DKIM (RFC 6376) signatures, and DMARC (RFC 7489)
// for the From: domain. It returns the Authentication-Results header
// (RFC 8601) and whether the message belongs in Junk Email.
//
// The protocol work is done by blitiri.com.ar/go/spf (the SPF checker
// chasquid and maddy use) and github.com/emersion/go-msgauth (DKIM
// verification, DMARC record parsing, header formatting); what they leave
// out — DMARC's organizational domain and alignment — is here.
package senderauth

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/mail"
	"net/netip"
	"net/textproto"
	"strings"
	"sync"
	"time"
	"unicode"

	"blitiri.com.ar/go/spf"
	"github.com/emersion/go-msgauth/authres"
	"github.com/emersion/go-msgauth/dkim"
	"github.com/emersion/go-msgauth/dmarc"
	"golang.org/x/net/publicsuffix"

	"postern.dev/postern/internal/address"
)

// Checker checks messages; its lookups all go through Resolver, and their
// answers are kept for a minute (dnscache.go).
type Checker struct {
	Resolver *net.Resolver
	// Hostname is the authserv-id of the Authentication-Results header.
	Hostname string
	// Timeout bounds a whole check (default 10 seconds); what has not been
	// answered by then is a temperror.
	Timeout time.Duration

	cacheOnce sync.Once
	cache     *dnsCache
}

// dns is the resolver the checks use: Resolver behind the cache.
func (c *Checker) dns() *dnsCache {
	c.cacheOnce.Do(func() {
		var r resolver = net.DefaultResolver
		if c.Resolver != nil {
			r = c.Resolver
		}
		c.cache = newDNSCache(r)
	})
	return c.cache
}

// Input is one anonymous message.
type Input struct {
	ClientIP netip.Addr
	Helo     string
	MailFrom string // "" for the null reverse-path
	// Message is read from its start for each check (DKIM verification
	// streams the body through its hashes; DMARC reads the header only),
	// so a spooled message is never loaded into memory.
	Message io.ReaderAt
	Size    int64
	// Header, when set, is the message's header section already parsed
	// (transport.Message.Header), so that the From: field is not parsed
	// again from the message's bytes.
	Header textproto.MIMEHeader
}

func (in Input) open() io.Reader { return io.NewSectionReader(in.Message, 0, in.Size) }

// Result is the outcome. Values are RFC 8601's: none, pass, fail,
// softfail, neutral, temperror, permerror.
type Result struct {
	SPF        string
	DKIM       []string // one per signature: "pass" or "fail" etc.
	DMARC      string
	Policy     dmarc.Policy // the From domain's policy, "" without a record
	FromDomain string
	// Junk: the message fails DMARC and the policy is quarantine or
	// reject; or the From domain has no DMARC record and SPF is a hard fail.
	// A temporary DNS failure never makes a message Junk.
	Junk bool
	// Header is the complete Authentication-Results line, CRLF-terminated.
	Header string
}

// Check runs SPF, DKIM and DMARC.
func (c *Checker) Check(ctx context.Context, in Input) *Result {
	timeout := c.Timeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	r := &Result{}
	spfRes, spfDomain := c.checkSPF(ctx, in)
	r.SPF = string(spfRes)

	dkimPass := c.checkDKIM(ctx, in, r)

	if in.Header != nil {
		r.FromDomain = domainOf(in.Header.Get("From"))
	} else {
		r.FromDomain = fromDomain(in.open())
	}
	r.DMARC = "none"
	if r.FromDomain == "" {
		// RFC 7489 section 6.6.1: without exactly one From domain DMARC
		// cannot be applied; such messages are refused earlier on the
		// submission path, and reported as permerror here.
		r.DMARC = "permerror"
	} else if rec, inherited, err := c.lookupDMARC(ctx, r.FromDomain); err != nil && dmarc.IsTempFail(err) {
		r.DMARC = "temperror"
	} else if rec != nil {
		r.Policy = rec.Policy
		if inherited && rec.SubdomainPolicy != "" {
			r.Policy = rec.SubdomainPolicy // sp= governs subdomains without a record
		}
		aligned := spfRes == spf.Pass && alignedDomains(spfDomain, r.FromDomain, rec.SPFAlignment)
		for _, d := range dkimPass {
			aligned = aligned || alignedDomains(d, r.FromDomain, rec.DKIMAlignment)
		}
		r.DMARC = "fail"
		if aligned {
			r.DMARC = "pass"
		}
		// pct is treated as 100: the whole policy applies to every message.
		r.Junk = r.DMARC == "fail" && (r.Policy == dmarc.PolicyQuarantine || r.Policy == dmarc.PolicyReject)
	}
	if r.DMARC == "none" && spfRes == spf.Fail {
		r.Junk = true
	}
	r.Header = c.header(r, in, spfDomain)
	return r
}

// checkSPF checks the envelope sender's domain, or the HELO name for the
// null reverse-path (RFC 7208 section 2.4).
func (c *Checker) checkSPF(ctx context.Context, in Input) (spf.Result, string) {
	sender := in.MailFrom
	if sender == "" {
		sender = "postmaster@" + in.Helo
	}
	_, domain, _ := strings.Cut(sender, "@")
	domain = validDomain(domain)
	if domain == "" {
		return spf.None, "" // nothing to look up, and nothing to report
	}
	// spf reports the verdict in the Result; err only explains it.
	res, _ := spf.CheckHostWithSender(net.IP(in.ClientIP.AsSlice()), in.Helo, sender,
		spf.WithResolver(c.dns()), spf.WithContext(ctx))
	return res, domain
}

// validDomain returns d normalised, or "" when it is not a domain name:
// what goes into the header must not be able to break it.
func validDomain(d string) string {
	n, err := address.NormalizeDomain(d)
	if err != nil {
		return ""
	}
	return n
}

// checkDKIM verifies every signature and returns the domains of the ones
// that pass.
func (c *Checker) checkDKIM(ctx context.Context, in Input, r *Result) []string {
	if !mayBeSigned(in.open()) {
		// go-msgauth reads the whole body even when no signature needs
		// its hash: a 1 MiB message would be read back for nothing.
		return nil
	}
	verifications, err := dkim.VerifyWithOptions(in.open(), &dkim.VerifyOptions{
		LookupTXT:        func(name string) ([]string, error) { return c.dns().LookupTXT(ctx, name) },
		MaxVerifications: 8,
	})
	if err != nil && !errors.Is(err, dkim.ErrTooManySignatures) {
		return nil
	}
	var pass []string
	for _, v := range verifications {
		switch {
		case v.Err == nil:
			r.DKIM = append(r.DKIM, "pass")
			pass = append(pass, strings.ToLower(v.Domain))
		case dkim.IsTempFail(v.Err):
			r.DKIM = append(r.DKIM, "temperror")
		case dkim.IsPermFail(v.Err):
			r.DKIM = append(r.DKIM, "permerror")
		default:
			r.DKIM = append(r.DKIM, "fail")
		}
	}
	return pass
}

// lookupDMARC finds the record for domain, falling back to its
// organizational domain (RFC 7489 section 6.6.3); inherited says the record
// came from there. No record is (nil, false, nil).
func (c *Checker) lookupDMARC(ctx context.Context, domain string) (rec *dmarc.Record, inherited bool, err error) {
	opts := &dmarc.LookupOptions{LookupTXT: func(name string) ([]string, error) { return c.dns().LookupTXT(ctx, name) }}
	rec, err = dmarc.LookupWithOptions(domain, opts)
	if errors.Is(err, dmarc.ErrNoPolicy) {
		if org := orgDomain(domain); org != domain {
			inherited = true
			rec, err = dmarc.LookupWithOptions(org, opts)
		}
	}
	if errors.Is(err, dmarc.ErrNoPolicy) {
		return nil, false, nil
	}
	return rec, inherited, err
}

// orgDomain is the organizational domain: the public suffix plus one label.
func orgDomain(domain string) string {
	if org, err := publicsuffix.EffectiveTLDPlusOne(domain); err == nil {
		return org
	}
	return domain
}

// alignedDomains applies RFC 7489 section 3.1: strict alignment wants the
// same domain, relaxed (the default) the same organizational domain.
func alignedDomains(authenticated, from string, mode dmarc.AlignmentMode) bool {
	if authenticated == "" {
		return false
	}
	if mode == dmarc.AlignmentStrict {
		return authenticated == from
	}
	return orgDomain(authenticated) == orgDomain(from)
}

// mayBeSigned reports whether the header section of msg may hold a
// DKIM-Signature field (RFC 6376 section 3.5): false only when the
// section ends, within maxHeaderRead, without any line starting (after
// any white space) with the field's name. A field is never missed: anything unusual says true and
// leaves the verdict to the verifier.
func mayBeSigned(msg io.Reader) bool {
	br := headerReaders.Get().(*bufio.Reader)
	br.Reset(io.LimitReader(msg, maxHeaderRead))
	defer func() {
		br.Reset(nil)
		headerReaders.Put(br)
	}()
	const dkimField = "dkim-signature"
	for {
		line, err := br.ReadSlice('\n')
		// go-msgauth trims a field name (strings.TrimSpace) and takes a
		// first line that starts with white space as a field of its own:
		// white space before the name is no proof of anything.
		name := bytes.TrimLeftFunc(line, unicode.IsSpace)
		if len(name) >= len(dkimField) && strings.EqualFold(string(name[:len(dkimField)]), dkimField) {
			return true
		}
		if err == bufio.ErrBufferFull {
			if len(name) < len(dkimField) {
				return true // a name may begin past the buffer
			}
			// A line longer than the buffer: skip the rest of it.
			for err == bufio.ErrBufferFull {
				_, err = br.ReadSlice('\n')
			}
		}
		if err != nil {
			return true // no end of the header section seen
		}
		if string(line) == "\r\n" || string(line) == "\n" {
			return false
		}
	}
}

// headerReaders are mayBeSigned's buffers, one per message in flight
// rather than one allocated per message.
var headerReaders = sync.Pool{New: func() any { return bufio.NewReader(nil) }}

// maxHeaderRead bounds the header section read for From: (the submission
// path accepts at most 1 MiB).
const maxHeaderRead = 2 << 20

// fromDomain returns the domain of the message's single From: address,
// reading only the header section.
func fromDomain(msg io.Reader) string {
	m, err := mail.ReadMessage(io.LimitReader(msg, maxHeaderRead))
	if err != nil {
		return ""
	}
	return domainOf(m.Header.Get("From"))
}

// domainOf returns the domain of the single address of a From: field.
func domainOf(field string) string {
	list, err := mail.ParseAddressList(field)
	if err != nil || len(list) != 1 {
		return ""
	}
	_, domain, _ := strings.Cut(list[0].Address, "@")
	return validDomain(domain)
}

func (c *Checker) header(r *Result, in Input, spfDomain string) string {
	results := []authres.Result{&authres.SPFResult{Value: authres.ResultValue(r.SPF), From: spfDomain}}
	if len(r.DKIM) == 0 {
		results = append(results, &authres.DKIMResult{Value: authres.ResultNone})
	}
	for _, v := range r.DKIM {
		results = append(results, &authres.DKIMResult{Value: authres.ResultValue(v)})
	}
	results = append(results, &authres.DMARCResult{Value: authres.ResultValue(r.DMARC), From: r.FromDomain})
	return "Authentication-Results: " + authres.Format(c.Hostname, results) + "\r\n"
}
