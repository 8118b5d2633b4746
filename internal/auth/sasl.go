package auth

import (
	"bytes"
	"errors"
	"strings"

	"github.com/emersion/go-sasl"

	"postern.dev/postern/internal/reply"
)

// CredentialsFunc checks a user name and password. Its error — normally a
// *smtp.SMTPError carrying Exchange's reply — is handed to go-smtp as is
// (go-smtp type-asserts, so it must not be wrapped).
type CredentialsFunc func(username, password string) error

// ErrMalformedCredentials answers a SASL message that does not parse; it
// is the same reply as wrong credentials, so probing the parser teaches
// nothing. It is the catalogue's reply, so the text is written once.
var ErrMalformedCredentials = reply.AuthFailed

var errExchangeOver = errors.New("SASL exchange already finished")

// maxField is RFC 4616 section 2's limit on each PLAIN field (255 octets);
// LOGIN uses the same bound.
const maxField = 255

// NewPlainServer returns a PLAIN server (RFC 4616): one message
// "[authzid] NUL authcid NUL passwd". An authorization identity other than
// the authentication identity is refused: Postern has no proxy sign-in.
func NewPlainServer(check CredentialsFunc) sasl.Server {
	return &plainServer{check: check}
}

type plainServer struct {
	check CredentialsFunc
	step  int
}

func (s *plainServer) Next(response []byte) ([]byte, bool, error) {
	s.step++
	switch {
	case s.step == 1 && response == nil:
		// No initial response: ask for it with an empty challenge (RFC 4954 section 4).
		return []byte{}, false, nil
	case s.step > 2:
		return nil, true, errExchangeOver
	}
	fields := bytes.Split(response, []byte{0})
	if len(fields) != 3 {
		return nil, true, ErrMalformedCredentials
	}
	authz, user, pass := string(fields[0]), string(fields[1]), string(fields[2])
	if user == "" || len(authz) > maxField || len(user) > maxField || len(pass) > maxField {
		return nil, true, ErrMalformedCredentials
	}
	if authz != "" && !strings.EqualFold(authz, user) {
		return nil, true, ErrMalformedCredentials
	}
	s.step = 3
	return nil, true, s.check(user, pass)
}

// NewLoginServer returns a LOGIN server, the mechanism Exchange offers and
// most devices use (draft-murchison-sasl-login): it asks "Username:" and
// "Password:"; an initial response is taken as the user name.
func NewLoginServer(check CredentialsFunc) sasl.Server {
	return &loginServer{check: check}
}

type loginServer struct {
	check    CredentialsFunc
	step     int
	username string
}

func (s *loginServer) Next(response []byte) ([]byte, bool, error) {
	s.step++
	switch s.step {
	case 1:
		if response == nil {
			return []byte("Username:"), false, nil
		}
		s.step = 2 // the initial response was the user name
		fallthrough
	case 2:
		if len(response) == 0 || len(response) > maxField || bytes.IndexByte(response, 0) >= 0 {
			s.step = 4
			return nil, true, ErrMalformedCredentials
		}
		s.username = string(response)
		return []byte("Password:"), false, nil
	case 3:
		if len(response) > maxField || bytes.IndexByte(response, 0) >= 0 {
			return nil, true, ErrMalformedCredentials
		}
		return nil, true, s.check(s.username, string(response))
	}
	return nil, true, errExchangeOver
}
