package pop3

import (
	"encoding/base64"
	"errors"
	"strings"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"postern.dev/postern/internal/auth"
)

// The SASL mechanisms are internal/auth's, shared with SMTP. They speak in
// SMTP errors, which they use to decide whether a refused token gets the
// error challenge (RFC 7628 §3.2.2); these three tell them, and the real
// verdict travels beside them in conn.refusal.
var (
	saslRefused   = &smtp.SMTPError{Code: 535, EnhancedCode: smtp.EnhancedCode{5, 7, 8}, Message: "refused"}
	saslTemporary = &smtp.SMTPError{Code: 454, EnhancedCode: smtp.EnhancedCode{4, 7, 0}, Message: "temporary"}
	saslClose     = &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 7, 1}, Message: "blocked"}
)

// maxSASLRounds bounds the challenges of one AUTH (PLAIN needs one,
// XOAUTH2 and OAUTHBEARER two after a refused token).
const maxSASLRounds = 4

// handleAuth runs RFC 5034's AUTH: "AUTH" alone lists the mechanisms (as
// Exchange does); "AUTH mech [initial-response]" runs the exchange, each
// challenge "+ base64", each response a base64 line, "*" cancelling.
func (c *conn) handleAuth(arg string) {
	if c.state != stateAuthorization || !c.authAllowed() {
		c.badCommand(errBadState)
		return
	}
	if arg == "" {
		c.reply("+OK\r\n" + strings.Join(saslMechanisms, "\r\n") + "\r\n.")
		return
	}
	mech, ir, hasIR := strings.Cut(arg, " ")
	if hasIR && strings.Contains(ir, " ") {
		c.badCommand(errArgumentCount)
		return
	}
	srv := c.saslServer(strings.ToUpper(mech))
	if srv == nil {
		c.badCommand(errBadArgument)
		return
	}
	var response []byte
	if hasIR {
		var ok bool
		if response, ok = decodeSASL(ir); !ok {
			c.authEnded(auth.ErrMalformedCredentials)
			return
		}
	}
	for round := 0; ; round++ {
		challenge, done, err := srv.Next(response)
		if done || err != nil {
			c.authEnded(err)
			return
		}
		if round >= maxSASLRounds {
			c.authEnded(errors.New("too many SASL rounds"))
			return
		}
		c.reply("+ " + base64.StdEncoding.EncodeToString(challenge))
		line, err := c.readLine(MaxAuthLine, false)
		if err != nil {
			c.discardSignIn() // nothing signed in stays open
			c.readFailed(err)
			c.quit = true
			return
		}
		if line == "*" {
			c.discardSignIn()
			c.refused(&Refusal{Text: textAuthCancl}, textAuthFail)
			return
		}
		var ok bool
		if response, ok = decodeSASL(line); !ok {
			c.authEnded(auth.ErrMalformedCredentials)
			return
		}
	}
}

// saslServer makes the named mechanism's server, nil when not offered.
func (c *conn) saslServer(mech string) sasl.Server {
	switch mech {
	case "PLAIN":
		return auth.NewPlainServer(func(user, pass string) error {
			md, err := c.srv.Auth.Basic(c.ctx, c.ip, user, pass)
			return c.credentialsChecked(md, err)
		})
	case "XOAUTH2":
		return auth.NewXOAuth2Server(c.checkToken)
	case "OAUTHBEARER":
		return auth.NewOAuthBearerServer(c.checkToken)
	}
	return nil
}

func (c *conn) checkToken(user, token string) error {
	md, err := c.srv.Auth.OAuth(c.ctx, c.ip, user, token)
	return c.credentialsChecked(md, err)
}

// credentialsChecked keeps the Authenticator's verdict for authEnded and
// tells the mechanism what it needs to know of it.
func (c *conn) credentialsChecked(md Maildrop, err error) error {
	c.discardSignIn()
	if err == nil && md != nil {
		c.signedIn = md
		return nil
	}
	var r *Refusal
	if !errors.As(err, &r) || r == nil {
		if err == nil {
			err = errors.New("authenticator returned no maildrop")
		}
		c.srv.log().Warn("pop3 sign-in failed", "ip", c.ip, "err", err)
		r = &Refusal{Temporary: true}
	}
	c.refusal = r
	switch {
	case r.Temporary:
		return saslTemporary
	case r.Close:
		return saslClose
	}
	return saslRefused
}

// authEnded answers the end of a SASL exchange.
func (c *conn) authEnded(err error) {
	md, r := c.signedIn, c.refusal
	c.signedIn, c.refusal = nil, nil
	if err == nil && md != nil {
		c.signIn(md, nil, textAuthFail, okAuthed)
		return
	}
	if md != nil {
		md.Close()
	}
	if r == nil {
		// A message that did not parse, or an exchange run too long: the
		// same answer as wrong credentials, so probing teaches nothing.
		r = ErrBadCredentials
	}
	c.refused(r, textAuthFail)
}

// discardSignIn drops a verdict not acted on.
func (c *conn) discardSignIn() {
	if c.signedIn != nil {
		c.signedIn.Close()
	}
	c.signedIn, c.refusal = nil, nil
}

// decodeSASL reads a SASL message in base64 (RFC 5034 §4; "=" is an empty
// initial response). Padding is optional, as some clients omit it.
func decodeSASL(s string) ([]byte, bool) {
	if s == "=" {
		return []byte{}, true
	}
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		if b, err = base64.RawStdEncoding.DecodeString(s); err != nil {
			return nil, false
		}
	}
	return b, true
}
