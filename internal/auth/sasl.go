package auth

import (
	"bytes"
	"strings"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// CredentialsFunc checks a user name and password. It is called at most
// once per exchange, and only with well-formed credentials. Its error —
// normally a *smtp.SMTPError carrying Exchange's reply — is returned from
// Next as is: go-smtp type-asserts *smtp.SMTPError to choose the reply, so
// it must not be wrapped.
type CredentialsFunc func(username, password string) error

// ErrMalformedCredentials is returned for a SASL message that does not
// parse, without calling the CredentialsFunc. It is Exchange's reply to
// wrong credentials, so probing the parser teaches a client nothing. The
// caller may replace it, but not with nil.
var ErrMalformedCredentials = &smtp.SMTPError{
	Code:         535,
	EnhancedCode: smtp.EnhancedCode{5, 7, 3},
	Message:      "Authentication unsuccessful",
}

// maxField is the 255 octets RFC 4616 section 2 requires a PLAIN server to
// accept for each field; longer fields are refused as malformed. LOGIN,
// which has no specification of its own limits, uses the same bound.
const maxField = 255

// validField reports whether b may be passed on as a user name or a
// password: RFC 4616 section 2's 1*SAFE, at most maxField octets and no
// NUL. Other octets are passed through, whatever their encoding, and fail
// (or not) at the password check.
func validField(b []byte) bool {
	return len(b) > 0 && len(b) <= maxField && bytes.IndexByte(b, 0) < 0
}

// NewPlainServer returns a server for the PLAIN mechanism (RFC 4616). The
// message is "[authzid] NUL authcid NUL passwd"; an authorization identity
// other than the authentication identity (compared case-insensitively) is
// refused, since Postern signs nobody in on behalf of someone else.
func NewPlainServer(check CredentialsFunc) sasl.Server {
	return &plainServer{check: check}
}

type plainServer struct {
	check      CredentialsFunc
	challenged bool
	done       bool
}

func (s *plainServer) Next(response []byte) ([]byte, bool, error) {
	switch {
	case s.done:
		return nil, true, sasl.ErrUnexpectedClientResponse
	case len(response) == 0 && !s.challenged:
		// No initial response (RFC 4954 section 4): ask for the message
		// with an empty challenge, "334 " on the wire. "AUTH PLAIN =",
		// an empty initial response, is treated the same way, since an
		// empty PLAIN message could only be refused.
		s.challenged = true
		return []byte{}, false, nil
	}
	s.done = true
	username, password, ok := parsePlain(response)
	if !ok {
		return nil, true, ErrMalformedCredentials
	}
	return nil, true, s.check(username, password)
}

// parsePlain splits and checks a PLAIN message (RFC 4616 section 2).
func parsePlain(msg []byte) (username, password string, ok bool) {
	authzid, rest, found1 := bytes.Cut(msg, []byte{0})
	authcid, passwd, found2 := bytes.Cut(rest, []byte{0})
	if !found1 || !found2 || !validField(authcid) || !validField(passwd) || len(authzid) > maxField {
		return "", "", false
	}
	username, password = string(authcid), string(passwd)
	if len(authzid) > 0 && !strings.EqualFold(string(authzid), username) {
		return "", "", false
	}
	return username, password, true
}

// NewLoginServer returns a server for the LOGIN mechanism
// (draft-murchison-sasl-login-00), which Exchange Online advertises and
// most devices and scanners use. It asks "Username:" and then "Password:"
// (go-smtp base64-encodes them to VXNlcm5hbWU6 and UGFzc3dvcmQ6); an
// initial response is taken as the user name, so only the password is
// asked for.
func NewLoginServer(check CredentialsFunc) sasl.Server {
	return &loginServer{check: check}
}

type loginState int

const (
	loginStart    loginState = iota // nothing received yet
	loginUsername                   // "Username:" sent
	loginPassword                   // "Password:" sent
	loginDone
)

type loginServer struct {
	check    CredentialsFunc
	state    loginState
	username string
}

func (s *loginServer) Next(response []byte) ([]byte, bool, error) {
	switch s.state {
	case loginStart:
		if len(response) == 0 {
			s.state = loginUsername
			return []byte("Username:"), false, nil
		}
		return s.takeUsername(response)
	case loginUsername:
		return s.takeUsername(response)
	case loginPassword:
		s.state = loginDone
		if !validField(response) {
			return nil, true, ErrMalformedCredentials
		}
		return nil, true, s.check(s.username, string(response))
	}
	return nil, true, sasl.ErrUnexpectedClientResponse
}

func (s *loginServer) takeUsername(response []byte) ([]byte, bool, error) {
	if !validField(response) {
		s.state = loginDone
		return nil, true, ErrMalformedCredentials
	}
	s.username = string(response)
	s.state = loginPassword
	return []byte("Password:"), false, nil
}
