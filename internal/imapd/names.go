package imapd

import (
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/emersion/go-imap/v2"

	"postern.dev/postern/internal/store"
)

// Folder names. Exchange Online's IMAP uses "/" as the hierarchy delimiter
// and the folders' own names (NAMESPACE (("" "/")) NIL NIL); INBOX is the
// one name IMAP fixes (RFC 9051 section 5.1: case-insensitive), so the
// store's "Inbox" is shown as INBOX.
//
// Hidden: "Top of Information Store" (the root, which IMAP's empty
// namespace prefix already stands for) and Outbox. Exchange lists Outbox
// over IMAP (outlook.office365.com answers LIST with
// `(\HasNoChildren) "/" Outbox`, MailKit issue 1282), but there it is the
// queue of a MAPI client's outgoing mail; IMAP has no way to send
// (RFC 9051 section 1: posting is left to submission), Postern files
// nothing there, and a message an IMAP client put there would look queued
// and never go. So Postern does not show it.

const (
	delim    = '/'
	delimStr = "/"
)

func hiddenType(t string) bool { return t == "Root" || t == "Outbox" }

// specialUse is a folder type's RFC 6154 attribute.
func specialUse(folderType string) imap.MailboxAttr {
	switch folderType {
	case "SentItems":
		return imap.MailboxAttrSent
	case "Drafts":
		return imap.MailboxAttrDrafts
	case "DeletedItems":
		return imap.MailboxAttrTrash
	case "JunkEmail":
		return imap.MailboxAttrJunk
	case "Archive":
		return imap.MailboxAttrArchive
	}
	return ""
}

// imapName is the name IMAP shows for a store folder name.
func imapName(name string) string {
	top, rest, found := strings.Cut(name, delimStr)
	if strings.EqualFold(top, store.Inbox) {
		top = "INBOX"
	}
	if found {
		return top + delimStr + rest
	}
	return top
}

// storeName is the store folder name for an IMAP name; ok is false for a
// name no folder can have.
func storeName(name string) (string, bool) {
	if name == "" || len(name) > maxNameLength || !utf8.ValidString(name) {
		return "", false
	}
	top, rest, found := strings.Cut(name, delimStr)
	if strings.EqualFold(top, "INBOX") {
		top = store.Inbox
	}
	if found {
		return top + delimStr + rest, true
	}
	return top, true
}

// Caps on folder names a client creates.
const (
	maxNameLength  = 1024
	maxLevelLength = 255
	maxDepth       = 32
)

var errBadName = &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeCannot, Text: "The folder name isn't valid."}

// checkNewName validates a name for CREATE and RENAME and returns its
// store name: UTF-8, no empty level (a leading, trailing or doubled "/"),
// no LIST wildcards or control characters, bounded length and depth.
func checkNewName(name string) (string, error) {
	name = strings.TrimSuffix(name, delimStr) // RFC 9051 section 6.3.4 allows a trailing delimiter
	sn, ok := storeName(name)
	if !ok {
		return "", errBadName
	}
	levels := strings.Split(sn, delimStr)
	if len(levels) > maxDepth {
		return "", errBadName
	}
	for _, l := range levels {
		if l == "" || len(l) > maxLevelLength || strings.TrimSpace(l) != l {
			return "", errBadName
		}
		for _, r := range l {
			if r < 0x20 || r == 0x7f || r == '*' || r == '%' || r == '\\' || r == '"' {
				return "", errBadName
			}
		}
	}
	return sn, nil
}

// hasChildren reports whether any folder sits below name.
func hasChildren(folders []store.MailFolder, name string) bool {
	prefix := strings.ToLower(name) + delimStr
	for _, f := range folders {
		if strings.HasPrefix(strings.ToLower(f.Name), prefix) {
			return true
		}
	}
	return false
}

// sortFolders orders folders as Exchange lists them: INBOX first, then by
// name.
func sortFolders(folders []store.MailFolder) []store.MailFolder {
	out := slices.Clone(folders)
	slices.SortStableFunc(out, func(a, b store.MailFolder) int {
		ai, bi := a.Type == "Inbox", b.Type == "Inbox"
		switch {
		case ai && !bi:
			return -1
		case bi && !ai:
			return 1
		}
		return strings.Compare(strings.ToLower(imapName(a.Name)), strings.ToLower(imapName(b.Name)))
	})
	return out
}

// matchListPattern matches a LIST reference and pattern against a name
// (RFC 9051 section 6.3.9): "*" matches anything, "%" anything but the
// delimiter. INBOX matches without case. It runs in time proportional to
// len(name) × len(pattern) whatever the pattern (imapserver.MatchList
// backtracks, which a pattern of many "*" turns exponential).
func matchListPattern(name, ref, pattern string) bool {
	if strings.HasPrefix(pattern, delimStr) {
		ref, pattern = "", pattern[1:]
	}
	full := ref + pattern
	if ref != "" && !strings.HasSuffix(ref, delimStr) && !strings.HasPrefix(pattern, delimStr) {
		full = ref + delimStr + pattern
	}
	// INBOX, in whatever case, names the inbox in the pattern too.
	if top, rest, found := strings.Cut(full, delimStr); strings.EqualFold(top, "INBOX") {
		full = "INBOX"
		if found {
			full += delimStr + rest
		}
	}
	return wildcardMatch(name, full)
}

// wildcardMatch is a linear-space dynamic programme over the pattern.
func wildcardMatch(name, pattern string) bool {
	if len(pattern) > 4*maxNameLength {
		return false
	}
	n := len(name)
	// cur[j]: the pattern so far matches name[:j].
	cur := make([]bool, n+1)
	next := make([]bool, n+1)
	cur[0] = true
	for i := 0; i < len(pattern); i++ {
		c := pattern[i]
		clear(next)
		switch c {
		case '*':
			seen := false
			for j := 0; j <= n; j++ {
				seen = seen || cur[j]
				next[j] = seen
			}
		case '%':
			seen := false
			for j := 0; j <= n; j++ {
				if j > 0 && name[j-1] == delim {
					seen = false
				}
				seen = seen || cur[j]
				next[j] = seen
			}
		default:
			for j := 1; j <= n; j++ {
				next[j] = cur[j-1] && name[j-1] == c
			}
		}
		cur, next = next, cur
	}
	return cur[n]
}
