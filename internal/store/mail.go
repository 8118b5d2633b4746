package store

import (
	"io"
	"time"
)

// Mail store access for IMAP4 (and POP3): folders with the state IMAP
// needs (UIDVALIDITY, UIDNEXT, HIGHESTMODSEQ) and items with UIDs and
// flags. The methods are part of Store; these are their types.

// System flags, as IMAP spells them (RFC 9051 section 2.3.2). Flags are
// compared without case; the store keeps these spellings, and keywords
// as the client first gave them.
const (
	FlagSeen     = `\Seen`
	FlagAnswered = `\Answered`
	FlagFlagged  = `\Flagged`
	FlagDeleted  = `\Deleted`
	FlagDraft    = `\Draft`
)

// MailFolder is one folder of a mailbox with its IMAP state and counts.
type MailFolder struct {
	ID   int64
	Name string // "Inbox", "Sent Items", "Projects/2026" ("/" separates levels)
	// Type is Exchange's folder type (Inbox, SentItems, Drafts,
	// DeletedItems, JunkEmail, Outbox, Archive, Root) or "User Created" (Exchange's word) for a
	// folder a client created.
	Type          string
	UIDValidity   uint32
	UIDNext       uint32
	HighestModSeq uint64
	Subscribed    bool
	// Counts; only MailFolders and MailFolderByName fill them.
	Messages int
	Unseen   int
	Deleted  int
	Size     int64
	// FirstUnseen is the UID of the first item without \Seen (0: none);
	// only MailUIDs fills it.
	FirstUnseen uint32
}

// FolderTypeUser is the type of folders clients create.
const FolderTypeUser = "User Created"

// MailItem is one message in a folder.
type MailItem struct {
	UID          uint32
	Message      int64 // for MessageBody
	Flags        []string
	Size         int64
	InternalDate time.Time
	ModSeq       uint64
}

// UIDRange is an inclusive range of UIDs.
type UIDRange struct{ Start, Stop uint32 }

// MailChanges is what changed in a folder since a MODSEQ.
type MailChanges struct {
	UIDNext       uint32
	HighestModSeq uint64
	// Changed lists items with a greater MODSEQ (new items and flag
	// changes), by UID; Expunged the UIDs removed since.
	Changed  []MailItem
	Expunged []uint32
}

// FlagOp says how SetMailFlags applies flags.
type FlagOp int

const (
	FlagsSet FlagOp = iota
	FlagsAdd
	FlagsRemove
)

// AppendMail is a message an IMAP client stores (APPEND).
type AppendMail struct {
	Mailbox int64
	Folder  int64
	Body    io.Reader
	// MaxSize caps the body: a longer one fails with ErrTooBig and stores
	// nothing.
	MaxSize int64
	Flags   []string
	Date    time.Time // the internal date; zero means now
}

// AppendResult is where an APPEND put the message (RFC 4315 APPENDUID).
type AppendResult struct {
	UIDValidity uint32
	UID         uint32
}

// CopyResult maps source UIDs to the UIDs of their copies (RFC 4315
// COPYUID): Source[i] was copied to Dest[i].
type CopyResult struct {
	UIDValidity uint32
	Source      []uint32
	Dest        []uint32
}

// FlagResult is a flag change: the items changed, with their new flags and
// MODSEQ, and the folder's MODSEQ before the change (a session that knew
// that one can take the change as its own and skip reporting it).
type FlagResult struct {
	Changed       []MailItem
	PrevModSeq    uint64
	HighestModSeq uint64
}

// ExpungeResult lists the UIDs removed, with the folder's MODSEQ before
// and after.
type ExpungeResult struct {
	UIDs          []uint32
	PrevModSeq    uint64
	HighestModSeq uint64
}
