package directory

import "time"

// AuthServer is a trusted OAuth 2.0 / OpenID Connect token issuer (on-
// premises Exchange's New-AuthServer): tokens it signs may sign in to SMTP
// AUTH with XOAUTH2 or OAUTHBEARER.
type AuthServer struct {
	ID    int64
	OrgID int64
	Name  string
	// AuthMetadataUrl is the issuer's /.well-known/openid-configuration;
	// Issuer and JwksUri are read from it when the server is added (and
	// with Set-AuthServer -RefreshAuthMetadata).
	AuthMetadataUrl string
	Issuer          string
	JwksUri         string
	TokenEndpoint   string
	// Audience is the expected aud claim.
	Audience string
	// UserClaims name the claims that identify the user of a delegated
	// token, tried in order (upn, preferred_username, email).
	UserClaims []string
	Enabled    bool
	// BuiltIn marks Postern's own issuer.
	BuiltIn     bool
	WhenCreated time.Time
}

// DefaultUserClaims are tried in this order: Entra ID puts the UPN in upn,
// most other providers in preferred_username or email.
var DefaultUserClaims = []string{"upn", "preferred_username", "email"}

// ServicePrincipal is an application registered to send (Exchange's
// New-ServicePrincipal): its AppId is the token's appid/azp/client_id.
type ServicePrincipal struct {
	ID          int64
	OrgID       int64
	AppId       string
	ObjectId    string // Identity for Add-MailboxPermission -User
	DisplayName string
	WhenCreated time.Time
}

// MailboxPermission grants FullAccess on a mailbox (Add-MailboxPermission),
// to a service principal (application tokens may then send as it) or to
// another mailbox (a delegate's token may sign in as it, as Exchange allows
// for shared mailboxes).
type MailboxPermission struct {
	ID       int64
	OrgID    int64
	Identity int64 // the mailbox
	// Exactly one of the two is set.
	TrusteePrincipal int64
	TrusteeMailbox   int64
}

// OAuthApp is an application registration of Postern's built-in issuer: a
// client that obtains tokens with the client-credentials grant, proving
// itself with a client secret or a certificate.
type OAuthApp struct {
	ID    int64
	OrgID int64
	Name  string
	AppId string
	// Secrets are argon2id hashes of the client secrets (a secret is shown
	// once, when made); Certificates are PEM certificates whose keys may
	// sign client assertions (RFC 7523).
	SecretHashes []string
	Certificates []string
	WhenCreated  time.Time
}
