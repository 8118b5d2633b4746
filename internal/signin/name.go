package signin

import (
	"strings"

	"postern.dev/postern/internal/directory"
)

// maxDelegateName bounds the sign-in names splitDelegate looks into: two
// addresses of at most 320 octets (RFC 5321 section 4.5.3.1) and a
// separator, with room to spare. Longer names are tried whole only.
const maxDelegateName = 1024

// splitDelegate reads an IMAP4/POP3 sign-in name that opens another
// mailbox: the user's sign-in name, a separator, and the mailbox to open.
// Exchange Online's form is user@contoso.com\shared@contoso.com (or
// \SharedAlias; github.com/imapsync/imapsync/issues/395, mscdex/node-imap
// issues/689); "/" is accepted too (issue 13), as some clients cannot type
// a backslash.
//
// Both separators may also appear inside an address's local part (RFC 5322
// allows "/"), so the split is where the part before it is a sign-in name
// of a mailbox; the first such place wins. A name that itself signs in is
// never split (the caller looks it up first).
func splitDelegate(dir *directory.Snapshot, name string) (user, target string, ok bool) {
	if len(name) > maxDelegateName {
		return "", "", false
	}
	for i := 0; i < len(name); i++ {
		if name[i] != '\\' && name[i] != '/' {
			continue
		}
		if t := name[i+1:]; t != "" && dir.MailboxBySignIn(name[:i]) != nil {
			return name[:i], t, true
		}
	}
	return "", "", false
}

// delegateTarget finds the mailbox a delegate names, in the delegate's own
// organization only: by address (primary or proxy) or sign-in name, or by
// alias. Nil when there is none; another organization's mailbox is never
// found, so its existence is not revealed.
func delegateTarget(dir *directory.Snapshot, actor *directory.Mailbox, target string) *directory.Mailbox {
	t := strings.ToLower(strings.TrimSpace(target))
	mb := dir.MailboxByAddress(t)
	if mb == nil {
		mb = dir.MailboxBySignIn(t)
	}
	if mb == nil && !strings.Contains(t, "@") {
		mb = dir.MailboxByAlias(actor.OrgID, t)
	}
	if mb == nil || mb.OrgID != actor.OrgID {
		return nil
	}
	return mb
}
