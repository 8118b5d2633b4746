package signin

import (
	"context"
	"net/netip"

	"postern.dev/postern/internal/directory"
	"postern.dev/postern/internal/reply"
)

// AdminCenter checks a web admin center sign-in with a mailbox's address
// (or user principal name) and password. It spends the same budgets as
// SMTP AUTH, IMAP4 and POP3 (the failed-sign-in throttle of the client
// address, the smart lockout of the account, the verification gate), so a
// password guesser gains nothing by moving to the browser. The protocol
// switches (SMTP AUTH, IMAP, POP, authentication policies) do not apply:
// they govern mail clients, not the admin center, just as Microsoft 365's
// admin center signs in through Entra ID whatever Set-CASMailbox says.
// Shared mailboxes have no password and never sign in. Which role the
// mailbox holds is the caller's question (role group membership).
func (a *Authenticator) AdminCenter(ctx context.Context, ip netip.Addr, username, password string) (*directory.Mailbox, *Refusal) {
	now := a.Now()
	actor := a.Directory.Load().MailboxBySignIn(username)
	valid, r := a.checkPassword(ip, actor, username, password, now)
	if r != nil {
		return nil, r
	}
	if !valid || actor == nil || actor.Type == directory.SharedMailbox {
		return nil, refused(reply.AuthFailed, "unknown user or wrong credentials")
	}
	return actor, nil
}
