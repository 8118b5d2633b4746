package auth

import (
	"encoding/json"

	"github.com/emersion/go-sasl"
)

// NewXOAuth2ServerScope is NewXOAuth2Server for another protocol than
// SMTP: its error challenge names scope (IMAP's
// "https://outlook.office.com/IMAP.AccessAsUser.All", say) rather than
// SMTP.Send.
func NewXOAuth2ServerScope(check TokenFunc, scope string) sasl.Server {
	return &tokenServer{check: check, parse: ParseXOAuth2, challenge: scopeChallenge("401", scope)}
}

// NewOAuthBearerServerScope is NewOAuthBearerServer naming scope in its
// error challenge (RFC 7628 section 3.2.2).
func NewOAuthBearerServerScope(check TokenFunc, scope string) sasl.Server {
	return &tokenServer{check: check, parse: ParseOAuthBearer, challenge: scopeChallenge("invalid_token", scope)}
}

func scopeChallenge(status, scope string) []byte {
	b, _ := json.Marshal(struct {
		Status  string `json:"status"`
		Schemes string `json:"schemes"`
		Scope   string `json:"scope"`
	}{status, "bearer", scope})
	return b
}
