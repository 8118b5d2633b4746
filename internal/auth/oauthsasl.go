package auth

import (
	"bytes"
	"errors"
	"strings"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// TokenFunc checks a bearer token presented for a user (the user may be
// empty when OAUTHBEARER names none). Its error is a *smtp.SMTPError.
type TokenFunc func(user, token string) error

// errorChallenge is what Microsoft and Google send after a refused token
// (XOAUTH2), and RFC 7628 §3.2.2's error response (OAUTHBEARER): the client
// answers it (with an empty line, or ^A) and then gets the 535.
var (
	xoauth2Challenge     = []byte(`{"status":"401","schemes":"bearer","scope":"https://outlook.office.com/SMTP.Send"}`)
	oauthBearerChallenge = []byte(`{"status":"invalid_token","schemes":"bearer","scope":"https://outlook.office.com/SMTP.Send"}`)
)

// NewXOAuth2Server returns an XOAUTH2 server, Microsoft's and Google's
// mechanism (reference §8.3): "user=U^Aauth=Bearer T^A^A", as an initial
// response or after an empty challenge.
func NewXOAuth2Server(check TokenFunc) sasl.Server {
	return &tokenServer{check: check, parse: ParseXOAuth2, challenge: xoauth2Challenge}
}

// NewOAuthBearerServer returns an OAUTHBEARER server (RFC 7628).
func NewOAuthBearerServer(check TokenFunc) sasl.Server {
	return &tokenServer{check: check, parse: ParseOAuthBearer, challenge: oauthBearerChallenge}
}

type tokenServer struct {
	check     TokenFunc
	parse     func([]byte) (user, token string, ok bool)
	challenge []byte
	step      int
	failed    error
}

func (s *tokenServer) Next(response []byte) ([]byte, bool, error) {
	s.step++
	switch {
	case s.failed != nil:
		// The client's answer to the error challenge (RFC 7628 §3.2.3
		// asks for ^A; msmtp sends an empty line): whatever it is, the
		// exchange ends with the refusal.
		return nil, true, s.failed
	case s.step == 1 && response == nil:
		return []byte{}, false, nil // no initial response: empty challenge
	case s.step > 2:
		return nil, true, errExchangeOver
	}
	user, token, ok := s.parse(response)
	if !ok {
		return nil, true, ErrMalformedCredentials
	}
	err := s.check(user, token)
	var se *smtp.SMTPError
	if err == nil || (errors.As(err, &se) && se.Code/100 != 5) || (errors.As(err, &se) && se.Code == 550) {
		// Success, a temporary failure (454), or a refusal that is not
		// about the token: no error challenge.
		return nil, true, err
	}
	s.failed = err
	return s.challenge, false, nil
}

// ParseXOAuth2 reads "user=U\x01auth=Bearer T\x01\x01".
func ParseXOAuth2(b []byte) (user, token string, ok bool) {
	if len(b) > maxTokenMessage || !bytes.HasSuffix(b, []byte("\x01\x01")) {
		return "", "", false
	}
	for _, f := range strings.Split(string(b[:len(b)-2]), "\x01") {
		switch k, v, _ := strings.Cut(f, "="); k {
		case "user":
			user = v
		case "auth":
			token = bearer(v)
		}
	}
	if user == "" || token == "" || len(user) > maxField {
		return "", "", false
	}
	return user, token, true
}

// ParseOAuthBearer reads RFC 7628 §3.1: a GS2 header ("n,a=user," or
// "n,,"; channel binding is not offered, so "p=" is refused), then
// key=value pairs each ended by ^A, then a final ^A; auth is "Bearer T".
func ParseOAuthBearer(b []byte) (user, token string, ok bool) {
	if len(b) > maxTokenMessage || !bytes.HasSuffix(b, []byte("\x01\x01")) {
		return "", "", false
	}
	s := string(b)
	gs2, rest, found := strings.Cut(s, "\x01")
	if !found {
		return "", "", false
	}
	parts := strings.Split(gs2, ",")
	if len(parts) != 3 || (parts[0] != "n" && parts[0] != "y") || parts[2] != "" {
		return "", "", false
	}
	if parts[1] != "" {
		a, isAuthz := strings.CutPrefix(parts[1], "a=")
		if !isAuthz {
			return "", "", false
		}
		// RFC 5801 saslname: "," and "=" are escaped as =2C and =3D.
		if strings.Contains(strings.NewReplacer("=2C", "", "=3D", "").Replace(a), "=") {
			return "", "", false
		}
		user = strings.NewReplacer("=2C", ",", "=3D", "=").Replace(a)
	}
	for _, kv := range strings.Split(strings.TrimSuffix(rest, "\x01\x01"), "\x01") {
		if k, v, _ := strings.Cut(kv, "="); k == "auth" {
			token = bearer(v)
		}
	}
	if token == "" || len(user) > maxField {
		return "", "", false
	}
	return user, token, true
}

// maxTokenMessage bounds a token SASL message (the token itself is capped
// at 16 KiB by the verifier).
const maxTokenMessage = 20 << 10

func bearer(v string) string {
	scheme, tok, ok := strings.Cut(v, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return ""
	}
	return strings.TrimSpace(tok)
}
