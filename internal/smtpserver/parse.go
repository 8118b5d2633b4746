package smtpserver

import (
	"errors"
	"strings"
)

var errPath = errors.New("malformed path")

// cutPrefixFold is strings.CutPrefix without regard to case.
func cutPrefixFold(s, prefix string) (string, bool) {
	if len(s) < len(prefix) || !strings.EqualFold(s[:len(prefix)], prefix) {
		return "", false
	}
	return s[len(prefix):], true
}

// parseReversePath reads MAIL's argument after "FROM:": the reverse-path
// (RFC 5321 section 4.1.2; "<>" is the null sender) and the parameters
// after it.
func parseReversePath(s string) (path, params string, err error) {
	if rest, ok := strings.CutPrefix(s, "<>"); ok {
		return "", rest, nil
	}
	return parsePath(s, false)
}

// parseForwardPath reads RCPT's argument after "TO:". "<Postmaster>"
// without a domain is a valid forward-path (RFC 5321 sections 4.1.1.3 and
// 4.5.1: every server must accept it).
func parseForwardPath(s string) (path, params string, err error) {
	return parsePath(s, true)
}

// parsePath reads a path: angle brackets (which devices sometimes leave
// out), an obsolete source route that is dropped (section 4.1.1.3 asks
// servers to accept and ignore it), and a mailbox whose quoted local part
// is unquoted; whether the address is acceptable is the session's
// business, not the protocol's.
func parsePath(s string, postmaster bool) (path, params string, err error) {
	bracket := strings.HasPrefix(s, "<")
	if bracket {
		s = s[1:]
	}
	if strings.HasPrefix(s, "@") {
		i := strings.IndexByte(s, ':')
		if i < 0 {
			return "", "", errPath
		}
		s = s[i+1:]
	}
	var b strings.Builder
	if strings.HasPrefix(s, `"`) {
		// quoted-string (section 4.1.2): backslash escapes one character.
		s = s[1:]
		for {
			if s == "" {
				return "", "", errPath
			}
			ch := s[0]
			s = s[1:]
			if ch == '"' {
				break
			}
			if ch == '\\' {
				if s == "" {
					return "", "", errPath
				}
				ch, s = s[0], s[1:]
			}
			b.WriteByte(ch)
		}
	} else {
		i := strings.IndexAny(s, "@()<>[]:;\\,\" \t")
		if i < 0 {
			i = len(s)
		}
		b.WriteString(s[:i])
		s = s[i:]
	}
	local := b.String()
	switch {
	case local == "":
		return "", "", errPath
	case strings.HasPrefix(s, "@"):
		i := strings.IndexAny(s, " \t>")
		if i < 0 {
			i = len(s)
		}
		if i == 1 {
			return "", "", errPath // no domain
		}
		b.WriteString(s[:i])
		s = s[i:]
	case postmaster && strings.EqualFold(local, "postmaster"):
	default:
		return "", "", errPath
	}
	if bracket {
		if !strings.HasPrefix(s, ">") {
			return "", "", errPath
		}
		s = s[1:]
	}
	return b.String(), s, nil
}

type param struct{ key, value string }

// parseParams reads esmtp-params (RFC 5321 section 4.1.2): keywords are
// case-insensitive, values are taken as they are.
func parseParams(s string) ([]param, error) {
	var out []param
	for _, f := range strings.Fields(s) {
		k, v, _ := strings.Cut(f, "=")
		if k == "" {
			return nil, errors.New("empty parameter keyword")
		}
		out = append(out, param{strings.ToUpper(k), v})
	}
	return out, nil
}

// validHelo tells whether the argument of EHLO or HELO can be a domain
// (RFC 5321 section 4.1.1.1) or an address literal. It is lenient, as
// devices send bare host names ("PRINTER01") that Exchange accepts, but
// refuses what no name can be: empty labels ("MacBook.."), spaces and
// control characters, as Exchange Online does with "501 5.5.4 Invalid
// domain name".
func validHelo(s string) bool {
	if strings.HasPrefix(s, "[") {
		if !strings.HasSuffix(s, "]") || len(s) <= 2 {
			return false
		}
		for i := 1; i < len(s)-1; i++ {
			if ch := s[i]; ch <= ' ' || ch >= 0x7f || ch == '[' || ch == ']' || ch == '\\' {
				return false
			}
		}
		return true
	}
	s = strings.TrimSuffix(s, ".") // an absolute name
	if s == "" || len(s) > 255 {
		return false
	}
	for label := range strings.SplitSeq(s, ".") {
		if label == "" {
			return false
		}
		for i := 0; i < len(label); i++ {
			ch := label[i]
			if !(ch >= 'a' && ch <= 'z' || ch >= 'A' && ch <= 'Z' || ch >= '0' && ch <= '9' || ch == '-' || ch == '_' || ch >= 0x80) {
				return false
			}
		}
	}
	return true
}
