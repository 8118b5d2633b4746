package policy

import (
	"postern.dev/postern/internal/directory"
	"postern.dev/postern/internal/reply"
)

// CheckReceiveQuota refuses delivery to a mailbox whose size (the bytes in
// its folders) has reached its ProhibitSendReceiveQuota: 552 5.2.2, at RCPT
// TO, whoever sends.
func CheckReceiveQuota(m *directory.Mailbox, size int64) *reply.Reply {
	if directory.OverQuota(size, m.ProhibitSendReceiveQuota) {
		return reply.MailboxFull
	}
	return nil
}

// CheckSendQuota refuses a submission from a mailbox whose size has reached
// its ProhibitSendQuota (or its ProhibitSendReceiveQuota, which is no
// larger in any sensible setting but is checked all the same): 554 5.2.2 at
// end of DATA, where Exchange's store driver refuses it.
func CheckSendQuota(m *directory.Mailbox, size int64) *reply.Reply {
	if directory.OverQuota(size, m.ProhibitSendQuota) || directory.OverQuota(size, m.ProhibitSendReceiveQuota) {
		return reply.SenderMailboxFull
	}
	return nil
}
