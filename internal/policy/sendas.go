package policy

import (
	"slices"

	"postern.dev/postern/internal/directory"
	"postern.dev/postern/internal/reply"
)

// SenderFacts are the sender identities of one submitted message, all as
// lower-case address keys. Exchange does not document whether it checks the
// envelope or the headers (reference section 5); Postern checks every one of
// them, so that neither can be used to impersonate.
type SenderFacts struct {
	Login        *directory.Mailbox // the authenticated mailbox
	EnvelopeFrom string             // MAIL FROM; "" for the null reverse-path
	HeaderFrom   []string           // the From: addresses
	HeaderSender string             // the Sender: address, "" if absent
}

// CheckSendAs returns nil when the authenticated mailbox may send this
// message, otherwise Exchange's 554 5.2.252 SendAsDenied naming the first
// address it may not use. The check runs after end of DATA, as Exchange's
// does (reference section 1.2: MAIL FROM is accepted, the refusal comes later).
//
// An address is allowed when it is one of the mailbox's own addresses or the
// address of a mailbox that granted it Send As (Add-RecipientPermission). A
// From: address is also allowed when Sender: is the mailbox's own and the
// From: mailbox lists it in GrantSendOnBehalfTo ("<Sender> on behalf of
// <From>").
func CheckSendAs(dir *directory.Snapshot, f SenderFacts) *reply.Reply {
	deny := func(addr string) *reply.Reply { return reply.SendAsDenied(f.Login.PrimarySmtpAddress, addr) }

	from := f.HeaderFrom
	if len(from) == 0 {
		// A message without From: gets From: <envelope sender> from the
		// transport (RFC 6409 section 8); with a null sender there is
		// nothing to put there, and RFC 5322 section 3.6 requires one.
		if f.EnvelopeFrom == "" {
			return reply.NoFromHeader
		}
		from = []string{f.EnvelopeFrom}
	}

	if f.EnvelopeFrom != "" && !maySendAs(dir, f.Login, f.EnvelopeFrom) {
		return deny(f.EnvelopeFrom)
	}
	if f.HeaderSender != "" && !maySendAs(dir, f.Login, f.HeaderSender) {
		return deny(f.HeaderSender)
	}
	onBehalf := f.HeaderSender != "" && owns(f.Login, f.HeaderSender)
	for _, addr := range from {
		if maySendAs(dir, f.Login, addr) {
			continue
		}
		if onBehalf {
			if owner := dir.MailboxByAddress(addr); owner != nil && dir.HasSendOnBehalf(f.Login.ID, owner.ID) {
				continue
			}
		}
		return deny(addr)
	}
	return nil
}

func owns(m *directory.Mailbox, addr string) bool {
	return addr == m.PrimarySmtpAddress || slices.Contains(m.EmailAddresses, addr)
}

func maySendAs(dir *directory.Snapshot, login *directory.Mailbox, addr string) bool {
	if owns(login, addr) {
		return true
	}
	owner := dir.MailboxByAddress(addr)
	return owner != nil && dir.HasSendAs(login.ID, owner.ID)
}
