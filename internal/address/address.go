// Package address parses and normalises the mailbox addresses that appear in
// SMTP envelopes (RFC 5321 section 4.1.2) and in admin input.
//
// Postern compares addresses case-insensitively, as Exchange does: the
// canonical form of an address is lower case. Only the forms a submission
// server has to accept are accepted; source routes, bang paths, percent hacks
// and quoted local parts that hide an '@' are refused here so that no later
// stage can be tricked into relaying (the relay tests of issue 3 rely on it).
package address

import (
	"errors"
	"strings"
	"unicode/utf8"

	"golang.org/x/net/idna"
)

// Address is a parsed mailbox address. Local and Domain keep the case the
// client used; Key() is the canonical lower-case form used for lookups.
type Address struct {
	Local  string
	Domain string
}

// Limits from RFC 5321 section 4.5.3.1.
const (
	maxLocal  = 64
	maxDomain = 255
	maxPath   = 256
)

var (
	ErrEmpty      = errors.New("address is empty")
	ErrTooLong    = errors.New("address is too long")
	ErrNoAt       = errors.New("address has no '@'")
	ErrLocalPart  = errors.New("address has an invalid local part")
	ErrDomain     = errors.New("address has an invalid domain")
	ErrRouting    = errors.New("address uses source routing, which is not accepted")
	ErrNotUTF8    = errors.New("address is not valid UTF-8")
	ErrIPLiteral  = errors.New("address literals ([1.2.3.4]) are not accepted")
	ErrControl    = errors.New("address contains control characters")
	ErrQuotedPart = errors.New("quoted local parts are not accepted")
)

// Parse parses an address without angle brackets, such as go-smtp passes to
// the session for MAIL FROM and RCPT TO, or an admin types. Internationalised
// addresses (RFC 6531) are accepted as UTF-8.
func Parse(s string) (Address, error) {
	if s == "" {
		return Address{}, ErrEmpty
	}
	if len(s) > maxPath {
		return Address{}, ErrTooLong
	}
	if !utf8.ValidString(s) {
		return Address{}, ErrNotUTF8
	}
	for _, c := range s {
		if c < 0x20 || c == 0x7f {
			return Address{}, ErrControl
		}
	}
	// "@a,@b:user@c" (RFC 5321 section 4.1.2 A-d-l): obsolete source routes,
	// which relays must ignore but an anonymous client could use to sneak an
	// outside destination past a naive domain check.
	if strings.HasPrefix(s, "@") || strings.ContainsAny(s, ":,") {
		return Address{}, ErrRouting
	}
	if strings.HasPrefix(s, `"`) {
		return Address{}, ErrQuotedPart
	}
	at := strings.LastIndexByte(s, '@')
	if at < 0 {
		return Address{}, ErrNoAt
	}
	local, domain := s[:at], s[at+1:]
	if err := checkLocal(local); err != nil {
		return Address{}, err
	}
	domain, err := normalizeDomain(domain)
	if err != nil {
		return Address{}, err
	}
	return Address{Local: local, Domain: domain}, nil
}

// checkLocal accepts RFC 5321 Dot-string local parts (atoms of atext joined by
// single dots) plus UTF-8. '%' and '!' are atext but are the percent hack and
// bang path of old relays: no mailbox Postern hosts needs them, so they are
// refused rather than risk another hop interpreting them.
func checkLocal(local string) error {
	if local == "" || len(local) > maxLocal {
		return ErrLocalPart
	}
	if local[0] == '.' || local[len(local)-1] == '.' || strings.Contains(local, "..") {
		return ErrLocalPart
	}
	for _, c := range local {
		if c == '%' || c == '!' {
			return ErrRouting
		}
		if c >= 0x80 {
			continue
		}
		if !isAtext(byte(c)) && c != '.' {
			return ErrLocalPart
		}
	}
	return nil
}

func isAtext(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-/=?^_`{|}~", c) >= 0
}

// normalizeDomain checks an RFC 5321 Domain (dot-separated labels of letters,
// digits and hyphens, or UTF-8 U-labels), drops one trailing root dot and
// returns it in lower case. A domain with U-labels (RFC 6531 section 3.3)
// is converted to its A-label form with IDNA 2008's lookup rules (RFC 5891
// section 5), so that münchen.example and xn--mnchen-3ya.example are one
// domain for routing, accepted domains and lookups.
func normalizeDomain(d string) (string, error) {
	if strings.HasPrefix(d, "[") {
		return "", ErrIPLiteral
	}
	d = strings.TrimSuffix(d, ".")
	if d == "" || len(d) > maxDomain {
		return "", ErrDomain
	}
	if !isASCII(d) {
		a, err := idna.Lookup.ToASCII(d)
		if err != nil {
			return "", ErrDomain
		}
		d = strings.TrimSuffix(a, ".")
		if d == "" || len(d) > maxDomain {
			return "", ErrDomain
		}
	}
	for label := range strings.SplitSeq(d, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return "", ErrDomain
		}
		for _, c := range label {
			if c == '-' || ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z') || ('0' <= c && c <= '9') {
				continue
			}
			return "", ErrDomain
		}
	}
	return strings.ToLower(d), nil
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// NormalizeDomain validates a domain name typed by an admin or found in a
// message and returns its canonical lower-case form.
func NormalizeDomain(d string) (string, error) { return normalizeDomain(d) }

// String returns the address as parsed, local@domain.
func (a Address) String() string { return a.Local + "@" + a.Domain }

// Key is the canonical form used to look addresses up: all lower case.
func (a Address) Key() string { return strings.ToLower(a.Local) + "@" + a.Domain }

// IsZero reports whether a is the null reverse-path "<>".
func (a Address) IsZero() bool { return a.Local == "" && a.Domain == "" }

// Canonical parses s and returns its Key, for admin input.
func Canonical(s string) (string, error) {
	a, err := Parse(strings.TrimSpace(s))
	if err != nil {
		return "", err
	}
	return a.Key(), nil
}
